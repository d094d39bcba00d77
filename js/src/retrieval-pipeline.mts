// SPDX-License-Identifier: MIT
import { check, checked, engine, limits, type RawHandle } from './engine.mjs';
import { allowedIds, type IdFilter } from './filter.mjs';
import { hnswLimits, type HNSWMetric } from './hnsw.mjs';
import { withHeap, withHeapAll } from './memory.mjs';
import { adoptOr, deserializeRaw, Owned } from './owned.mjs';
import { fusionOf, fusionWeightOf, setGlobalStatsOn, termStatsOf, shardResultFromRaw, type RawTermStats, type ShardResult, type TermStats } from './sharding.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawRetrievalPipeline extends RawHandle {
  add(doc: number, text: number, n: number, embedding: number, len: number, meta: number, metaLen: number): number;
  remove(doc: number): boolean;
  has(doc: number): boolean;
  metadata(doc: number): Uint8Array | undefined;
  ids(): Uint32Array;
  search(
    text: number, n: number, embedding: number, len: number, k: number, w: number, fusion: number, exhaustive: boolean,
    filtered: boolean, allowed: number, nAllowed: number, where: number, whereLen: number,
  ): { ids: Uint32Array; scores: Float64Array } | null;
  stats(): RetrievalPipelineStats;
  options(): Required<Omit<RetrievalPipelineOptions, 'seed'>> & { seed: number };
  serialize(): Uint8Array;
  termStats(text: number, n: number, ofText: boolean): RawTermStats;
  setGlobalStats(documents: number, tokens: number, terms: number, termsBytes: number, df: number, count: number, clear: boolean): number;
  hasGlobalStats(): boolean;
  searchShard(text: number, n: number, embedding: number, len: number, k: number, exhaustive: boolean): Float64Array | null;
}

/** @internal */
interface PipelineEngine {
  RawRetrievalPipeline: {
    create(dim: number, m: number, efc: number, efs: number, budget: number, seed: number, metric: number, k1: number, b: number): RawRetrievalPipeline | null;
    deserialize(bytes: number, n: number): RawRetrievalPipeline | null;
    limits(): { maxDocId: number; maxTopK: number; maxMetadataFields: number };
  };
}

export interface RetrievalPipelineOptions {
  /** Dimension of document and query embeddings. Default 384. */
  embeddingDim?: number;
  hnswM?: number;
  hnswEfConstruction?: number;
  hnswEfSearch?: number;
  /** Result-cache budget in tokens (query terms + results per entry). Default 100000. */
  tokenBudget?: number;
  /** Seeds the HNSW level generator: same seed and insertion order, same index. */
  seed?: number;
  /** Dense distance. Default 'cosine'. */
  metric?: HNSWMetric;
  /** BM25 parameters. Defaults 1.2 and 0.75. */
  k1?: number;
  b?: number;
}

export interface PipelineSearchOptions {
  /** Enables the dense signal; without it the search is BM25 only. */
  queryEmbedding?: Float32Array | readonly number[];
  /** Default 10. */
  topK?: number;
  /** Weight of the dense signal in [0, 1]; BM25 gets 1 − w. Default 0.5. */
  fusionWeight?: number;
  /** 'weighted' (default) or 'rrf' (reciprocal rank fusion, k = 60). */
  fusion?: 'weighted' | 'rrf';
  /**
   * Only these documents may be returned: both candidate lists (dense and BM25) are searched
   * with the filter inside, so the result is the fused top k among allowed documents. A
   * filtered search bypasses the result cache. See {@link IdFilter}.
   */
  filter?: IdFilter;
  /**
   * Conditions on the documents' metadata, ANDed (and ANDed with `filter`): a value means
   * equality, `{ in: [...] }` membership, `{ gt, gte, lt, lte }` a range (numbers or strings).
   * A document without the field never matches a condition on it. Part of the cache key.
   * @example { lang: 'en', year: { gte: 2020, lt: 2025 }, tag: { in: ['a', 'b'] } }
   */
  where?: Where;
}

/** A metadata value: a string, a finite number or a boolean. */
export type MetadataValue = string | number | boolean;
/** A document's metadata: a flat object (see {@link RetrievalPipeline.addDocument}). */
export type Metadata = Readonly<Record<string, MetadataValue>>;
/** A condition on one field: a value (equality) or an object of operators (ANDed). */
export type WhereCondition =
  | MetadataValue
  | {
      eq?: MetadataValue;
      in?: readonly MetadataValue[];
      gt?: number | string;
      gte?: number | string;
      lt?: number | string;
      lte?: number | string;
    };
/** Conditions by field name, ANDed. */
export type Where = Readonly<Record<string, WhereCondition>>;

export interface AddDocumentOptions {
  /**
   * A flat object of string, finite number and boolean values (at most 256 fields), stored
   * with the document and persisted by serialize(); replaces the document's metadata (a
   * document added without it has none). Filters searches through `where`.
   */
  metadata?: Metadata;
}

export interface ShardSearchOptions extends PipelineSearchOptions {
  /** Exact dense list (a beam over every node, as searchExhaustive) instead of HNSW's. */
  exhaustive?: boolean;
}

export interface RetrievalPipelineStats {
  documents: number;
  /** Documents that have an embedding. */
  denseDocuments: number;
  searches: number;
  cacheHits: number;
  cacheMisses: number;
  cacheEntries: number;
  cacheTokens: number;
  bytes: number;
  /** Documents that have metadata. */
  metadataDocuments: number;
}

const METRICS: readonly HNSWMetric[] = ['l2', 'cosine', 'ip'];
const OPTIONS = ['embeddingDim', 'hnswM', 'hnswEfConstruction', 'hnswEfSearch', 'tokenBudget', 'seed', 'metric', 'k1', 'b'] as const;
const SEARCH_OPTIONS = ['queryEmbedding', 'topK', 'fusionWeight', 'fusion', 'filter', 'where'] as const;
const OPERATORS = ['eq', 'in', 'gt', 'gte', 'lt', 'lte'] as const;
const TYPE_STRING = 0, TYPE_NUMBER = 1, TYPE_BOOLEAN = 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Little-endian bytes in the layout wasm/retrieval_pipeline.cpp decodes. */
class Encoder {
  #buf = new Uint8Array(64);
  #view = new DataView(this.#buf.buffer);
  #n = 0;
  #room(k: number): void {
    if (this.#n + k <= this.#buf.length) return;
    const bigger = new Uint8Array(Math.max(this.#buf.length * 2, this.#n + k));
    bigger.set(this.#buf.subarray(0, this.#n));
    this.#buf = bigger;
    this.#view = new DataView(bigger.buffer);
  }
  u8(x: number): void {
    this.#room(1);
    this.#view.setUint8(this.#n, x);
    this.#n += 1;
  }
  u32(x: number): void {
    this.#room(4);
    this.#view.setUint32(this.#n, x, true);
    this.#n += 4;
  }
  string(s: string): void {
    const b = encoder.encode(s);
    this.u32(b.length);
    this.#room(b.length);
    this.#buf.set(b, this.#n);
    this.#n += b.length;
  }
  value(x: MetadataValue): void {
    if (typeof x === 'string') {
      this.u8(TYPE_STRING);
      this.string(x);
    } else if (typeof x === 'number') {
      this.u8(TYPE_NUMBER);
      this.#room(8);
      this.#view.setFloat64(this.#n, x, true);
      this.#n += 8;
    } else {
      this.u8(TYPE_BOOLEAN);
      this.u8(x ? 1 : 0);
    }
  }
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#n);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A metadata value, or invalid_argument naming `name`. */
function metadataValue(value: unknown, name: string): MetadataValue {
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return v.fail(`${name} must be a string, a finite number or a boolean, got ${v.show(value)}`);
}

function encodeMetadata(value: unknown): Uint8Array {
  if (!isPlainObject(value)) v.fail(`metadata must be a plain object of string, number and boolean values, got ${v.show(value)}`);
  const keys = Object.keys(value);
  const max = pipelineLimits().maxMetadataFields;
  if (keys.length > max) v.fail(`metadata has ${keys.length} fields, more than the limit of ${max}`);
  const out = new Encoder();
  out.u32(keys.length);
  for (const key of keys) {
    const x = metadataValue(value[key], `metadata.${key}`);
    out.string(key);
    out.value(x);
  }
  return out.bytes();
}

function encodeWhere(value: unknown): Uint8Array {
  if (!isPlainObject(value)) v.fail(`where must be a plain object of conditions by field, got ${v.show(value)}`);
  const conditions: Array<[field: string, op: number, values: MetadataValue[]]> = [];
  for (const field of Object.keys(value)) {
    const c = value[field];
    const name = `where.${field}`;
    if (!isPlainObject(c)) {
      if (Array.isArray(c)) v.fail(`${name} must be a value or an object of operators, got ${v.show(c)} (for membership use { in: [...] })`);
      conditions.push([field, 0, [metadataValue(c, name)]]);
      continue;
    }
    const ops = Object.keys(c);
    if (ops.length === 0) v.fail(`${name} has no condition: use one of ${OPERATORS.join(', ')}`);
    for (const op of ops) {
      const at = (OPERATORS as readonly string[]).indexOf(op);
      if (at < 0) v.fail(`${name} has an unknown operator ${JSON.stringify(op)}; known: ${OPERATORS.join(', ')}`);
      const x = c[op];
      if (op === 'in') {
        if (!Array.isArray(x)) v.fail(`${name}.in must be an array of values, got ${v.show(x)}`);
        conditions.push([field, at, x.map((y, i) => metadataValue(y, `${name}.in[${i}]`))]);
      } else if (op === 'eq') {
        conditions.push([field, at, [metadataValue(x, `${name}.eq`)]]);
      } else {
        if (!(typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x)))) {
          v.fail(`${name}.${op} must be a finite number or a string, got ${v.show(x)}`);
        }
        conditions.push([field, at, [x]]);
      }
    }
  }
  const out = new Encoder();
  out.u32(conditions.length);
  for (const [field, op, values] of conditions) {
    out.string(field);
    out.u8(op);
    out.u32(values.length);
    for (const x of values) out.value(x);
  }
  return out.bytes();
}

function decodeMetadata(bytes: Uint8Array): Record<string, MetadataValue> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const string = () => {
    const n = view.getUint32(at, true);
    const s = decoder.decode(bytes.subarray(at + 4, at + 4 + n));
    at += 4 + n;
    return s;
  };
  const out: Record<string, MetadataValue> = {};
  const count = view.getUint32(0, true);
  at = 4;
  for (let i = 0; i < count; i++) {
    const key = string();
    const type = bytes[at++];
    let x: MetadataValue;
    if (type === TYPE_STRING) x = string();
    else if (type === TYPE_NUMBER) {
      x = view.getFloat64(at, true);
      at += 8;
    } else x = bytes[at++] === 1;
    Object.defineProperty(out, key, { value: x, enumerable: true, writable: true, configurable: true }); // '__proto__' too
  }
  return out;
}
const SHARD_OPTIONS = ['queryEmbedding', 'topK', 'fusionWeight', 'fusion', 'exhaustive'] as const;
const pipelineLimits = () => limits('RetrievalPipeline', (m) => (m as unknown as PipelineEngine).RawRetrievalPipeline.limits());
const checkDocId = (value: unknown) => v.integer(value, 'docId', 0, pipelineLimits().maxDocId);

function createRaw(options: unknown): RawRetrievalPipeline {
  const o = v.options(options, 'RetrievalPipeline options', OPTIONS);
  const metric = o.metric ?? 'cosine';
  if (!METRICS.includes(metric as HNSWMetric)) v.fail(`metric must be 'l2', 'cosine' or 'ip', got ${v.show(metric)}`);
  const l = hnswLimits();
  const raw = engine<PipelineEngine>().RawRetrievalPipeline.create(
    v.integer(o.embeddingDim ?? 384, 'embeddingDim', 1, l.maxDim),
    v.integer(o.hnswM ?? 16, 'hnswM', l.minM, l.maxM),
    v.integer(o.hnswEfConstruction ?? 200, 'hnswEfConstruction', 1, l.maxEf),
    v.integer(o.hnswEfSearch ?? 50, 'hnswEfSearch', 1, l.maxEf),
    v.integer(o.tokenBudget ?? 100000, 'tokenBudget', 0, Number.MAX_SAFE_INTEGER),
    v.integer(o.seed ?? 100, 'seed', 0, Number.MAX_SAFE_INTEGER),
    METRICS.indexOf(metric as HNSWMetric),
    v.finite(o.k1 ?? 1.2, 'k1'),
    v.finite(o.b ?? 0.75, 'b'),
  );
  return checked(raw);
}

/**
 * Hybrid retrieval: an HNSW index over document embeddings and a BM25 index over their text,
 * fused per query, with a result cache that every add/remove clears and that keeps hot queries
 * (counted by a Count-Min sketch) preferentially.
 *
 * Weighted fusion: score = w·dense + (1 − w)·bm25, where bm25 = BM25 / best BM25 of the
 * candidates (a single or all-equal list scores 1) and dense maps the distance into [0, 1]
 * (cosine 1 − d/2, l2 1/(1 + d), ip logistic of the dot product). RRF: w/(60 + dense rank) +
 * (1 − w)/(60 + BM25 rank). Without `queryEmbedding` the search is BM25 only.
 * @example
 * const rag = new RetrievalPipeline({ embeddingDim: 384 });
 * rag.addDocument(1, 'Paged attention stores the KV cache in blocks', embed(text1));
 * rag.addDocument(2, 'BM25 ranks documents by term frequency');     // BM25 only
 * rag.search('kv cache blocks', { queryEmbedding: embed(q), topK: 5 }); // [[1, 0.93], ...]
 * rag.addDocument(3, 'Prefix caching', embed(text3), { metadata: { lang: 'en', year: 2024 } });
 * rag.search('cache', { where: { lang: 'en', year: { gte: 2020 } } });
 * @see llmds::RetrievalPipeline
 */
export class RetrievalPipeline extends Owned<RawRetrievalPipeline> {
  #ids: Uint32Array | undefined; // document ids for predicate filters; reset by every change

  constructor(options?: RetrievalPipelineOptions) {
    super(adoptOr(options, () => createRaw(options)));
  }

  #liveIds = (): Uint32Array => (this.#ids ??= this.raw.ids());

  /** Restores a pipeline from serialize() bytes (`corrupt_data` / `version_mismatch` otherwise). */
  static deserialize(bytes: Uint8Array | ArrayBuffer): RetrievalPipeline {
    return new RetrievalPipeline(
      deserializeRaw(bytes, (p, n) => engine<PipelineEngine>().RawRetrievalPipeline.deserialize(p, n)) as never,
    );
  }

  /** Number of documents. */
  get size(): number {
    return this.raw.stats().documents;
  }

  /**
   * Indexes the text (BM25) and, when given, the embedding (HNSW); replaces a document with the
   * same id. Atomic: if anything is rejected, neither index changes. Ids are in [0, 2^31).
   */
  addDocument(docId: number, text: string, embedding?: Float32Array | readonly number[], options?: AddDocumentOptions): void {
    const raw = this.raw;
    const id = checkDocId(docId);
    const t = v.text(text, 'text');
    const e = embedding === undefined ? undefined : v.vector(embedding, 'embedding');
    const o = v.options(options, 'addDocument options', ['metadata'] as const);
    const meta = o.metadata === undefined ? undefined : encodeMetadata(o.metadata);
    this.#ids = undefined;
    if (e === undefined && meta === undefined) {
      withHeap(engine(), t, (p, n) => check(raw.add(id, p, n, 0, 0, 0, 0)));
      return;
    }
    const inputs = [t, e ?? new Float32Array(0), meta ?? new Uint8Array(0)];
    withHeapAll(engine(), inputs, ([p, ep, mp], [n, len, ml]) =>
      check(raw.add(id, p!, n!, e === undefined ? 0 : ep!, len!, meta === undefined ? 0 : mp!, ml!)),
    );
  }

  /** The document's metadata (a fresh object), or undefined when it has none or is not there. */
  getMetadata(docId: number): Record<string, MetadataValue> | undefined {
    const raw = this.raw;
    const bytes = raw.metadata(checkDocId(docId));
    return bytes === undefined ? undefined : decodeMetadata(bytes);
  }

  /** Removes the document from both indexes; false when it was not there. */
  removeDocument(docId: number): boolean {
    const raw = this.raw;
    const id = checkDocId(docId);
    this.#ids = undefined;
    return raw.remove(id);
  }

  hasDocument(docId: number): boolean {
    const raw = this.raw;
    return raw.has(checkDocId(docId));
  }

  /**
   * Fused top-k, best first (ties by ascending docId). Cached until the next add/remove
   * (searches with a `filter` are not cached). `filter` and `where` restrict the result to
   * allowed documents.
   */
  search(query: string, options?: PipelineSearchOptions): Array<[docId: number, score: number]> {
    return this.#search(query, options, false);
  }

  /**
   * The same fusion over every document (no candidate cut-off, no cache): the exact reference
   * that search() approximates. O(documents) per query.
   */
  searchExhaustive(query: string, options?: PipelineSearchOptions): Array<[docId: number, score: number]> {
    return this.#search(query, options, true);
  }

  #search(query: string, options: PipelineSearchOptions | undefined, exhaustive: boolean): Array<[number, number]> {
    const raw = this.raw;
    const text = v.text(query, 'query');
    const o = v.options(options, 'search options', SEARCH_OPTIONS);
    const k = v.integer(o.topK ?? 10, 'topK', 1, pipelineLimits().maxTopK);
    const w = fusionWeightOf(o.fusionWeight ?? 0.5);
    const fusion = fusionOf(o.fusion ?? 'weighted');
    const f = fusion === 'rrf' ? 1 : 0;
    const embedding = o.queryEmbedding === undefined ? undefined : v.vector(o.queryEmbedding, 'queryEmbedding');
    const where = o.where === undefined ? undefined : encodeWhere(o.where);
    const allowed = o.filter === undefined ? undefined : allowedIds(o.filter, this.#liveIds);
    const inputs = [text, embedding ?? new Float32Array(0), allowed ?? new Uint32Array(0), where ?? new Uint8Array(0)];
    const hits = checked(
      withHeapAll(engine(), inputs, ([p, ep, ap, wp], [n, len, na, wl]) =>
        raw.search(p!, n!, embedding === undefined ? 0 : ep!, len!, k, w, f, exhaustive, allowed !== undefined, ap!, na!, where === undefined ? 0 : wp!, wl!),
      ),
    );
    const out: Array<[number, number]> = new Array(hits.ids.length);
    for (let i = 0; i < hits.ids.length; i++) out[i] = [hits.ids[i]!, hits.scores[i]!];
    return out;
  }

  /**
   * This pipeline's own BM25 statistics (all terms, or `text`'s only): see
   * InvertedIndex.termStats and {@link mergeTermStats}.
   */
  termStats(text?: string): TermStats {
    return termStatsOf(this.raw, text);
  }

  /**
   * Scores BM25 with corpus-wide statistics (see InvertedIndex.setGlobalStats; `null` clears
   * them). Clears the result cache: every BM25 score may change.
   */
  setGlobalStats(stats: TermStats | null): void {
    setGlobalStatsOn(this.raw, stats);
  }

  /** Whether global statistics are set. */
  hasGlobalStats(): boolean {
    return this.raw.hasGlobalStats();
  }

  /**
   * This shard's raw candidates for a query, for {@link mergeShardResults}: the BM25 top
   * max(3·topK, 50) with raw scores and, with `queryEmbedding`, as many nearest documents
   * (exact with `exhaustive`) plus the distance of every BM25 candidate. A plain JSON-safe
   * object. No cache, no counters; fusionWeight and fusion are only carried along (the merge's
   * defaults).
   * @example
   * // in each shard (a Durable Object, a Worker, a process):
   * const part = pipeline.searchShard(q, { queryEmbedding, topK: 10 });   // → JSON → coordinator
   * // in the coordinator:
   * const top = mergeShardResults(parts);   // = one pipeline's search(q, { queryEmbedding, topK: 10 })
   */
  searchShard(query: string, options?: ShardSearchOptions): ShardResult {
    const raw = this.raw;
    const text = v.text(query, 'query');
    const o = v.options(options, 'searchShard options', SHARD_OPTIONS);
    const k = v.integer(o.topK ?? 10, 'topK', 1, pipelineLimits().maxTopK);
    const w = fusionWeightOf(o.fusionWeight ?? 0.5);
    const fusion = fusionOf(o.fusion ?? 'weighted');
    const exhaustive = v.boolean(o.exhaustive ?? false, 'exhaustive');
    const inputs = o.queryEmbedding === undefined ? [text] : [text, v.vector(o.queryEmbedding, 'queryEmbedding')];
    const hits = checked(withHeapAll(engine(), inputs, ([p, ep], [n, len]) => raw.searchShard(p!, n!, ep ?? 0, len ?? 0, k, exhaustive)));
    return shardResultFromRaw(hits, w, fusion);
  }

  /** The options the pipeline runs with (after deserialize: the stored ones). */
  options(): Required<RetrievalPipelineOptions> {
    return this.raw.options();
  }

  stats(): RetrievalPipelineStats {
    return this.raw.stats();
  }

  /** Versioned, CRC-checked bytes of both indexes and the options (not the cache). */
  serialize(): Uint8Array {
    return this.raw.serialize();
  }
}
