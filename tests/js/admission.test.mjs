// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';

const { init, AdmissionController, LlmdsError } = llmds;


// Node 20 has no `using` syntax: what a test tracks is disposed after it.
const track = disposeAfterEach();

function manual(options = {}) {
  const clock = { t: 0 };
  return [track(new AdmissionController({ ...options, now: () => clock.t })), clock];
}

test('AdmissionController throws not_initialized before init()', () => {
  throwsCode(() => new AdmissionController(), 'not_initialized');
});

describe('AdmissionController', () => {
  before(async () => {
    await init();
  });

  test('the default limiter does not admit 100 requests at once (prototype regression)', () => {
    const [a, clock] = manual();
    let admitted = 0;
    for (let i = 0; i < 100; i++) admitted += a.shouldAdmit()[0] ? 1 : 0;
    assert.equal(admitted, 1);
    const st = a.stats();
    assert.equal(st.admitted, 1);
    assert.equal(st.rejected, 99);
    assert.equal(st.rejectionRate, 0.99);
    assert.equal(st.requestBurst, 1);
    assert.equal(st.tokenBurst, 1000);
    clock.t = 99;
    assert.equal(a.shouldAdmit()[0], false);
    clock.t = 100;
    assert.deepEqual(a.shouldAdmit(), [true, 'admitted']);
  });

  test('reasons start with "qps limit" / "token rate limit"; retryAfterMs is enough', () => {
    const [a, clock] = manual({ qpsTarget: 100, tokenRateLimit: 1000 }); // bursts 10 requests, 100 tokens
    assert.deepEqual(a.shouldAdmit(60), [true, 'admitted']);
    const [ok, reason] = a.shouldAdmit(60);
    assert.equal(ok, false);
    assert.equal(reason, 'token rate limit: 1000 tokens/s (burst 100) exceeded; retry after 20 ms');
    assert.equal(a.retryAfterMs(60), 20);
    clock.t = 20;
    assert.equal(a.shouldAdmit(60)[0], true);
    for (let i = 0; i < 9; i++) assert.equal(a.shouldAdmit()[0], true); // the rest of the 10-request burst
    const [ok2, reason2] = a.shouldAdmit(1e6);
    assert.equal(ok2, false);
    assert.match(reason2, /^qps limit: 100 requests\/s \(burst 10\) exceeded; retry after \d+ ms$/);
    assert.equal(a.retryAfterMs(), 10);
  });

  test('recordRequest replaces the estimate instead of adding to it (prototype regression)', () => {
    const [a] = manual({ qpsTarget: 1000, tokenRateLimit: 1000, tokenBurst: 200 });
    assert.equal(a.shouldAdmit(100)[0], true);
    a.recordRequest(100);
    assert.equal(a.stats().currentTokenRate, 100);
    assert.equal(a.stats().pendingEstimates, 0);
    assert.equal(a.shouldAdmit(100)[0], true); // counted twice, this one would be refused
  });

  test('recordRequest settles the oldest estimate; with none pending it charges', () => {
    const [a] = manual({ qpsTarget: 1000, tokenRateLimit: 1000, tokenBurst: 300 });
    a.shouldAdmit(100);
    a.shouldAdmit(50);
    a.recordRequest(20); // refunds 80
    a.recordRequest(130); // charges 80
    assert.equal(a.stats().currentTokenRate, 150);
    assert.equal(a.shouldAdmit(150)[0], true);
    assert.equal(a.shouldAdmit(1)[0], false);
    const [b] = manual({ qpsTarget: 1000, tokenRateLimit: 1000, tokenBurst: 100 });
    b.recordRequest(100);
    assert.equal(b.stats().currentQps, 0);
    assert.equal(b.shouldAdmit(1)[0], false);
  });

  test('a request larger than the burst waits for a full bucket and is never starved', () => {
    const [a, clock] = manual({ qpsTarget: 1000, tokenRateLimit: 1000 });
    assert.equal(a.shouldAdmit(5000)[0], true);
    clock.t = 1;
    assert.match(a.shouldAdmit()[1], /^token rate limit/);
    assert.equal(a.retryAfterMs(), 4899); // out of debt at t = 4900
    assert.equal(a.retryAfterMs(5000), 4999); // a full bucket at t = 5000
    clock.t = 4999;
    assert.equal(a.shouldAdmit(5000)[0], false);
    clock.t = 5000;
    assert.equal(a.shouldAdmit(5000)[0], true);
  });

  test('stats cover the last second; reset starts over', () => {
    const [a, clock] = manual({ qpsTarget: 100, tokenRateLimit: 1e6, requestBurst: 100 });
    for (let i = 0; i < 40; i++) a.shouldAdmit(10);
    let st = a.stats();
    assert.equal(st.currentQps, 40);
    assert.equal(st.currentTokenRate, 400);
    assert.equal(st.targetQps, 100);
    assert.equal(st.tokenRateLimit, 1e6);
    clock.t = 1000;
    st = a.stats();
    assert.equal(st.currentQps, 0);
    assert.equal(st.admitted, 40);
    a.reset();
    st = a.stats();
    assert.equal(st.admitted, 0);
    assert.equal(st.rejected, 0);
    assert.equal(st.rejectionRate, 0);
    assert.equal(st.pendingEstimates, 0);
  });

  test('long-run admissions follow qpsTarget', () => {
    const [a, clock] = manual({ qpsTarget: 50, tokenRateLimit: 1e9 });
    let admitted = 0;
    for (let ms = 0; ms < 10000; ms++) {
      clock.t = ms;
      for (let k = 0; k < 3; k++) admitted += a.shouldAdmit(1)[0] ? 1 : 0;
    }
    assert.ok(admitted >= 500 && admitted <= 505, `admitted ${admitted}`);
  });

  test('zero, negative, NaN, infinite or non-number settings are invalid_argument', () => {
    for (const bad of [0, -1, NaN, Infinity, -Infinity, '10', true]) {
      throwsCode(() => new AdmissionController({ qpsTarget: bad }), 'invalid_argument', /qpsTarget/);
      throwsCode(() => new AdmissionController({ tokenRateLimit: bad }), 'invalid_argument', /tokenRateLimit/);
      throwsCode(() => new AdmissionController({ tokenBurst: bad }), 'invalid_argument', /tokenBurst/);
      throwsCode(() => new AdmissionController({ requestBurst: bad }), 'invalid_argument', /requestBurst/);
    }
    throwsCode(() => new AdmissionController({ requestBurst: 0.5 }), 'invalid_argument', /requestBurst/);
    throwsCode(() => new AdmissionController({ now: 'x' }), 'invalid_argument', /now/);
    throwsCode(() => new AdmissionController({ qps: 5 }), 'invalid_argument', /unknown option "qps"/);
    const [a, clock] = manual();
    for (const bad of [-1, NaN, Infinity, '5', null]) {
      throwsCode(() => a.shouldAdmit(bad), 'invalid_argument', /estimatedTokens/);
      throwsCode(() => a.retryAfterMs(bad), 'invalid_argument', /estimatedTokens/);
      throwsCode(() => a.recordRequest(bad), 'invalid_argument', /tokens/);
    }
    clock.t = NaN;
    throwsCode(() => a.shouldAdmit(), 'invalid_argument', /now/);
    clock.t = 0;
    const st = a.stats();
    assert.equal(st.admitted + st.rejected, 0);
    assert.equal(a.shouldAdmit()[0], true);
  });

  test('dispose: later calls throw disposed', () => {
    const a = new AdmissionController();
    a.dispose();
    for (const call of [() => a.shouldAdmit(), () => a.recordRequest(1), () => a.retryAfterMs(), () => a.stats(), () => a.reset()]) {
      throwsCode(call, 'disposed', /AdmissionController/);
    }
  });
});
