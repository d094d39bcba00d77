// SPDX-License-Identifier: MIT
// bench/router-sim.mjs on a slice of the Mooncake trace: invariants of the fleet simulation that
// a wiring mistake (a lost event, a request routed twice, a detach missed) would break.
// Not checked, because it is not an invariant: oracle hit rate ≥ every policy's (a global LRU
// is not an optimal cache; a partitioned fleet can keep a prefix a global LRU evicts).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds } from './llmds.mjs';
import { loadTrace, requestTokens, PAGE_SIZE, PREFILL_MS_PER_TOKEN } from '../../bench/kv-trace.mjs';
import { simulateFleet, POLICIES } from '../../bench/router-sim.mjs';

// Requests 3,000-3,599 (later in the trace, where prefixes recur), 4 servers of 500 pages (they
// evict: removed events), arrivals stretched ×3 (the fleet keeps up; TTFTs of seconds).
const SLICE = [3000, 3600];
const SERVERS = 4;
const PAGES = 500;
const TIME_SCALE = 3;

describe('router simulation (bench/router-sim.mjs) on the Mooncake trace', () => {
  let trace;
  let tokensOf;
  const runs = {};
  const sim = (options) => simulateFleet(trace, { servers: SERVERS, pagesPerServer: PAGES, timeScale: TIME_SCALE, tokensOf, ...options });
  before(async () => {
    await llmds.init();
    trace = loadTrace().slice(...SLICE);
    const tokens = new Map(trace.map((req) => [req.id, requestTokens(req)]));
    tokensOf = (req) => tokens.get(req.id);
    for (const policy of Object.keys(POLICIES)) runs[policy] = sim({ policy });
  });

  test('every policy serves every request exactly once and releases every page', () => {
    for (const [policy, r] of Object.entries(runs)) {
      assert.equal(r.rejected, 0, policy);
      assert.equal(r.served, trace.length, policy);
      assert.ok(r.records.served.every((x) => x === 1), `${policy}: a request served twice or never`);
      assert.ok(r.records.serverOf.every((s) => s >= 0 && s < SERVERS), policy);
      assert.equal(r.end.usedPages, 0, `${policy}: pages still referenced after the last completion`);
      assert.equal(r.end.queued + r.end.running, 0, policy);
    }
  });

  test('per request: cached tokens are whole pages of the prompt, TTFT covers the prefill', () => {
    for (const [policy, r] of Object.entries(runs)) {
      trace.forEach((req, k) => {
        const cached = r.records.cachedTokens[k];
        assert.ok(cached >= 0 && cached <= req.input && cached % PAGE_SIZE === 0, `${policy} request ${req.id}: ${cached}`);
        const prefill = PREFILL_MS_PER_TOKEN * (req.input - cached);
        assert.ok(r.records.ttftMs[k] >= prefill - 1e-6, `${policy} request ${req.id}: TTFT below its prefill`);
      });
    }
  });

  test('round-robin deals the requests out in turn', () => {
    const r = runs['round-robin'];
    trace.forEach((req, k) => assert.equal(r.records.serverOf[k], k % SERVERS, `request ${req.id}`));
  });

  test('precise mode: with events applied at once, every route sees exactly what each cache holds', () => {
    let checked = 0;
    sim({
      policy: 'cache-aware precise',
      onRoute(decision, tokens, cacheOf) {
        for (const c of decision.candidates) {
          assert.equal(c.overlapBlocks, Math.floor(cacheOf(c.worker).matchPrefix(tokens) / PAGE_SIZE), `worker ${c.worker}`);
          if (c.overlapBlocks > 0) checked++;
        }
      },
    });
    assert.ok(checked > 100, `only ${checked} routes found a cached prefix`);
  });

  test('precise mode: the index ends equal to the caches, events on time or late', () => {
    const r = runs['cache-aware precise'];
    assert.ok(r.eventBatches > 0);
    assert.ok(r.end.cachedPages > 0);
    assert.equal(r.end.indexedBlocks, r.end.cachedPages);
    // Late events: still every event applied by the end.
    const late = sim({ policy: 'cache-aware precise', eventDelayMs: 1000 });
    assert.equal(late.end.indexedBlocks, late.end.cachedPages);
  });

  test('approximate mode: each worker keeps at most its capacity', () => {
    for (const policy of ['sglang', 'cache-aware approximate']) {
      const r = runs[policy];
      assert.ok(r.end.indexedBlocks > 0, policy);
      for (const blocks of r.end.workerBlocks) assert.ok(blocks <= PAGES, `${policy}: a worker holds ${blocks} blocks`);
    }
  });

  test('a cache-aware router finds more prefixes than round-robin', () => {
    const rr = runs['round-robin'].hitRate;
    for (const policy of ['cache-aware precise', 'cache-aware approximate']) {
      assert.ok(runs[policy].hitRate > rr, `${policy} ${runs[policy].hitRate} vs round-robin ${rr}`);
    }
  });

  test('deterministic: the same run gives the same placements, hits and TTFTs', () => {
    const again = sim({ policy: 'cache-aware precise' });
    const r = runs['cache-aware precise'];
    assert.deepEqual(again.records.serverOf, r.records.serverOf);
    assert.deepEqual(again.records.cachedTokens, r.records.cachedTokens);
    assert.deepEqual(again.records.ttftMs, r.records.ttftMs);
  });
});
