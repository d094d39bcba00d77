// SPDX-License-Identifier: MIT
// Sharding: split a corpus by document id (shardOf), search each shard where it lives, merge
// the answers (mergeShardResults) exactly as one index over the whole corpus would rank them,
// once the shards score BM25 with corpus-wide statistics (termStats → mergeTermStats →
// setGlobalStats). Shard answers are plain JSON-safe objects, so they can cross a fetch().
import { check, checked, engine } from './engine.mjs';
import type { HNSWMetric } from './hnsw.mjs';
import { withHeap, withHeapAll } from './memory.mjs';
import * as v from './validate.mjs';

/**
 * Corpus statistics BM25 depends on: one shard's own (`termStats()`) or a corpus-wide set
 * (`mergeTermStats`). A plain object: `JSON.stringify` / `structuredClone` carry it.
 */
export interface TermStats {
  /** Documents (N). */
  documents: number;
  /** Sum of document lengths in terms (mean length = tokens / documents). */
  tokens: number;
  /** Normalised terms, ascending by UTF-8 bytes, distinct. */
  terms: string[];
  /** df[i]: documents containing terms[i]. */
  df: number[];
}

/**
 * One shard's raw candidates for a query (`RetrievalPipeline.searchShard`), JSON-safe: what
 * {@link mergeShardResults} needs to fuse several shards as one pipeline fuses its own.
 */
export interface ShardResult {
  /** The topK searched for: each list holds at most max(3·topK, 50) candidates. */
  topK: number;
  /** The fusion options searchShard was given (mergeShardResults' defaults). */
  fusionWeight: number;
  fusion: 'weighted' | 'rrf';
  /** The shard's dense metric. */
  metric: HNSWMetric;
  /** Whether the query had an embedding. */
  hybrid: boolean;
  /** BM25 candidates with raw scores (global statistics once set), best first. */
  bm25: Array<[docId: number, score: number]>;
  /** Hybrid only: the dense distance of each bm25 candidate, null when it has no embedding. */
  bm25Distances?: Array<number | null>;
  /** Hybrid only: the nearest documents and their distances, nearest first. */
  dense?: Array<[docId: number, distance: number]>;
}

export interface MergeShardOptions {
  /** Default: for shard results the smallest topK they were searched for; for plain lists 10. */
  topK?: number;
  /** Default: the shards' (searchShard's fusionWeight). */
  fusionWeight?: number;
  /** Default: the shards'. */
  fusion?: 'weighted' | 'rrf';
}

/** @internal TermStats as the engine returns it: terms space-terminated in one UTF-8 array. */
export interface RawTermStats {
  documents: number;
  tokens: number;
  terms: Uint8Array;
  df: Float64Array;
}

/** @internal */
interface ShardingEngine {
  mergeShardResults(parts: number, meta: number, bm25Ids: number, bm25Scores: number, bm25Distances: number, denseIds: number, denseDistances: number, topK: number, w: number, fusion: number): { ids: Uint32Array; scores: Float64Array } | null;
}

const METRICS: readonly HNSWMetric[] = ['l2', 'cosine', 'ip'];
const MAX_COUNT = Number.MAX_SAFE_INTEGER + 1; // 2^53: C++ rejects sums above it
const decoder = new TextDecoder();

/**
 * The shard (in [0, shards)) that holds `docId`: a fixed 32-bit integer hash ("lowbias32":
 * x ^= x >>> 16; x *= 0x7feb352d; x ^= x >>> 15; x *= 0x846ca68b; x ^= x >>> 16, in uint32
 * arithmetic) modulo `shards`. The same in every runtime and in C++ (`llmds::shard_of`); needs
 * no init(). Changing the shard count moves most documents (it is not a consistent hash).
 * @example
 * const shard = shardOf(docId, 4);   // send addDocument(docId, ...) to shard `shard`
 */
export function shardOf(docId: number, shards: number): number {
  let x = v.id(docId, 'docId');
  const n = v.integer(shards, 'shards', 1, 0xffffffff);
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return (x >>> 0) % n;
}

/** @internal The engine's TermStats as the public plain object. */
export function termStatsFromRaw(raw: RawTermStats): TermStats {
  const joined = decoder.decode(raw.terms);
  return { documents: raw.documents, tokens: raw.tokens, terms: joined === '' ? [] : joined.slice(0, -1).split(' '), df: Array.from(raw.df) };
}

interface PackedStats {
  documents: number;
  tokens: number;
  terms: string;
  df: Float64Array;
}

/** @internal Checks the shape of a TermStats (order and df bounds are checked in C++) and packs it. */
export function packTermStats(value: unknown, name: string): PackedStats {
  if (value === null || typeof value !== 'object') v.fail(`${name} must be a TermStats object, got ${v.show(value)}`);
  const s = value as Partial<TermStats>;
  const count = (x: unknown, what: string) => v.integer(x, `${name}.${what}`, 0, MAX_COUNT);
  const documents = count(s.documents, 'documents');
  const tokens = count(s.tokens, 'tokens');
  if (!Array.isArray(s.terms) || !Array.isArray(s.df) || s.terms.length !== s.df.length) {
    v.fail(`${name}.terms and ${name}.df must be arrays of the same length`);
  }
  const df = new Float64Array(s.df.length);
  let terms = '';
  for (let i = 0; i < s.terms.length; i++) {
    const t = s.terms[i];
    if (typeof t !== 'string' || t === '' || t.includes(' ')) v.fail(`${name}.terms[${i}] must be a term (a non-empty string without spaces), got ${v.show(t)}`);
    terms += t + ' ';
    df[i] = count(s.df[i], `df[${i}]`);
  }
  return { documents, tokens, terms, df };
}

/** @internal What InvertedIndex and RetrievalPipeline call for termStats(text?). */
export function termStatsOf(raw: { termStats(text: number, n: number, ofText: boolean): RawTermStats }, text: unknown): TermStats {
  const t = text === undefined ? '' : v.text(text, 'text');
  return termStatsFromRaw(withHeap(engine(), t, (p, n) => raw.termStats(p, n, text !== undefined)));
}

/** @internal What InvertedIndex and RetrievalPipeline call for setGlobalStats. */
export function setGlobalStatsOn(
  raw: { setGlobalStats(documents: number, tokens: number, terms: number, termsBytes: number, df: number, count: number, clear: boolean): number },
  stats: unknown,
): void {
  if (stats === null) {
    check(raw.setGlobalStats(0, 0, 0, 0, 0, 0, true));
    return;
  }
  const p = packTermStats(stats, 'stats');
  withHeapAll(engine(), [p.terms, p.df], ([t, d], [tn, dn]) => check(raw.setGlobalStats(p.documents, p.tokens, t!, tn!, d!, dn!, false)));
}

/**
 * Code-point order of two strings, which is the UTF-8 byte order the engine sorts terms in
 * (plain `<` compares UTF-16 units: U+FF21 < U+1F600's surrogates, the other way in UTF-8).
 */
function byCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800-DFFF) stand for code points above FFFF: move them above E000-FFFF.
    if (x >= 0xd800) x += x < 0xe000 ? 0x2000 : -0x800;
    if (y >= 0xd800) y += y < 0xe000 ? 0x2000 : -0x800;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * Sums shards' `termStats()` into the corpus-wide statistics to hand every shard with
 * `setGlobalStats` (documents and tokens add up, df adds up per term). Plain JS: no init()
 * needed. Throws `invalid_argument` for malformed stats (terms not strictly ascending in UTF-8
 * byte order, a df of 0 or above its documents, sums above 2^53).
 * @example
 * const global = mergeTermStats(shards.map((s) => s.termStats()));
 * for (const s of shards) s.setGlobalStats(global);
 * @see llmds::merge_term_stats
 */
export function mergeTermStats(stats: readonly TermStats[]): TermStats {
  if (!Array.isArray(stats)) v.fail(`stats must be an array of TermStats, got ${v.show(stats)}`);
  let documents = 0;
  let tokens = 0;
  let terms: string[] = [];
  let df: number[] = [];
  stats.forEach((s, p) => {
    const name = `stats[${p}]`;
    const part = packTermStats(s, name); // shape, integers, no spaces
    const t = (s as TermStats).terms;
    for (let i = 0; i < t.length; i++) {
      if (i > 0 && byCodePoint(t[i - 1]!, t[i]!) >= 0) v.fail(`${name}: terms must be distinct and in ascending order (${v.show(t[i])} follows ${v.show(t[i - 1])})`);
      if (part.df[i]! < 1 || part.df[i]! > part.documents) v.fail(`${name}: df of ${v.show(t[i])} must be in [1, documents = ${part.documents}], got ${part.df[i]}`);
    }
    documents += part.documents;
    tokens += part.tokens;
    if (documents > MAX_COUNT || tokens > MAX_COUNT) v.fail('mergeTermStats: documents or tokens exceed 2^53');
    // Merge the sorted run into the result.
    const nextTerms: string[] = [];
    const nextDf: number[] = [];
    let i = 0;
    let j = 0;
    while (i < terms.length || j < t.length) {
      const c = i === terms.length ? 1 : j === t.length ? -1 : byCodePoint(terms[i]!, t[j]!);
      nextTerms.push(c <= 0 ? terms[i]! : t[j]!);
      nextDf.push((c <= 0 ? df[i++]! : 0) + (c >= 0 ? part.df[j++]! : 0));
    }
    terms = nextTerms;
    df = nextDf;
  });
  return { documents, tokens, terms, df };
}

const isRankedList = (r: unknown) => Array.isArray(r);

/** @internal The fusion option of a search, a shard search or a merge. */
export function fusionOf(value: unknown, name = 'fusion'): 'weighted' | 'rrf' {
  if (value !== 'weighted' && value !== 'rrf') v.fail(`${name} must be 'weighted' or 'rrf', got ${v.show(value)}`);
  return value;
}

/** @internal The fusionWeight option: a number in [0, 1]. */
export function fusionWeightOf(value: unknown): number {
  const w = v.finite(value, 'fusionWeight');
  if (w < 0 || w > 1) v.fail(`fusionWeight must be a number in [0, 1], got ${w}`);
  return w;
}

/** (score desc, id asc): the order of every ranked result. */
function mergeRanked(lists: ReadonlyArray<ReadonlyArray<readonly [number, number]>>, topK: number): Array<[number, number]> {
  const all: Array<[number, number]> = [];
  const seen = new Set<number>();
  lists.forEach((list, s) => {
    if (!Array.isArray(list)) v.fail(`results[${s}] must be an array of [docId, score], got ${v.show(list)}`);
    list.forEach((hit, i) => {
      if (!Array.isArray(hit) || hit.length < 2) v.fail(`results[${s}][${i}] must be [docId, score], got ${v.show(hit)}`);
      const id = v.id(hit[0], `results[${s}][${i}][0]`);
      const score = hit[1];
      if (typeof score !== 'number' || Number.isNaN(score)) v.fail(`results[${s}][${i}][1] must be a number, got ${v.show(score)}`);
      if (seen.has(id)) v.fail(`document ${id} is in two shards' results (shards must hold disjoint documents)`);
      seen.add(id);
      all.push([id, score]);
    });
  });
  all.sort((a, b) => (a[1] !== b[1] ? b[1] - a[1] : a[0] - b[0]));
  return all.slice(0, topK);
}

/**
 * Merges shards' answers into the answer of one index holding all their documents.
 *
 * - Plain lists (`InvertedIndex.search` results, `[docId, score][]`): the `topK` best
 *   (default 10), ties by ascending id. With global statistics on every shard this is
 *   exactly, scores included, what one InvertedIndex over the corpus returns.
 * - `RetrievalPipeline.searchShard` results: fused as one pipeline fuses its own candidates
 *   (the global BM25 and dense lists are the best of the union); with global statistics this
 *   equals that pipeline's `search` when the dense lists are exact (`searchExhaustive`
 *   against shards searched with `exhaustive: true`, or HNSW beams as wide as the shards),
 *   except for dense distance ties at the list's end (HNSW breaks those by insertion order,
 *   the merge by id). BM25-only queries are always exact. Needs init().
 *
 * Throws `invalid_argument` when shards share a document, disagree (embedding or not,
 * metric), or were searched for a smaller topK than asked for here.
 * @example
 * const parts = await Promise.all(shards.map((s) => s.searchShard(q, { queryEmbedding, topK: 10 })));
 * mergeShardResults(parts);                 // [[docId, score], ...] best first
 * @see llmds::RetrievalPipeline::merge_shard_results
 */
export function mergeShardResults(
  results: ReadonlyArray<ShardResult> | ReadonlyArray<ReadonlyArray<readonly [number, number]>>,
  topK?: number,
  options?: MergeShardOptions,
): Array<[docId: number, score: number]> {
  if (!Array.isArray(results)) v.fail(`results must be an array of shard results, got ${v.show(results)}`);
  const o = v.options(options, 'merge options', ['topK', 'fusionWeight', 'fusion'] as const);
  const k = topK ?? o.topK;
  if (results.length === 0 || results.every(isRankedList)) {
    return mergeRanked(results as ReadonlyArray<ReadonlyArray<readonly [number, number]>>, v.integer(k ?? 10, 'topK', 1, 0xffffffff));
  }
  const shards = results as ReadonlyArray<ShardResult>;
  const parts = shards.length;
  const meta = new Float64Array(5 * parts);
  let nb = 0;
  let nd = 0;
  shards.forEach((r, s) => {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) v.fail(`results[${s}] must be a searchShard() result, got ${v.show(r)}`);
    if (!Array.isArray(r.bm25)) v.fail(`results[${s}].bm25 must be an array`);
    if (r.hybrid && (!Array.isArray(r.dense) || !Array.isArray(r.bm25Distances) || r.bm25Distances.length !== r.bm25.length)) {
      v.fail(`results[${s}] is hybrid: dense and bm25Distances (one per bm25 hit) must be arrays`);
    }
    const metric = METRICS.indexOf(r.metric);
    if (metric < 0) v.fail(`results[${s}].metric must be 'l2', 'cosine' or 'ip', got ${v.show(r.metric)}`);
    meta.set([v.integer(r.topK, `results[${s}].topK`, 1, 0xffffffff), metric, r.hybrid ? 1 : 0, r.bm25.length, r.hybrid ? r.dense!.length : 0], 5 * s);
    nb += r.bm25.length;
    nd += r.hybrid ? r.dense!.length : 0;
  });
  const bm25Ids = new Uint32Array(nb);
  const bm25Scores = new Float64Array(nb);
  const bm25Distances = new Float32Array(nb);
  const denseIds = new Uint32Array(nd);
  const denseDistances = new Float32Array(nd);
  let b = 0;
  let d = 0;
  shards.forEach((r, s) => {
    r.bm25.forEach((hit, i) => {
      const where = `results[${s}].bm25[${i}]`;
      if (!Array.isArray(hit)) v.fail(`${where} must be [docId, score], got ${v.show(hit)}`);
      bm25Ids[b] = v.id(hit[0], `${where}[0]`);
      bm25Scores[b] = v.finite(hit[1], `${where}[1]`);
      const dist = r.hybrid ? r.bm25Distances![i] : null;
      bm25Distances[b++] = dist === null || dist === undefined ? Infinity : v.finite(dist, `results[${s}].bm25Distances[${i}]`);
    });
    if (!r.hybrid) return;
    r.dense!.forEach((hit, i) => {
      const where = `results[${s}].dense[${i}]`;
      if (!Array.isArray(hit)) v.fail(`${where} must be [docId, distance], got ${v.show(hit)}`);
      denseIds[d] = v.id(hit[0], `${where}[0]`);
      denseDistances[d++] = v.finite(hit[1], `${where}[1]`);
    });
  });
  const first = shards[0]!;
  const mergedK = v.integer(k ?? Math.min(...shards.map((r) => r.topK)), 'topK', 1, 0xffffffff);
  const w = fusionWeightOf(o.fusionWeight ?? first.fusionWeight ?? 0.5);
  const fusion = fusionOf(o.fusion ?? first.fusion ?? 'weighted') === 'rrf' ? 1 : 0;
  const m = engine<ShardingEngine>();
  const hits = checked(
    withHeapAll(m, [meta, bm25Ids, bm25Scores, bm25Distances, denseIds, denseDistances], ([mp, bi, bs, bd, di, dd]) =>
      m.mergeShardResults(parts, mp!, bi!, bs!, bd!, di!, dd!, mergedK, w, fusion),
    ),
  );
  const out: Array<[number, number]> = new Array(hits.ids.length);
  for (let i = 0; i < hits.ids.length; i++) out[i] = [hits.ids[i]!, hits.scores[i]!];
  return out;
}

/** @internal Decodes the engine's searchShard array (wasm/retrieval_pipeline.cpp search_shard). */
export function shardResultFromRaw(raw: Float64Array, fusionWeight: number, fusion: 'weighted' | 'rrf'): ShardResult {
  const hybrid = raw[2] === 1;
  const nb = raw[3]!;
  const nd = raw[4]!;
  let at = 5;
  const bm25: Array<[number, number]> = new Array(nb);
  for (let i = 0; i < nb; i++) bm25[i] = [raw[at + i]!, raw[at + nb + i]!];
  at += 2 * nb;
  const out: ShardResult = { topK: raw[0]!, fusionWeight, fusion, metric: METRICS[raw[1]!]!, hybrid, bm25 };
  if (hybrid) {
    const distances: Array<number | null> = new Array(nb);
    for (let i = 0; i < nb; i++) distances[i] = Number.isFinite(raw[at + i]) ? raw[at + i]! : null;
    at += nb;
    const dense: Array<[number, number]> = new Array(nd);
    for (let i = 0; i < nd; i++) dense[i] = [raw[at + i]!, raw[at + nd + i]!];
    out.bm25Distances = distances;
    out.dense = dense;
  }
  return out;
}
