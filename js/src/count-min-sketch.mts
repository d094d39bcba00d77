// SPDX-License-Identifier: MIT
import { check, checked, engine, limits, type RawHandle } from './engine.mjs';
import { withHeap } from './memory.mjs';
import { Owned } from './owned.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawCountMinSketch extends RawHandle {
  add(item: number, n: number, count: number): number;
  estimate(item: number, n: number): number;
  errorBound(): number;
  confidence(): number;
  totalCount(): number;
  merge(other: RawCountMinSketch): number;
  reset(): void;
  width(): number;
  depth(): number;
  seed(): number;
  bytes(): number;
}

/** @internal */
interface CountMinSketchEngine {
  RawCountMinSketch: {
    create(width: number, depth: number, seed: number): RawCountMinSketch | null;
    limits(): { maxWidth: number; maxDepth: number; maxTotal: number };
  };
}

const sketchLimits = () => limits('CountMinSketch', (m) => (m as unknown as CountMinSketchEngine).RawCountMinSketch.limits());

export interface CountMinSketchOptions {
  /** Counters per row, an integer in [1, 2^24]. Default 2048 (ε = e / width ≈ 0.13 %). */
  width?: number;
  /** Rows (independent hash functions), an integer in [1, 32]. Default 4 (δ = e^−4 ≈ 1.8 %). */
  depth?: number;
  /** Integer in [0, 2^32) the row hash seeds derive from. Default 0. merge() needs equal seeds. */
  seed?: number;
}

/** Items: strings (hashed as UTF-8), or finite numbers (hashed as their decimal string). */
export type SketchItem = string | number;

const OPTIONS = ['width', 'depth', 'seed'] as const;

function itemArg(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return v.fail(`item must be a string or a finite number, got ${v.show(value)}`);
}

/**
 * Count-Min sketch with conservative update: approximate counts in fixed memory
 * (width × depth counters) that never under-estimate. With probability at least
 * 1 − e^−depth, `estimate(x) ≤ true count + errorBound()`, where
 * `errorBound() = e / width × totalCount`.
 *
 * Numbers are counted under their decimal string, so `add(7)` and `add('7')` are one item.
 * @example
 * const cms = new CountMinSketch();          // 2048 × 4
 * for (const q of queries) cms.add(q);
 * cms.estimate('hello');                     // >= its true count
 * cms.isHot('hello', 100);                   // estimate >= 100
 * @see llmds::CountMinSketch
 */
export class CountMinSketch extends Owned<RawCountMinSketch> {
  constructor(options?: CountMinSketchOptions) {
    const o = v.options(options, 'CountMinSketch options', OPTIONS);
    const l = sketchLimits();
    const width = v.integer(o.width ?? 2048, 'width', 1, l.maxWidth);
    const depth = v.integer(o.depth ?? 4, 'depth', 1, l.maxDepth);
    const seed = v.id(o.seed ?? 0, 'seed');
    super(checked(engine<CountMinSketchEngine>().RawCountMinSketch.create(width, depth, seed)));
  }

  /**
   * Counts `count` (an integer >= 0, default 1) more occurrences of `item`. The total must stay
   * below 2^53 (`capacity_exceeded` otherwise, nothing counted).
   */
  add(item: SketchItem, count = 1): void {
    const raw = this.raw;
    const key = itemArg(item);
    const c = v.integer(count, 'count', 0, sketchLimits().maxTotal);
    withHeap(engine(), key, (p, n) => check(raw.add(p, n, c)));
  }

  /** The estimated count of `item`: never below the true count. */
  estimate(item: SketchItem): number {
    const raw = this.raw;
    const key = itemArg(item);
    return withHeap(engine(), key, (p, n) => raw.estimate(p, n));
  }

  /** Whether estimate(item) >= threshold (a finite number). */
  isHot(item: SketchItem, threshold: number): boolean {
    const raw = this.raw;
    const key = itemArg(item);
    const t = v.finite(threshold, 'threshold');
    return withHeap(engine(), key, (p, n) => raw.estimate(p, n)) >= t;
  }

  /** e / width × totalCount: with probability >= confidence(), estimate − truth <= this. */
  errorBound(): number {
    return this.raw.errorBound();
  }

  /** 1 − e^−depth: the probability with which errorBound() holds for an item. */
  confidence(): number {
    return this.raw.confidence();
  }

  /** The sum of all counts added (and merged in). */
  get totalCount(): number {
    return this.raw.totalCount();
  }

  get width(): number {
    return this.raw.width();
  }

  get depth(): number {
    return this.raw.depth();
  }

  get seed(): number {
    return this.raw.seed();
  }

  /**
   * Adds `other`'s counts into this sketch (counter-wise sums: still never an under-estimate).
   * `other` must have the same width, depth and seed (`invalid_argument` otherwise).
   */
  merge(other: CountMinSketch): void {
    const raw = this.raw;
    if (!(other instanceof CountMinSketch)) v.fail(`other must be a CountMinSketch, got ${v.show(other)}`);
    check(raw.merge(other.raw));
  }

  /** Forgets every count. */
  reset(): void {
    this.raw.reset();
  }
}

