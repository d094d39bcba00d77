// SPDX-License-Identifier: MIT
// Serving simulator: a seeded, deterministic discrete-event simulation of one LLM engine behind
// AdmissionController -> Scheduler -> KVCache prefix reuse, driven through the public JS API.
//   node bench/serving-simulator.mjs [--quick]
//
// Workload. Multi-turn chat sessions (Poisson session arrivals). Every session starts from one
// of four shared system prompts; turn k's prompt is the system prompt plus the whole
// conversation so far plus a new user message, so consecutive turns share a growing prefix.
// Two request classes: interactive chat (75%: short answers, tight SLO) and document questions
// (25%: a long document in the first turn, longer answers, loose SLO). The SLO is a completion
// deadline: a fixed part plus a per-output-token allowance. The same sessions and tokens are
// used for every load and policy (only the session arrival times are scaled).
//
// Runtime around the engine (identical for every policy):
// - AdmissionController at `admitFactor` x capacity (requests and tokens; default 1.1) with
//   2 s of burst. (At 1.0 the gate, not the scheduler, decides who is served above 0.9 load,
//   and the three policies come within 1-4% of each other at every load.)
// - clients give up at their deadline: a request still queued then is cancelled
//   (Scheduler.cancel, driven by an IndexedHeap of deadlines);
// - a request taken from the Scheduler that cannot finish in time even at the fastest
//   plausible pace is shed (cancelled) instead of occupying the engine;
// - a request that started runs to completion and counts as missed if late.
//
// Engine. Iteration-level batching with `slots` sequence slots. Each iteration decodes one
// token for every running sequence and prefills the sequences that joined in it; it lasts
//   stepMs + perSeqMs * running + prefillMsPerToken * (new prompt tokens),
// where "new" excludes the prefix already in the KV cache (KVCache.matchPrefix). Requests
// join in groups taken from the Scheduler (maxBatchSize = joinGroup, maxBatchTokens =
// groupTokens) whenever joinGroup slots are free; a busy engine takes what is queued (force),
// an idle one waits for the Scheduler's release rule (a full group or maxWaitMs). With
// joinGroup = slots this is plain static micro-batching: a batch runs until its last sequence
// finishes. A finished sequence stays in the KVCache as a cached prefix (detached, evicted
// LRU under memory pressure) for the session's next turn.
//
// Policies. "default" = the Scheduler's own order (earliest deadline first; every request has
// an SLO here); "fcfs" and "shortest" = priorityFn (-arrivalMs, and -tokens where tokens is the
// estimated work: uncached prompt tokens + the request's max output tokens).
//
// Load. Capacity = the requests per second the engine completes when saturated (offered 3x
// more, FCFS, no admission control, no timeouts), measured over the steady-state window.
// Load x offers x * capacity requests per second. Metrics cover the requests that arrived in
// the steady-state window (after warm-up, until session arrivals stop); goodput = requests
// finished within their SLO per second of that window; SLO attainment = that count / offered
// (rejected, expired and shed requests count as missed).
import { llmds, rng, printTable, writeResults, isMain, quick } from './lib.mjs';

const { init, Scheduler, AdmissionController, KVCache, IndexedHeap } = llmds;

export const ENGINE = Object.freeze({
  name: 'continuous, 32 slots',
  slots: 32, // concurrent sequences
  joinGroup: 8, // Scheduler maxBatchSize: requests admitted into the running batch together
  groupTokens: 16384, // Scheduler maxBatchTokens
  maxWaitMs: 10,
  stepMs: 6,
  perSeqMs: 0.35,
  prefillMsPerToken: 0.08, // 12.5k prompt tokens/s
  pageSize: 16,
  maxPages: 24576, // 393k tokens of KV memory
});

/** The engines every run simulates: a server-class continuous batcher and a small static one. */
export const SCENARIOS = Object.freeze([ENGINE, Object.freeze({ ...ENGINE, name: 'static batches of 8', slots: 8, joinGroup: 8 })]);

const SYSTEM_PROMPT_LENGTHS = [400, 700, 1000, 1300];
export const CLASSES = {
  chat: { share: 0.75, turns: [1, 6], userTokens: [20, 200], docTokens: [0, 0], maxTokens: [64, 256], sloBaseMs: 1500, sloPerTokenMs: 30 },
  doc: { share: 0.25, turns: [1, 2], userTokens: [20, 80], docTokens: [1500, 3000], maxTokens: [128, 512], sloBaseMs: 8000, sloPerTokenMs: 60 },
};
const THINK_MS = { fixed: 3000, mean: 8000 }; // gap between a session's turns

const POLICIES = {
  default: undefined,
  fcfs: (req) => -req.arrivalMs,
  shortest: (req) => -req.tokens,
};

/** Integer in [lo, hi] from a uniform draw. */
const between = (next, [lo, hi]) => lo + Math.floor(next() * (hi - lo + 1));
const exponential = (next, mean) => -Math.log(1 - next()) * mean;
const randomTokens = (next, n) => {
  const t = new Int32Array(n);
  for (let i = 0; i < n; i++) t[i] = 1000 + Math.floor(next() * 49000);
  return t;
};
const concat = (...parts) => {
  const out = new Int32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
};

/**
 * The workload: sessions with pre-generated tokens, and their requests with arrival times for
 * session arrivals at rate 1/s (scaled to the load later; think times are not scaled).
 */
export function makeWorkload({ sessions, seed = 1 }) {
  const next = rng(seed);
  const systems = SYSTEM_PROMPT_LENGTHS.map((n) => randomTokens(next, n));
  const requests = [];
  let sessionStart = 0;
  for (let s = 0; s < sessions; s++) {
    sessionStart += exponential(next, 1000);
    const kind = next() < CLASSES.chat.share ? 'chat' : 'doc';
    const cls = CLASSES[kind];
    const system = systems[Math.floor(next() * systems.length)];
    const turns = between(next, cls.turns);
    let history = concat(system, randomTokens(next, between(next, cls.docTokens)));
    let offset = 0; // ms after the session start
    for (let k = 0; k < turns; k++) {
      const prompt = concat(history, randomTokens(next, between(next, cls.userTokens)));
      const maxTokens = between(next, cls.maxTokens);
      const output = randomTokens(next, Math.max(1, Math.round(maxTokens * (0.3 + 0.7 * next()))));
      requests.push({ session: s, kind, offsetMs: offset, sessionUnitStart: sessionStart, prompt, output, maxTokens, sloMs: cls.sloBaseMs + cls.sloPerTokenMs * maxTokens });
      history = concat(prompt, output);
      offset += THINK_MS.fixed + exponential(next, THINK_MS.mean);
    }
  }
  return requests;
}

/** Requests with absolute arrival times for a session arrival rate, sorted by arrival. */
function schedule(workload, sessionsPerSecond) {
  return workload
    .map((r) => ({ ...r, arrivalMs: r.sessionUnitStart / sessionsPerSecond + r.offsetMs }))
    .sort((a, b) => a.arrivalMs - b.arrivalMs);
}

const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);

/** One simulation run. Returns its metrics. */
export function simulate(arrivals, { policy = 'default', capacity, admission = true, admitFactor = 1.1, timeouts = true, shed = false, window, engine = ENGINE } = {}) {
  for (const r of arrivals) (r.ttftMs = r.doneMs = undefined), (r.met = false);
  const clock = { t: 0 };
  const now = () => clock.t;
  const sched = new Scheduler({
    maxBatchSize: engine.joinGroup,
    maxWaitMs: engine.maxWaitMs,
    maxBatchTokens: engine.groupTokens,
    priorityFn: POLICIES[policy],
    now,
  });
  const meanTokens = arrivals.reduce((s, r) => s + r.prompt.length + r.maxTokens, 0) / arrivals.length;
  // 2 s of burst: Poisson arrivals are bursty, and a tighter bucket would refuse them at low load.
  const gate = admission && capacity
    ? new AdmissionController({ qpsTarget: admitFactor * capacity, tokenRateLimit: admitFactor * capacity * meanTokens, requestBurst: Math.max(1, 2 * capacity), tokenBurst: 2 * capacity * meanTokens, now })
    : null;
  const kv = new KVCache({ pageSize: engine.pageSize, maxPages: engine.maxPages });
  const deadlines = new IndexedHeap(); // queued request id -> deadline, for client timeouts
  const live = new Map(); // request id -> request
  const running = [];
  const m = { offered: arrivals.length, rejected: 0, expired: 0, shed: 0, kvFull: 0, completed: 0, met: 0, promptTokens: 0, reusedTokens: 0, iterations: 0 };
  let next = 0;
  let busyUntil = null; // end of the iteration in progress
  try {
    const arrive = (r) => {
      const est = r.prompt.length - kv.matchPrefix(r.prompt) + r.maxTokens;
      if (gate && !gate.shouldAdmit(est)[0]) {
        m.rejected++;
        return;
      }
      const id = sched.submit(est, r.sloMs);
      r.deadlineMs = clock.t + r.sloMs;
      live.set(id, r);
      if (timeouts) deadlines.push(id, r.deadlineMs);
    };
    const startIteration = () => {
      let prefill = 0;
      if (engine.slots - running.length >= engine.joinGroup) {
        for (const id of sched.getBatch(running.length > 0)) {
          const r = live.get(id);
          deadlines.delete(id);
          const reused = kv.matchPrefix(r.prompt);
          if (shed) {
            // Shed a request that cannot finish in time even at the fastest plausible pace
            // (its prefill, then 30% of its max output at the current iteration time).
            const iterMs = engine.stepMs + engine.perSeqMs * (running.length + 1);
            const bestCase = (r.prompt.length - reused) * engine.prefillMsPerToken + 0.3 * r.maxTokens * iterMs;
            if (clock.t + bestCase > r.deadlineMs) {
              sched.cancel(id);
              live.delete(id);
              m.shed++;
              gate?.recordRequest(0);
              continue;
            }
          }
          try {
            kv.attach(id, r.prompt);
          } catch (e) {
            if (e.code !== 'capacity_exceeded') throw e;
            m.kvFull++;
            sched.cancel(id);
            live.delete(id);
            continue;
          }
          m.promptTokens += r.prompt.length;
          m.reusedTokens += reused;
          prefill += r.prompt.length - reused;
          running.push({ id, r, left: r.output.length, first: true });
        }
      }
      if (running.length === 0) return;
      m.iterations++;
      busyUntil = clock.t + engine.stepMs + engine.perSeqMs * running.length + engine.prefillMsPerToken * prefill;
    };
    const finishIteration = () => {
      busyUntil = null;
      for (let i = running.length - 1; i >= 0; i--) {
        const s = running[i];
        if (s.first) (s.r.ttftMs = clock.t - s.r.arrivalMs), (s.first = false);
        if (--s.left > 0) continue;
        running.splice(i, 1);
        sched.completeBatch([s.id]);
        m.completed++;
        s.r.doneMs = clock.t;
        if (clock.t <= s.r.deadlineMs) (m.met++, (s.r.met = true));
        try {
          kv.append(s.id, s.r.output);
        } catch (e) {
          if (e.code !== 'capacity_exceeded') throw e; // the prompt stays cached; only the answer is lost
        }
        kv.detach(s.id); // pages stay findable as a cached prefix for the next turn
        live.delete(s.id);
        gate?.recordRequest(s.r.prompt.length + s.r.output.length);
      }
    };

    for (;;) {
      let t = Infinity;
      if (next < arrivals.length) t = arrivals[next].arrivalMs;
      if (busyUntil !== null) t = Math.min(t, busyUntil);
      else {
        const ready = sched.readyAt();
        if (ready !== null) t = Math.min(t, Math.max(ready, clock.t));
      }
      const timeout = deadlines.peek();
      if (timeout) t = Math.min(t, timeout[0]);
      if (t === Infinity) break;
      clock.t = Math.max(clock.t, t);
      if (busyUntil !== null && busyUntil <= clock.t) finishIteration();
      while (next < arrivals.length && arrivals[next].arrivalMs <= clock.t) arrive(arrivals[next++]);
      for (let top = deadlines.peek(); top && top[0] <= clock.t; top = deadlines.peek()) {
        deadlines.pop();
        sched.cancel(top[1]);
        live.delete(top[1]);
        m.expired++;
        gate?.recordRequest(0); // the estimate it reserved was never used
      }
      if (busyUntil === null) startIteration();
    }
    const st = sched.stats();
    if (st.sloMet !== m.met) throw new Error(`scheduler counted ${st.sloMet} SLOs met, the simulator ${m.met}`);
    // Steady-state metrics over the requests that arrived inside the measurement window.
    const [from, to] = window ?? [0, arrivals[arrivals.length - 1].arrivalMs];
    const inside = arrivals.filter((r) => r.arrivalMs >= from && r.arrivalMs < to);
    const seconds = (to - from) / 1000;
    const met = inside.filter((r) => r.met).length;
    const ttft = inside.filter((r) => r.ttftMs !== undefined).map((r) => r.ttftMs).sort((a, b) => a - b);
    const done = arrivals.filter((r) => r.doneMs !== undefined && r.doneMs >= from && r.doneMs < to).length;
    return {
      policy,
      offered: inside.length,
      offeredPerS: inside.length / seconds,
      goodputPerS: met / seconds,
      throughputPerS: done / seconds,
      sloAttainment: met / inside.length,
      ttftP50Ms: percentile(ttft, 50),
      ttftP95Ms: percentile(ttft, 95),
      reusedPrefixTokens: m.reusedTokens,
      reusedShare: m.reusedTokens / Math.max(1, m.promptTokens),
      meanNewPromptTokens: (m.promptTokens - m.reusedTokens) / Math.max(1, m.completed + m.kvFull),
      rejected: m.rejected,
      expired: m.expired,
      shed: m.shed,
      kvFull: m.kvFull,
      completed: m.completed,
      avgJoinGroup: st.avgBatchSize,
      kvEvictions: kv.stats().evictions,
    };
  } finally {
    sched.dispose();
    gate?.dispose();
    kv.dispose();
    deadlines.dispose();
  }
}

/** The measurement window: after one session lifetime of warm-up, until session arrivals stop. */
function windowOf(arrivals, sessionsPerSecond, sessions) {
  const end = sessions / sessionsPerSecond * 1000;
  return [Math.min(0.25 * end, 60000), end];
}

/**
 * Requests per second the engine completes when saturated: offered 3x more than it can take,
 * FCFS, no admission control and no client timeouts (with timeouts, expired turns would force
 * later turns to prefill their whole history, and the measure would depend on the policy),
 * throughput over the backlogged window.
 */
function measureCapacity(workload, sessions, engine) {
  const meanOut = workload.reduce((s, r) => s + r.output.length, 0) / workload.length;
  const meanPrompt = workload.reduce((s, r) => s + r.prompt.length, 0) / workload.length;
  const roughPerS = 1000 / (0.3 * meanPrompt * engine.prefillMsPerToken + meanOut * (engine.stepMs / engine.slots + engine.perSeqMs));
  const sessionsPerSecond = (3 * roughPerS) / (workload.length / sessions);
  const arrivals = schedule(workload, sessionsPerSecond);
  const r = simulate(arrivals, { policy: 'fcfs', admission: false, timeouts: false, window: windowOf(arrivals, sessionsPerSecond, sessions), engine });
  return r.throughputPerS;
}

export async function runServingSimulator({
  sessions = quick ? 800 : 3000,
  loads = quick ? [0.5, 0.9, 1.2] : [0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2],
  seed = 1,
  engines = SCENARIOS,
  shed = true,
  admitFactor = 1.1,
} = {}) {
  await init();
  const workload = makeWorkload({ sessions, seed });
  const requestsPerSession = workload.length / sessions;
  const scenarios = [];
  for (const engine of engines) {
    const capacity = measureCapacity(workload, sessions, engine);
    const rows = [];
    for (const load of loads) {
      const sessionsPerSecond = (load * capacity) / requestsPerSession;
      const arrivals = schedule(workload, sessionsPerSecond);
      const window = windowOf(arrivals, sessionsPerSecond, sessions);
      for (const policy of Object.keys(POLICIES)) rows.push({ load, ...simulate(arrivals, { policy, capacity, window, engine, shed, admitFactor }) });
    }
    const ratios = loads.map((load) => {
      const of = (p) => rows.find((r) => r.load === load && r.policy === p).goodputPerS;
      return { load, defaultVsFcfs: of('default') / of('fcfs'), defaultVsShortest: of('default') / of('shortest') };
    });
    scenarios.push({ engine, capacityPerS: capacity, rows, ratios });
  }
  return { sessions, requests: workload.length, seed, shed, admitFactor, scenarios };
}

if (isMain(import.meta)) {
  const t0 = performance.now();
  const r = await runServingSimulator();
  for (const sc of r.scenarios) {
    printTable(
      `Serving simulator, ${sc.engine.name}: ${r.requests} requests in ${r.sessions} sessions, capacity ${sc.capacityPerS.toFixed(2)} req/s (seed ${r.seed})`,
      sc.rows.map((x) => ({
        load: x.load,
        policy: x.policy,
        'offered/s': x.offeredPerS,
        'goodput/s': x.goodputPerS,
        'SLO attained': x.sloAttainment,
        'TTFT p50 ms': Math.round(x.ttftP50Ms),
        'TTFT p95 ms': Math.round(x.ttftP95Ms),
        'reused prefix tokens': x.reusedPrefixTokens,
        'reused %': Math.round(x.reusedShare * 1000) / 10,
        rejected: x.rejected,
        expired: x.expired,
        shed: x.shed,
      })),
    );
    printTable(`Goodput of the default policy relative to the others (${sc.engine.name})`, sc.ratios);
    const at09 = sc.ratios.find((x) => x.load === 0.9);
    if (at09) console.log(`default / FCFS goodput at 0.9 load (${sc.engine.name}): ${at09.defaultVsFcfs.toFixed(2)}x (target >= 1.3x)`);
  }
  const file = await writeResults('serving-simulator', r);
  console.log(`\nwrote ${file.pathname} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
