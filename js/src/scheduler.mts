// SPDX-License-Identifier: MIT
import { check, checked, engine, limits, type RawHandle } from './engine.mjs';
import { withHeap } from './memory.mjs';
import { Owned } from './owned.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawScheduler extends RawHandle {
  submit(tokens: number, sloMs: number, now: number): number;
  submitWithPriority(tokens: number, sloMs: number, now: number, priority: number): number;
  nextId(): number;
  getBatch(now: number, force: boolean): number;
  resultAddress(): number;
  completeBatch(ids: number, n: number, now: number): number;
  cancel(id: number): boolean;
  state(id: number): number;
  readyAt(now: number): number;
  queued(): number;
  inFlight(): number;
  stats(): SchedulerStats;
}

/** @internal */
interface SchedulerEngine {
  RawScheduler: {
    create(maxBatchSize: number, maxWaitMs: number, maxBatchTokens: number, externalPriority: boolean, order: number, latePenalty: number, demoteOverdue: boolean, maxDemotionMs: number, maxDemotionFactor: number): RawScheduler | null;
    limits(): { maxBatchSize: number; defaultMaxDemotionMs: number; defaultLatePenalty: number };
  };
}

const schedulerLimits = () => limits('Scheduler', (m) => (m as unknown as SchedulerEngine).RawScheduler.limits());

/** What `priorityFn` sees about a request. */
export interface ScheduledRequest {
  readonly id: number;
  readonly tokens: number;
  /** `undefined` when the request has no SLO. */
  readonly sloMs: number | undefined;
  readonly arrivalMs: number;
  /** `arrivalMs + sloMs`; `Infinity` when the request has no SLO. */
  readonly deadlineMs: number;
}

export interface SchedulerOptions {
  /** Requests per batch, an integer in [1, 2^20]. Default 32. */
  maxBatchSize?: number;
  /** Longest time the oldest queued request waits for a batch to fill, in ms (>= 0). Default 50. */
  maxWaitMs?: number;
  /**
   * Custom order: higher first, ties in submission order. Called exactly once per request, at
   * `submit`, and the number it returns is kept: it is never re-evaluated as time passes.
   * Must return a number other than NaN. Default: see `order`.
   */
  priorityFn?: (req: ScheduledRequest) => number;
  /**
   * The default order (without `priorityFn`). Requests without an SLO always come after those
   * with one, fewest tokens first; ties in submission order.
   * - `'weighted'` (default): requests with an SLO by smallest `tokens × sloMs` (a short request
   *   and a tight SLO both go earlier: Smith's rule with weight 1/SLO); a request whose deadline
   *   has passed counts `latePenalty` times its size; one past its second deadline (see
   *   `maxDemotionMs`) goes before everything.
   * - `'deadline'`: earliest deadline first, overdue requests demoted for a bounded window
   *   (`demoteOverdue`, `maxDemotionMs`, `maxDemotionFactor`).
   * Chosen by measurement (bench/README.md "Serving simulator"): under a backlog, earliest
   * deadline first serves loose-SLO requests at the end of their SLO, after their cached prefix
   * has been evicted, and the engine loses capacity until the order collapses.
   */
  order?: 'weighted' | 'deadline';
  /**
   * Weighted order: an overdue request counts this many times its `tokens × sloMs`, so a
   * request that can still be on time goes first unless it is more than `latePenalty` times
   * larger. A number >= 1 or `Infinity` (behind every request still on time). Default 10.
   */
  latePenalty?: number;
  /** Token cap per batch (a positive integer). A single larger request is served alone. Default: none. */
  maxBatchTokens?: number;
  /**
   * `order: 'deadline'` only: a queued request whose deadline has already passed goes behind
   * every request that can still be on time (and those without an SLO) instead of first. Plain
   * earliest-deadline-first serves the most overdue request first once a backlog forms, so every
   * request ends up late. Default true; false gives plain EDF (and is an `invalid_argument` with
   * the weighted order, whose counterpart is `latePenalty`).
   */
  demoteOverdue?: boolean;
  /**
   * The starvation bound, both orders: a request with an SLO is passed over for at most
   * window = min(maxDemotionMs, maxDemotionFactor × its sloMs) after its deadline; once that
   * second deadline has passed it comes before every request still on time, earliest second
   * deadline first. So no request submitted after its second deadline is served before it.
   * With `order: 'deadline'` an overdue request ranks as if due at its second deadline until
   * then (requests due before that go first, those due after it after it); a window of 0 is
   * plain EDF, and both `Infinity` demote for good (behind requests without an SLO too), which
   * starves the tail under load. With the weighted order both `Infinity` mean no bound.
   *
   * `maxDemotionMs`: absolute limit in ms, a number >= 0 or `Infinity`. Default `Infinity`.
   */
  maxDemotionMs?: number;
  /**
   * The window as a multiple of the request's own SLO (see `maxDemotionMs`), a number >= 0 or
   * `Infinity`. Default 20 with the weighted order (a chat turn due in 1 s waits at most 20 s
   * more, a job due in 60 s 20 minutes), 10 with the deadline order: the best measured for each.
   */
  maxDemotionFactor?: number;
  /** The clock in ms. Default `performance.now()`. Inject one for tests and simulations. */
  now?: () => number;
}

export interface SchedulerStats {
  /** Requests waiting for a batch. */
  queued: number;
  /** Requests handed out by getBatch and not yet completed or cancelled. */
  inFlight: number;
  /** Non-empty batches handed out. */
  batches: number;
  completed: number;
  /** Requests per batch on average (0 before the first batch). */
  avgBatchSize: number;
  /** Completed requests with an SLO finished at or before their deadline (at completeBatch). */
  sloMet: number;
  /** Completed requests with an SLO finished after their deadline. */
  sloMissed: number;
  cancelled: number;
  /** Requests handed out in batches so far. */
  dispatched: number;
  /** Tokens of the queued requests. */
  queuedTokens: number;
  /** Bytes held by the scheduler in the wasm heap. */
  bytes: number;
}

/** Where a request is, as `Scheduler.state(id)` reports it. */
export type RequestState = 'queued' | 'inFlight' | 'unknown';

const STATES: readonly RequestState[] = ['unknown', 'queued', 'inFlight'];
const SCHEDULER_OPTIONS = ['maxBatchSize', 'maxWaitMs', 'priorityFn', 'maxBatchTokens', 'now', 'order', 'latePenalty', 'demoteOverdue', 'maxDemotionMs', 'maxDemotionFactor'] as const;
const ORDERS = ['weighted', 'deadline'] as const;
const MAX_U32 = 0xffffffff;

function defaultNow(): number {
  return performance.now();
}

/**
 * Micro-batching request scheduler with SLO-aware ordering; every operation O(log n).
 *
 * `getBatch()` releases up to `maxBatchSize` queued requests (and at most `maxBatchTokens`
 * tokens) when the queue holds a full batch (that many requests, or that many tokens), when
 * the oldest queued request has waited `maxWaitMs`, or on `force` with a non-empty queue;
 * otherwise it returns `[]`. Requests handed out are in flight and no longer count as queued.
 * A batch takes requests in service order and stops at the first one that would exceed
 * `maxBatchTokens` (it never skips ahead); a single request above the cap goes alone.
 *
 * Request ids are integers counting up from 0 (0 is an ordinary id).
 * @example
 * const sched = new Scheduler({ maxBatchSize: 8, maxWaitMs: 20 });
 * const id = sched.submit(512, 2000);       // 512 tokens, due within 2 s
 * const batch = sched.getBatch();           // [] until a batch is due
 * // ... run the batch ...
 * sched.completeBatch(batch);
 * sched.dispose();
 * @see llmds::Scheduler
 */
export class Scheduler extends Owned<RawScheduler> {
  readonly #now: () => number;
  readonly #priorityFn: ((req: ScheduledRequest) => number) | undefined;
  #ranking = false; // set while priorityFn runs: re-entrant submits would escape atomicity

  constructor(options?: SchedulerOptions) {
    const o = v.options(options, 'Scheduler options', SCHEDULER_OPTIONS);
    const maxBatchSize = v.integer(o.maxBatchSize ?? 32, 'maxBatchSize', 1, schedulerLimits().maxBatchSize);
    const maxWaitMs = o.maxWaitMs ?? 50;
    if (typeof maxWaitMs !== 'number' || !Number.isFinite(maxWaitMs) || maxWaitMs < 0) {
      v.fail(`maxWaitMs must be a finite number >= 0, got ${v.show(maxWaitMs)}`);
    }
    const maxBatchTokens = o.maxBatchTokens == null ? 0 : v.integer(o.maxBatchTokens, 'maxBatchTokens', 1, Number.MAX_SAFE_INTEGER);
    const priorityFn = o.priorityFn;
    if (priorityFn !== undefined && typeof priorityFn !== 'function') {
      v.fail(`priorityFn must be a function, got ${v.show(priorityFn)}`);
    }
    const now = o.now ?? defaultNow;
    if (typeof now !== 'function') v.fail(`now must be a function returning milliseconds, got ${v.show(now)}`);
    const window = (value: unknown, name: string, fallback: number): number => {
      const w = value ?? fallback;
      if (typeof w !== 'number' || !(w >= 0)) v.fail(`${name} must be a number >= 0 (or Infinity), got ${v.show(w)}`);
      return w as number;
    };
    const maxDemotionMs = window(o.maxDemotionMs, 'maxDemotionMs', schedulerLimits().defaultMaxDemotionMs);
    // NaN: the order's default (the core keeps one per order).
    const maxDemotionFactor = o.maxDemotionFactor == null ? NaN : window(o.maxDemotionFactor, 'maxDemotionFactor', NaN);
    const demoteOverdue = v.boolean(o.demoteOverdue ?? true, 'demoteOverdue');
    const order = ORDERS.indexOf((o.order ?? 'weighted') as (typeof ORDERS)[number]);
    if (order < 0) v.fail(`order must be 'weighted' or 'deadline', got ${v.show(o.order)}`);
    const latePenalty = o.latePenalty ?? schedulerLimits().defaultLatePenalty;
    if (typeof latePenalty !== 'number' || !(latePenalty >= 1)) v.fail(`latePenalty must be a number >= 1 (or Infinity), got ${v.show(latePenalty)}`);
    if (order === 0 && !demoteOverdue && priorityFn === undefined) {
      v.fail("demoteOverdue applies to order: 'deadline' only (the weighted order has latePenalty)");
    }
    super(checked(engine<SchedulerEngine>().RawScheduler.create(maxBatchSize, maxWaitMs, maxBatchTokens, priorityFn !== undefined, order, latePenalty as number, demoteOverdue, maxDemotionMs, maxDemotionFactor)));
    this.#now = now as () => number;
    this.#priorityFn = priorityFn as ((req: ScheduledRequest) => number) | undefined;
  }

  /**
   * Queues a request of `tokens` tokens (a non-negative integer) with an optional SLO: a
   * positive deadline `sloMs` from now. Returns its id.
   */
  submit(tokens: number, sloMs?: number): number {
    const raw = this.raw;
    if (this.#ranking) v.fail('priorityFn must not submit to the scheduler whose requests it ranks');
    if (typeof tokens !== 'number' || !(tokens >= 0 && tokens <= MAX_U32) || !Number.isInteger(tokens)) {
      v.fail(`tokens must be an integer in [0, ${MAX_U32}], got ${v.show(tokens)}`);
    }
    let slo = 0;
    if (sloMs !== undefined && sloMs !== null) {
      if (typeof sloMs !== 'number' || !(sloMs > 0) || sloMs === Infinity) {
        v.fail(`sloMs must be a positive finite number (or undefined), got ${v.show(sloMs)}`);
      }
      slo = sloMs;
    }
    const now = this.#clock();
    let r: number;
    if (this.#priorityFn === undefined) {
      r = raw.submit(tokens, slo, now);
    } else {
      const req: ScheduledRequest = {
        id: raw.nextId(),
        tokens,
        sloMs: slo > 0 ? slo : undefined,
        arrivalMs: now,
        deadlineMs: slo > 0 ? now + slo : Infinity,
      };
      let priority: unknown;
      this.#ranking = true;
      try {
        priority = this.#priorityFn(req);
      } finally {
        this.#ranking = false;
      }
      if (typeof priority !== 'number' || Number.isNaN(priority)) {
        v.fail(`priorityFn must return a number (not NaN), got ${v.show(priority)} for request ${req.id}`);
      }
      r = raw.submitWithPriority(tokens, slo, now, priority);
    }
    return check(r);
  }

  /**
   * The next batch of request ids in service order, or `[]` when no batch is due (see the
   * class comment). `force` releases whatever is queued. The ids are now in flight.
   */
  getBatch(force = false): number[] {
    const raw = this.raw;
    if (typeof force !== 'boolean') v.fail(`force must be a boolean, got ${v.show(force)}`);
    const n = check(raw.getBatch(this.#clock(), force));
    if (n === 0) return [];
    const heap = engine().HEAPU32;
    const base = raw.resultAddress() >>> 2;
    const ids = new Array<number>(n);
    for (let i = 0; i < n; i++) ids[i] = heap[base + i]!;
    return ids;
  }

  /**
   * Marks in-flight requests finished now and scores their SLOs. Every id must be in flight
   * and appear once, else nothing changes (`not_found` / `invalid_argument`).
   */
  completeBatch(ids: readonly number[] | Uint32Array): void {
    const raw = this.raw;
    let list: Uint32Array;
    if (ids instanceof Uint32Array) {
      list = v.attached(ids, 'ids');
    } else {
      if (!Array.isArray(ids)) v.fail(`ids must be an array of request ids (number[] or Uint32Array), got ${v.show(ids)}`);
      list = new Uint32Array(ids.length);
      for (let i = 0; i < ids.length; i++) list[i] = v.id(ids[i], `ids[${i}]`);
    }
    const now = this.#clock();
    withHeap(engine(), list, (p, n) => check(raw.completeBatch(p, n, now)));
  }

  /** Drops a queued or in-flight request; false if the id is neither. */
  cancel(id: number): boolean {
    const raw = this.raw;
    return raw.cancel(v.id(id, 'id'));
  }

  /** Where the request is: `'queued'`, `'inFlight'`, or `'unknown'` (never submitted, completed or cancelled). */
  state(id: number): RequestState {
    const raw = this.raw;
    return STATES[raw.state(v.id(id, 'id'))] ?? 'unknown';
  }

  /**
   * The clock reading at which `getBatch()` will release a batch without `force` (now if it
   * would now), or `null` when nothing is queued. Lets an event loop sleep until then.
   */
  readyAt(): number | null {
    const raw = this.raw;
    const t = raw.readyAt(this.#clock());
    return Number.isNaN(t) ? null : t;
  }

  stats(): SchedulerStats {
    return this.raw.stats();
  }

  #clock(): number {
    const t = this.#now();
    if (typeof t !== 'number' || !Number.isFinite(t)) v.fail(`the now() clock must return a finite number of ms, got ${v.show(t)}`);
    return t;
  }
}
