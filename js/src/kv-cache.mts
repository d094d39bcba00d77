// SPDX-License-Identifier: MIT
import { check, checked, engine, limits, type RawHandle } from './engine.mjs';
import { withHeap, withHeapAll } from './memory.mjs';
import { Owned } from './owned.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawKVCache extends RawHandle {
  attach(seq: number, tokens: number, n: number, prefix: number, prefixN: number): number;
  append(seq: number, tokens: number, n: number): number;
  resultAddress(): number;
  clear(): void;
  writeKV(seq: number, layer: number, from: number, k: number, v: number, n: number): number;
  readKV(seq: number, layer: number, from: number, n: number): { k: Float32Array; v: Float32Array } | null;
  attention(seq: number, layer: number, q: number, m: number, numHeads: number, scale: number): Float32Array | null;
  drainEvents(): RawKVEvent[];
  pendingEvents(): number;
  findableHashes(): Uint32Array;
  fork(src: number, dst: number): number;
  detach(seq: number): boolean;
  has(seq: number): boolean;
  get(seq: number): Int32Array | null;
  blockTable(seq: number): Int32Array | null;
  matchPrefix(tokens: number, n: number): number;
  pageStates(): Int32Array;
  stats(): KVCacheStats;
}

/** @internal */
interface RawPagedAllocator extends RawHandle {
  alloc(n: number): Int32Array | null;
  free(ids: number, n: number): number;
  stats(): PagedAllocatorStats;
}

/** @internal */
interface KVCacheEngine {
  RawKVCache: {
    create(pageSize: number, maxPages: number, sharing: boolean, events: boolean, layers: number, kvHeads: number, headDim: number, dtype: number): RawKVCache | null;
    limits(): PageLimits;
    blockHashes(tokens: number, n: number, pageSize: number): Uint32Array | null;
  };
  RawPagedAllocator: { create(pageSize: number, maxPages: number): RawPagedAllocator | null };
}

/** @internal */
interface PageLimits {
  maxPageSize: number;
  maxPages: number;
  maxLayers: number;
  maxKVHeads: number;
  maxHeadDim: number;
  maxQueryHeads: number;
}

const pageLimits = () => limits('KVCache', (m) => (m as unknown as KVCacheEngine).RawKVCache.limits());

/** @internal */
interface RawKVEvent {
  type: 'stored' | 'removed' | 'cleared';
  hashes: Uint32Array;
  parent: Uint32Array | null;
  tokens: Int32Array;
}

/**
 * What a runtime that keeps the K/V tensors must do after `attach` / `append`: skip the
 * prefill of `cachedTokens`, copy K/V for each `copies` pair, then compute and write the
 * positions from `computeFrom` on into `newPages`.
 */
export interface KVPlan {
  /** Leading tokens whose K/V already exist (pages reused from live or cached sequences). */
  cachedTokens: number;
  /** First position to compute and write: `cachedTokens` for attach, the old length for append. */
  computeFrom: number;
  /** The sequence's pages after the call, in order. */
  blockTable: Int32Array;
  /** The pages that hold positions >= computeFrom (fresh, or freshly copied), in order. */
  newPages: Int32Array;
  /** `[src, dst, src, dst, ...]`: copy each src page's K/V into dst before writing (copy-on-write). */
  copies: Int32Array;
}

/**
 * A change to the set of findable pages, in the shape of vLLM's KV events (BlockStored,
 * BlockRemoved, AllBlocksCleared) so one consumer handles both. Hashes are NVIDIA Dynamo's
 * chained block hashes (see {@link KVCache.blockHashes}).
 */
export type KVEvent =
  | { type: 'stored'; blockHashes: BigUint64Array; parentHash: bigint | null; tokens: Int32Array; pageSize: number }
  | { type: 'removed'; blockHashes: BigUint64Array }
  | { type: 'cleared' };

const words64 = (words: Uint32Array) => new BigUint64Array(words.buffer, words.byteOffset, words.length / 2);

/** Token ids: `number[]`, `Int32Array` or `Uint32Array`, each an integer in [0, 2^31). */
export type TokenArray = readonly number[] | Int32Array | Uint32Array;

export interface KVCacheOptions {
  /** Tokens per page. Default 512. */
  pageSize?: number;
  /** Pages the cache may ever hold. Default 10000. */
  maxPages?: number;
  /** Share full pages whose whole token history matches. Default true. */
  enablePrefixSharing?: boolean;
  /** Record KV events for {@link KVCache.drainEvents}. Default false. */
  events?: boolean;
  /** The cache also owns each page's K and V (see {@link KVPayloadOptions}). Default: none. */
  kv?: KVPayloadOptions;
}

/** K/V payload: per page and layer, K and V of `pageSize × kvHeads × headDim` elements. */
export interface KVPayloadOptions {
  layers: number;
  kvHeads: number;
  headDim: number;
  /** Storage type: `'f32'` (default) or `'f16'` (written with round-to-nearest-even, read widened). */
  dtype?: 'f32' | 'f16';
}

export interface AttentionOptions {
  /** Query heads: a multiple of kvHeads (grouped-query attention). */
  numHeads: number;
  /** Multiplies q·k; default 1/sqrt(headDim). */
  scale?: number;
}

export interface KVCacheStats {
  sequences: number;
  totalPages: number;
  /** Distinct pages with refcount > 0. */
  usedPages: number;
  /** totalPages − usedPages (cached pages count as free: they are evicted on demand). */
  freePages: number;
  /** Unreferenced pages still findable as cached prefixes. */
  cachedPages: number;
  /** Pages with refcount > 1. */
  sharedPages: number;
  /** Full pages attach() reused from the cache. */
  prefixHits: number;
  /** Shareable full pages attach() looked up and had to store. */
  prefixMisses: number;
  /** Tokens attach() did not store thanks to sharing. */
  hitTokens: number;
  /** Pages copied because a write hit a shared page. */
  cowCopies: number;
  /** Cached pages evicted so far. */
  evictions: number;
  /** Tokens over all live sequences. */
  tokens: number;
  /** Bytes held by the cache's own structures in the wasm heap (the payload not included). */
  bytes: number;
  /** Bytes of K/V payload allocated so far (0 without a payload). */
  payloadBytes: number;
}

const KV_OPTIONS = ['pageSize', 'maxPages', 'enablePrefixSharing', 'events', 'kv'] as const;
const PAYLOAD_OPTIONS = ['layers', 'kvHeads', 'headDim', 'dtype'] as const;

/** @internal The payload options as numbers for the engine; layers 0 = none. */
function payloadOptions(value: unknown, l: PageLimits): [layers: number, kvHeads: number, headDim: number, dtype: number] {
  if (value === undefined) return [0, 0, 0, 0];
  const o = v.options(value, 'kv options', PAYLOAD_OPTIONS);
  const dtype = o.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') v.fail(`kv.dtype must be 'f32' or 'f16', got ${v.show(dtype)}`);
  return [
    v.integer(o.layers, 'kv.layers', 1, l.maxLayers),
    v.integer(o.kvHeads, 'kv.kvHeads', 1, l.maxKVHeads),
    v.integer(o.headDim, 'kv.headDim', 1, l.maxHeadDim),
    dtype === 'f16' ? 1 : 0,
  ];
}

/**
 * Paged token cache with prefix sharing, copy-on-write, fork and LRU retention of cached
 * prefixes. Holds token ids only: the block table tells a paged-attention kernel where each
 * sequence's KV entries live.
 * @example
 * const cache = new KVCache({ pageSize: 16 });
 * cache.attach(1, systemPrompt.concat(userTurn));
 * cache.fork(1, 2);                 // beam / parallel sampling: no copy
 * cache.append(2, [42]);            // copy-on-write of the shared tail page only
 * cache.matchPrefix(nextPrompt);    // tokens whose prefill can be skipped
 * cache.dispose();
 * @see llmds::KVCache
 */
export class KVCache extends Owned<RawKVCache> {
  readonly #pageSize: number;
  readonly #rowFloats: number; // kvHeads × headDim: floats per position of K (or V); 0 without a payload
  readonly #headDim: number;

  constructor(options?: KVCacheOptions) {
    const o = v.options(options, 'KVCache options', KV_OPTIONS);
    const l = pageLimits();
    const pageSize = v.integer(o.pageSize ?? 512, 'pageSize', 1, l.maxPageSize);
    const maxPages = v.integer(o.maxPages ?? 10000, 'maxPages', 1, l.maxPages);
    const sharing = v.boolean(o.enablePrefixSharing ?? true, 'enablePrefixSharing');
    const events = v.boolean(o.events ?? false, 'events');
    const payload = payloadOptions(o.kv, l);
    super(checked(engine<KVCacheEngine>().RawKVCache.create(pageSize, maxPages, sharing, events, ...payload)));
    this.#pageSize = pageSize;
    this.#rowFloats = payload[1] * payload[2];
    this.#headDim = payload[2];
  }

  /**
   * The 64-bit chained hash of every full page of `tokens` (a partial tail page has none), as
   * NVIDIA Dynamo's KV router computes it: h_i = XXH3-64 of page i's tokens as little-endian
   * u32 with seed 1337; s_0 = h_0, s_i = XXH3-64(LE64(s_{i−1}) ‖ LE64(h_i), seed 1337). The
   * values KV events carry, and what a router indexes. Needs no KVCache instance.
   */
  static blockHashes(tokens: TokenArray, pageSize: number): BigUint64Array {
    const t = v.tokens(tokens, 'tokens', 'token id', true);
    const size = v.integer(pageSize, 'pageSize', 1, pageLimits().maxPageSize);
    const e = engine<KVCacheEngine>();
    const words = checked(withHeap(e, t, (p, n) => e.RawKVCache.blockHashes(p, n, size)));
    return new BigUint64Array(words.buffer, words.byteOffset, words.length / 2);
  }

  /**
   * Stores the sequence (replacing `seqId` if it exists), sharing every cached full page whose
   * whole history matches. `prefixTokens`, when given, must be a prefix of `kvTokens`; it
   * declares the shareable part: pages beyond it stay private to this sequence.
   */
  attach(seqId: number, kvTokens: TokenArray, prefixTokens?: TokenArray): KVPlan {
    const raw = this.raw;
    const seq = v.id(seqId, 'seqId');
    const t = v.tokens(kvTokens, 'kvTokens', 'token id', true);
    if (prefixTokens === undefined) {
      withHeap(engine(), t, (p, n) => check(raw.attach(seq, p, n, 0, -1)));
    } else {
      const prefix = v.tokens(prefixTokens, 'prefixTokens');
      withHeapAll(engine(), [t, prefix], ([p, q], [n, qn]) => check(raw.attach(seq, p!, n!, q!, qn!)));
    }
    return this.#plan();
  }

  /**
   * Decode-step growth: fills the tail page (copying it first if shared: the pair is in the
   * plan's `copies`), then new pages. `computeFrom` is the old length.
   */
  append(seqId: number, tokens: TokenArray): KVPlan {
    const raw = this.raw;
    const seq = v.id(seqId, 'seqId');
    const t = v.tokens(tokens, 'tokens', 'token id', true);
    withHeap(engine(), t, (p, n) => check(raw.append(seq, p, n)));
    return this.#plan();
  }

  /**
   * Writes K and V of `layer` for positions [fromPos, fromPos + n) of the sequence: `k` and `v`
   * are `n × kvHeads × headDim` floats (position, then head, then dim). Writing into a shared
   * page copies it first. NaN/Infinity, shapes and ranges are `invalid_argument`.
   */
  writeKV(seqId: number, layer: number, fromPos: number, k: Float32Array | readonly number[], v_: Float32Array | readonly number[]): void {
    const raw = this.raw;
    const seq = v.id(seqId, 'seqId');
    const lay = v.id(layer, 'layer');
    const from = v.id(fromPos, 'fromPos');
    const kk = v.vector(k, 'k');
    const vv = v.vector(v_, 'v');
    const row = this.#payloadRow();
    if (kk.length % row !== 0 || vv.length !== kk.length) {
      v.fail(`k and v must both hold n × kvHeads × headDim = n × ${row} floats, got ${kk.length} and ${vv.length}`);
    }
    withHeapAll(engine(), [kk, vv], ([pk, pv]) => check(raw.writeKV(seq, lay, from, pk!, pv!, kk.length / row)));
  }

  /** K and V of `layer` for positions [fromPos, fromPos + n), as fresh Float32Arrays (f16 widened). */
  readKV(seqId: number, layer: number, fromPos: number, n: number): { k: Float32Array; v: Float32Array } {
    const raw = this.raw;
    this.#payloadRow();
    return checked(raw.readKV(v.id(seqId, 'seqId'), v.id(layer, 'layer'), v.id(fromPos, 'fromPos'), v.id(n, 'n')));
  }

  /**
   * Causal grouped-query attention over the sequence's pages: `q` is `m × numHeads × headDim`
   * for its last m positions (decode: m = 1; a prefill chunk: m > 1); query i sees positions up
   * to its own. Softmax in f32 with max subtraction. Returns `m × numHeads × headDim` floats.
   */
  attention(seqId: number, layer: number, q: Float32Array | readonly number[], options: AttentionOptions): Float32Array {
    const raw = this.raw;
    this.#payloadRow();
    const seq = v.id(seqId, 'seqId');
    const lay = v.id(layer, 'layer');
    const qq = v.vector(q, 'q');
    const o = v.options(options ?? v.fail('attention needs options { numHeads, scale? }'), 'attention options', ['numHeads', 'scale'] as const);
    const numHeads = v.integer(o.numHeads, 'numHeads', 1, pageLimits().maxQueryHeads);
    const scale = o.scale === undefined ? 0 : v.finite(o.scale, 'scale');
    const perPosition = numHeads * this.#headDim;
    if (qq.length === 0 || qq.length % perPosition !== 0) {
      v.fail(`q must hold m × numHeads × headDim = m × ${perPosition} floats (m >= 1), got ${qq.length}`);
    }
    return checked(withHeap(engine(), qq, (p) => raw.attention(seq, lay, p, qq.length / perPosition, numHeads, scale)));
  }

  #payloadRow(): number {
    if (this.#rowFloats === 0) v.fail('this KVCache holds no K/V: create it with the kv option');
    return this.#rowFloats;
  }

  /** Drops every sequence and every cached page; records a `cleared` event. */
  clear(): void {
    this.raw.clear();
  }

  /**
   * The events recorded since the last call (with `events: true`), oldest first, and forgets
   * them. Replaying them into an empty map from hash to tokens gives exactly the findable pages.
   */
  drainEvents(): KVEvent[] {
    const pageSize = this.#pageSize;
    return this.raw.drainEvents().map((e): KVEvent => {
      if (e.type === 'cleared') return { type: 'cleared' };
      if (e.type === 'removed') return { type: 'removed', blockHashes: words64(e.hashes) };
      const parentHash = e.parent === null ? null : words64(e.parent)[0]!;
      return { type: 'stored', blockHashes: words64(e.hashes), parentHash, tokens: e.tokens, pageSize };
    });
  }

  /** Events recorded and not yet drained. */
  get pendingEvents(): number {
    return this.raw.pendingEvents();
  }

  /** The chained block hash of every findable page (live or cached), ascending. */
  findableHashes(): BigUint64Array {
    return words64(this.raw.findableHashes());
  }

  #plan(): KVPlan {
    const heap = engine().HEAP32; // after the call: it may have grown the memory
    const at = this.raw.resultAddress() >>> 2;
    const nTable = heap[at + 2]!;
    const nNew = heap[at + 3]!;
    const nCopies = heap[at + 4]!;
    const table = at + 5;
    return {
      cachedTokens: heap[at]!,
      computeFrom: heap[at + 1]!,
      blockTable: heap.slice(table, table + nTable),
      newPages: heap.slice(table + nTable, table + nTable + nNew),
      copies: heap.slice(table + nTable + nNew, table + nTable + nNew + nCopies),
    };
  }

  /** `dstSeqId` shares all pages of `srcSeqId`; nothing is copied until one of them writes. */
  fork(srcSeqId: number, dstSeqId: number): void {
    const raw = this.raw;
    check(raw.fork(v.id(srcSeqId, 'srcSeqId'), v.id(dstSeqId, 'dstSeqId')));
  }

  /** The sequence's tokens as a fresh Int32Array, or null for an unknown id. */
  get(seqId: number): Int32Array | null {
    const raw = this.raw;
    return raw.get(v.id(seqId, 'seqId'));
  }

  /** Whether the sequence exists. */
  has(seqId: number): boolean {
    const raw = this.raw;
    return raw.has(v.id(seqId, 'seqId'));
  }

  /** Releases the sequence's pages; cached prefixes stay findable. Unknown id: no-op, false. */
  detach(seqId: number): boolean {
    const raw = this.raw;
    return raw.detach(v.id(seqId, 'seqId'));
  }

  /** How many leading tokens are already cached (token granular). Changes nothing. */
  matchPrefix(tokens: TokenArray): number {
    const raw = this.raw;
    const t = v.tokens(tokens, 'tokens');
    return withHeap(engine(), t, (p, n) => raw.matchPrefix(p, n));
  }

  /** The sequence's page ids in order. Unknown id: `not_found`. */
  blockTable(seqId: number): Int32Array {
    const raw = this.raw;
    return checked(raw.blockTable(v.id(seqId, 'seqId')));
  }

  /**
   * The state of every page handed out so far, indexed by page id: its refcount (> 0 in use,
   * > 1 shared), 0 free, -1 a cached prefix. For visualisers and debugging.
   */
  pageStates(): Int32Array {
    return this.raw.pageStates();
  }

  stats(): KVCacheStats {
    return this.raw.stats();
  }
}

export interface PagedAllocatorOptions {
  pageSize: number;
  maxPages: number;
}

export interface PagedAllocatorStats {
  totalPages: number;
  allocatedPages: number;
  freePages: number;
  /** allocatedPages / totalPages */
  utilization: number;
  allocationCount: number;
  freeCount: number;
}

/**
 * Fixed-size page allocator: O(1) per page, all-or-nothing, free list.
 * @see llmds::PagedAllocator
 */
export class PagedAllocator extends Owned<RawPagedAllocator> {
  constructor(options: PagedAllocatorOptions) {
    const o = v.options(options ?? v.fail('PagedAllocator needs { pageSize, maxPages }'), 'PagedAllocator options', ['pageSize', 'maxPages'] as const);
    const l = pageLimits();
    const pageSize = v.integer(o.pageSize, 'pageSize', 1, l.maxPageSize);
    const maxPages = v.integer(o.maxPages, 'maxPages', 1, l.maxPages);
    super(checked(engine<KVCacheEngine>().RawPagedAllocator.create(pageSize, maxPages)));
  }

  /** `n` page ids, or `capacity_exceeded` with nothing allocated. */
  alloc(n: number): Int32Array {
    const raw = this.raw;
    return checked(raw.alloc(v.integer(n, 'n', 0, pageLimits().maxPages)));
  }

  /** Returns pages; an unknown, free or repeated id rejects the whole call (`invalid_argument`). */
  free(pageIds: TokenArray): void {
    const raw = this.raw;
    const ids = v.tokens(pageIds, 'pageIds', 'page id');
    withHeap(engine(), ids, (p, n) => check(raw.free(p, n)));
  }

  stats(): PagedAllocatorStats {
    return this.raw.stats();
  }
}
