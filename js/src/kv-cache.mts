// SPDX-License-Identifier: MIT
import { check, checked, engine, limits, type RawHandle } from './engine.mjs';
import { withHeap, withHeapAll } from './memory.mjs';
import { Owned } from './owned.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawKVCache extends RawHandle {
  attach(seq: number, tokens: number, n: number, prefix: number, prefixN: number): number;
  append(seq: number, tokens: number, n: number): number;
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
    create(pageSize: number, maxPages: number, sharing: boolean): RawKVCache | null;
    limits(): PageLimits;
    blockHashes(tokens: number, n: number, pageSize: number): Uint32Array | null;
  };
  RawPagedAllocator: { create(pageSize: number, maxPages: number): RawPagedAllocator | null };
}

/** @internal */
interface PageLimits {
  maxPageSize: number;
  maxPages: number;
}

const pageLimits = () => limits('KVCache', (m) => (m as unknown as KVCacheEngine).RawKVCache.limits());

/** Token ids: `number[]`, `Int32Array` or `Uint32Array`, each an integer in [0, 2^31). */
export type TokenArray = readonly number[] | Int32Array | Uint32Array;

export interface KVCacheOptions {
  /** Tokens per page. Default 512. */
  pageSize?: number;
  /** Pages the cache may ever hold. Default 10000. */
  maxPages?: number;
  /** Share full pages whose whole token history matches. Default true. */
  enablePrefixSharing?: boolean;
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
  /** Bytes held by the cache's own structures in the wasm heap. */
  bytes: number;
}

const KV_OPTIONS = ['pageSize', 'maxPages', 'enablePrefixSharing'] as const;

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
  constructor(options?: KVCacheOptions) {
    const o = v.options(options, 'KVCache options', KV_OPTIONS);
    const l = pageLimits();
    const pageSize = v.integer(o.pageSize ?? 512, 'pageSize', 1, l.maxPageSize);
    const maxPages = v.integer(o.maxPages ?? 10000, 'maxPages', 1, l.maxPages);
    const sharing = v.boolean(o.enablePrefixSharing ?? true, 'enablePrefixSharing');
    super(checked(engine<KVCacheEngine>().RawKVCache.create(pageSize, maxPages, sharing)));
  }

  /**
   * The 64-bit chained hash of every full page of `tokens` (a partial tail page has none), as
   * NVIDIA Dynamo's KV router computes it: h_i = XXH3-64 of page i's tokens as little-endian
   * u32 with seed 1337; s_0 = h_0, s_i = XXH3-64(LE64(s_{i−1}) ‖ LE64(h_i), seed 1337). The
   * values KV events carry, and what a router indexes. Needs no KVCache instance.
   */
  static blockHashes(tokens: TokenArray, pageSize: number): BigUint64Array {
    const t = v.tokens(tokens, 'tokens');
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
  attach(seqId: number, kvTokens: TokenArray, prefixTokens?: TokenArray): void {
    const raw = this.raw;
    const seq = v.id(seqId, 'seqId');
    const t = v.tokens(kvTokens, 'kvTokens');
    if (prefixTokens === undefined) {
      withHeap(engine(), t, (p, n) => check(raw.attach(seq, p, n, 0, -1)));
      return;
    }
    const prefix = v.tokens(prefixTokens, 'prefixTokens');
    withHeapAll(engine(), [t, prefix], ([p, q], [n, qn]) => check(raw.attach(seq, p!, n!, q!, qn!)));
  }

  /** Decode-step growth: fills the tail page (copying it first if shared), then new pages. */
  append(seqId: number, tokens: TokenArray): void {
    const raw = this.raw;
    const seq = v.id(seqId, 'seqId');
    const t = v.tokens(tokens, 'tokens');
    withHeap(engine(), t, (p, n) => check(raw.append(seq, p, n)));
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
