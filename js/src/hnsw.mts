// SPDX-License-Identifier: MIT
import { check, checked, engine, limits, type RawHandle } from './engine.mjs';
import { LlmdsError } from './errors.mjs';
import { allowedIds, type IdFilter } from './filter.mjs';
import { ARENA_KEEP_BYTES, withHeap, withHeapAll } from './memory.mjs';
import { adoptOr, deserializeRaw, Owned } from './owned.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawHNSW extends RawHandle {
  add(vector: number, len: number, id: number): number;
  addBatch(vectors: number, len: number, ids: number, n: number): number;
  reserve(n: number): void;
  remove(id: number): number;
  compact(): number;
  compactThreshold(): number;
  setCompactThreshold(t: number): number;
  has(id: number): boolean;
  size(): number;
  search(query: number, len: number, k: number, ef: number): number;
  searchFiltered(query: number, len: number, k: number, ef: number, allowed: number, n: number): number;
  ids(): Uint32Array;
  searchBatch(queries: number, len: number, k: number, ef: number, filtered: boolean, allowed: number, n: number): HNSWBatchResult | null;
  resultAddress(): number;
  serialize(): Uint8Array;
  dim(): number;
  m(): number;
  efConstruction(): number;
  efSearch(): number;
  setEfSearch(ef: number): number;
  metric(): number;
  seed(): number;
  quantization(): number;
  rescore(): number;
  stats(): HNSWStats;
}

/** @internal */
interface HNSWEngine {
  RawHNSW: {
    create(
      dim: number, m: number, efConstruction: number, efSearch: number, seed: number, metric: number, compactThreshold: number,
      quantization: number, rescore: number,
    ): RawHNSW | null;
    deserialize(bytes: number, n: number): RawHNSW | null;
    limits(): HNSWLimits;
  };
}

/** @internal */
interface HNSWLimits {
  maxDim: number;
  minM: number;
  maxM: number;
  maxEf: number;
  maxK: number;
  maxId: number;
  maxBatchResults: number;
  maxRescore: number;
}

/** @internal Shared with RetrievalPipeline, which holds an HNSW index. */
export const hnswLimits = () => limits('HNSW', (m) => (m as unknown as HNSWEngine).RawHNSW.limits());

/** Distance used by an {@link HNSW} index (smaller is always nearer). */
export type HNSWMetric = 'l2' | 'cosine' | 'ip';

/**
 * How an {@link HNSW} index stores the vectors its graph walk measures (construction and
 * search): `'none'` f32; `'f16'` binary16 (queries stay f32); `'i8'` int8 with a per-vector
 * scale and offset (queries encoded alike, integer dot products); `'b1'` one bit per dimension
 * (`x > mean(x)`), Hamming distance, metrics `'cosine'` and `'ip'` only. See README "HNSW
 * semantics".
 */
export type HNSWQuantization = 'none' | 'f16' | 'i8' | 'b1';

/** A vector: `number[]` or `Float32Array` of `dim` finite numbers. */
export type VectorLike = readonly number[] | Float32Array;

/**
 * Several vectors: one flat `n × dim` row-major `Float32Array` / `number[]`, or an array of
 * vectors.
 */
export type VectorBatch = Float32Array | readonly number[] | readonly VectorLike[];

export interface HNSWOptions {
  /** Vector dimension, an integer in [1, 65536]. Required. */
  dim: number;
  /** Links per node on upper layers (2M on layer 0), [2, 512]. Default 16. */
  M?: number;
  /** Beam width while building, [1, 1048576]. Default 200. */
  efConstruction?: number;
  /** Default beam width of searches, [1, 1048576]. Default 50. */
  efSearch?: number;
  /** Seeds the level generator: same seed + same insertions = identical graph. Default 100. */
  seed?: number;
  /** `'l2'` (default), `'cosine'` or `'ip'`. */
  metric?: HNSWMetric;
  /**
   * Automatic compaction: a `remove` that leaves more than this fraction of the graph's nodes
   * as tombstones rebuilds the index without them (see {@link HNSW.compact}). In [0, 1);
   * default 0 = never. Not serialized: a restored index starts at 0.
   */
  compactThreshold?: number;
  /** Compressed vectors for the graph walk: `'none'` (default), `'f16'`, `'i8'` or `'b1'`. */
  quantization?: HNSWQuantization;
  /**
   * With quantization: searches measure the walk's best `rescore × k` candidates again on exact
   * f32 vectors (the beam is at least that wide) and return the k nearest with exact distances.
   * The f32 vectors are kept (and counted in `stats().bytes` and `stats().rescoreBytes`) only
   * when `rescore` > 0. An integer in [0, 1024]; default 0 for `'f16'` and `'i8'`, 20 for
   * `'b1'`; must be 0 (or absent) without quantization.
   */
  rescore?: number;
}

export interface HNSWSearchOptions {
  /** Beam width for this query, [1, 1048576]; the search uses max(efSearch, k). */
  efSearch?: number;
  /**
   * Only these ids may be returned: the k nearest among them (fewer only when fewer are
   * allowed). The graph walk goes through disallowed vectors (they route, but are not
   * results) and keeps `efSearch` allowed results, so it widens as the filter gets more
   * selective; when few ids are allowed it measures them all instead (exact). See
   * {@link IdFilter} and README "HNSW semantics".
   */
  filter?: IdFilter;
}

export interface HNSWStats {
  /** Live vectors. */
  size: number;
  /** Layers reachable from the entry point (0 when empty). */
  levels: number;
  /** Id of the entry point, -1 when empty. */
  entryPoint: number;
  /** Graph nodes, removed ones (tombstones) included. */
  nodes: number;
  /** Removed vectors whose memory is still held (nodes − size); 0 after compact(). */
  tombstones: number;
  /** Directed links on all layers (removed nodes included). */
  edges: number;
  /** Mean out-degree on layer 0. */
  avgDegree: number;
  /** Bytes held by the index in the wasm heap. */
  bytes: number;
  /**
   * The part of `bytes` holding the exact f32 vectors kept for rescoring (quantization with
   * `rescore` > 0); 0 otherwise.
   */
  rescoreBytes: number;
}

/** Search results of a batch: `n × k` row-major, nearest first, padded with -1 / Infinity. */
export interface HNSWBatchResult {
  ids: Int32Array;
  distances: Float32Array;
}

const METRICS: readonly HNSWMetric[] = ['l2', 'cosine', 'ip'];
const QUANTIZATIONS: readonly HNSWQuantization[] = ['none', 'f16', 'i8', 'b1'];
const OPTIONS = ['dim', 'M', 'efConstruction', 'efSearch', 'seed', 'metric', 'compactThreshold', 'quantization', 'rescore'] as const;

/** @internal A batch of vectors as one flat Float32Array of `rows × dim`. */
function batch(value: unknown, name: string, dim: number): Float32Array {
  if (Array.isArray(value) && value.length > 0 && (Array.isArray(value[0]) || value[0] instanceof Float32Array)) {
    const out = new Float32Array(value.length * dim);
    for (let r = 0; r < value.length; r++) {
      const row = v.vector(value[r], `${name}[${r}]`);
      if (row.length !== dim) {
        throw new LlmdsError('dimension_mismatch', `${name}[${r}] has ${row.length} elements but the index dim is ${dim}`);
      }
      out.set(row, r * dim);
    }
    return out;
  }
  const flat = v.vector(value, name);
  if (flat.length % dim !== 0) {
    throw new LlmdsError('dimension_mismatch', `${name} has ${flat.length} elements, not a multiple of dim ${dim}`);
  }
  return flat;
}

/**
 * Largest part of an `addBatch` copied into the wasm heap per engine call (vectors and ids):
 * a batch is sent in chunks that fit the argument arena, so the heap never holds a copy of a
 * large batch.
 */
const ADD_BATCH_CHUNK_BYTES = ARENA_KEEP_BYTES;

/**
 * @internal The checks the engine applies to row `r` of `flat` (finite values, and not the zero
 * vector under cosine), with its messages.
 */
function checkRow(flat: Float32Array, r: number, dim: number, cosine: boolean, f16: boolean, what: string): void {
  const start = r * dim;
  let zero = true;
  for (let j = 0; j < dim; j++) {
    const x = flat[start + j]!;
    if (x - x !== 0) {
      v.fail(`${what}[${j}] must be finite, got ${Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity'}`);
    }
    if (x !== 0) zero = false;
  }
  if (cosine && zero) v.fail(`${what} is the zero vector, which has no direction (metric 'cosine')`);
  if (f16 && !cosine) {  // cosine stores unit vectors
    for (let j = 0; j < dim; j++) {
      if (Math.abs(flat[start + j]!) >= 65520) v.fail(`${what}[${j}] is outside the binary16 range of quantization 'f16' (|x| < 65520)`);
    }
  }
}

function searchOptions(options: unknown, method: string): { ef: number; filter: unknown } {
  const o = v.options(options, `${method} options`, ['efSearch', 'filter'] as const);
  return { ef: o.efSearch === undefined ? 0 : v.integer(o.efSearch, 'efSearch', 1, hnswLimits().maxEf), filter: o.filter };
}

function createRaw(options: unknown): RawHNSW {
  if (options === undefined) v.fail('HNSW needs options { dim, M?, efConstruction?, efSearch?, seed?, metric? }');
  const o = v.options(options, 'HNSW options', OPTIONS);
  const l = hnswLimits();
  const dim = v.integer(o.dim, 'dim', 1, l.maxDim);
  const m = v.integer(o.M ?? 16, 'M', l.minM, l.maxM);
  const efc = v.integer(o.efConstruction ?? 200, 'efConstruction', 1, l.maxEf);
  const efs = v.integer(o.efSearch ?? 50, 'efSearch', 1, l.maxEf);
  const seed = v.integer(o.seed ?? 100, 'seed', 0, Number.MAX_SAFE_INTEGER);
  const metric = METRICS.indexOf(o.metric === undefined ? 'l2' : (o.metric as HNSWMetric));
  if (metric < 0) v.fail(`metric must be 'l2', 'cosine' or 'ip', got ${v.show(o.metric)}`);
  const compact = threshold(o.compactThreshold ?? 0);
  const quantization = QUANTIZATIONS.indexOf(o.quantization === undefined ? 'none' : (o.quantization as HNSWQuantization));
  if (quantization < 0) v.fail(`quantization must be 'none', 'f16', 'i8' or 'b1', got ${v.show(o.quantization)}`);
  const rescore = o.rescore === undefined ? -1 : v.integer(o.rescore, 'rescore', 0, l.maxRescore);
  return checked(engine<HNSWEngine>().RawHNSW.create(dim, m, efc, efs, seed, metric, compact, quantization, rescore));
}

function threshold(value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) v.fail(`compactThreshold must be a number in [0, 1), got ${v.show(value)}`);
  return value;
}

/**
 * Approximate nearest-neighbour index (HNSW, Malkov & Yashunin): heuristic neighbour selection,
 * M links per node (2M on layer 0), wasm SIMD distance kernels.
 *
 * Distances (smaller is nearer): `l2` = squared Euclidean distance; `cosine` = 1 − cos(a, b)
 * (vectors are normalised on insert; zero vectors are rejected); `ip` = 1 − dot(a, b).
 *
 * Ids are integers in [0, 2^31 − 1] (they come back in an `Int32Array` from `searchBatch`).
 * Adding an id that is present is `duplicate_id`; `remove` then `add` re-inserts it. Removed
 * vectors are never returned; they stay in the graph as routing nodes, so it stays navigable.
 *
 * The same options (including `seed`) and the same sequence of calls give byte-identical
 * `serialize()` output on every platform: native, wasm SIMD and wasm portable.
 * @example
 * const index = new HNSW({ dim: 384, metric: 'cosine', seed: 1 });
 * index.addBatch(embeddings, ids);             // Float32Array n × 384, ids: number[]
 * index.search(queryEmbedding, 10);             // [[id, distance], ...] nearest first
 * index.search(queryEmbedding, 10, { efSearch: 200 });
 * index.search(queryEmbedding, 10, { filter: new Uint32Array(allowedIds) }); // k best allowed
 * const bytes = index.serialize();
 * const copy = HNSW.deserialize(bytes);
 * index.dispose(); copy.dispose();
 * @see llmds::HNSW
 */
export class HNSW extends Owned<RawHNSW> {
  readonly #dim: number;
  readonly #metric: HNSWMetric;
  readonly #quantization: HNSWQuantization;
  #slotAt = 0; // HEAP32 index of the result slot, valid for k <= #slotK
  #slotK = 0;
  #ids: Uint32Array | undefined; // live ids for predicate filters; reset by every change

  #liveIds = (): Uint32Array => (this.#ids ??= this.raw.ids());

  constructor(options: HNSWOptions) {
    super(adoptOr(options, () => createRaw(options)));
    const raw = this.raw;
    this.#dim = raw.dim();
    this.#metric = METRICS[raw.metric()]!;
    this.#quantization = QUANTIZATIONS[raw.quantization()]!;
  }

  /** Restores an index from `serialize()` output: `corrupt_data` / `version_mismatch` otherwise. */
  static deserialize(bytes: Uint8Array | ArrayBuffer): HNSW {
    return new HNSW(deserializeRaw(bytes, (p, n) => engine<HNSWEngine>().RawHNSW.deserialize(p, n)) as never);
  }

  /** Number of live (not removed) vectors. */
  get size(): number {
    return this.raw.size();
  }

  get dim(): number {
    this.raw;
    return this.#dim;
  }

  get metric(): HNSWMetric {
    this.raw;
    return this.#metric;
  }

  /** See {@link HNSWOptions.quantization}. */
  get quantization(): HNSWQuantization {
    this.raw;
    return this.#quantization;
  }

  /** The rescoring multiplier in effect (the mode's default when none was given). */
  get rescore(): number {
    return this.raw.rescore();
  }

  /** The default beam width of `search` / `searchBatch`; settable. */
  get efSearch(): number {
    return this.raw.efSearch();
  }

  set efSearch(ef: number) {
    const raw = this.raw;
    check(raw.setEfSearch(v.integer(ef, 'efSearch', 1, hnswLimits().maxEf)));
  }

  /** Inserts `vector` under `id` (an integer in [0, 2^31 − 1] that is not present). */
  add(vector_: VectorLike, id: number): void {
    const raw = this.raw;
    const vec = v.vector(vector_, 'vector');
    const key = v.integer(id, 'id', 0, hnswLimits().maxId);
    this.#ids = undefined;
    withHeap(engine(), vec, (p, n) => check(raw.add(p, n, key)));
  }

  /**
   * Inserts `ids.length` vectors in order, all or nothing: every vector and id (repeats inside
   * the batch included) is validated before the first insertion. The vectors then go to the
   * engine in chunks of at most 1 MiB, so a large batch does not need a copy of itself in the
   * wasm heap (whose memory never shrinks).
   */
  addBatch(vectors: VectorBatch, ids: readonly number[] | Int32Array | Uint32Array): void {
    const raw = this.raw;
    const dim = this.#dim;
    const flat = batch(vectors, 'vectors', dim);
    const keys = v.tokens(ids, 'ids', 'vector id');
    const n = keys.length;
    if (flat.length !== n * dim) {
      throw new LlmdsError(
        'dimension_mismatch',
        `vectors holds ${flat.length / dim} vectors of dim ${dim} but ids has ${n} ids`,
      );
    }
    // The engine's checks, in its order and with its messages, over the whole batch, so that no
    // chunk below can fail after an earlier one was inserted.
    const cosine = this.#metric === 'cosine';
    const f16 = this.#quantization === 'f16';
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const id = keys[i]!;
      if (raw.has(id)) throw new LlmdsError('duplicate_id', `addBatch: ids[${i}] = ${id} is already in the index`);
      if (seen.has(id)) {
        throw new LlmdsError('duplicate_id', `addBatch: ids[${i}] = ${id} appears more than once in the batch`);
      }
      seen.add(id);
      checkRow(flat, i, dim, cosine, f16, `addBatch: vector ${i}`);
    }
    // Room for the whole batch first: past this point no chunk can run out of memory, so a batch
    // is all or nothing under memory pressure too (out_of_memory here changes nothing).
    raw.reserve(n);
    this.#ids = undefined;
    const rows = Math.max(1, Math.floor(ADD_BATCH_CHUNK_BYTES / (4 * (dim + 1))));
    const m = engine();
    for (let from = 0; from < n; from += rows) {
      const count = Math.min(rows, n - from);
      const chunk = [flat.subarray(from * dim, (from + count) * dim), keys.subarray(from, from + count)];
      withHeapAll(m, chunk, ([p, q], [len, c]) => check(raw.addBatch(p!, len!, q!, c!)));
    }
  }

  /**
   * Removes `id`; `not_found` if it is not present. The vector stays in the graph as a routing
   * node (a tombstone) until {@link compact} runs, or until `compactThreshold` triggers it.
   */
  remove(id: number): void {
    const raw = this.raw;
    const key = v.id(id, 'id');
    this.#ids = undefined;
    check(raw.remove(key));
  }

  /**
   * Rebuilds the index without its tombstones and releases their memory: the result is the
   * index a fresh build of the live vectors (in insertion order, same options) would give, so
   * it is deterministic on every platform. Costs about one build of the live vectors. Nothing
   * to do without tombstones.
   */
  compact(): void {
    const raw = this.raw;
    this.#ids = undefined;
    check(raw.compact());
  }

  /** See {@link HNSWOptions.compactThreshold}; settable (a restored index starts at 0). */
  get compactThreshold(): number {
    return this.raw.compactThreshold();
  }

  set compactThreshold(t: number) {
    const raw = this.raw;
    check(raw.setCompactThreshold(threshold(t)));
  }

  has(id: number): boolean {
    const raw = this.raw;
    return raw.has(v.id(id, 'id'));
  }

  /**
   * The `k` nearest live vectors as `[id, distance]` pairs, nearest first (fewer when the index
   * holds fewer). `options.efSearch` overrides the default beam width for this query;
   * `options.filter` restricts the result to allowed ids (the k nearest among them).
   */
  search(query: VectorLike, k: number, options?: HNSWSearchOptions): Array<[id: number, distance: number]> {
    const raw = this.raw;
    const q = v.vector(query, 'query');
    const kk = v.integer(k, 'k', 1, hnswLimits().maxK);
    const { ef, filter } = searchOptions(options, 'search');
    const m = engine();
    let found: number;
    if (filter === undefined) {
      found = withHeap(m, q, (p, n) => check(raw.search(p, n, kk, ef)));
    } else {
      const allowed = allowedIds(filter, this.#liveIds);
      found = withHeapAll(m, [q, allowed], ([p, a], [n, na]) => check(raw.searchFiltered(p!, n!, kk, ef, a!, na!)));
    }
    if (kk > this.#slotK) {
      // The result slot only moves when it grows, i.e. for a larger k than any before.
      this.#slotAt = raw.resultAddress() >>> 2;
      this.#slotK = kk;
    }
    const at = this.#slotAt;
    const ids = m.HEAP32; // read after the call: it may have grown the heap
    const dists = m.HEAPF32;
    const out = new Array<[number, number]>(found);
    for (let i = 0; i < found; i++) out[i] = [ids[at + i]!, dists[at + kk + i]!];
    return out;
  }

  /**
   * One search per query (`queries`: flat `n × dim` or an array of vectors), in one call.
   * Returns `n × k` ids and distances, nearest first per row, padded with -1 / Infinity.
   */
  searchBatch(queries: VectorBatch, k: number, options?: HNSWSearchOptions): HNSWBatchResult {
    const raw = this.raw;
    const flat = batch(queries, 'queries', this.#dim);
    const l = hnswLimits();
    const kk = v.integer(k, 'k', 1, l.maxK);
    const { ef, filter } = searchOptions(options, 'searchBatch');
    const n = flat.length / this.#dim;
    if (n * kk > l.maxBatchResults) {
      v.fail(`searchBatch: ${n} queries × k ${kk} exceeds the limit of ${l.maxBatchResults} results per call`);
    }
    if (filter === undefined) return checked(withHeap(engine(), flat, (p, len) => raw.searchBatch(p, len, kk, ef, false, 0, 0)));
    const allowed = allowedIds(filter, this.#liveIds);
    return checked(withHeapAll(engine(), [flat, allowed], ([p, a], [len, na]) => raw.searchBatch(p!, len!, kk, ef, true, a!, na!)));
  }

  /** Versioned, checksummed, little-endian bytes; identical on every platform. */
  serialize(): Uint8Array {
    return this.raw.serialize();
  }

  stats(): HNSWStats {
    return this.raw.stats();
  }
}
