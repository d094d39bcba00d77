// SPDX-License-Identifier: MIT
// BM25 full-text search benchmark: llmds InvertedIndex (through the JS API) side by side with
// wink-bm25-text-search, MiniSearch and FlexSearch on the Debian fortune cookies.
//   (cd bench/bm25 && npm install) && node --expose-gc bench/bm25/bm25.mjs [--quick]
// Corpus: apt-get install fortunes fortunes-min (files under /usr/share/games/fortunes/).
// Reports indexing rate, QPS for exact top-10, memory, and top-10 overlap with exact BM25.
import { readdirSync, readFileSync, lstatSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { llmds, rng, printTable, writeResults, quick, isMain } from '../lib.mjs';

const require = createRequire(import.meta.url);
const { init, InvertedIndex, Tokenizer } = llmds;
const K1 = 1.2;
const B = 0.75;
const TOP_K = 10;
const FORTUNES = '/usr/share/games/fortunes/';

/** Every cookie of every fortune file (split on lines holding only '%'), in file order. */
export function loadFortunes() {
  if (!existsSync(FORTUNES)) throw new Error(`no corpus at ${FORTUNES}: apt-get install fortunes fortunes-min`);
  const docs = [];
  for (const name of readdirSync(FORTUNES).sort()) {
    const path = FORTUNES + name;
    // Skip the .dat indexes and the .u8 symlinks (same cookies again).
    if (name.includes('.') || lstatSync(path).isSymbolicLink() || !lstatSync(path).isFile()) continue;
    for (const cookie of readFileSync(path, 'utf8').split(/^%$/m)) {
      const text = cookie.trim();
      if (text) docs.push(text);
    }
  }
  return docs;
}

// The JS libraries get the same term definition as llmds: lower-cased runs of letters, marks
// and decimal digits (llmds also folds final sigma, irrelevant for this corpus).
const WORD = /[\p{L}\p{M}\p{Nd}]+/gu;
const terms = (text) => text.toLowerCase().match(WORD) ?? [];

/** Seeded 2-4 term queries: words drawn from random cookies (so frequent words are common). */
export function makeQueries(docs, n, seed) {
  const next = rng(seed);
  const out = [];
  while (out.length < n) {
    const words = terms(docs[Math.floor(next() * docs.length)]);
    if (words.length === 0) continue;
    const len = 2 + Math.floor(next() * 3);
    out.push(Array.from({ length: len }, () => words[Math.floor(next() * words.length)]).join(' '));
  }
  return out;
}

/** Exact BM25 top-k by brute force over plain Maps: the ground truth for the overlap. */
function exactTopK(docs, queries) {
  const postings = new Map(); // term -> Map(doc -> tf)
  const lengths = new Float64Array(docs.length);
  docs.forEach((text, id) => {
    const t = terms(text);
    lengths[id] = t.length;
    for (const w of t) {
      let p = postings.get(w);
      if (!p) postings.set(w, (p = new Map()));
      p.set(id, (p.get(id) ?? 0) + 1);
    }
  });
  const n = docs.length;
  const avgdl = lengths.reduce((a, b) => a + b, 0) / n;
  return queries.map((q) => {
    const scores = new Map();
    for (const w of terms(q)) {
      const p = postings.get(w);
      if (!p) continue;
      const idf = Math.log(1 + (n - p.size + 0.5) / (p.size + 0.5));
      for (const [id, tf] of p) {
        const s = (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * lengths[id]) / avgdl));
        scores.set(id, (scores.get(id) ?? 0) + s);
      }
    }
    return [...scores].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, TOP_K).map(([id]) => id);
  });
}

function gc() {
  if (globalThis.gc) {
    globalThis.gc();
    globalThis.gc();
  }
}

// Each engine: build(docs) -> handle, search(handle, query) -> top-10 doc ids, plus extras.
const engines = [
  {
    name: 'llmds InvertedIndex',
    build(docs) {
      const index = new InvertedIndex({ k1: K1, b: B });
      for (let i = 0; i < docs.length; i++) index.addDocument(i, docs[i]);
      return index;
    },
    search: (index, q) => index.search(q, TOP_K).map(([id]) => id),
    engineBytes: (index) => index.stats().bytes,
    dispose: (index) => index.dispose(),
  },
  {
    name: 'wink-bm25-text-search',
    build(docs) {
      const engine = require('wink-bm25-text-search')();
      engine.defineConfig({ fldWeights: { body: 1 }, bm25Params: { k1: K1, b: B, k: 1 } });
      engine.definePrepTasks([terms]);
      for (let i = 0; i < docs.length; i++) engine.addDoc({ body: docs[i] }, i);
      engine.consolidate(4);
      return engine;
    },
    search: (engine, q) => engine.search(q, TOP_K).map(([id]) => Number(id)),
  },
  {
    name: 'minisearch',
    async load() {
      this.MiniSearch = (await import('minisearch')).default;
    },
    build(docs) {
      const ms = new this.MiniSearch({
        fields: ['body'],
        idField: 'id',
        tokenize: terms,
        processTerm: (t) => t,
        searchOptions: { bm25: { k: K1, b: B, d: 0 } },
      });
      ms.addAll(docs.map((body, id) => ({ id, body })));
      return ms;
    },
    search: (ms, q) => ms.search(q).slice(0, TOP_K).map((r) => r.id),
  },
  {
    name: 'flexsearch (not BM25)',
    async load() {
      this.Index = (await import('flexsearch')).default.Index;
    },
    build(docs) {
      const index = new this.Index({ tokenize: 'strict', encode: terms });
      for (let i = 0; i < docs.length; i++) index.add(i, docs[i]);
      return index;
    },
    search: (index, q) => index.search(q, { limit: TOP_K }),
  },
];

export async function benchmarkBM25({ queryCount = quick ? 500 : 2000, reps = quick ? 2 : 3 } = {}) {
  await init();
  const docs = loadFortunes();
  const queries = makeQueries(docs, queryCount, 42);
  const exact = exactTopK(docs, queries);
  // Sanity: llmds' tokenizer agrees with the regex the others use on this corpus.
  const tok = new Tokenizer();
  const mismatch = docs.filter((d) => tok.decode(tok.encode(d)) !== terms(d).join(' ')).length;
  tok.dispose();

  const rows = [];
  for (const e of engines) {
    await e.load?.();
    // Warm-up build + query pass (JIT and wasm tier-up), then the measured ones.
    let handle = e.build(docs);
    for (const q of queries) e.search(handle, q);
    e.dispose?.(handle);
    handle = undefined;
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    handle = e.build(docs);
    const buildMs = performance.now() - t0;
    gc();
    const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;

    let bestMs = Infinity;
    let results;
    for (let r = 0; r < reps; r++) {
      const s0 = performance.now();
      results = queries.map((q) => e.search(handle, q));
      bestMs = Math.min(bestMs, performance.now() - s0);
    }
    let overlap = 0;
    let counted = 0;
    queries.forEach((_, i) => {
      if (exact[i].length === 0) return;
      const got = new Set(results[i]);
      overlap += exact[i].filter((id) => got.has(id)).length / exact[i].length;
      counted++;
    });
    const engineMb = e.engineBytes ? e.engineBytes(handle) / 2 ** 20 : 0;
    rows.push({
      engine: e.name,
      docsPerSec: Math.round(docs.length / (buildMs / 1000)),
      qps: Math.round(queries.length / (bestMs / 1000)),
      meanUs: (bestMs * 1000) / queries.length,
      memoryMb: heapMb + engineMb,
      overlapAt10: overlap / counted,
    });
    if (e.name.startsWith('llmds')) {
      const s = handle.stats();
      rows.at(-1).postingsBytes = s.compressedBytes;
      rows.at(-1).uncompressedBytes = s.uncompressedBytes;
    }
    e.dispose?.(handle);
    handle = undefined;
    gc();
  }
  return {
    corpus: { documents: docs.length, bytes: docs.reduce((a, d) => a + Buffer.byteLength(d), 0), tokenizerMismatches: mismatch },
    queries: { count: queries.length, examples: queries.slice(0, 5) },
    rows,
  };
}

/** Runs, prints and writes bench/results/bm25.json; returns the result. */
export async function runBm25Bench() {
  const result = await benchmarkBM25();
  console.log(`fortunes: ${result.corpus.documents} cookies, ${(result.corpus.bytes / 2 ** 20).toFixed(2)} MB; ${result.queries.count} seeded 2-4 term queries, top-${TOP_K}`);
  printTable('BM25 search (Node, single thread; memory: JS heap growth + llmds engine bytes)', result.rows.map(({ postingsBytes, uncompressedBytes, ...r }) => r));
  const llmdsRow = result.rows[0];
  console.log(`\nllmds postings: ${llmdsRow.postingsBytes} bytes compressed vs ${llmdsRow.uncompressedBytes} as (u32, u32) pairs`);
  if (!globalThis.gc) console.log('(run with node --expose-gc for meaningful memory figures)');
  const file = await writeResults('bm25', result);
  console.log(`results: ${file.pathname}`);
  return result;
}

if (isMain(import.meta)) await runBm25Bench();
