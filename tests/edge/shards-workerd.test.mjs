// SPDX-License-Identifier: MIT
// demo/shards/worker.mjs on workerd (the Cloudflare Workers runtime): a corpus loaded into 4
// Durable Objects (one RetrievalPipeline each) through the Worker, BM25 statistics exchanged,
// every query fanned out to the 4 shards and merged, must return exactly (ids and scores,
// compared with Object.is after the JSON trip) what one in-process RetrievalPipeline built from
// the same documents returns. Durable Object storage is in memory: the shards keep their
// pipelines in memory anyway.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { root } from '../pack.mjs';
import { llmds } from '../js/llmds.mjs';
import { startWorkerd } from './workerd.mjs';

const { init, RetrievalPipeline, shardOf } = llmds;
const entry = join(root, 'demo/shards/worker.mjs');
const DIM = 8;
const OPTIONS = { embeddingDim: DIM, hnswM: 8, hnswEfConstruction: 64, seed: 5 };

/** Seeded pseudo-random numbers in [0, 1) (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const next = rng(2026);
const vector = () => Array.from({ length: DIM }, () => next() * 2 - 1);
const words = (n) => Array.from({ length: n }, () => `w${Math.floor(next() ** 2 * 60)}`).join(' ');
const base64 = (v) => Buffer.from(Float32Array.from(v).buffer).toString('base64');
// 400 documents with distinct ids spread over [0, 2^31): a few without text or embedding.
const documents = Array.from({ length: 400 }, (_, i) => ({
  id: (i * 2654435761) % 2 ** 31,
  text: i % 37 === 0 ? '' : words(3 + Math.floor(next() * 20)),
  embedding: i % 11 === 0 ? undefined : vector(),
}));
const queries = Array.from({ length: 24 }, (_, i) => ({
  query: words(1 + (i % 4)),
  queryEmbedding: vector(),
  topK: [1, 5, 10, 20][i % 4],
  fusionWeight: [0.5, 0.2, 0.8][i % 3],
  fusion: i % 5 === 0 ? 'rrf' : 'weighted',
}));

const post = async (base, path, body) => {
  const r = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body ?? {}) });
  return { status: r.status, body: await r.json() };
};

describe('sharded retrieval on workerd: 4 Durable Objects = one index', () => {
  let server;
  let single;

  before(async () => {
    await init();
    single = new RetrievalPipeline(OPTIONS);
    for (const d of documents) single.addDocument(d.id, d.text, d.embedding);
    server = await startWorkerd(entry, {
      worker: `bindings = [
    (name = "SHARDS", durableObjectNamespace = "RetrievalShard"),
    (name = "SHARD_COUNT", text = "4"),
    (name = "PIPELINE_OPTIONS", text = ${JSON.stringify(JSON.stringify(OPTIONS))}),
  ],
  durableObjectNamespaces = [ (className = "RetrievalShard", uniqueKey = "llmds-retrieval-shard") ],
  durableObjectStorage = (inMemory = void),`,
    });
    // Two batches; embeddings as number arrays in one, as base64 float32 bytes in the other.
    const wire = documents.map((d, i) => ({ ...d, embedding: d.embedding && (i % 2 ? base64(d.embedding) : d.embedding) }));
    for (const part of [wire.slice(0, 250), wire.slice(250)]) {
      for (const shards of [4, 1]) assert.equal((await post(server.base, `/load?shards=${shards}`, { documents: part })).status, 200);
    }
  });
  after(async () => {
    await server?.stop();
    single?.dispose();
  });

  test('the documents landed on their shardOf shards; the exchange gives the corpus statistics', async () => {
    const perShard = [0, 0, 0, 0];
    for (const d of documents) perShard[shardOf(d.id, 4)]++;
    const before = await (await fetch(`${server.base}/stats`)).json();
    assert.deepEqual(before.shards.map((s) => s.documents), perShard);
    assert.ok(before.shards.every((s) => !s.hasGlobalStats));
    const { status, body } = await post(server.base, '/exchange');
    assert.equal(status, 200);
    const whole = single.termStats();
    assert.equal(body.documents, whole.documents);
    assert.equal(body.terms, whole.terms.length);
    assert.equal(body.globalStatsBytes, JSON.stringify(whole).length);
    assert.equal(body.shardStatsBytes.length, 4);
    const afterStats = await (await fetch(`${server.base}/stats`)).json();
    assert.ok(afterStats.shards.every((s) => s.hasGlobalStats));
  });

  test('BM25-only queries: merged = single.search, ids and scores', async () => {
    for (const { queryEmbedding, ...q } of queries) {
      const { status, body } = await post(server.base, '/search', q);
      assert.equal(status, 200);
      assert.equal(body.shards, 4);
      assert.deepStrictEqual(body.results, single.search(q.query, { topK: q.topK, fusionWeight: q.fusionWeight, fusion: q.fusion }), q.query);
    }
  });

  test('hybrid queries with exact dense lists: merged = single.searchExhaustive', async () => {
    let nonEmpty = 0;
    for (const q of queries) {
      const { body } = await post(server.base, '/search', { ...q, exhaustive: true });
      const { query, ...options } = q;
      const expected = single.searchExhaustive(query, options);
      assert.deepStrictEqual(body.results, expected, query);
      if (expected.length > 0) nonEmpty++;
    }
    assert.equal(nonEmpty, queries.length);
  });

  test('the same corpus as one Durable Object (?shards=1, its plain search) = single.search', async () => {
    for (const q of queries.slice(0, 8)) {
      const { body } = await post(server.base, '/search?shards=1', q);
      const { query, ...options } = q;
      assert.equal(body.shards, 1);
      assert.deepStrictEqual(body.results, single.search(query, options));
    }
  });

  test('a bad query is a 400 with the LlmdsError code', async () => {
    const { status, body } = await post(server.base, '/search', { query: 'w1', topK: 0 });
    assert.equal(status, 400);
    assert.equal(body.error.code, 'invalid_argument');
  });
});
