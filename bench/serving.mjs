// SPDX-License-Identifier: MIT
// Serving-control benchmark through the JS API: Scheduler submit throughput and getBatch
// latency, AdmissionController.shouldAdmit (admitted and rejected), IndexedHeap push/pop/update,
// and TokenLRU side by side with the npm package lru-cache (maxSize + sizeCalculation: the
// same job, a least-recently-used cache bounded by a total token cost).
//   (cd bench/serving && npm install) && node bench/serving.mjs [--quick]
// Without bench/serving/node_modules the lru-cache columns are skipped.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { llmds, rng, summarize, printTable, writeResults, isMain, quick } from './lib.mjs';

const { init, Scheduler, AdmissionController, IndexedHeap, TokenLRU } = llmds;

/** lru-cache from bench/serving/node_modules (kept out of the root install), or null. */
function loadLruCache() {
  const require = createRequire(new URL('./serving/package.json', import.meta.url));
  try {
    const { LRUCache } = require('lru-cache');
    const version = JSON.parse(readFileSync(new URL('./serving/node_modules/lru-cache/package.json', import.meta.url), 'utf8')).version;
    return { LRUCache, version };
  } catch {
    return null;
  }
}

/**
 * Best-of-`reps` ns per operation for several contenders, run interleaved (a, b, c, a, b, c, ...)
 * so that machine noise hits them alike. `fns` maps a name to a function that performs `ops`
 * operations and returns anything (kept, so the work cannot be optimised away). Ten repetitions
 * by default: on a shared 2-core machine five still caught a busy slice now and then.
 */
function interleaved(ops, fns, reps = 10) {
  const best = Object.fromEntries(Object.keys(fns).map((k) => [k, Infinity]));
  const kept = {};
  for (let r = 0; r < reps; r++) {
    for (const [name, fn] of Object.entries(fns)) {
      const t0 = performance.now();
      kept[name] = fn();
      best[name] = Math.min(best[name], ((performance.now() - t0) * 1e6) / ops);
    }
  }
  return { ns: best, kept };
}

// ---------------------------------------------------------------------------------------------
// Scheduler

/**
 * submit() throughput: `n` requests into a fresh Scheduler (default clock), best of 10, one untimed
 * warm-up pass. Variants: the default order with an SLO (the EDF path), no SLO, and a JS
 * priorityFn (FCFS), which calls back into JS once per request.
 */
export async function benchmarkSubmit({ n = 100_000 } = {}) {
  await init();
  const next = rng(11);
  const tokens = Array.from({ length: n }, () => 16 + Math.floor(next() * 4000));
  const slos = Array.from({ length: n }, () => 200 + Math.floor(next() * 30000));
  const variants = {
    'default order, with SLO': [{}, (s, i) => s.submit(tokens[i], slos[i])],
    'default order, no SLO': [{}, (s, i) => s.submit(tokens[i])],
    'priorityFn (FCFS), with SLO': [{ priorityFn: (req) => -req.arrivalMs }, (s, i) => s.submit(tokens[i], slos[i])],
    "order: 'deadline', with SLO": [{ order: 'deadline' }, (s, i) => s.submit(tokens[i], slos[i])],
  };
  const fns = {};
  for (const [name, [opts, submit]] of Object.entries(variants)) {
    fns[name] = () => {
      const s = new Scheduler({ maxBatchSize: 32, ...opts });
      try {
        for (let i = 0; i < n; i++) submit(s, i);
        return s.stats().queued;
      } finally {
        s.dispose();
      }
    };
    fns[name](); // warm-up
  }
  const { ns, kept } = interleaved(n, fns);
  return Object.keys(fns).map((variant) => {
    if (kept[variant] !== n) throw new Error(`${variant}: ${kept[variant]} queued, expected ${n}`);
    return { variant, requests: n, nsPerSubmit: ns[variant], millionPerS: 1e3 / ns[variant] };
  });
}

/**
 * getBatch() of 32 with `queued` requests waiting (every request with an SLO; the default order
 * unless `order` says otherwise):
 * one sample per call, sorted-sample percentiles. Between samples (untimed) the batch is
 * completed and 32 new requests are submitted, so every call sees the same queue length.
 */
export async function benchmarkGetBatch({ queued = 10_000, samples = 20_000, batch = 32, order = undefined } = {}) {
  await init();
  const next = rng(12);
  const s = new Scheduler({ maxBatchSize: batch, maxWaitMs: 50, order });
  try {
    const submit = () => s.submit(16 + Math.floor(next() * 4000), 200 + Math.floor(next() * 30000));
    for (let i = 0; i < queued; i++) submit();
    const complete = new Float64Array(samples);
    let bad = 0;
    const round = (timed, i) => {
      const t0 = performance.now();
      const ids = s.getBatch();
      const t1 = performance.now();
      if (ids.length !== batch) bad++;
      s.completeBatch(ids);
      if (timed) complete[i] = performance.now() - t1;
      for (let k = 0; k < batch; k++) submit();
      return t1 - t0;
    };
    for (let i = 0; i < Math.min(samples, 5000); i++) round(false, i); // warm-up
    const getSamples = new Float64Array(samples);
    for (let i = 0; i < samples; i++) getSamples[i] = round(true, i);
    if (bad) throw new Error(`${bad} getBatch calls did not return ${batch} ids`);
    if (s.stats().queued !== queued) throw new Error(`queue drifted to ${s.stats().queued}`);
    return { queued, batch, samples, order: order ?? 'weighted', ...summarize('getBatch', getSamples), ...summarize('completeBatch', complete) };
  } finally {
    s.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// AdmissionController

/**
 * shouldAdmit() cost, ns per call, batched (best of 10). The clock is injected and advances
 * 0.1 ms per call (a server seeing 10k requests/s), so the controller's one-second window holds
 * 10k admissions as it would in service; the default-clock row adds performance.now() and a
 * window that holds everything admitted in the last real second.
 *  - admitted: limits far above the offered rate, so every call admits (and reserves tokens);
 *  - rejected (qps): qpsTarget 1e-6/s after one admission, so every call is refused and builds
 *    its reason string; rejected (token rate): the same through the token bucket.
 */
export async function benchmarkAdmission({ n = 200_000 } = {}) {
  await init();
  const clock = { t: 0 };
  const now = () => (clock.t += 0.1);
  const gates = {
    admitted: new AdmissionController({ qpsTarget: 1e9, tokenRateLimit: 1e15, now }),
    'admitted, default clock': new AdmissionController({ qpsTarget: 1e9, tokenRateLimit: 1e15 }),
    'rejected (qps limit)': new AdmissionController({ qpsTarget: 1e-6, tokenRateLimit: 1e15, now }),
    'rejected (token rate limit)': new AdmissionController({ qpsTarget: 1e9, tokenRateLimit: 1e-6, tokenBurst: 100, now }),
  };
  try {
    const expect = { admitted: true, 'admitted, default clock': true, 'rejected (qps limit)': false, 'rejected (token rate limit)': false };
    const fns = {};
    for (const [name, gate] of Object.entries(gates)) {
      if (!expect[name]) gate.shouldAdmit(100); // use up the burst: every later call is refused
      fns[name] = () => {
        let agree = 0;
        for (let i = 0; i < n; i++) if (gate.shouldAdmit(100)[0] === expect[name]) agree++;
        return agree;
      };
      fns[name](); // warm-up
    }
    const { ns, kept } = interleaved(n, fns);
    return Object.keys(fns).map((name) => {
      if (kept[name] !== n) throw new Error(`shouldAdmit ${name}: only ${kept[name]} of ${n} calls decided as expected`);
      return { case: name, calls: n, nsPerCall: ns[name] };
    });
  } finally {
    for (const g of Object.values(gates)) g.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// IndexedHeap

/**
 * push, update (a random new score) and pop of `n` ids, ns per operation, best of 10. Small heaps
 * repeat the push/update/pop cycle so that every timing covers at least 200k operations.
 */
export async function benchmarkIndexedHeap({ n = 100_000 } = {}) {
  await init();
  const next = rng(13);
  const scores = Float64Array.from({ length: n }, () => next() * 1e6);
  const updates = Float64Array.from({ length: n }, () => next() * 1e6);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const rounds = Math.max(1, Math.ceil(200_000 / n));
  const heap = new IndexedHeap();
  try {
    const best = { push: Infinity, update: Infinity, pop: Infinity };
    for (let r = 0; r < 11; r++) { // the first pass is the warm-up
      const took = { push: 0, update: 0, pop: 0 };
      for (let k = 0; k < rounds; k++) {
        let t0 = performance.now();
        for (let i = 0; i < n; i++) heap.push(i, scores[i]);
        took.push += performance.now() - t0;
        t0 = performance.now();
        for (let i = 0; i < n; i++) heap.update(order[i], updates[i]);
        took.update += performance.now() - t0;
        t0 = performance.now();
        let last = -Infinity;
        for (let i = 0; i < n; i++) {
          const [score] = heap.pop();
          if (score < last) throw new Error('IndexedHeap popped out of order');
          last = score;
        }
        took.pop += performance.now() - t0;
        if (heap.size !== 0) throw new Error('IndexedHeap not empty after popping everything');
      }
      if (r === 0) continue;
      for (const op of Object.keys(best)) best[op] = Math.min(best[op], took[op]);
    }
    const ns = (ms) => (ms * 1e6) / (n * rounds);
    return { size: n, pushNs: ns(best.push), updateNs: ns(best.update), popNs: ns(best.pop) };
  } finally {
    heap.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// TokenLRU vs lru-cache

/**
 * The timed loops, one source per operation. Each is compiled separately for each cache (with
 * `PUT` replaced by its insert method), so every cache gets its own monomorphic loop: a loop
 * shared by both would make its call sites polymorphic and slow both down unevenly.
 * `d` holds the data, `st` state carried between repetitions.
 */
const LRU_LOOPS = {
  'get (hit)': `let hits = 0;
    for (let i = 0; i < d.ops; i++) if (c.get(d.hitKeys[i]) !== undefined) hits++;
    if (hits !== d.ops) throw new Error((d.ops - hits) + ' misses on present keys');
    return hits;`,
  'get (miss)': `let found = 0;
    for (let i = 0; i < d.ops; i++) if (c.get(d.missKeys[i]) !== undefined) found++;
    return found;`,
  // Present keys get the value of the next key (another cost), so totals move.
  'put (replace)': `for (let i = 0; i < d.ops; i++) {
      const k = d.firstLive + (i % d.liveCount);
      c.PUT(d.keys[k], d.values[k + 1]);
    }
    return c.size;`,
  // New keys at steady state: each put evicts about one entry. Every repetition continues with
  // fresh keys from the same sequence for every cache, so their contents stay identical.
  'put (new key, evicts)': `let k = st.cursor;
    for (let i = 0; i < d.ops; i++, k++) {
      if (k >= d.span) k = 0;
      c.PUT(d.keys[k], d.values[k]);
    }
    st.cursor = k;
    return c.size;`,
  // A fresh cache per repetition: Zipf keys, get, and put on a miss.
  'Zipf trace: get, put on miss': `c = make();
    let hits = 0;
    for (let i = 0; i < d.ops; i++) {
      const k = d.trace[i];
      if (c.get(d.keys[k]) !== undefined) hits++;
      else c.PUT(d.keys[k], d.values[k]);
    }
    return hits;`,
};

/**
 * Token-budgeted LRU caches side by side: llmds TokenLRU and lru-cache with maxSize +
 * sizeCalculation (no `max`: the budget alone bounds it, as it bounds TokenLRU).
 * Entries cost 1..512 tokens (mean ~256); the budget is `entries` x 256 tokens.
 * Operations, ns each (best of `reps`, the caches interleaved):
 *  - get (hit): a present key, random order; get (miss): an absent key;
 *  - put (replace): a present key, new value of a new cost;
 *  - put (new key, evicts): at steady state every put evicts about one entry;
 *  - Zipf trace: Zipf(0.99) keys over 4x as many keys as fit, get and on a miss put (a prompt
 *    or response cache); hit counts must agree between the caches (same LRU policy), and do.
 * The caches must also hold the same entries and tokens after the same puts (checked).
 */
export async function benchmarkTokenLRU({ entries = 10_000, ops = 200_000, keyType = 'number', reps = 15 } = {}) {
  const lru = loadLruCache();
  const budget = entries * 256;
  const next = rng(14);
  const span = 8 * entries + ops; // key ids used anywhere
  const keys = Array.from({ length: span }, (_, i) => (keyType === 'number' ? i : `prompt:${(Math.imul(i, 2654435761) >>> 0).toString(16)}:${i}`));
  const values = Array.from({ length: span + 1 }, () => ({ tokens: 1 + Math.floor(next() * 512) }));
  const tokenOf = (v) => v.tokens;
  const contenders = { TokenLRU: { make: () => new TokenLRU({ tokenBudget: budget, tokenOf }), put: 'put', total: (c) => c.totalTokens } };
  if (lru) {
    const { LRUCache } = lru;
    contenders['lru-cache'] = { make: () => new LRUCache({ maxSize: budget, sizeCalculation: tokenOf }), put: 'set', total: (c) => c.calculatedSize };
  }
  const names = Object.keys(contenders);
  const state = (c, name) => `${c.size}/${contenders[name].total(c)}`;
  const agree = (caches, when) => {
    const seen = names.map((n) => state(caches[n], n));
    if (new Set(seen).size !== 1) throw new Error(`caches disagree ${when} (entries/tokens): ${seen.join(', ')}`);
  };
  // Fill each cache to steady state with the same keys: identical contents if the policies agree.
  const caches = Object.fromEntries(names.map((n) => {
    const c = contenders[n].make();
    for (let i = 0; i < 2 * entries; i++) c[contenders[n].put](keys[i], values[i]);
    return [n, c];
  }));
  agree(caches, 'after the same puts');
  const liveCount = caches.TokenLRU.size;
  const firstLive = 2 * entries - liveCount; // the live keys are the most recent puts
  const hitKeys = Array.from({ length: ops }, () => keys[firstLive + Math.floor(next() * liveCount)]);
  const missKeys = Array.from({ length: ops }, () => keys[2 * entries + 1 + Math.floor(next() * (span - 2 * entries - 1))]);
  // Zipf(0.99) over 4x `entries` keys, by inverse CDF on the cumulative weights.
  const zipfN = 4 * entries;
  const cdf = new Float64Array(zipfN);
  let acc = 0;
  for (let i = 0; i < zipfN; i++) cdf[i] = acc += 1 / Math.pow(i + 1, 0.99);
  const trace = Array.from({ length: ops }, () => {
    const u = next() * acc;
    let lo = 0;
    let hi = zipfN - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  });
  const d = { ops, keys, values, hitKeys, missKeys, trace, firstLive, liveCount, span };

  const rows = [];
  let traceHits;
  for (const [op, body] of Object.entries(LRU_LOOPS)) {
    const fns = {};
    for (const n of names) {
      const st = { cursor: 2 * entries };
      const loop = new Function('c', 'make', 'd', 'st', body.replaceAll('PUT', contenders[n].put));
      fns[n] = () => loop(caches[n], contenders[n].make, d, st);
      fns[n](); // warm-up
    }
    const { ns, kept } = interleaved(ops, fns, reps);
    const row = { op, 'TokenLRU ns': ns.TokenLRU };
    if (lru) Object.assign(row, { 'lru-cache ns': ns['lru-cache'], 'lru-cache / TokenLRU': ns['lru-cache'] / ns.TokenLRU });
    rows.push(row);
    if (op.startsWith('Zipf')) {
      if (new Set(Object.values(kept)).size !== 1) throw new Error(`trace hit counts differ: ${JSON.stringify(kept)}`);
      traceHits = kept.TokenLRU;
    }
  }
  agree(caches, 'at the end');
  return {
    keyType,
    entriesAtBudget: liveCount,
    tokenBudget: budget,
    ops,
    reps,
    lruCacheVersion: lru?.version ?? null,
    traceHitRate: traceHits / ops,
    rows,
  };
}

// ---------------------------------------------------------------------------------------------

export async function runServingBench() {
  await init();
  const submit = await benchmarkSubmit({ n: quick ? 30_000 : 100_000 });
  const getBatch = await benchmarkGetBatch({ queued: 10_000, samples: quick ? 5_000 : 20_000 });
  const getBatchDeadline = await benchmarkGetBatch({ queued: 10_000, samples: quick ? 5_000 : 20_000, order: 'deadline' });
  const admission = await benchmarkAdmission({ n: quick ? 50_000 : 200_000 });
  const heap = [];
  for (const n of quick ? [1_000, 20_000] : [1_000, 100_000]) heap.push(await benchmarkIndexedHeap({ n }));
  const lru = [];
  for (const keyType of ['number', 'string']) lru.push(await benchmarkTokenLRU({ entries: 10_000, ops: quick ? 50_000 : 200_000, keyType }));

  const us = (ms) => ms * 1000;
  printTable('Scheduler.submit throughput (fresh scheduler, default clock; target >= 1 M/s)', submit.map((r) => ({
    variant: r.variant, requests: r.requests, 'ns/submit': r.nsPerSubmit, 'M submits/s': r.millionPerS,
  })));
  printTable(`Scheduler.getBatch of ${getBatch.batch} with ${getBatch.queued} queued (µs; target p50 <= 10 µs)`, [getBatch, getBatchDeadline].flatMap((g) => [
    { op: `getBatch (${g.order})`, p50: us(g.getBatchP50Ms), p95: us(g.getBatchP95Ms), p99: us(g.getBatchP99Ms), mean: us(g.getBatchMeanMs), samples: g.samples },
    { op: `completeBatch (${g.order})`, p50: us(g.completeBatchP50Ms), p95: us(g.completeBatchP95Ms), p99: us(g.completeBatchP99Ms), mean: us(g.completeBatchMeanMs), samples: g.samples },
  ]));
  printTable('AdmissionController.shouldAdmit (ns per call; target <= 200 ns)', admission.map((r) => ({ case: r.case, calls: r.calls, 'ns/call': r.nsPerCall })));
  printTable('IndexedHeap (ns per operation)', heap.map((r) => ({ size: r.size, push: r.pushNs, update: r.updateNs, pop: r.popNs })));
  for (const r of lru) {
    printTable(
      `TokenLRU vs lru-cache${r.lruCacheVersion ? ` ${r.lruCacheVersion}` : ' (not installed: cd bench/serving && npm install)'}, ${r.keyType} keys, ` +
        `${r.entriesAtBudget} entries at a ${r.tokenBudget}-token budget (ns per operation; trace hit rate ${(r.traceHitRate * 100).toFixed(1)}% in every cache)`,
      r.rows,
    );
  }
  const targets = {
    submitMillionPerS: submit[0].millionPerS,
    submitMet: submit[0].millionPerS >= 1,
    getBatchP50Us: us(getBatch.getBatchP50Ms),
    getBatchMet: us(getBatch.getBatchP50Ms) <= 10,
    shouldAdmitAdmittedNs: admission[0].nsPerCall,
    shouldAdmitRejectedNs: Math.max(admission[2].nsPerCall, admission[3].nsPerCall),
    shouldAdmitMet: Math.max(admission[0].nsPerCall, admission[2].nsPerCall, admission[3].nsPerCall) <= 200,
  };
  console.log(`\ntargets: submit ${targets.submitMillionPerS.toFixed(2)} M/s (>= 1: ${targets.submitMet ? 'met' : 'NOT met'}), ` +
    `getBatch p50 ${targets.getBatchP50Us.toFixed(2)} µs (<= 10: ${targets.getBatchMet ? 'met' : 'NOT met'}), ` +
    `shouldAdmit ${targets.shouldAdmitAdmittedNs.toFixed(0)} ns admitted / ${targets.shouldAdmitRejectedNs.toFixed(0)} ns rejected (<= 200: ${targets.shouldAdmitMet ? 'met' : 'NOT met'})`);
  const result = { submit, getBatch, getBatchDeadline, admission, heap, lru, targets };
  const file = await writeResults('serving', result);
  console.log(`written ${file.pathname}`);
  return result;
}

if (isMain(import.meta)) await runServingBench();
