// SPDX-License-Identifier: MIT
// KVRouter on the Mooncake trace (issue 14): the trace's 3,993 requests routed over fleets of
// 4, 8 and 16 simulated servers, each an llmds KVCache with a page budget and a prefill/decode
// time model, under six placement policies; then the cost of one route() through the JS API.
//   node bench/router-sim.mjs [--quick]
//
// Blocks. Router block size = server page size = 512 tokens, the trace's own block size: its
// prompts are 512-token blocks (block id h expands to the tokens h·512 + i, requestTokens in
// kv-trace.mjs), so 16-token pages would find exactly the same reuse (kv-trace.mjs: token-granular
// reuse adds 0.00 %) while hashing, indexing, walking and eventing 32× more blocks. Precise mode
// needs the two equal (the events' pages are the router's blocks).
//
// Server. A KVCache of PAGES_PER_SERVER pages (1,000 × 512 = 512 k tokens of KV, about what an
// 80 GB GPU keeps for an 8B-class fp16 model). The fleet's total (4,000 / 8,000 / 16,000 pages)
// is below the trace's working set (43,924 distinct blocks; a single cache of 16,000 pages
// already loses reuse), so where a prefix is sent decides whether it is found again. Time model:
// - a server runs at most SLOTS (16) requests at once; arrivals wait in its FIFO queue;
// - prefill is compute-bound: one prefill at a time per server, taking PREFILL_MS_PER_TOKEN ×
//   (prompt tokens − cachedTokens), where cachedTokens is what KVCache.attach reports when the
//   request leaves the queue (its pages are attached then, so a request also waits, FIFO, until
//   its pages fit beside the running requests' pages: KVCache's capacity_exceeded);
// - the first token comes out when the prefill ends: TTFT = that time − arrival (queueing
//   included; routing itself takes microseconds and is not added);
// - decode is memory-bound and batched: DECODE_MS_PER_TOKEN × output tokens after the prefill,
//   whatever else runs (the slots bound it); then the request detaches (its full pages stay
//   cached, LRU) and leaves the router's load (finished()).
// The constants are kv-trace.mjs's (0.15 ms per prefilled token, 20 ms per output token).
//
// Load. The trace's arrival times at 8 servers; scaled by 8 / servers (×2 at 4 servers, ×0.5 at
// 16) so every fleet gets the same offered load per server: prefill with no reuse would need
// 1.12× the fleet's prefill capacity (61.2 M prompt tokens × 0.15 ms over 8 servers × 1,022 s),
// so a fleet keeps up only by finding prefixes in its caches. Decode alone keeps 1.5 of the 16
// slots per server busy on average.
//
// Policies (all through one KVRouter; load = the router's: started() at dispatch, finished() at
// completion, i.e. the prompt blocks of every request queued or running on the worker):
// - round-robin, least-loaded: no index (route() records nothing);
// - sglang: approximate mode (the router records what it routed, LRU per worker up to the
//   server's page budget), the router's default sglang thresholds;
// - cache-aware approximate: the same index, Dynamo's cost (blocks to prefill + load);
// - cache-aware precise: the index mirrors each server's KVCache events (events: true), drained
//   after every attach and detach and applied at once (eventDelayMs = 0: the router never
//   lags; simulateFleet's eventDelayMs delivers them late instead);
// - oracle: one global KVCache of the fleet's total pages that every server attaches into
//   (the hit rate of a single cache that size), requests placed least-loaded on the same
//   servers (same compute, same time model). A reference, not a bound: a global LRU is not an
//   optimal cache (a partitioned fleet can keep a prefix that a global LRU evicts).
//
// Metrics: hit rate = cached prompt tokens / prompt tokens; TTFT p50 / p99; goodput = requests
// with TTFT ≤ TTFT_SLO_MS (2 s) per second of the (scaled) arrival span, and the fraction of
// requests meeting it; route cost = p50 / p99 µs of route() in the simulation (token ids in,
// hashing included; recording included in approximate mode).
//
// Then benchmarkRouteCost: route() for 12,000-token prompts (token ids, hashing included) with
// 8 workers at 16-token blocks (vLLM's and the native bench's block size), the index filled from
// the trace; and bytes per indexed block from stats().
import { buildRoutingWorkload } from './router/workload.mjs';
import { llmds, MinHeap, printTable, writeResults, isMain, quick, summarize } from './lib.mjs';
import { loadTrace, requestTokens, PAGE_SIZE, PREFILL_MS_PER_TOKEN, DECODE_MS_PER_TOKEN } from './kv-trace.mjs';

const { init, KVCache, KVRouter } = llmds;

export const PAGES_PER_SERVER = 1000;
export const SLOTS = 16;
export const TTFT_SLO_MS = 2000;
export const FLEETS = [4, 8, 16];
export const REFERENCE_FLEET = 8; // the fleet that gets the trace's own arrival times

/** Each policy: the router's policy and mode, and whether route() records (approximate index). */
export const POLICIES = {
  'round-robin': { policy: 'round-robin', mode: 'approximate', record: false },
  'least-loaded': { policy: 'least-loaded', mode: 'approximate', record: false },
  sglang: { policy: 'sglang', mode: 'approximate', record: true },
  'cache-aware approximate': { policy: 'cache-aware', mode: 'approximate', record: true },
  'cache-aware precise': { policy: 'cache-aware', mode: 'precise', record: false },
  oracle: { policy: 'least-loaded', mode: 'approximate', record: false, globalCache: true },
};

/** Events [time, kind, seq, request, server], earliest first; kind orders equal times, then seq. */
const eventFirst = (a, b) => a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] < b[2])));
// At one instant: completions free their slots and pages first, then prefills end, then arrivals.
const DONE = 0;
const PREFILLED = 1;
const ARRIVAL = 2;

/**
 * One fleet, one policy (a POLICIES key), the whole of `trace` (kv-trace.mjs's requests, in
 * arrival order; a slice works). Options: `servers`, `pagesPerServer`, `slots`, `timeScale`
 * (arrival times × this; default REFERENCE_FLEET / servers), `eventDelayMs` (precise mode:
 * events reach the router this late), `routerOptions` (added to the KVRouter's), `tokensOf(req)`,
 * `onRoute(decision, tokens, cacheOf(worker))` (for checks). Returns the metrics, per-request
 * `records` (by position in `trace`) and the `end` state (router index, caches, queues).
 */
export function simulateFleet(trace, { servers: n, policy, pagesPerServer = PAGES_PER_SERVER, slots = SLOTS, timeScale = REFERENCE_FLEET / n, eventDelayMs = 0, tokensOf = requestTokens, routerOptions = {}, onRoute } = {}) {
  const spec = POLICIES[policy];
  if (!spec) throw new Error(`unknown policy ${policy}`);
  const precise = spec.mode === 'precise';
  const router = new KVRouter({ blockSize: PAGE_SIZE, policy: spec.policy, mode: spec.mode, capacityBlocks: pagesPerServer, ...routerOptions });
  const caches = [];
  const cacheOf = () => {
    const c = new KVCache({ pageSize: PAGE_SIZE, maxPages: spec.globalCache ? n * pagesPerServer : pagesPerServer, events: precise });
    caches.push(c);
    return c;
  };
  try {
    const global = spec.globalCache ? cacheOf() : null;
    const fleet = [];
    for (let i = 0; i < n; i++) {
      const id = `s${String(i).padStart(2, '0')}`; // sorted ids = index order (round-robin's turn)
      router.addWorker(id);
      fleet.push({ id, index: i, cache: global ?? cacheOf(), queue: [], head: 0, running: 0, prefilling: false, prefillMs: 0 });
    }
    const byId = new Map(fleet.map((s) => [s.id, s]));
    const count = trace.length;
    const ttftMs = new Float64Array(count).fill(NaN);
    const cachedTokens = new Int32Array(count).fill(-1);
    const predictedTokens = new Int32Array(count); // the router's overlap for the chosen worker
    const serverOf = new Int16Array(count).fill(-1);
    const served = new Uint8Array(count);
    const routeMs = [];
    const t0 = trace[0].arrivalMs;
    const slot = new Map(trace.map((req, k) => [req, k])); // records are by position (a slice keeps the trace's ids)
    const arrivalOf = (req) => (req.arrivalMs - t0) * timeScale;
    let rejected = 0;
    let applyMs = 0;
    let eventBatches = 0;
    const lateEvents = []; // [deliverAt, worker, events], FIFO (one constant delay)
    let lateHead = 0;
    const deliver = (server, now) => {
      if (!precise) return;
      const events = server.cache.drainEvents();
      if (events.length === 0) return;
      if (eventDelayMs > 0) {
        lateEvents.push([now + eventDelayMs, server.id, events]);
        return;
      }
      const a = performance.now();
      router.applyEvents(server.id, events);
      applyMs += performance.now() - a;
      eventBatches++;
    };
    const deliverLate = (now) => {
      while (lateHead < lateEvents.length && lateEvents[lateHead][0] <= now) {
        const [, worker, events] = lateEvents[lateHead++];
        const a = performance.now();
        router.applyEvents(worker, events);
        applyMs += performance.now() - a;
        eventBatches++;
      }
    };
    const running = () => fleet.reduce((s, x) => s + x.running, 0);
    const events = new MinHeap(eventFirst);
    let seq = 0;
    const tryStart = (server, now) => {
      while (!server.prefilling && server.running < slots && server.head < server.queue.length) {
        const req = server.queue[server.head];
        let plan;
        try {
          plan = server.cache.attach(req.id, tokensOf(req));
        } catch (e) {
          if (e.code !== 'capacity_exceeded') throw e;
          // Pages free up when a running request completes; with nothing running they never will.
          if ((global ? running() : server.running) > 0) break;
          server.head++;
          rejected++;
          router.finished(String(req.id));
          continue;
        }
        server.head++;
        deliver(server, now);
        server.running++;
        server.prefilling = true;
        const k = slot.get(req);
        cachedTokens[k] = plan.cachedTokens;
        const prefill = PREFILL_MS_PER_TOKEN * (req.input - plan.cachedTokens);
        server.prefillMs += prefill;
        ttftMs[k] = now + prefill - arrivalOf(req);
        events.push([now + prefill, PREFILLED, seq++, req, server]);
      }
    };
    for (const req of trace) events.push([arrivalOf(req), ARRIVAL, seq++, req, null]);
    while (events.size > 0) {
      const [now, kind, , req, server] = events.pop();
      if (kind === ARRIVAL) {
        deliverLate(now);
        const rid = String(req.id);
        const tokens = tokensOf(req);
        const a = performance.now();
        const d = router.route(tokens, spec.record ? { requestId: rid } : undefined);
        routeMs.push(performance.now() - a);
        onRoute?.(d, tokens, (worker) => byId.get(worker).cache); // checks: the decision and the caches it saw
        router.started(d.worker, rid, req.input);
        const target = byId.get(d.worker);
        serverOf[slot.get(req)] = target.index;
        predictedTokens[slot.get(req)] = d.overlapTokens;
        target.queue.push(req);
        tryStart(target, now);
      } else if (kind === PREFILLED) {
        server.prefilling = false;
        events.push([now + DECODE_MS_PER_TOKEN * req.output, DONE, seq++, req, server]);
        tryStart(server, now);
      } else {
        server.cache.detach(req.id);
        deliver(server, now);
        server.running--;
        served[slot.get(req)]++;
        router.finished(String(req.id));
        if (global) for (const s of fleet) tryStart(s, now);
        else tryStart(server, now);
      }
    }
    deliverLate(Infinity);

    let inputTokens = 0;
    let hitTokens = 0;
    let predicted = 0;
    let good = 0;
    const ttfts = [];
    for (const [req, k] of slot) {
      if (served[k] !== 1) continue;
      inputTokens += req.input;
      hitTokens += cachedTokens[k];
      predicted += predictedTokens[k];
      ttfts.push(ttftMs[k]);
      if (ttftMs[k] <= TTFT_SLO_MS) good++;
    }
    const spanS = (arrivalOf(trace[trace.length - 1]) || 1) / 1000;
    const ttft = summarize('ttft', ttfts);
    const route = summarize('route', routeMs);
    const prefill = fleet.map((s) => s.prefillMs);
    const rs = router.stats();
    return {
      servers: n,
      policy,
      requests: count,
      served: ttfts.length,
      rejected,
      hitRate: hitTokens / inputTokens,
      routerOverlapRate: predicted / inputTokens, // what the router expected to be cached
      ttftP50Ms: ttft.ttftP50Ms,
      ttftP99Ms: ttft.ttftP99Ms,
      ttftMeanMs: ttft.ttftMeanMs,
      goodputPerS: good / spanS,
      sloAttainment: good / count,
      routeP50Us: route.routeP50Ms * 1000,
      routeP99Us: route.routeP99Ms * 1000,
      applyEventsMs: applyMs,
      eventBatches,
      prefillImbalance: Math.max(...prefill) / (prefill.reduce((s, x) => s + x, 0) / n), // busiest server / mean
      familySpread: familySpread(trace, serverOf),
      indexedBlocks: rs.indexedBlocks,
      // Per-request records, for checks (not written to JSON).
      records: { ttftMs, cachedTokens, predictedTokens, serverOf, served },
      // End state, for checks: the router's index size and what the caches hold.
      end: {
        indexedBlocks: rs.indexedBlocks,
        cachedPages: caches.reduce((s, c) => s + c.stats().cachedPages, 0),
        usedPages: caches.reduce((s, c) => s + c.stats().usedPages, 0),
        workerBlocks: fleet.map((s) => router.workerBlocks(s.id)),
        queued: fleet.reduce((s, x) => s + x.queue.length - x.head, 0),
        running: running(),
      },
    };
  } finally {
    router.dispose();
    for (const c of caches) c.dispose();
  }
}

/**
 * The investigation runs, at REFERENCE_FLEET servers unless they say (what moves the targets):
 * events delivered late, the cache-aware overlap weight, SGLang's balance threshold, and half the
 * offered load. Each is one simulateFleet option set on top of a policy; the main table keeps
 * every default.
 */
export const VARIANTS = [
  { label: 'cache-aware precise, events 1 s late', policy: 'cache-aware precise', eventDelayMs: 1000 },
  ...[2, 4, 10].flatMap((w) => [
    { label: `cache-aware precise, overlapWeight ${w}`, policy: 'cache-aware precise', routerOptions: { overlapWeight: w } },
    { label: `cache-aware approximate, overlapWeight ${w}`, policy: 'cache-aware approximate', routerOptions: { overlapWeight: w } },
  ]),
  // SGLang's router counts load in requests (balance_abs_threshold 64); llmds counts blocks
  // (default 256, i.e. 4,096 tokens at 16-token blocks). 64 requests of this trace are 1,920
  // blocks of 512 (30 blocks per request on average).
  { label: 'sglang, sglangBalanceAbs 1920', policy: 'sglang', routerOptions: { sglangBalanceAbs: 1920 } },
  // The weight at the other fleet sizes.
  ...[4, 16].map((servers) => ({ label: `${servers} servers: cache-aware precise, overlapWeight 4`, servers, policy: 'cache-aware precise', routerOptions: { overlapWeight: 4 } })),
  ...['round-robin', 'cache-aware approximate', 'cache-aware precise', 'oracle'].map((policy) => ({ label: `${policy}, half load`, policy, timeScale: 2 })),
];

/**
 * How far placement scatters prefix families: over the first blocks that start more than one
 * request, the mean number of distinct servers their requests went to.
 */
function familySpread(trace, serverOf) {
  const families = new Map();
  trace.forEach((req, k) => {
    const first = req.hashIds[0];
    if (!families.has(first)) families.set(first, { requests: 0, servers: new Set() });
    const f = families.get(first);
    f.requests++;
    f.servers.add(serverOf[k]);
  });
  let recurring = 0;
  let servers = 0;
  for (const f of families.values()) {
    if (f.requests < 2) continue;
    recurring++;
    servers += f.servers.size;
  }
  return { recurring, meanServers: servers / recurring };
}

/** Hit rate, TTFT and goodput for every fleet size and policy, then VARIANTS and route cost. */
export async function benchmarkRouterSim({ limit = quick ? 1000 : Infinity, fleets = FLEETS, policies = Object.keys(POLICIES), variants = VARIANTS, routeCost: withRouteCost = true, trace: given } = {}) {
  await init();
  const trace = (given ?? loadTrace()).slice(0, limit);
  const tokens = new Map(trace.map((req) => [req.id, requestTokens(req)])); // once: every run routes and attaches the same arrays
  const tokensOf = (req) => tokens.get(req.id);
  const run = (options) => {
    const { records, end, ...row } = simulateFleet(trace, { ...options, tokensOf });
    return row;
  };
  const rows = [];
  for (const servers of fleets) for (const policy of policies) rows.push(run({ servers, policy }));
  const variantRows = variants.map(({ label, ...options }) => ({ ...run({ servers: REFERENCE_FLEET, ...options }), policy: label }));
  const routeCost = withRouteCost ? benchmarkRouteCost({ trace, tokensOf }) : [];
  return {
    requests: trace.length,
    pageSize: PAGE_SIZE,
    pagesPerServer: PAGES_PER_SERVER,
    slots: SLOTS,
    prefillMsPerToken: PREFILL_MS_PER_TOKEN,
    decodeMsPerToken: DECODE_MS_PER_TOKEN,
    ttftSloMs: TTFT_SLO_MS,
    timeScale: Object.fromEntries(fleets.map((n) => [n, REFERENCE_FLEET / n])),
    rows,
    variants: variantRows,
    targets: targetsAt(rows, REFERENCE_FLEET),
    routeCost,
  };
}

/** Issue 14's targets at `servers` servers. */
export function targetsAt(rows, servers) {
  const at = (policy) => rows.find((r) => r.servers === servers && r.policy === policy);
  const rr = at('round-robin');
  const approx = at('cache-aware approximate');
  const precise = at('cache-aware precise');
  const oracle = at('oracle');
  if (!rr || !approx || !precise || !oracle) return null;
  return {
    servers,
    preciseVsOracleHit: precise.hitRate / oracle.hitRate, // ≥ 0.9
    preciseVsRoundRobinHit: precise.hitRate / rr.hitRate, // ≥ 2
    approximateVsPreciseHit: approx.hitRate / precise.hitRate, // within 10 %: ≥ 0.9
    preciseVsRoundRobinTtftP50: precise.ttftP50Ms / rr.ttftP50Ms, // ≤ 0.5
    approximateVsRoundRobinTtftP50: approx.ttftP50Ms / rr.ttftP50Ms, // ≤ 0.5
  };
}

/**
 * route() of 12,000-token prompts as token ids (hashing included) with `workers` workers at
 * 16-token blocks. Two indexes:
 * - "trace": the trace's requests routed in order (cache-aware, approximate, recorded), each
 *   worker keeping the blocks of its server in the simulation (1,000 pages × 512 tokens =
 *   32,000 blocks of 16), at most `window` requests in flight (started/finished) so the load
 *   term spreads them; queries are the first 12,000 tokens of the trace's requests of at least
 *   12,000 tokens (prefixes the fleet has seen, as in serving);
 * - "fresh": the native bench's worst case for memory (no block shared): each worker holds
 *   100,000 blocks of fresh 12,000-token prompts; queries share their first half with one worker.
 */
export function benchmarkRouteCost({ trace, tokensOf = requestTokens, workers = 8, blockSize = 16, samples = quick ? 1000 : 5000, window = 16 }) {
  const rows = [];
  const measure = (name, router, queries) => {
    // The walk goes one block past the longest overlap of any worker: that is what it costs.
    const longest = (q) => Math.max(...router.route(q).candidates.map((c) => c.overlapBlocks));
    const meanOverlap = queries.reduce((s, q) => s + longest(q), 0) / queries.length;
    for (const q of queries) router.route(q); // warm-up
    const us = [];
    for (let i = 0; i < samples; i++) {
      const q = queries[i % queries.length];
      const a = performance.now();
      router.route(q);
      us.push((performance.now() - a) * 1000);
    }
    const hashes = queries.map((q) => ({ blockHashes: KVCache.blockHashes(q, blockSize) }));
    const hashedUs = [];
    for (let i = 0; i < samples; i++) {
      const q = hashes[i % hashes.length];
      const a = performance.now();
      router.route(q);
      hashedUs.push((performance.now() - a) * 1000);
    }
    const s = router.stats();
    // Storage keeps its high-water mark; a snapshot round trip shows the compact size.
    const copy = KVRouter.deserialize(router.serialize());
    const compactBytes = copy.stats().bytes;
    copy.dispose();
    const p = summarize('us', us);
    const h = summarize('us', hashedUs);
    rows.push({
      index: name,
      workers,
      blockSize,
      indexedBlocks: s.indexedBlocks,
      uniqueBlocks: s.uniqueBlocks,
      bytesPerIndexedBlock: s.bytes / s.indexedBlocks,
      compactBytesPerIndexedBlock: compactBytes / s.indexedBlocks,
      queries: queries.length,
      meanOverlapBlocks: meanOverlap, // longest overlap over the workers, per query
      routeP50Us: p.usP50Ms,
      routeP99Us: p.usP99Ms,
      hashedRouteP50Us: h.usP50Ms,
      hashedRouteP99Us: h.usP99Ms,
    });
  };

  // The trace's contents.
  const capacityBlocks = (PAGES_PER_SERVER * PAGE_SIZE) / blockSize;
  const router = new KVRouter({ blockSize, policy: 'cache-aware', mode: 'approximate', capacityBlocks });
  try {
    for (let w = 0; w < workers; w++) router.addWorker(`s${String(w).padStart(2, '0')}`);
    const inFlight = [];
    for (const req of trace) {
      const rid = String(req.id);
      const d = router.route(tokensOf(req), { requestId: rid });
      router.started(d.worker, rid, req.input);
      inFlight.push(rid);
      if (inFlight.length > window) router.finished(inFlight.shift());
    }
    const queries = trace.filter((r) => r.input >= 12000).map((r) => tokensOf(r).subarray(0, 12000));
    measure('trace (Mooncake prefixes)', router, queries);
  } finally {
    router.dispose();
  }

  // Fresh prompts, no block shared (the most bytes per pair): bench/router/cost.mjs's workload.
  const fresh = buildRoutingWorkload(llmds, { workers, blockSize, blocksPerWorker: 100000, queries: 64 });
  try {
    measure('fresh prompts (no sharing)', fresh.router, fresh.queries);
  } finally {
    fresh.router.dispose();
  }
  return rows;
}

const pct = (x) => `${(x * 100).toFixed(1)} %`;
const sec = (ms) => `${(ms / 1000).toFixed(2)} s`;
const simRow = (x) => ({
  policy: x.policy,
  'hit rate': pct(x.hitRate),
  'router expected': pct(x.routerOverlapRate),
  'TTFT p50': sec(x.ttftP50Ms),
  'TTFT p99': sec(x.ttftP99Ms),
  'goodput req/s': x.goodputPerS.toFixed(2),
  'SLO met': pct(x.sloAttainment),
  'busiest/mean prefill': x.prefillImbalance.toFixed(2),
  'servers per prefix family': x.familySpread.meanServers.toFixed(2),
  'route p50 µs': x.routeP50Us.toFixed(1),
  'route p99 µs': x.routeP99Us.toFixed(1),
  rejected: x.rejected,
});

export async function runRouterSimBench() {
  const r = await benchmarkRouterSim();
  for (const servers of FLEETS) {
    printTable(
      `KVRouter on the Mooncake trace: ${servers} servers × ${r.pagesPerServer} pages of ${r.pageSize} (${r.requests} requests, arrivals ×${r.timeScale[servers]}, TTFT SLO ${r.ttftSloMs / 1000} s)`,
      r.rows.filter((x) => x.servers === servers).map(simRow),
    );
  }
  printTable(`Investigation at ${REFERENCE_FLEET} servers unless stated (one change each from the run above)`, r.variants.map(simRow));
  const t = r.targets;
  if (t) {
    printTable(`Issue 14 targets at ${t.servers} servers`, [
      { target: 'precise hit ≥ 0.9 × oracle', value: t.preciseVsOracleHit.toFixed(3), met: t.preciseVsOracleHit >= 0.9 },
      { target: 'precise hit ≥ 2 × round-robin', value: t.preciseVsRoundRobinHit.toFixed(3), met: t.preciseVsRoundRobinHit >= 2 },
      { target: 'approximate hit within 10 % of precise', value: t.approximateVsPreciseHit.toFixed(3), met: Math.abs(1 - t.approximateVsPreciseHit) <= 0.1 },
      { target: 'precise TTFT p50 ≤ 0.5 × round-robin', value: t.preciseVsRoundRobinTtftP50.toFixed(3), met: t.preciseVsRoundRobinTtftP50 <= 0.5 },
      { target: 'approximate TTFT p50 ≤ 0.5 × round-robin', value: t.approximateVsRoundRobinTtftP50.toFixed(3), met: t.approximateVsRoundRobinTtftP50 <= 0.5 },
    ]);
  }
  printTable('route() through the JS API, 12,000-token prompts as token ids (hashing included), cache-aware', r.routeCost.map((x) => ({
    index: x.index,
    workers: x.workers,
    'block size': x.blockSize,
    'indexed blocks': x.indexedBlocks,
    'unique blocks': x.uniqueBlocks,
    'mean longest overlap (blocks)': x.meanOverlapBlocks.toFixed(0),
    'p50 µs': x.routeP50Us.toFixed(1),
    'p99 µs': x.routeP99Us.toFixed(1),
    'p50 µs, hashes given': x.hashedRouteP50Us.toFixed(1),
    'bytes / indexed block': x.bytesPerIndexedBlock.toFixed(1),
    'after deserialize': x.compactBytesPerIndexedBlock.toFixed(1),
  })));
  await writeResults('router-sim', r);
  return r;
}

if (isMain(import.meta)) await runRouterSimBench();
