// SPDX-License-Identifier: MIT
import { check, checked, engine, type RawHandle } from './engine.mjs';
import { Owned } from './owned.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawAdmission extends RawHandle {
  shouldAdmit(estimatedTokens: number, now: number): number;
  lastRetryAfterMs(): number;
  requestBurst(): number;
  tokenBurst(): number;
  recordRequest(tokens: number, now: number): number;
  retryAfterMs(estimatedTokens: number, now: number): number;
  stats(now: number): AdmissionStats;
  reset(): void;
}

/** @internal */
interface AdmissionEngine {
  RawAdmission: { create(qps: number, tokenRate: number, requestBurst: number, tokenBurst: number): RawAdmission | null };
}

export interface AdmissionControllerOptions {
  /** Admitted requests per second, finite and > 0. Default 10. */
  qpsTarget?: number;
  /** Admitted tokens per second, finite and > 0. Default 10000. */
  tokenRateLimit?: number;
  /** Requests admitted back to back from a full bucket, >= 1. Default `max(1, qpsTarget × 0.1 s)`. */
  requestBurst?: number;
  /** Tokens admitted back to back from a full bucket, > 0. Default `max(1, tokenRateLimit × 0.1 s)`. */
  tokenBurst?: number;
  /** The clock in ms. Default `performance.now()`. */
  now?: () => number;
}

export interface AdmissionStats {
  /** Requests admitted in the last second. */
  currentQps: number;
  targetQps: number;
  /** Tokens admitted in the last second (actual counts once recorded, else estimates). */
  currentTokenRate: number;
  tokenRateLimit: number;
  admitted: number;
  rejected: number;
  /** rejected / (admitted + rejected); 0 before the first decision. */
  rejectionRate: number;
  /** Admitted requests whose actual token count has not been recorded yet. */
  pendingEstimates: number;
  requestBurst: number;
  tokenBurst: number;
}

const OPTIONS = ['qpsTarget', 'tokenRateLimit', 'requestBurst', 'tokenBurst', 'now'] as const;

function defaultNow(): number {
  return performance.now();
}

function positive(value: unknown, name: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value > min || (min > 0 && value === min))) {
    v.fail(`${name} must be a finite number ${min > 0 ? `>= ${min}` : '> 0'}, got ${v.show(value)}`);
  }
  return value;
}

// Above 2^53 token counts stop being exact, and a huge one would put the bucket into a debt it
// never repays (retryAfterMs() = Infinity): reject it instead.
function tokenCount(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > Number.MAX_SAFE_INTEGER) {
    v.fail(`${name} must be a number in [0, 2^53 - 1], got ${v.show(value)}`);
  }
  return value;
}

/**
 * Admission control by request rate and token rate: two token buckets (GCRA).
 *
 * Both buckets refill continuously (`qpsTarget` requests/s, `tokenRateLimit` tokens/s) up to
 * a small burst and start full, so a fresh controller admits at most 100 ms worth of traffic
 * back to back (the defaults: 1 request, 1000 tokens), never a whole window at once.
 * `shouldAdmit(est)` admits when a request and `min(est, tokenBurst)` tokens are available,
 * then takes 1 request and all `est` tokens (a request larger than the burst waits for a full
 * bucket, goes into debt, and is never starved). `recordRequest(actual)` settles the oldest
 * admitted request whose actual count was not recorded yet: it charges `actual - estimate`, so
 * every request is counted once at its actual size; with no such request it charges `actual`.
 * Rejections consume nothing.
 * @example
 * const gate = new AdmissionController({ qpsTarget: 50, tokenRateLimit: 20000 });
 * const [ok, reason] = gate.shouldAdmit(prompt.length + maxNewTokens);
 * if (!ok) return respond429(reason, gate.retryAfterMs());
 * // ... later, when the request finished:
 * gate.recordRequest(actualTokens);
 * @see llmds::AdmissionController
 */
export class AdmissionController extends Owned<RawAdmission> {
  readonly #now: () => number;
  readonly #qpsText: string; // the fixed part of each rejection reason, built once
  readonly #tokenText: string;

  constructor(options?: AdmissionControllerOptions) {
    const o = v.options(options, 'AdmissionController options', OPTIONS);
    const qps = positive(o.qpsTarget ?? 10, 'qpsTarget');
    const tokenRate = positive(o.tokenRateLimit ?? 10000, 'tokenRateLimit');
    const requestBurst = o.requestBurst == null ? 0 : positive(o.requestBurst, 'requestBurst', 1);
    const tokenBurst = o.tokenBurst == null ? 0 : positive(o.tokenBurst, 'tokenBurst');
    const now = o.now ?? defaultNow;
    if (typeof now !== 'function') v.fail(`now must be a function returning milliseconds, got ${v.show(now)}`);
    const raw = checked(engine<AdmissionEngine>().RawAdmission.create(qps, tokenRate, requestBurst, tokenBurst));
    super(raw);
    this.#now = now as () => number;
    this.#qpsText = `qps limit: ${qps} requests/s (burst ${raw.requestBurst()}) exceeded; retry after `;
    this.#tokenText = `token rate limit: ${tokenRate} tokens/s (burst ${raw.tokenBurst()}) exceeded; retry after `;
  }

  /**
   * Whether to admit a request expected to use `estimatedTokens` tokens (prompt + output).
   * Returns `[true, "admitted"]`, or `[false, reason]` with a reason starting with
   * `"qps limit"` or `"token rate limit"`. Admitting counts the request and reserves the tokens.
   */
  shouldAdmit(estimatedTokens = 0): [admitted: boolean, reason: string] {
    const raw = this.raw;
    const est = tokenCount(estimatedTokens, 'estimatedTokens');
    const rc = check(raw.shouldAdmit(est, this.#clock()));
    if (rc === 0) return [true, 'admitted'];
    return [false, (rc === 1 ? this.#qpsText : this.#tokenText) + `${Math.ceil(raw.lastRetryAfterMs())} ms`];
  }

  /** The actual token count of an admitted request: replaces its estimate (see the class comment). */
  recordRequest(tokens: number): void {
    const raw = this.raw;
    check(raw.recordRequest(tokenCount(tokens, 'tokens'), this.#clock()));
  }

  /** Milliseconds until `shouldAdmit(estimatedTokens)` would admit, if nothing else happens (0: now). */
  retryAfterMs(estimatedTokens = 0): number {
    const raw = this.raw;
    return check(raw.retryAfterMs(tokenCount(estimatedTokens, 'estimatedTokens'), this.#clock()));
  }

  stats(): AdmissionStats {
    const raw = this.raw;
    return raw.stats(this.#clock());
  }

  /** Back to a fresh controller: full buckets, zero counters, no pending estimates. */
  reset(): void {
    this.raw.reset();
  }

  #clock(): number {
    const t = this.#now();
    if (typeof t !== 'number' || !Number.isFinite(t)) v.fail(`the now() clock must return a finite number of ms, got ${v.show(t)}`);
    return t;
  }
}
