// SPDX-License-Identifier: MIT
// TokenLRU holds arbitrary JS values, which cannot live in the wasm heap, so it is plain
// TypeScript: a Map from key to entry plus a doubly linked recency list through the entries.
// (Using the Map's own insertion order as the recency order looks simpler, but evicting means
// iterating from the Map's front, where V8 keeps deleted slots until the next rehash: each
// eviction then scans a growing run of holes, measured at ~4 µs per put at 10k entries.)
// It needs no engine: it works before init() and owns nothing to dispose.
import * as v from './validate.mjs';

/** Keys a TokenLRU accepts. */
export type TokenLRUKey = string | number;

export interface TokenLRUOptions<K extends TokenLRUKey = TokenLRUKey, V = unknown> {
  /** The most tokens the cache holds: a positive finite number. */
  tokenBudget: number;
  /** The token cost of a value: a finite number >= 0. Called exactly once per `put`. */
  tokenOf: (value: V, key: K) => number;
  /** Told about each entry that `put` evicts to make room (after the put is complete). */
  onEvict?: (key: K, value: V) => void;
}

interface Entry<K, V> {
  key: K;
  value: V;
  tokens: number;
  prev: Entry<K, V> | null; // towards the least recently used end
  next: Entry<K, V> | null;
}

function checkKey(key: unknown): void {
  if (typeof key === 'string') return;
  if (typeof key !== 'number' || Number.isNaN(key)) v.fail(`key must be a string or a number (not NaN), got ${v.show(key)}`);
}

/**
 * Least-recently-used cache bounded by a token budget instead of an entry count; O(1) per
 * operation. `put` evicts least-recently-used entries until the budget holds; an entry whose
 * cost alone exceeds the budget is refused (`put` returns false) without evicting anything,
 * and an existing entry under its key is left as it was.
 *
 * Pure JavaScript: usable before `init()`, and there is nothing to dispose.
 * @example
 * const cache = new TokenLRU({ tokenBudget: 100_000, tokenOf: (r) => r.tokens.length });
 * cache.put(promptHash, { tokens, logits });
 * cache.get(promptHash);            // refreshes recency
 * cache.evictUntilBudget(50_000);   // [[key, value], ...] least recently used first
 * @see llmds::TokenLRU (the C++ core's equivalent)
 */
export class TokenLRU<K extends TokenLRUKey = TokenLRUKey, V = unknown> {
  readonly #map = new Map<K, Entry<K, V>>();
  #head: Entry<K, V> | null = null; // least recently used
  #tail: Entry<K, V> | null = null; // most recently used
  readonly #budget: number;
  readonly #tokenOf: (value: V, key: K) => number;
  readonly #onEvict: ((key: K, value: V) => void) | undefined;
  #total = 0;

  constructor(options: TokenLRUOptions<K, V>) {
    const o = v.options(options ?? v.fail('TokenLRU needs { tokenBudget, tokenOf }'), 'TokenLRU options', [
      'tokenBudget',
      'tokenOf',
      'onEvict',
    ] as const);
    const budget = o.tokenBudget;
    if (typeof budget !== 'number' || !Number.isFinite(budget) || !(budget > 0)) {
      v.fail(`tokenBudget must be a positive finite number, got ${v.show(budget)}`);
    }
    if (typeof o.tokenOf !== 'function') v.fail(`tokenOf must be a function (value, key) => tokens, got ${v.show(o.tokenOf)}`);
    if (o.onEvict !== undefined && typeof o.onEvict !== 'function') v.fail(`onEvict must be a function, got ${v.show(o.onEvict)}`);
    this.#budget = budget;
    this.#tokenOf = o.tokenOf as (value: V, key: K) => number;
    this.#onEvict = o.onEvict as ((key: K, value: V) => void) | undefined;
  }

  /**
   * Inserts or replaces `key` as the most recently used entry, evicting least-recently-used
   * entries as needed. Returns false, changing nothing, when the value alone costs more than
   * the budget.
   */
  put(key: K, value: V): boolean {
    checkKey(key);
    const tokens: unknown = this.#tokenOf(value, key);
    if (typeof tokens !== 'number' || !Number.isFinite(tokens) || tokens < 0) {
      v.fail(`tokenOf must return a finite number >= 0, got ${v.show(tokens)} for key ${v.show(key)}`);
    }
    if (tokens > this.#budget) return false;
    let e = this.#map.get(key);
    if (e !== undefined) {
      this.#total -= e.tokens;
      e.value = value;
      e.tokens = tokens;
      this.#touch(e);
    } else {
      e = { key, value, tokens, prev: this.#tail, next: null };
      if (this.#tail !== null) this.#tail.next = e;
      else this.#head = e;
      this.#tail = e;
      this.#map.set(key, e);
    }
    this.#total += tokens;
    if (this.#total <= this.#budget) return true;
    const onEvict = this.#onEvict;
    if (onEvict === undefined) {
      while (this.#total > this.#budget) this.#remove(this.#head!);
      return true;
    }
    // Callbacks run once the cache is consistent, so one that throws or reads the cache sees it whole.
    for (const [k, val] of this.#shrinkTo(this.#budget)) onEvict(k, val);
    return true;
  }

  /** The value, refreshed to most recently used, or `undefined` when absent. */
  get(key: K): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e !== this.#tail) this.#touch(e);
    return e.value;
  }

  /** The value without refreshing recency, or `undefined` when absent. */
  peek(key: K): V | undefined {
    return this.#map.get(key)?.value;
  }

  /** Whether `key` is cached (does not refresh recency). */
  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Removes `key`; false when absent. */
  delete(key: K): boolean {
    const e = this.#map.get(key);
    if (e === undefined) return false;
    this.#remove(e);
    return true;
  }

  /**
   * Evicts least-recently-used entries until `totalTokens <= target` (a finite number >= 0);
   * returns them as `[key, value]` pairs, least recently used first.
   */
  evictUntilBudget(target: number): Array<[K, V]> {
    if (typeof target !== 'number' || !Number.isFinite(target) || target < 0) {
      v.fail(`target must be a finite number >= 0, got ${v.show(target)}`);
    }
    return this.#shrinkTo(target);
  }

  /** Removes every entry. */
  clear(): void {
    this.#map.clear();
    this.#head = this.#tail = null;
    this.#total = 0;
  }

  /** Sum of the token costs of the cached entries. */
  get totalTokens(): number {
    return this.#total;
  }

  /** Number of cached entries. */
  get size(): number {
    return this.#map.size;
  }

  get tokenBudget(): number {
    return this.#budget;
  }

  /** Keys from least to most recently used (a snapshot). */
  keys(): K[] {
    const out: K[] = [];
    for (let e = this.#head; e !== null; e = e.next) out.push(e.key);
    return out;
  }

  /** Moves an entry to the most recently used end. */
  #touch(e: Entry<K, V>): void {
    if (e === this.#tail) return;
    // unlink (e has a next, since it is not the tail)
    if (e.prev !== null) e.prev.next = e.next;
    else this.#head = e.next;
    e.next!.prev = e.prev;
    // append
    e.prev = this.#tail;
    e.next = null;
    this.#tail!.next = e;
    this.#tail = e;
  }

  #remove(e: Entry<K, V>): void {
    if (e.prev !== null) e.prev.next = e.next;
    else this.#head = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    else this.#tail = e.prev;
    e.prev = e.next = null;
    this.#map.delete(e.key);
    // Fractional costs could leave rounding dust behind; an empty cache holds exactly 0.
    this.#total = this.#map.size === 0 ? 0 : this.#total - e.tokens;
  }

  #shrinkTo(target: number): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    while (this.#total > target && this.#head !== null) {
      const e = this.#head;
      this.#remove(e);
      out.push([e.key, e.value]);
    }
    return out;
  }
}
