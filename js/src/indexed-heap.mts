// SPDX-License-Identifier: MIT
import { check, engine, type RawHandle } from './engine.mjs';
import { Owned } from './owned.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawIndexedHeap extends RawHandle {
  push(id: number, score: number): number;
  update(id: number, score: number): number;
  decreaseKey(id: number, score: number): number;
  increaseKey(id: number, score: number): number;
  pop(): boolean;
  peek(): boolean;
  erase(id: number): boolean;
  has(id: number): boolean;
  scoreOf(id: number): number;
  size(): number;
  clear(): void;
  resultAddress(): number;
}

/** @internal */
interface IndexedHeapEngine {
  RawIndexedHeap: { create(maxHeap: boolean): RawIndexedHeap };
}

export interface IndexedHeapOptions {
  /** Largest score first. Default false (smallest first). */
  maxHeap?: boolean;
}

/** @internal A score: any number but NaN (±Infinity are ordinary values). */
function score(value: unknown, name: string): number {
  if (typeof value !== 'number' || Number.isNaN(value)) v.fail(`${name} must be a number (not NaN), got ${v.show(value)}`);
  return value;
}

/**
 * Addressable binary heap of `(id, score)` pairs: O(log n) push, pop, update and delete by id.
 *
 * - ids are integers in [0, 2^32); scores are numbers, NaN rejected (`invalid_argument`).
 * - Equal scores come out in push order (FIFO). Changing a score keeps the entry's place in
 *   that order.
 * - `update` to the current score is a no-op. `decreaseKey` lowers and `increaseKey` raises a
 *   score whatever the heap's direction; the other direction is `invalid_argument`.
 * - `pop()` / `peek()` of an empty heap return `undefined`.
 * - `push` of a present id is `duplicate_id`; `update`/`decreaseKey`/`increaseKey` of an absent
 *   one `not_found`; `delete` of an absent one returns false.
 * @example
 * const heap = new IndexedHeap({ maxHeap: true });
 * heap.push(7, 0.5);
 * heap.push(9, 0.9);
 * heap.update(7, 1.2);
 * heap.pop();   // [1.2, 7]
 * heap.dispose();
 * @see llmds::IndexedHeap
 */
export class IndexedHeap extends Owned<RawIndexedHeap> {
  readonly #slot: number; // index of the (score, id) result pair in HEAPF64

  constructor(options?: IndexedHeapOptions) {
    const o = v.options(options, 'IndexedHeap options', ['maxHeap'] as const);
    const maxHeap = v.boolean(o.maxHeap ?? false, 'maxHeap');
    const raw = engine<IndexedHeapEngine>().RawIndexedHeap.create(maxHeap);
    super(raw);
    this.#slot = raw.resultAddress() / 8;
  }

  /** Adds `id` with `score`. */
  push(id: number, score_: number): void {
    const raw = this.raw;
    check(raw.push(v.id(id, 'id'), score(score_, 'score')));
  }

  /** Removes and returns the best entry as `[score, id]`, or `undefined` when empty. */
  pop(): [score: number, id: number] | undefined {
    return this.raw.pop() ? this.#result() : undefined;
  }

  /** The best entry as `[score, id]` without removing it, or `undefined` when empty. */
  peek(): [score: number, id: number] | undefined {
    return this.raw.peek() ? this.#result() : undefined;
  }

  /** Sets the score of a present id, in either direction. */
  update(id: number, score_: number): void {
    const raw = this.raw;
    check(raw.update(v.id(id, 'id'), score(score_, 'score')));
  }

  /** Lowers the score of a present id (`invalid_argument` if `score` is higher). */
  decreaseKey(id: number, score_: number): void {
    const raw = this.raw;
    check(raw.decreaseKey(v.id(id, 'id'), score(score_, 'score')));
  }

  /** Raises the score of a present id (`invalid_argument` if `score` is lower). */
  increaseKey(id: number, score_: number): void {
    const raw = this.raw;
    check(raw.increaseKey(v.id(id, 'id'), score(score_, 'score')));
  }

  /** Removes `id`; false if it was not in the heap. */
  delete(id: number): boolean {
    const raw = this.raw;
    return raw.erase(v.id(id, 'id'));
  }

  /** Whether `id` is in the heap (the name every other class uses). */
  has(id: number): boolean {
    const raw = this.raw;
    return raw.has(v.id(id, 'id'));
  }

  /** Same as {@link has}: the name API.md gives it. */
  contains(id: number): boolean {
    return this.has(id);
  }

  /** The score of `id`, or `undefined` if it is not in the heap. */
  scoreOf(id: number): number | undefined {
    const raw = this.raw;
    const s = raw.scoreOf(v.id(id, 'id'));
    return Number.isNaN(s) ? undefined : s;
  }

  /** Number of entries. */
  get size(): number {
    return this.raw.size();
  }

  /** Removes every entry. */
  clear(): void {
    this.raw.clear();
  }

  #result(): [number, number] {
    const heap = engine().HEAPF64; // re-read: memory growth replaces the view
    return [heap[this.#slot]!, heap[this.#slot + 1]!];
  }
}
