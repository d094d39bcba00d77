// SPDX-License-Identifier: MIT
// Replays the Mooncake synthetic trace (bench/data/mooncake-synthetic-trace.jsonl: 3,993
// requests, 17 minutes, 512-token prefix blocks) through KVCache at page size 512 on a simulated
// server, next to an independent LRU reference written here in plain JS (they must agree) and
// the unbounded ideal (65.0 % of input tokens are a reusable prefix).
//   node bench/kv-trace.mjs [--quick]
//
// Server model: every request holds its pages from its arrival until arrival + service time,
// service = PREFILL_MS_PER_TOKEN × prompt tokens not cached + DECODE_MS_PER_TOKEN × output
// tokens (no queueing: the fleet has capacity for every request; the page budget is what is
// scarce). Departures at the same instant as an arrival go first. A request that does not fit
// (capacity_exceeded once every cached page is evicted) is rejected and counted.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { llmds, MinHeap, printTable, writeResults, isMain, quick } from './lib.mjs';

const { init, KVCache } = llmds;

export const PAGE_SIZE = 512;
export const PREFILL_MS_PER_TOKEN = 0.15;
export const DECODE_MS_PER_TOKEN = 20;

/** The trace's requests: `{ id, arrivalMs, input, output, hashIds }`, in arrival order. */
export function loadTrace(url = new URL('./data/mooncake-synthetic-trace.jsonl', import.meta.url)) {
  return readFileSync(url, 'utf8')
    .trim()
    .split('\n')
    .map((line, id) => {
      const r = JSON.parse(line);
      return { id, arrivalMs: r.timestamp, input: r.input_length, output: r.output_length, hashIds: r.hash_ids };
    });
}

/** Block id h expands to the tokens h·512 + i; the last block is cut at the input length. */
export function requestTokens(req) {
  const tokens = new Int32Array(req.input);
  for (let i = 0; i < req.input; i++) tokens[i] = req.hashIds[Math.floor(i / PAGE_SIZE)] * PAGE_SIZE + (i % PAGE_SIZE);
  return tokens;
}

export const serviceMs = (req, cachedTokens) => PREFILL_MS_PER_TOKEN * (req.input - cachedTokens) + DECODE_MS_PER_TOKEN * req.output;

/** Departures [time, id], earliest first. */
const departuresFirst = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

/**
 * Runs the server model over `trace` with `cache` = { attach(req) → cachedTokens | null (rejected),
 * detach(req) }. Returns { inputTokens, cachedTokens, rejected, hitRate }.
 */
export function simulate(trace, cache) {
  const departures = new MinHeap(departuresFirst);
  let inputTokens = 0;
  let cachedTokens = 0;
  let rejected = 0;
  for (const req of trace) {
    while (departures.size > 0 && departures.peek()[0] <= req.arrivalMs) cache.detach(trace[departures.pop()[1]]);
    inputTokens += req.input;
    const cached = cache.attach(req);
    if (cached === null) {
      rejected++;
      continue;
    }
    cachedTokens += cached;
    departures.push([req.arrivalMs + serviceMs(req, cached), req.id]);
  }
  while (departures.size > 0) cache.detach(trace[departures.pop()[1]]);
  return { inputTokens, cachedTokens, rejected, hitRate: cachedTokens / inputTokens };
}

/**
 * The independent reference: a trie of full pages keyed by block id (a page is its whole
 * history), reference counts, an LRU list of unreferenced pages (a request's pages return to it
 * last page first), eviction of the least recently used page when an allocation needs room, and
 * a private page for a partial last block. Knows nothing of llmds.
 */
export class LruReference {
  #maxPages;
  #used = 0; // pages holding something: referenced or cached
  #root = { children: new Map() };
  #lru = new Set(); // cached (unreferenced) trie nodes, least recent first
  #held = new Map(); // request id -> its trie nodes, first to last
  constructor(maxPages) {
    this.#maxPages = maxPages;
  }
  get cachedPages() {
    return this.#lru.size;
  }
  attach(req) {
    const full = Math.floor(req.input / PAGE_SIZE);
    const partial = req.input % PAGE_SIZE !== 0 ? 1 : 0;
    const path = [];
    let node = this.#root;
    for (let i = 0; i < full; i++) {
      const next = node.children.get(req.hashIds[i]);
      if (next === undefined) break;
      path.push(next);
      node = next;
    }
    const hits = path.length;
    const reusedCached = path.filter((n) => n.refs === 0).length;
    const needed = full - hits + partial;
    if (needed > this.#maxPages - this.#used + (this.#lru.size - reusedCached)) return null; // nothing changed
    for (const n of path) {
      if (n.refs++ === 0) this.#lru.delete(n);
    }
    for (let i = hits; i < full; i++) {
      this.#makeRoom();
      const child = { parent: node, id: req.hashIds[i], children: new Map(), refs: 1 };
      node.children.set(req.hashIds[i], child);
      path.push(child);
      node = child;
      this.#used++;
    }
    if (partial) {
      this.#makeRoom();
      this.#used++;
    }
    this.#held.set(req.id, { path, partial });
    return hits * PAGE_SIZE;
  }
  detach(req) {
    const { path, partial } = this.#held.get(req.id);
    this.#held.delete(req.id);
    if (partial) this.#used--;
    for (let i = path.length - 1; i >= 0; i--) {
      if (--path[i].refs === 0) this.#lru.add(path[i]);
    }
  }
  #makeRoom() {
    if (this.#used < this.#maxPages) return;
    const [oldest] = this.#lru;
    this.#evict(oldest);
  }
  #evict(node) {
    for (const child of node.children.values()) this.#evict(child); // cached descendants go too
    this.#lru.delete(node);
    node.parent.children.delete(node.id);
    this.#used--;
  }
}

/** KVCache behind the same interface; also times attach (plan included) and records matchPrefix. */
export function kvCacheModel(maxPages, tokensOf) {
  const cache = new KVCache({ pageSize: PAGE_SIZE, maxPages });
  const model = {
    cache,
    attachMs: 0,
    attachedTokens: 0,
    tokenGranularTokens: 0, // matchPrefix before attach: what token-granular reuse could skip
    peakBytes: 0,
    peakStoredTokens: 0,
    attach(req) {
      const tokens = tokensOf(req);
      model.tokenGranularTokens += cache.matchPrefix(tokens);
      let plan;
      const t0 = performance.now();
      try {
        plan = cache.attach(req.id, tokens);
      } catch (e) {
        if (e.code === 'capacity_exceeded') return null;
        throw e;
      }
      model.attachMs += performance.now() - t0;
      model.attachedTokens += tokens.length;
      const s = cache.stats();
      const stored = (s.usedPages + s.cachedPages) * PAGE_SIZE;
      if (s.bytes > model.peakBytes) model.peakBytes = s.bytes;
      if (stored > model.peakStoredTokens) model.peakStoredTokens = stored;
      return plan.cachedTokens;
    },
    detach(req) {
      cache.detach(req.id);
    },
  };
  return model;
}

/**
 * Block hashing over every request of the trace, ns per token: llmds' Dynamo-compatible XXH3
 * chain (KVCache.blockHashes, copy into wasm included) against the alternative a JS user would
 * reach for, node:crypto SHA-256 chained per page (vLLM's default prefix-cache hash is SHA-256).
 */
export function benchmarkBlockHashing(tokens) {
  let total = 0;
  for (const t of tokens) total += t.length;
  const time = (fn) => {
    fn(); // warm-up
    let best = Infinity;
    for (let rep = 0; rep < 3; rep++) {
      const t0 = performance.now();
      fn();
      best = Math.min(best, performance.now() - t0);
    }
    return (best * 1e6) / total;
  };
  const xxh3 = time(() => {
    for (const t of tokens) KVCache.blockHashes(t, PAGE_SIZE);
  });
  const sha256 = time(() => {
    for (const t of tokens) {
      let parent = Buffer.alloc(0);
      for (let p = 0; p + PAGE_SIZE <= t.length; p += PAGE_SIZE) {
        parent = createHash('sha256').update(parent).update(new Uint8Array(t.buffer, t.byteOffset + 4 * p, 4 * PAGE_SIZE)).digest();
      }
    }
  });
  return { tokens: total, xxh3NsPerToken: xxh3, sha256NsPerToken: sha256 };
}

export async function benchmarkKVTrace({ budgets = [5000, 20000, 100000], limit = quick ? 1000 : Infinity } = {}) {
  await init();
  const trace = loadTrace().slice(0, limit);
  const tokens = trace.map(requestTokens); // generated up front: attach is timed alone
  const tokensOf = (req) => tokens[req.id];
  const ideal = simulate(trace, new LruReference(Infinity));
  const rows = [];
  for (const maxPages of budgets) {
    const reference = simulate(trace, new LruReference(maxPages));
    const model = kvCacheModel(maxPages, tokensOf);
    try {
      const r = simulate(trace, model);
      rows.push({
        maxPages,
        hitRate: r.hitRate,
        referenceHitRate: reference.hitRate,
        agree: r.cachedTokens === reference.cachedTokens && r.rejected === reference.rejected,
        idealHitRate: ideal.hitRate,
        rejected: r.rejected,
        attachNsPerToken: (model.attachMs * 1e6) / model.attachedTokens,
        tokenGranularExtra: (model.tokenGranularTokens - r.cachedTokens) / r.inputTokens,
        peakBytesPerStoredToken: model.peakBytes / model.peakStoredTokens,
      });
    } finally {
      model.cache.dispose();
    }
  }
  const hashing = benchmarkBlockHashing(tokens);
  return { requests: trace.length, pageSize: PAGE_SIZE, hashing, prefillMsPerToken: PREFILL_MS_PER_TOKEN, decodeMsPerToken: DECODE_MS_PER_TOKEN, rows };
}

export async function runKVTraceBench() {
  const r = await benchmarkKVTrace();
  printTable(`KVCache on the Mooncake trace (${r.requests} requests, page ${r.pageSize}, through the JS API)`, r.rows.map((row) => ({
    'page budget': row.maxPages,
    'hit rate': `${(row.hitRate * 100).toFixed(1)} %`,
    'LRU reference': `${(row.referenceHitRate * 100).toFixed(1)} %${row.agree ? '' : ' (DIFFERS)'}`,
    'unbounded ideal': `${(row.idealHitRate * 100).toFixed(1)} %`,
    rejected: row.rejected,
    'attach ns/token': row.attachNsPerToken.toFixed(2),
    'token-granular reuse would add': `${(row.tokenGranularExtra * 100).toFixed(2)} %`,
    'bytes / stored token': row.peakBytesPerStoredToken.toFixed(2),
  })));
  const h = r.hashing;
  printTable(`Block hashing of every trace request (${(h.tokens / 1e6).toFixed(1)} M tokens, pages of ${PAGE_SIZE})`, [
    { hash: 'llmds KVCache.blockHashes (XXH3-64, Dynamo chain)', 'ns/token': h.xxh3NsPerToken.toFixed(3) },
    { hash: 'node:crypto SHA-256 chained per page', 'ns/token': h.sha256NsPerToken.toFixed(3) },
  ]);
  await writeResults('kv-trace', r);
  return r;
}

if (isMain(import.meta)) await runKVTraceBench();
