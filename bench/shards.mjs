// SPDX-License-Identifier: MIT
// Sharded retrieval: the retrieval bench's corpus (bench/retrieval.mjs hybridCorpus, 384-d) as
// one RetrievalPipeline and as 4 shards (shardOf), in the same run:
//   - in process (Node): single search() vs 4 × searchShard() + mergeShardResults, sequential;
//   - under workerd (demo/shards/worker.mjs): one Durable Object (?shards=1, its plain search)
//     vs the Worker fanning out to 4 Durable Objects in parallel and merging; latency of one
//     request at a time, and QPS with CONCURRENCY requests in flight.
// Also: bytes of the statistics exchange and of the shard answers, and that the merged results
// equal the single index's (BM25 exactly; hybrid exactly with exhaustive shards).
//   node bench/shards.mjs [--quick]
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hybridCorpus } from './retrieval.mjs';
import { isMain, llmds, printTable, quick, summarize, writeResults } from './lib.mjs';

const { init, RetrievalPipeline, shardOf, mergeTermStats, mergeShardResults } = llmds;
const root = fileURLToPath(new URL('..', import.meta.url));
const SHARDS = 4;
const CONCURRENCY = 8;

const base64 = (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
const same = (a, b) => a.length === b.length && a.every(([id, s], i) => id === b[i][0] && Object.is(s, b[i][1]));

/** Latency samples (ms) of fn(q) one at a time, and QPS = n / elapsed. */
async function sequential(qs, fn) {
  for (const q of qs.slice(0, 10)) await fn(q); // warm-up
  const samples = [];
  const t0 = performance.now();
  for (const q of qs) {
    const t = performance.now();
    await fn(q);
    samples.push(performance.now() - t);
  }
  return { samples, qps: (qs.length * 1000) / (performance.now() - t0) };
}

/** QPS with `concurrency` requests in flight. */
async function concurrent(qs, fn, concurrency) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < qs.length) await fn(qs[next++]);
  }));
  return (qs.length * 1000) / (performance.now() - t0);
}

export async function benchmarkShards({ docs = quick ? 4000 : 20000, dim = 384, queries = quick ? 100 : 400, topK = 10 } = {}) {
  await init();
  const { documents, query } = hybridCorpus({ docs, dim });
  const qs = Array.from({ length: queries }, query);
  const options = { embeddingDim: dim, seed: 3, tokenBudget: 0 }; // no result cache: every search works
  const single = new RetrievalPipeline(options);
  const shards = Array.from({ length: SHARDS }, () => new RetrievalPipeline(options));
  const rows = [];
  const out = { docs, dim, queries, topK, shards: SHARDS, concurrency: CONCURRENCY };
  let server;
  try {
    for (const d of documents) {
      single.addDocument(d.id, d.text, d.embedding);
      shards[shardOf(d.id, SHARDS)].addDocument(d.id, d.text, d.embedding);
    }
    const parts = shards.map((s) => s.termStats());
    const global = mergeTermStats(parts);
    for (const s of shards) s.setGlobalStats(global);
    out.exchange = {
      terms: global.terms.length,
      shardStatsBytes: parts.map((p) => JSON.stringify(p).length),
      globalStatsBytes: JSON.stringify(global).length,
      queryStatsBytes: Math.round(qs.reduce((n, q) => n + JSON.stringify(single.termStats(q.text)).length, 0) / qs.length),
    };

    // Exactness on this corpus, and the answer sizes.
    let bm25Same = 0;
    let exactSame = 0;
    let approxSame = 0;
    let answerBytes = 0;
    let overlapSingle = 0; // top-10 overlap with the exact fusion (searchExhaustive)
    let overlapMerged = 0;
    const overlap = (a, exact) => a.filter(([id]) => exact.has(id)).length / Math.max(1, exact.size);
    for (const q of qs) {
      const hybrid = { queryEmbedding: q.embedding, topK };
      bm25Same += same(mergeShardResults(shards.map((s) => s.searchShard(q.text, { topK }))), single.search(q.text, { topK })) ? 1 : 0;
      const exact = shards.map((s) => s.searchShard(q.text, { ...hybrid, exhaustive: true }));
      exactSame += same(mergeShardResults(exact), single.searchExhaustive(q.text, hybrid)) ? 1 : 0;
      const approx = shards.map((s) => s.searchShard(q.text, hybrid));
      answerBytes += approx.reduce((n, a) => n + JSON.stringify(a).length, 0) / SHARDS;
      const merged = mergeShardResults(approx);
      const plain = single.search(q.text, hybrid);
      approxSame += same(merged, plain) ? 1 : 0;
      const truth = new Set(single.searchExhaustive(q.text, hybrid).map(([id]) => id));
      overlapSingle += overlap(plain, truth);
      overlapMerged += overlap(merged, truth);
    }
    Object.assign(out, { bm25Identical: bm25Same / qs.length, exhaustiveIdentical: exactSame / qs.length, hnswIdentical: approxSame / qs.length, overlapSingle: overlapSingle / qs.length, overlapMerged: overlapMerged / qs.length, shardAnswerBytes: Math.round(answerBytes / qs.length) });

    const record = (where, mode, kind, r, qpsConcurrent = null) => {
      const s = summarize('lat', r.samples);
      rows.push({ where, mode, kind, p50Ms: s.latP50Ms, p99Ms: s.latP99Ms, qps: r.qps, qpsConcurrent });
    };
    for (const [kind, opts] of [['hybrid', (q) => ({ queryEmbedding: q.embedding, topK })], ['BM25', () => ({ topK })]]) {
      record('Node, in process', 'single index', kind, await sequential(qs, (q) => single.search(q.text, opts(q))));
      record('Node, in process', `${SHARDS} shards, sequential`, kind, await sequential(qs, (q) => mergeShardResults(shards.map((s) => s.searchShard(q.text, opts(q))))));
    }

    // workerd: the same corpus loaded through the Worker into 1 and into 4 Durable Objects.
    const { startWorkerd } = await import('../tests/edge/workerd.mjs');
    server = await startWorkerd(join(root, 'demo/shards/worker.mjs'), {
      worker: `bindings = [
    (name = "SHARDS", durableObjectNamespace = "RetrievalShard"),
    (name = "SHARD_COUNT", text = "${SHARDS}"),
    (name = "PIPELINE_OPTIONS", text = ${JSON.stringify(JSON.stringify(options))}),
  ],
  durableObjectNamespaces = [ (className = "RetrievalShard", uniqueKey = "llmds-bench-shard") ],
  durableObjectStorage = (inMemory = void),`,
    });
    const post = async (path, body) => {
      const r = await fetch(`${server.base}${path}`, { method: 'POST', body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      return r.json();
    };
    for (const n of [1, SHARDS]) {
      const t0 = performance.now();
      for (let i = 0; i < documents.length; i += 250) {
        await post(`/load?shards=${n}`, { documents: documents.slice(i, i + 250).map((d) => ({ id: d.id, text: d.text, embedding: base64(d.embedding) })) });
      }
      out[`workerdLoadSeconds${n}`] = (performance.now() - t0) / 1000;
    }
    out.workerdExchange = await post(`/exchange?shards=${SHARDS}`, {});
    let workerdSame = 0;
    for (const q of qs.slice(0, 50)) {
      const r = await post(`/search?shards=${SHARDS}`, { query: q.text, topK });
      workerdSame += same(r.results, single.search(q.text, { topK })) ? 1 : 0;
    }
    out.workerdBm25Identical = workerdSame / Math.min(50, qs.length);
    for (const [kind, body] of [['hybrid', (q) => ({ query: q.text, queryEmbedding: base64(q.embedding), topK })], ['BM25', (q) => ({ query: q.text, topK })]]) {
      for (const n of [1, SHARDS]) {
        const fn = (q) => post(`/search?shards=${n}`, body(q));
        const r = await sequential(qs, fn);
        record('workerd, HTTP', n === 1 ? 'single index (1 DO)' : `${n} DOs, parallel fan-out`, kind, r, await concurrent(qs, fn, CONCURRENCY));
      }
    }
  } finally {
    await server?.stop();
    single.dispose();
    for (const s of shards) s.dispose();
  }
  out.rows = rows;
  return out;
}

export async function runShardsBench() {
  const r = await benchmarkShards();
  printTable(`Sharded retrieval (${r.docs} docs × ${r.dim}-d, top-${r.topK}, ${r.queries} queries; workerd QPS with ${r.concurrency} requests in flight)`, r.rows.map((x) => ({
    where: x.where,
    mode: x.mode,
    query: x.kind,
    'p50 ms': x.p50Ms,
    'p99 ms': x.p99Ms,
    'QPS (1 in flight)': Math.round(x.qps),
    [`QPS (${r.concurrency} in flight)`]: x.qpsConcurrent === null ? '-' : Math.round(x.qpsConcurrent),
  })));
  console.log(`  merged = single index: BM25 ${r.bm25Identical}, hybrid exhaustive ${r.exhaustiveIdentical}, hybrid HNSW ${r.hnswIdentical}; workerd BM25 ${r.workerdBm25Identical}`);
  console.log(`  hybrid HNSW overlap@${r.topK} with the exact fusion: single ${r.overlapSingle.toFixed(3)}, ${r.shards} shards merged ${r.overlapMerged.toFixed(3)}`);
  console.log(`  statistics: ${r.exchange.terms} terms; per shard ${r.exchange.shardStatsBytes.join(', ')} B of JSON, merged ${r.exchange.globalStatsBytes} B; a query's terms ${r.exchange.queryStatsBytes} B; a shard answer ${r.shardAnswerBytes} B`);
  console.log(`  workerd load: 1 DO ${r.workerdLoadSeconds1.toFixed(1)} s, ${r.shards} DOs ${r.workerdLoadSeconds4.toFixed(1)} s`);
  const file = await writeResults('shards', r);
  console.log(`\nwritten ${file.pathname}`);
  return r;
}

if (isMain(import.meta)) await runShardsBench();
