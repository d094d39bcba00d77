// SPDX-License-Identifier: MIT
// Property tests of the serving classes' JS boundary (Scheduler, AdmissionController,
// IndexedHeap, TokenLRU) with random and hostile values (fast-check, fixed seeds): every call
// works or throws LlmdsError, and a call that throws leaves the object as it was.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { llmds, throwsCode } from './llmds.mjs';
import { argOf, checkMethod, detachedBuffer, detachedView, hostile, named } from './hostile.mjs';

const { init, Scheduler, AdmissionController, IndexedHeap, TokenLRU, LlmdsError } = llmds;

before(async () => {
  await init();
});

/** String(x) that never throws (String of a detached typed array does). */
const fmt = (x) => {
  try {
    return String(x);
  } catch {
    return Object.prototype.toString.call(x);
  }
};

/** hostile.mjs's values plus huge arrays and the typed-array kinds it lacks. */
const hostileX = fc.oneof(
  { weight: 6, arbitrary: hostile },
  fc.constant(0).map(() => detachedView(Uint32Array)),
  fc.constant(0).map(() => detachedView(Uint8Array)),
  fc.constant(0).map(() => detachedBuffer()),
  fc.constant(0).map(() => named(new Uint32Array(1 << 18).fill(1), 'Uint32Array(2^18)')),
  fc.constant(0).map(() => named(Array.from({ length: 1 << 16 }, (_, i) => i), 'number[2^16]')),
  fc.constant(0).map(() => Uint32Array.of(0, 1, 0xffffffff)),
  fc.constant(0).map(() => new BigInt64Array(2)),
  fc.constantFrom(2 ** 32 - 1, 2 ** 53 + 2, -(2 ** 31), 1e-300, 4.5),
);
const arg = (good) => fc.oneof({ weight: 2, arbitrary: good }, { weight: 1, arbitrary: hostileX });

/** Constructs from hostile options: an object or an LlmdsError, nothing else. */
function checkConstructor(make, options, seed, numRuns = 250) {
  fc.assert(
    fc.property(options, (o) => {
      let obj;
      try {
        obj = make(o);
      } catch (e) {
        assert.ok(e instanceof LlmdsError, `${e?.name}: ${e?.message}`);
        return;
      }
      obj?.dispose?.();
    }),
    { numRuns, seed },
  );
}

describe('Scheduler with hostile inputs', () => {
  let clock = 0;
  const make = () => {
    clock = 100;
    const s = new Scheduler({ maxBatchSize: 3, maxWaitMs: 10, maxBatchTokens: 40, now: () => clock });
    s.submit(5);
    s.submit(7, 20);
    s.getBatch(true); // 0 and 1 in flight
    s.submit(1); // 2 and 3 queued
    s.submit(30, 5);
    return s;
  };
  const ids = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const snapshot = (s) => ({ stats: s.stats(), states: ids.map((i) => s.state(i)), ready: s.readyAt() });
  const id = fc.integer({ min: 0, max: 8 });
  const idList = fc.array(id, { maxLength: 4 });
  for (const [method, args] of Object.entries({
    submit: [arg(fc.integer({ min: 0, max: 60 })), fc.oneof(fc.constant(undefined), arg(fc.double({ min: 0.001, max: 100, noNaN: true })))],
    getBatch: [fc.oneof(fc.constant(undefined), arg(fc.boolean()))],
    completeBatch: [fc.oneof({ weight: 2, arbitrary: fc.oneof(idList, idList.map((a) => Uint32Array.from(a))) }, { weight: 1, arbitrary: hostileX })],
    cancel: [arg(id)],
    state: [arg(id)],
    readyAt: [],
    stats: [],
  })) {
    test(method, () => checkMethod({ make, method, args, snapshot }));
  }

  // Found by these properties: Scheduler.completeBatch passes a Uint32Array straight to
  // withHeap without v.attached(), so a detached one throws a TypeError from
  // TypedArray.prototype.set. Fix (js/src/scheduler.mts, completeBatch): `list = v.attached(ids, 'ids');`.
  // Until then the general completeBatch property above leaves detached Uint32Arrays out.
  test('completeBatch of a detached Uint32Array throws LlmdsError and changes nothing', () => {
    const s = make();
    const before = snapshot(s);
    try {
      assert.throws(() => s.completeBatch(detachedView(Uint32Array)), LlmdsError);
      assert.deepEqual(snapshot(s), before);
    } finally {
      s.dispose();
    }
  });

  test('a hostile clock: every call works or throws LlmdsError, and changes nothing when it throws', () => {
    const time = fc.oneof(fc.integer({ min: 0, max: 200 }), hostile);
    const op = fc.constantFrom('submit', 'submitSlo', 'getBatch', 'force', 'complete', 'readyAt', 'stats', 'cancel');
    fc.assert(
      fc.property(fc.array(fc.tuple(time, op), { minLength: 1, maxLength: 12 }), (steps) => {
        let now = 0;
        const s = new Scheduler({ maxBatchSize: 2, maxWaitMs: 5, now: () => now });
        const inFlight = [];
        try {
          for (const [t, o] of steps) {
            const snap = { stats: s.stats(), states: ids.map((i) => s.state(i)) };
            now = t;
            try {
              if (o === 'submit') s.submit(3);
              else if (o === 'submitSlo') s.submit(2, 7);
              else if (o === 'getBatch' || o === 'force') inFlight.push(...s.getBatch(o === 'force'));
              else if (o === 'complete') s.completeBatch(inFlight.splice(0, 1));
              else if (o === 'readyAt') s.readyAt();
              else if (o === 'stats') s.stats();
              else s.cancel(0);
            } catch (e) {
              assert.ok(e instanceof LlmdsError, `${o} at ${fmt(t)}: ${e}`);
              if (o === 'complete') inFlight.length = 0; // forget them (they stay in flight)
              assert.deepEqual({ stats: s.stats(), states: ids.map((i) => s.state(i)) }, snap);
            }
          }
        } finally {
          s.dispose();
        }
      }),
      { numRuns: 200, seed: 11 },
    );
  });

  test('priorityFn returning hostile values: LlmdsError and nothing submitted, or a normal submit', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(hostile, fc.double()), { minLength: 1, maxLength: 8 }), (priorities) => {
        let next;
        const s = new Scheduler({ maxWaitMs: 0, priorityFn: () => next });
        try {
          let accepted = 0;
          for (const p of priorities) {
            next = p;
            const before = s.stats();
            try {
              assert.equal(s.submit(1), accepted); // ids are not consumed by failures
              accepted++;
              assert.ok(typeof p === 'number' && !Number.isNaN(p), `accepted priority ${fmt(p)}`);
            } catch (e) {
              assert.ok(e instanceof LlmdsError, String(e));
              assert.deepEqual(s.stats(), before);
            }
          }
          // Higher first, ties in submission order.
          const order = priorities.filter((p) => typeof p === 'number' && !Number.isNaN(p)).map((p, i) => [p, i]);
          order.sort((a, b) => (a[0] === b[0] ? a[1] - b[1] : b[0] - a[0]));
          assert.deepEqual(s.getBatch(), order.map(([, i]) => i));
        } finally {
          s.dispose();
        }
      }),
      { numRuns: 200, seed: 12 },
    );
  });

  test('a priorityFn that throws propagates its own error and submits nothing', () => {
    const s = new Scheduler({ priorityFn: (r) => { if (r.tokens === 13) throw new RangeError('user bug'); return 1; } });
    s.submit(1);
    const before = s.stats();
    assert.throws(() => s.submit(13), RangeError);
    assert.deepEqual(s.stats(), before);
    assert.equal(s.submit(2), 1);
    s.dispose();
  });

  // Found while checking the failure-atomicity of submit: a priorityFn that submits to its own
  // scheduler makes the outer submit throw, but the inner submit already queued a request. Fix
  // (js/src/scheduler.mts): a #ranking flag set around the priorityFn call; submit() while it is
  // set fails up front (invalid_argument), so the inner call changes nothing.
  test('a priorityFn that submits to its own scheduler leaves it unchanged', () => {
    let s;
    let depth = 0;
    s = new Scheduler({ priorityFn: () => (depth++ === 0 ? (s.submit(1), 1) : 1) });
    try {
      assert.throws(() => s.submit(5), LlmdsError);
      assert.equal(s.stats().queued, 0);
    } finally {
      s.dispose();
    }
  });

  test('random operations match a reference model (order, release rule, token cap, ids)', () => {
    const op = fc.oneof(
      fc.tuple(fc.constant('submit'), fc.integer({ min: 0, max: 30 }), fc.option(fc.constantFrom(1, 5, 12.5, 40), { nil: undefined })),
      fc.tuple(fc.constant('batch'), fc.boolean()),
      fc.tuple(fc.constant('complete'), fc.nat(5)),
      fc.tuple(fc.constant('cancel'), fc.nat(40)),
      fc.tuple(fc.constant('tick'), fc.constantFrom(0, 1, 2.5, 7, 30)),
    );
    const config = fc.record({
      maxBatchSize: fc.integer({ min: 1, max: 5 }),
      maxWaitMs: fc.constantFrom(0, 3, 10),
      maxBatchTokens: fc.option(fc.constantFrom(1, 20, 50), { nil: undefined }),
      maxDemotionMs: fc.option(fc.constantFrom(0, 2, 10, 25, Infinity), { nil: undefined }),
      maxDemotionFactor: fc.option(fc.constantFrom(0, 0.5, 2, Infinity), { nil: undefined }),
      order: fc.option(fc.constantFrom('weighted', 'deadline'), { nil: undefined }),
      latePenalty: fc.option(fc.constantFrom(1, 3, 10, Infinity), { nil: undefined }),
      custom: fc.boolean(),
    });
    fc.assert(
      fc.property(config, fc.array(op, { maxLength: 60 }), ({ custom, ...o }, ops) => {
        let now = 0;
        const prio = (r) => (r.tokens % 4) - (r.sloMs === undefined ? 0 : 0.5);
        const s = new Scheduler({ ...o, now: () => now, ...(custom ? { priorityFn: prio } : {}) });
        const reqs = new Map(); // id -> { tokens, slo, arrival, deadline, priority, seq, state }
        let seq = 0;
        let lateSeq = 0;
        let nextId = 0;
        const w = o.maxDemotionMs ?? Infinity;
        const f = o.maxDemotionFactor ?? ((o.order ?? 'weighted') === 'weighted' ? 20 : 10);
        const penalty = o.latePenalty ?? 10;
        const second = (r) => r.deadline + Math.min(w, f * r.slo);
        // Weighted order: starved SLO requests (past their second deadline) by it, in the order
        // they turned overdue on a tie; then SLO requests by tokens x slo (x latePenalty once
        // overdue); then no-SLO by tokens; FIFO ties.
        const weightedBefore = (a, b) => {
          const rank = (r) => (r.slo === undefined ? 2 : r.overdue && second(r) < now ? 0 : 1);
          const size = (r) => (!r.overdue ? r.tokens * r.slo : penalty === Infinity ? Infinity : r.tokens * r.slo * penalty);
          if (rank(a) !== rank(b)) return rank(a) < rank(b);
          if (rank(a) === 0) return second(a) !== second(b) ? second(a) < second(b) : a.lateSeq < b.lateSeq;
          const ka = rank(a) === 1 ? size(a) : a.tokens;
          const kb = rank(b) === 1 ? size(b) : b.tokens;
          return ka !== kb ? ka < kb : a.seq < b.seq;
        };
        const before = (a, b) => {
          if (custom) return a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;
          if ((o.order ?? 'weighted') === 'weighted') return weightedBefore(a, b);
          // SLO requests by deadline, an overdue one ranked at deadline + min(maxDemotionMs,
          // maxDemotionFactor x slo) (first on a tie), then no-SLO by tokens. Both Infinity:
          // on-time SLO requests by deadline, then no-SLO by tokens, then overdue by deadline.
          const bounded = w !== Infinity || f !== Infinity;
          const rank = (r) => (r.overdue && !bounded ? 2 : r.slo !== undefined ? 0 : 1);
          const key = (r) => (r.overdue && bounded ? r.deadline + Math.min(w, f * r.slo) : r.deadline);
          if (rank(a) !== rank(b)) return rank(a) < rank(b);
          if (rank(a) === 0 && a.overdue !== b.overdue) return a.overdue ? key(a) <= key(b) : key(a) < key(b);
          if (rank(a) === 0) return key(a) !== key(b) ? key(a) < key(b) : a.overdue && b.overdue ? a.lateSeq < b.lateSeq : a.seq < b.seq;
          const ka = rank(a) === 1 ? a.tokens : a.deadline;
          const kb = rank(b) === 1 ? b.tokens : b.deadline;
          return ka !== kb ? ka < kb : rank(a) === 2 ? a.lateSeq < b.lateSeq : a.seq < b.seq;
        };
        try {
          for (const [kind, x, y] of ops) {
            const queued = [...reqs].filter(([, r]) => r.state === 'queued');
            if (kind === 'submit') {
              const id = s.submit(x, y);
              assert.equal(id, nextId++);
              const r = { tokens: x, slo: y, arrival: now, deadline: y === undefined ? Infinity : now + y, seq: seq++, state: 'queued' };
              r.priority = prio({ tokens: x, sloMs: y });
              reqs.set(id, r);
            } else if (kind === 'batch') {
              const tokens = queued.reduce((t, [, r]) => t + r.tokens, 0);
              const full = queued.length >= o.maxBatchSize || (o.maxBatchTokens !== undefined && tokens >= o.maxBatchTokens);
              const oldest = Math.min(...queued.map(([, r]) => r.arrival));
              const expected = [];
              if (queued.length > 0 && (x || full || now >= oldest + o.maxWaitMs)) {
                if (!custom) {
                  const turning = queued.map(([, r]) => r).filter((r) => r.slo !== undefined && !r.overdue && r.deadline < now);
                  turning.sort((a, b) => a.deadline - b.deadline || a.seq - b.seq);
                  for (const r of turning) (r.overdue = true), (r.lateSeq = lateSeq++);
                }
                const order = queued.sort(([, a], [, b]) => (before(a, b) ? -1 : 1));
                let sum = 0;
                for (const [id, r] of order) {
                  if (expected.length === o.maxBatchSize) break;
                  if (o.maxBatchTokens !== undefined && expected.length > 0 && sum + r.tokens > o.maxBatchTokens) break;
                  sum += r.tokens;
                  expected.push(id);
                  r.state = 'inFlight';
                }
              }
              assert.deepEqual(s.getBatch(x), expected);
            } else if (kind === 'complete') {
              const flying = [...reqs].filter(([, r]) => r.state === 'inFlight').slice(0, x).map(([id]) => id);
              s.completeBatch(flying);
              for (const id of flying) reqs.delete(id);
            } else if (kind === 'cancel') {
              assert.equal(s.cancel(x), reqs.delete(x));
            } else {
              now += x;
            }
            const st = s.stats();
            assert.equal(st.queued, [...reqs.values()].filter((r) => r.state === 'queued').length);
            assert.equal(st.inFlight, [...reqs.values()].filter((r) => r.state === 'inFlight').length);
            for (let id = 0; id < nextId; id++) assert.equal(s.state(id), reqs.get(id)?.state ?? 'unknown');
          }
        } finally {
          s.dispose();
        }
      }),
      { numRuns: 300, seed: 20 },
    );
  });

  test('constructor', () => {
    const options = fc.oneof(
      hostileX,
      fc.record(
        { maxBatchSize: arg(fc.integer({ min: 1, max: 64 })), maxWaitMs: arg(fc.integer({ min: 0, max: 100 })), maxBatchTokens: arg(fc.integer({ min: 1, max: 1000 })), maxDemotionMs: arg(fc.constantFrom(0, 100, Infinity)), priorityFn: hostileX, now: hostileX },
        { requiredKeys: [] },
      ),
    );
    checkConstructor((o) => new Scheduler(o), options, 13);
  });
});

describe('AdmissionController with hostile inputs', () => {
  let clock = 0;
  const make = () => {
    clock = 1000;
    const a = new AdmissionController({ qpsTarget: 5, tokenRateLimit: 100, now: () => clock });
    a.shouldAdmit(4);
    return a;
  };
  const snapshot = (a) => ({ stats: a.stats(), retry: a.retryAfterMs(), retry50: a.retryAfterMs(50) });
  const tokens = fc.integer({ min: 0, max: 200 });
  for (const [method, args] of Object.entries({
    shouldAdmit: [fc.oneof(fc.constant(undefined), arg(tokens))],
    recordRequest: [arg(tokens)],
    retryAfterMs: [fc.oneof(fc.constant(undefined), arg(tokens))],
    stats: [],
    reset: [],
  })) {
    test(method, () => checkMethod({ make, method, args, snapshot }));
  }

  test('any sequence with finite values keeps the results finite and well-formed', () => {
    const op = fc.oneof(
      fc.tuple(fc.constant('admit'), fc.oneof(tokens, fc.constantFrom(0, 0.5, 1e9, 2 ** 53, Number.MAX_VALUE))),
      fc.tuple(fc.constant('record'), fc.oneof(tokens, fc.constantFrom(0, 1e9, 2 ** 53, Number.MAX_VALUE))),
      fc.tuple(fc.constant('tick'), fc.oneof(fc.integer({ min: -50, max: 3000 }), fc.constantFrom(1e15, 1e300))),
    );
    fc.assert(
      fc.property(fc.constantFrom(0.5, 5, 1e6, Number.MAX_VALUE), fc.constantFrom(1, 100, 1e12, Number.MAX_VALUE), fc.array(op, { maxLength: 30 }), (qps, rate, ops) => {
        let now = 0;
        const a = new AdmissionController({ qpsTarget: qps, tokenRateLimit: rate, now: () => now });
        try {
          for (const [o, x] of ops) {
            if (o !== 'tick' && x > Number.MAX_SAFE_INTEGER) {
              // Past 2^53 a count is inexact and its debt would never be repaid: rejected.
              throwsCode(() => (o === 'record' ? a.recordRequest(x) : a.shouldAdmit(x)), 'invalid_argument', /2\^53/);
              continue;
            }
            if (o === 'tick') now += x;
            else if (o === 'record') a.recordRequest(x);
            else {
              const [ok, reason] = a.shouldAdmit(x);
              assert.ok(ok ? reason === 'admitted' : /^(qps limit|token rate limit)/.test(reason), reason);
              assert.doesNotMatch(reason, /NaN|undefined/);
            }
            const retry = a.retryAfterMs();
            assert.ok(retry >= 0, `retryAfterMs ${retry}`); // Infinity after an absurd debt is honest
            const st = a.stats();
            for (const [k, v] of Object.entries(st)) assert.ok(typeof v === "number" && v >= 0 && (Number.isFinite(v) || k === "currentTokenRate"), `${k} = ${v}`);
            assert.ok(st.rejectionRate <= 1);
          }
        } finally {
          a.dispose();
        }
      }),
      { numRuns: 300, seed: 14 },
    );
  });

  test('constructor', () => {
    const options = fc.oneof(
      hostileX,
      fc.record({ qpsTarget: hostileX, tokenRateLimit: hostileX, requestBurst: hostileX, tokenBurst: hostileX, now: hostileX }, { requiredKeys: [] }),
    );
    checkConstructor((o) => new AdmissionController(o), options, 15);
  });
});

describe('IndexedHeap with hostile inputs', () => {
  const ids = Array.from({ length: 13 }, (_, i) => i);
  for (const maxHeap of [false, true]) {
    const make = () => {
      const h = new IndexedHeap({ maxHeap });
      h.push(1, 3);
      h.push(2, -1);
      h.push(3, 3);
      h.push(4, Infinity);
      return h;
    };
    const snapshot = (h) => ({ size: h.size, peek: h.peek(), scores: ids.map((i) => h.scoreOf(i)) });
    const id = fc.integer({ min: 0, max: 12 });
    const score = fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constantFrom(Infinity, -Infinity, 0.25));
    for (const [method, args] of Object.entries({
      push: [arg(id), arg(score)],
      pop: [],
      peek: [],
      update: [arg(id), arg(score)],
      decreaseKey: [arg(id), arg(score)],
      increaseKey: [arg(id), arg(score)],
      delete: [arg(id)],
      contains: [arg(id)],
      scoreOf: [arg(id)],
      clear: [],
    })) {
      test(`${maxHeap ? 'max' : 'min'}-heap ${method}`, () => checkMethod({ make, method, args, snapshot, numRuns: 100 }));
    }
  }

  test('after any mix of good and hostile calls the heap drains in order, ties FIFO', () => {
    const id = fc.integer({ min: 0, max: 9 });
    const score = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(Infinity, -Infinity));
    const call = fc.tuple(fc.constantFrom('push', 'update', 'decreaseKey', 'increaseKey', 'delete', 'pop'), arg(id), arg(score));
    fc.assert(
      fc.property(fc.boolean(), fc.array(call, { maxLength: 40 }), (maxHeap, calls) => {
        const h = new IndexedHeap({ maxHeap });
        const model = new Map(); // id -> [score, push seq]
        let seq = 0;
        try {
          for (const [m, i, s] of calls) {
            let ok = true;
            try {
              h[m](i, s);
            } catch (e) {
              assert.ok(e instanceof LlmdsError, `${m}(${fmt(i)}, ${fmt(s)}): ${e}`);
              ok = false;
            }
            if (!ok) continue;
            if (m === 'push') model.set(i, [s, seq++]);
            else if (m === 'delete') model.delete(i);
            else if (m === 'pop') {
              const best = [...model].sort(([, a], [, b]) => (a[0] === b[0] ? a[1] - b[1] : maxHeap ? b[0] - a[0] : a[0] - b[0]))[0];
              if (best) model.delete(best[0]);
            } else model.get(i)[0] = s;
          }
          const expected = [...model].sort(([, a], [, b]) => (a[0] === b[0] ? a[1] - b[1] : maxHeap ? b[0] - a[0] : a[0] - b[0]));
          const drained = [];
          for (let e = h.pop(); e !== undefined; e = h.pop()) drained.push(e);
          assert.deepEqual(drained, expected.map(([i, [s]]) => [s, i]));
        } finally {
          h.dispose();
        }
      }),
      { numRuns: 300, seed: 16 },
    );
  });

  test('constructor', () => {
    checkConstructor((o) => new IndexedHeap(o), fc.oneof(hostileX, fc.record({ maxHeap: hostileX }, { requiredKeys: [] })), 17);
  });
});

describe('TokenLRU with hostile inputs', () => {
  // tokenOf returns the value itself, or the value's cost field: hostile values become
  // hostile costs.
  const tokenOf = (v) => (v !== null && typeof v === 'object' ? v.cost : v);
  const make = () => {
    const c = new TokenLRU({ tokenBudget: 10, tokenOf });
    c.put('a', 3);
    c.put(1, { cost: 4 });
    c.put('b', 0);
    c.dispose = () => {}; // pure JS: nothing to dispose, but checkMethod calls it
    return c;
  };
  const snapshot = (c) => ({ keys: c.keys(), values: c.keys().map((k) => c.peek(k)), total: c.totalTokens, size: c.size });
  const key = fc.oneof(fc.constantFrom('a', 'b', 'c', '1'), fc.integer({ min: 0, max: 3 }));
  const cost = fc.integer({ min: 0, max: 12 });
  const value = arg(fc.oneof(cost, fc.record({ cost: arg(cost) })));
  for (const [method, args] of Object.entries({
    put: [arg(key), value],
    get: [arg(key)],
    peek: [arg(key)],
    has: [arg(key)],
    delete: [arg(key)],
    evictUntilBudget: [arg(fc.integer({ min: 0, max: 12 }))],
    clear: [],
    keys: [],
  })) {
    test(method, () => checkMethod({ make, method, args, snapshot }));
  }

  test('the budget holds after any sequence of calls', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('put', 'get', 'delete', 'evictUntilBudget'), arg(key), value), { maxLength: 30 }), (calls) => {
        const c = make();
        for (const [m, k, v] of calls) {
          try {
            if (m === 'put') c.put(k, v);
            else if (m === 'evictUntilBudget') c.evictUntilBudget(tokenOf(v));
            else c[m](k);
          } catch (e) {
            assert.ok(e instanceof LlmdsError, String(e));
          }
          assert.ok(c.totalTokens <= 10 && c.totalTokens >= 0, `totalTokens ${c.totalTokens}`);
          const sum = c.keys().reduce((s, k2) => s + tokenOf(c.peek(k2)), 0);
          assert.ok(Math.abs(c.totalTokens - sum) <= 1e-9 * Math.max(1, sum), `totalTokens ${c.totalTokens} vs ${sum}`);
          assert.equal(c.size, c.keys().length);
        }
      }),
      { numRuns: 300, seed: 18 },
    );
  });

  test('constructor', () => {
    const options = fc.oneof(hostileX, fc.record({ tokenBudget: hostileX, tokenOf: hostileX, onEvict: hostileX }, { requiredKeys: [] }));
    checkConstructor((o) => new TokenLRU(o), options, 19);
  });
});
