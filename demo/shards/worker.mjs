// SPDX-License-Identifier: MIT
// A sharded hybrid-retrieval index on Cloudflare Workers: each shard is a Durable Object
// holding one llmds RetrievalPipeline; the Worker routes documents to shards by shardOf(id, n),
// exchanges BM25 statistics once after loading, fans every query out to all n shards in
// parallel and merges their raw candidate lists with mergeShardResults, which gives exactly
// what one pipeline over all the documents returns (see README.md).
//
// Endpoints (JSON bodies; `?shards=n` overrides SHARD_COUNT, and each n is its own set of
// Durable Objects "n/shard-i", so one deployment can hold the same corpus as 1 and as 4 shards):
//   POST /load      { documents: [{ id, text, embedding? }] }  embedding: number[] or the
//                   base64 of little-endian float32s (4·dim bytes); repeat to load in batches
//   POST /exchange  every shard's termStats → mergeTermStats → every shard's setGlobalStats;
//                   answers the sizes of what travelled. Call it after loading (and after
//                   changes: until then a shard counts its own changes on top of the old stats)
//   POST /search    { query, queryEmbedding?, topK?, fusionWeight?, fusion?, exhaustive? }
//                   → { results: [[docId, score], ...], shards }; one shard: its plain search()
//   GET  /stats     per shard: documents, hasGlobalStats, bytes
//   POST /reset     drops every shard's documents
// Configuration (wrangler.toml [vars] or workerd bindings): SHARD_COUNT (default 4),
// PIPELINE_OPTIONS (RetrievalPipeline options as JSON, default { "embeddingDim": 384 }).
//
// The shards keep their pipelines in memory: an evicted object comes back empty. A production
// index would persist pipeline.serialize() and the global stats in the object's storage, as
// demo/gateway/cloudflare-worker.mjs does for its router.
import { init, mergeShardResults, mergeTermStats, RetrievalPipeline, shardOf } from 'llmds';

const ready = init();

const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const fail = (e) => json({ error: { code: e.code ?? 'error', message: String(e.message ?? e) } }, e.code ? 400 : 500);
const parse = (v, fallback) => (v === undefined || v === null || v === '' ? fallback : typeof v === 'string' ? JSON.parse(v) : v);

/** number[] as is; a base64 string as little-endian float32s. */
function embeddingOf(e) {
  if (e === undefined || e === null) return undefined;
  if (typeof e !== 'string') return e;
  const bytes = Uint8Array.from(atob(e), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer, 0, bytes.length >> 2);
}

/** The n Durable Object stubs of shard set n. */
const stubs = (env, n) => Array.from({ length: n }, (_, i) => env.SHARDS.get(env.SHARDS.idFromName(`${n}/shard-${i}`)));

async function call(stub, path, body) {
  const r = await stub.fetch(`https://shard${path}`, body === undefined ? {} : { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) {
    let code;
    try {
      code = JSON.parse(text).error?.code;
    } catch {
      // not one of our answers: a 500
    }
    throw Object.assign(new Error(`shard ${path}: ${text}`), { code });
  }
  return { value: JSON.parse(text), bytes: text.length };
}

export default {
  async fetch(request, env) {
    await ready;
    const url = new URL(request.url);
    const n = Number(url.searchParams.get('shards') ?? env.SHARD_COUNT ?? 4);
    if (!Number.isInteger(n) || n < 1 || n > 64) return json({ error: { code: 'invalid_argument', message: 'shards must be in [1, 64]' } }, 400);
    const shards = stubs(env, n);
    try {
      switch (`${request.method} ${url.pathname}`) {
        case 'POST /load': {
          const { documents } = await request.json();
          const groups = shards.map(() => []);
          for (const d of documents) groups[shardOf(d.id, n)].push(d);
          const sizes = await Promise.all(shards.map((s, i) => call(s, '/add', { documents: groups[i] }).then((r) => r.value.documents)));
          return json({ added: documents.length, documents: sizes });
        }
        case 'POST /exchange': {
          const parts = await Promise.all(shards.map((s) => call(s, '/term-stats')));
          const global = mergeTermStats(parts.map((p) => p.value));
          const body = JSON.stringify(global);
          await Promise.all(shards.map((s) => call(s, '/global-stats', body)));
          return json({ documents: global.documents, terms: global.terms.length, shardStatsBytes: parts.map((p) => p.bytes), globalStatsBytes: body.length });
        }
        case 'POST /search': {
          const q = await request.json();
          const { query, ...options } = q;
          if (n === 1 && !options.exhaustive) return json({ results: (await call(shards[0], '/search', q)).value, shards: 1 });
          const parts = await Promise.all(shards.map((s) => call(s, '/search-shard', q)));
          return json({ results: mergeShardResults(parts.map((p) => p.value), options.topK ?? 10), shards: n });
        }
        case 'GET /stats':
          return json({ shards: (await Promise.all(shards.map((s) => call(s, '/stats')))).map((r) => r.value) });
        case 'POST /reset':
          await Promise.all(shards.map((s) => call(s, '/reset', {})));
          return json({ shards: n });
        default:
          return json({ error: { code: 'not_found', message: `${request.method} ${url.pathname}` } }, 404);
      }
    } catch (e) {
      return fail(e);
    }
  },
};

/** One shard: a RetrievalPipeline in a Durable Object (bound as SHARDS). */
export class RetrievalShard {
  constructor(state, env) {
    this.options = parse(env.PIPELINE_OPTIONS, { embeddingDim: 384 });
    state.blockConcurrencyWhile(async () => {
      await ready;
      this.pipeline = new RetrievalPipeline(this.options);
    });
  }

  async fetch(request) {
    const { pathname } = new URL(request.url);
    const p = this.pipeline;
    try {
      switch (pathname) {
        case '/add': {
          for (const d of (await request.json()).documents) p.addDocument(d.id, d.text, embeddingOf(d.embedding));
          return json({ documents: p.size });
        }
        case '/term-stats':
          return json(p.termStats());
        case '/global-stats':
          p.setGlobalStats(await request.json());
          return json({ ok: true });
        case '/search-shard': {
          const { query, queryEmbedding, ...options } = await request.json();
          return json(p.searchShard(query, { ...options, queryEmbedding: embeddingOf(queryEmbedding) }));
        }
        case '/search': {
          const { query, queryEmbedding, exhaustive, ...options } = await request.json();
          const e = embeddingOf(queryEmbedding);
          return json(p.search(query, e === undefined ? options : { ...options, queryEmbedding: e }));
        }
        case '/stats':
          return json({ documents: p.size, hasGlobalStats: p.hasGlobalStats(), bytes: p.stats().bytes });
        case '/reset':
          p.dispose();
          this.pipeline = new RetrievalPipeline(this.options);
          return json({ ok: true });
        default:
          return json({ error: { code: 'not_found', message: pathname } }, 404);
      }
    } catch (e) {
      return fail(e);
    }
  }
}
