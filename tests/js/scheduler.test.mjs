// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';

const { init, Scheduler, LlmdsError } = llmds;


// Node 20 has no `using` syntax: what a test tracks is disposed after it.
const track = disposeAfterEach();

/** A scheduler on a manual clock: `clock.t` is the time in ms. */
function manual(options = {}) {
  const clock = { t: 0 };
  const s = track(new Scheduler({ ...options, now: () => clock.t }));
  return [s, clock];
}

test('Scheduler throws not_initialized before init()', () => {
  throwsCode(() => new Scheduler(), 'not_initialized');
});

describe('Scheduler', () => {
  before(async () => {
    await init();
  });

  test('request 0 waits maxWaitMs like any other (prototype regression)', () => {
    const [s, clock] = manual({ maxWaitMs: 50 });
    assert.equal(s.submit(10), 0);
    assert.deepEqual(s.getBatch(), []);
    clock.t = 49.9;
    assert.deepEqual(s.getBatch(), []);
    assert.equal(s.stats().batches, 0);
    clock.t = 50;
    assert.deepEqual(s.getBatch(), [0]);
  });

  test('a full queue releases a batch at once (prototype regression)', () => {
    const [s] = manual({ maxBatchSize: 4, maxWaitMs: 1000 });
    for (let i = 0; i < 3; i++) s.submit(1);
    assert.deepEqual(s.getBatch(), []);
    s.submit(1);
    assert.deepEqual(s.getBatch(), [0, 1, 2, 3]);
    for (let i = 0; i < 6; i++) s.submit(1);
    assert.deepEqual(s.getBatch(), [4, 5, 6, 7]);
    assert.deepEqual(s.getBatch(), []);
  });

  test('in-flight requests no longer count as queued (prototype regression)', () => {
    const [s, clock] = manual({ maxBatchSize: 4, maxWaitMs: 50 });
    for (let i = 0; i < 3; i++) s.submit(1);
    assert.deepEqual(s.getBatch(true), [0, 1, 2]);
    assert.equal(s.stats().queued, 0);
    assert.equal(s.stats().inFlight, 3);
    clock.t = 100;
    s.submit(1);
    assert.deepEqual(s.getBatch(), []);
    clock.t = 149;
    assert.deepEqual(s.getBatch(), []);
    clock.t = 150;
    assert.deepEqual(s.getBatch(), [3]);
  });

  test('force releases a non-empty queue only', () => {
    const [s] = manual({ maxWaitMs: 1e9 });
    assert.deepEqual(s.getBatch(true), []);
    s.submit(5);
    assert.deepEqual(s.getBatch(), []);
    assert.deepEqual(s.getBatch(true), [0]);
    assert.equal(s.stats().batches, 1);
  });

  test('default order: smallest tokens x sloMs for SLO requests, then shortest first, ties FIFO', () => {
    const [s, clock] = manual({ maxWaitMs: 0 });
    const longPlain = s.submit(50);
    const bigTight = s.submit(500, 100); // 50,000
    clock.t = 1;
    const shortPlain = s.submit(2);
    clock.t = 10;
    const smallLoose = s.submit(40, 1000); // 40,000
    clock.t = 20;
    const tie = s.submit(100, 500); // 50,000, after bigTight
    clock.t = 30;
    const shortTie = s.submit(2);
    const tiny = s.submit(0, 5000);
    assert.deepEqual(s.getBatch(), [tiny, smallLoose, bigTight, tie, shortPlain, shortTie, longPlain]);
  });

  test("order: 'deadline': EDF for SLO requests, then shortest first, ties FIFO", () => {
    const [s, clock] = manual({ maxWaitMs: 0, order: 'deadline' });
    const longPlain = s.submit(50);
    const slo100 = s.submit(500, 100);
    clock.t = 1;
    const shortPlain = s.submit(2);
    clock.t = 10;
    const slo50 = s.submit(900, 50); // deadline 60
    clock.t = 20;
    const sloTie = s.submit(1, 80); // deadline 100, after slo100
    clock.t = 30;
    const shortTie = s.submit(2);
    assert.deepEqual(s.getBatch(), [slo50, slo100, sloTie, shortPlain, shortTie, longPlain]);
  });

  test('maxBatchTokens caps a batch; an oversized request is served alone', () => {
    const [s] = manual({ maxWaitMs: 0, maxBatchTokens: 100 });
    const r60 = s.submit(60);
    const r30 = s.submit(30);
    const r20 = s.submit(20);
    assert.deepEqual(s.getBatch(), [r20, r30]);
    assert.deepEqual(s.getBatch(), [r60]);
    const big = s.submit(500, 10);
    const small = s.submit(1);
    assert.deepEqual(s.getBatch(), [big]);
    assert.deepEqual(s.getBatch(), [small]);
  });

  test('priorityFn: higher first, ties FIFO, evaluated once at submit with the request', () => {
    const seen = [];
    let bonus = 0;
    const [s, clock] = manual({
      maxWaitMs: 0,
      priorityFn: (req) => (seen.push(req), req.tokens + bonus),
    });
    clock.t = 5;
    const a = s.submit(5, 20);
    const b = s.submit(9);
    bonus = 100; // later requests rank higher; earlier priorities are not re-evaluated
    const c = s.submit(1);
    const d = s.submit(1);
    assert.equal(seen.length, 4);
    assert.deepEqual(seen[0], { id: a, tokens: 5, sloMs: 20, arrivalMs: 5, deadlineMs: 25 });
    assert.deepEqual(seen[1], { id: b, tokens: 9, sloMs: undefined, arrivalMs: 5, deadlineMs: Infinity });
    assert.deepEqual(s.getBatch(), [c, d, b, a]);
    assert.equal(seen.length, 4);
  });

  test('priorityFn returning a non-number or throwing submits nothing', () => {
    let out = NaN;
    const [s] = manual({
      priorityFn: () => {
        if (out === 'throw') throw new Error('boom');
        return out;
      },
    });
    throwsCode(() => s.submit(1), 'invalid_argument', /priorityFn.*NaN/);
    out = '3';
    throwsCode(() => s.submit(1), 'invalid_argument', /priorityFn/);
    out = 'throw';
    assert.throws(() => s.submit(1), /boom/);
    out = -Infinity;
    assert.equal(s.submit(1), 0); // no id was consumed by the failures
    assert.equal(s.stats().queued, 1);
  });

  test('cancel queued and in-flight requests', () => {
    const [s] = manual({ maxWaitMs: 0 });
    const a = s.submit(1);
    const b = s.submit(2);
    const c = s.submit(3);
    assert.equal(s.cancel(b), true);
    assert.equal(s.cancel(b), false);
    assert.equal(s.cancel(12345), false);
    assert.equal(s.state(b), 'unknown');
    assert.deepEqual(s.getBatch(), [a, c]);
    assert.equal(s.state(a), 'inFlight');
    assert.equal(s.cancel(a), true);
    throwsCode(() => s.completeBatch([a]), 'not_found', new RegExp(`${a}`));
    s.completeBatch([c]);
    const st = s.stats();
    assert.equal(st.cancelled, 2);
    assert.equal(st.completed, 1);
    assert.equal(st.inFlight, 0);
  });

  test('completeBatch scores SLOs at completion time; stats', () => {
    const [s, clock] = manual({ maxBatchSize: 2, maxWaitMs: 0 });
    const a = s.submit(1, 100);
    const b = s.submit(1, 50);
    const c = s.submit(1);
    assert.deepEqual(s.getBatch(), [b, a]);
    assert.deepEqual(s.getBatch(), [c]);
    clock.t = 100;
    s.completeBatch([b, a]); // b late, a exactly on its deadline
    s.completeBatch(Uint32Array.of(c));
    assert.deepEqual(
      Object.fromEntries(Object.entries(s.stats()).filter(([k]) => k !== 'bytes')),
      { queued: 0, inFlight: 0, batches: 2, completed: 3, avgBatchSize: 1.5, sloMet: 1, sloMissed: 1, cancelled: 0, dispatched: 3, queuedTokens: 0 },
    );
  });

  test('a bad completeBatch changes nothing', () => {
    const [s] = manual({ maxWaitMs: 0 });
    const a = s.submit(1);
    const b = s.submit(1);
    assert.deepEqual(s.getBatch(), [a, b]);
    const q = s.submit(1);
    throwsCode(() => s.completeBatch([a, b, a]), 'invalid_argument', /twice/);
    throwsCode(() => s.completeBatch([a, q]), 'invalid_argument', /queued/);
    throwsCode(() => s.completeBatch([a, 777]), 'not_found', /777/);
    throwsCode(() => s.completeBatch([a, -1]), 'invalid_argument', /ids\[1\]/);
    throwsCode(() => s.completeBatch('0'), 'invalid_argument', /ids/);
    assert.equal(s.stats().completed, 0);
    assert.equal(s.state(a), 'inFlight');
    assert.equal(s.state(q), 'queued');
    s.completeBatch([b, a]);
    s.completeBatch([]);
    assert.equal(s.stats().completed, 2);
  });

  test('readyAt tells when the next batch is due', () => {
    const [s, clock] = manual({ maxBatchSize: 2, maxWaitMs: 50 });
    assert.equal(s.readyAt(), null);
    clock.t = 10;
    s.submit(1);
    assert.equal(s.readyAt(), 60);
    s.submit(1);
    assert.equal(s.readyAt(), 10);
  });

  test('the default clock is performance.now()', () => {
    const s = track(new Scheduler({ maxWaitMs: 0 }));
    const id = s.submit(1, 60000);
    assert.deepEqual(s.getBatch(), [id]);
    s.completeBatch([id]);
    assert.equal(s.stats().sloMet, 1);
  });

  test('every bad input throws invalid_argument and changes nothing', () => {
    const [s, clock] = manual();
    for (const tokens of [-1, 1.5, 2 ** 32, NaN, Infinity, '5', null, undefined]) {
      throwsCode(() => s.submit(tokens), 'invalid_argument', /tokens/);
    }
    for (const slo of [0, -1, NaN, Infinity, '5', {}]) {
      throwsCode(() => s.submit(1, slo), 'invalid_argument', /sloMs/);
    }
    throwsCode(() => s.getBatch(1), 'invalid_argument', /force/);
    throwsCode(() => s.cancel(-1), 'invalid_argument', /id/);
    clock.t = NaN;
    throwsCode(() => s.submit(1), 'invalid_argument', /now/);
    throwsCode(() => s.getBatch(true), 'invalid_argument', /now/);
    clock.t = 0;
    assert.equal(s.stats().queued, 0);
    assert.equal(s.submit(1), 0);
    const bad = [
      [{ maxBatchSize: 0 }, /maxBatchSize/],
      [{ maxBatchSize: 1.5 }, /maxBatchSize/],
      [{ maxBatchSize: 2 ** 21 }, /maxBatchSize/],
      [{ maxWaitMs: -1 }, /maxWaitMs/],
      [{ maxWaitMs: NaN }, /maxWaitMs/],
      [{ maxWaitMs: Infinity }, /maxWaitMs/],
      [{ maxBatchTokens: 0 }, /maxBatchTokens/],
      [{ maxBatchTokens: 2.5 }, /maxBatchTokens/],
      [{ priorityFn: 3 }, /priorityFn/],
      [{ now: 5 }, /now/],
      [{ maxBatch: 4 }, /unknown option "maxBatch"/],
    ];
    for (const [options, mentions] of bad) throwsCode(() => new Scheduler(options), 'invalid_argument', mentions);
    throwsCode(() => new Scheduler(7), 'invalid_argument');
  });

  test('dispose: later calls throw disposed', () => {
    const s = new Scheduler();
    s.submit(1);
    s.dispose();
    s.dispose();
    for (const call of [() => s.submit(1), () => s.getBatch(true), () => s.completeBatch([0]), () => s.cancel(0), () => s.stats()]) {
      throwsCode(call, 'disposed', /Scheduler/);
    }
  });

  test('batches stay correct while the wasm heap grows', () => {
    const [s] = manual({ maxBatchSize: 64, maxWaitMs: 1e9 });
    for (let i = 0; i < 200000; i++) s.submit(i % 1000);
    const first = s.getBatch();
    assert.equal(first.length, 64);
    assert.ok(first.every((id) => id % 1000 === 0)); // shortest first: tokens 0, FIFO
    assert.deepEqual(first.slice(0, 3), [0, 1000, 2000]);
    for (let i = 0; i < 200000; i++) s.submit(5000);
    const second = s.getBatch();
    assert.deepEqual(second.slice(0, 3), [64000, 65000, 66000]);
  });
});

describe('Scheduler: overdue requests', () => {
  before(async () => {
    await init();
  });

  test('weighted order: a late request counts latePenalty times its size; past its second deadline it goes first', () => {
    const [s, clock] = manual({ maxBatchSize: 1, maxWaitMs: 0, maxDemotionMs: 100 });
    const late = s.submit(10, 10); // 100; 1,000 once overdue
    const mid = s.submit(20, 40); // 800
    const big = s.submit(30, 50); // 1,500
    const none = s.submit(1);
    clock.t = 5;
    assert.deepEqual(s.getBatch(), [late]);
    const late2 = s.submit(10, 10); // due 15, second deadline 115
    clock.t = 20;
    assert.deepEqual(s.getBatch(), [mid]);
    const small = s.submit(1, 900);
    assert.deepEqual(s.getBatch(), [small]);
    clock.t = 116;
    const tiny = s.submit(0, 1000);
    assert.deepEqual([s.getBatch(), s.getBatch(), s.getBatch(), s.getBatch()].flat(), [late2, tiny, big, none]);
    // latePenalty Infinity: behind every request still on time (0 tokens included).
    const [t, tclock] = manual({ maxBatchSize: 1, maxWaitMs: 0, latePenalty: Infinity });
    const zero = t.submit(0, 10);
    const huge = t.submit(1e6, 1e6);
    tclock.t = 11;
    assert.deepEqual([t.getBatch(), t.getBatch()].flat(), [huge, zero]);
    // latePenalty 1: lateness does not change the order.
    const [u, uclock] = manual({ maxBatchSize: 1, maxWaitMs: 0, latePenalty: 1 });
    const a = u.submit(10, 10);
    const b = u.submit(11, 100);
    uclock.t = 11;
    assert.deepEqual([u.getBatch(), u.getBatch()].flat(), [a, b]);
  });

  test('weighted order: the default window is 20 SLOs', () => {
    for (const [t, first] of [[104, 'small'], [106, 'late']]) {
      const [s, clock] = manual({ maxBatchSize: 1, maxWaitMs: 0 });
      const ids = { late: s.submit(100, 5) }; // due 5, second deadline 5 + 20 x 5 = 105
      clock.t = t - 1;
      ids.small = s.submit(1, 1000);
      clock.t = t;
      assert.deepEqual(s.getBatch(), [ids[first]], `at ${t}`);
    }
  });

  test('order and latePenalty validation; demoteOverdue only with the deadline order', () => {
    for (const name of ['maxDemotionFactor', 'maxDemotionMs']) for (const bad of [-1, NaN, '20']) throwsCode(() => new Scheduler({ [name]: bad }), 'invalid_argument', new RegExp(name));
    for (const bad of ['edf', 'Weighted', 0, true]) throwsCode(() => new Scheduler({ order: bad }), 'invalid_argument', /order/);
    for (const bad of [0.5, 0, -1, NaN, -Infinity, '10']) throwsCode(() => new Scheduler({ latePenalty: bad }), 'invalid_argument', /latePenalty/);
    throwsCode(() => new Scheduler({ demoteOverdue: false }), 'invalid_argument', /demoteOverdue.*deadline/);
    throwsCode(() => new Scheduler({ order: 'weighted', demoteOverdue: false }), 'invalid_argument', /demoteOverdue/);
    for (const ok of [{ order: 'deadline', demoteOverdue: false }, { order: 'weighted' }, { latePenalty: 1 }, { latePenalty: Infinity }, { demoteOverdue: false, priorityFn: () => 0 }]) new Scheduler(ok).dispose();
  });

  test('maxDemotionMs Infinity: an overdue request goes behind those that can still be on time for good; demoteOverdue: false is plain EDF', () => {
    for (const demoteOverdue of [true, false]) {
      const [s, clock] = manual({ maxBatchSize: 1, maxWaitMs: 0, order: 'deadline', demoteOverdue, maxDemotionMs: Infinity, maxDemotionFactor: Infinity });
      const tight = s.submit(10, 5);
      const loose = s.submit(10, 1000);
      const none = s.submit(3);
      clock.t = 50;
      const order = [s.getBatch(), s.getBatch(), s.getBatch()].flat();
      assert.deepEqual(order, demoteOverdue ? [loose, none, tight] : [tight, loose, none]);
    }
    throwsCode(() => new Scheduler({ demoteOverdue: 'yes' }), 'invalid_argument', /demoteOverdue/);
  });

  test('bounded demotion: an overdue request ranks at deadline + maxDemotionMs, then goes first', () => {
    for (const t of [50, 150]) {
      const [s, clock] = manual({ maxBatchSize: 1, maxWaitMs: 0, order: 'deadline', maxDemotionMs: 100, maxDemotionFactor: Infinity });
      const tight = s.submit(10, 5); // second deadline 105
      const mid = s.submit(10, 80);
      const late = s.submit(10, 200);
      const none = s.submit(3);
      clock.t = t;
      const order = [s.getBatch(), s.getBatch(), s.getBatch(), s.getBatch()].flat();
      assert.deepEqual(order, t === 50 ? [mid, tight, late, none] : [tight, mid, late, none]);
    }
  });

  test('the default window is 10 SLOs; the smaller limit wins; 0 is plain EDF', () => {
    const [s, clock] = manual({ maxBatchSize: 1, maxWaitMs: 0, order: 'deadline' });
    const tight = s.submit(10, 5); // second deadline 5 + 50 = 55
    const loose = s.submit(10, 3000);
    const due = s.submit(10, 40);
    clock.t = 10;
    assert.deepEqual([s.getBatch(), s.getBatch(), s.getBatch()].flat(), [due, tight, loose]);
    const [m, mclock] = manual({ maxBatchSize: 1, maxWaitMs: 0, order: 'deadline', maxDemotionMs: 20 });
    const m1 = m.submit(10, 5); // second deadline 5 + min(20, 50) = 25
    const m2 = m.submit(10, 40);
    mclock.t = 10;
    assert.deepEqual([m.getBatch(), m.getBatch()].flat(), [m1, m2]);
    const [e, eclock] = manual({ maxBatchSize: 1, maxWaitMs: 0, order: 'deadline', maxDemotionMs: 0 });
    const a = e.submit(10, 5);
    const b = e.submit(10, 1000);
    eclock.t = 10;
    assert.deepEqual([e.getBatch(), e.getBatch()].flat(), [a, b]);
  });

  test('maxDemotionMs and maxDemotionFactor validation', () => {
    for (const name of ['maxDemotionMs', 'maxDemotionFactor']) {
      for (const bad of [-1, NaN, -Infinity, '5', true]) {
        throwsCode(() => new Scheduler({ [name]: bad }), 'invalid_argument', new RegExp(name));
      }
      for (const ok of [0, 0.5, 1e9, Infinity]) new Scheduler({ [name]: ok }).dispose();
    }
  });
});
