// SPDX-License-Identifier: MIT
// Serving simulator: a seeded, deterministic discrete-event simulation of one LLM engine behind
// AdmissionController -> Scheduler -> KVCache prefix reuse, driven through the public JS API.
//   node bench/serving-simulator.mjs [--quick] [--seeds 1,2,3] [--engines server,server-static,edge] [--candidates]
//   node bench/serving-simulator-tables.mjs   (markdown tables for bench/README.md from the results)
//
// Workload. Multi-turn chat sessions (Poisson session arrivals). Every session starts from one
// of four shared system prompts; turn k's prompt is the system prompt plus the whole
// conversation so far plus a new user message, so consecutive turns share a growing prefix.
// Three request classes with per-request SLOs (CLASSES below, each value justified there):
// interactive chat turns, document questions (a long document in the first turn), and one
// background request per session (a summary of the finished conversation, as chat products
// make for titles, memory and search) whose SLO is loose. The same sessions and tokens are
// used for every load and policy (only the session arrival times are scaled).
//
// SLOs. Per request, a time-to-first-token (TTFT) bound and a time-per-output-token (TPOT)
// bound, the pair that published serving setups use (DistServe, OSDI'24: goodput = requests
// meeting both; the MLPerf Inference LLM server scenarios; vLLM's benchmark --goodput). A
// request counts as good when both hold. The Scheduler gets sloMs = the TTFT bound: its deadline
// is the time by which the request must have started (been prefilled), which is what queue
// order controls; once its first token is out the request leaves the Scheduler (completeBatch),
// so the Scheduler's own sloMet counts TTFTs met, and decoding pace is the engine's business.
// (An earlier version used one completion deadline, TTFT allowance + per-token allowance x the
// request's max output tokens. That hides queueing delay: the allowance for the tokens a
// request never generates (35% of its max on average) plus the margin between the allowance
// and the engine's real pace added ~3 s of slack to a typical chat turn.)
//
// Runtime around the engine (identical for every policy):
// - AdmissionController at `admitFactor` x capacity (requests and tokens; default 1.1), with a
//   burst of 2 s of capacity but at least 16 requests. It rejects 0.2-1.5% of requests at 0.9
//   load and is what bounds the queue above 1.1 load.
// - `expiry` (default 'none'): every admitted request is served, however late, and counts as
//   good only if it met its SLO: the published goodput methodology (DistServe, vLLM, MLPerf
//   serve every request). 'drop' is the earlier version's assumption: every client gives up at
//   its deadline, so a request still queued then is cancelled (Scheduler.cancel, driven by an
//   IndexedHeap of deadlines). That is a deadline-aware server for every policy: it turns FCFS
//   into "oldest request that can still make it" and keeps the queue from ever building, which
//   is why every order came within 2-4% of the others at 0.9 load there.
// - with `shed` (default off; the earlier version had it on), a request taken from the
//   Scheduler whose first token cannot come out before its deadline even if it were prefilled
//   alone in the next iteration is dropped instead of occupying the engine;
// - a request that started runs to completion.
//
// Engine. Iteration-level batching with `slots` sequence slots. Each iteration decodes one
// token for every running sequence and prefills the sequences that joined in it; it lasts
//   stepMs + perSeqMs * running + prefillMsPerToken * (new prompt tokens),
// where "new" excludes the prefix already in the KV cache (KVCache.matchPrefix). A sequence's
// first token comes out at the end of the iteration that prefilled it. Requests join in
// groups taken from the Scheduler (maxBatchSize = joinGroup, maxBatchTokens = groupTokens)
// whenever joinGroup slots are free; a busy engine takes what is queued (force), an idle one
// waits for the Scheduler's release rule (a full group or maxWaitMs). With joinGroup = slots
// this is plain static micro-batching: a batch runs until its last sequence finishes. A
// finished sequence stays in the KVCache as a cached prefix (detached, evicted LRU under
// memory pressure) for the session's next turn. SCENARIOS holds three engines (see there).
//
// Policies (POLICIES, documented there). "default" = the Scheduler's own order (smallest
// tokens x SLO first, late requests penalised, starvation bounded; every request has an SLO
// here); "deadline" = the previous default (earliest deadline first with bounded demotion);
// "fcfs" and "shortest" = priorityFn; "edf" and "demote-forever" = the deadline order with
// demotion off / unbounded; the others are candidates (runCandidates).
//
// Second workload: the Mooncake trace (traceSource), scaled to the same loads.
//
// Clients that give up (GIVE_UP_MS, simulate's giveUp option): abandon after a timeout
// without a first token, retry once; the server notices at the first token (wasted prefill).
//
// Load. Capacity = the highest throughput the engine sustains when offered more than it can
// take (see measureCapacity). Load x offers x * capacity requests per second. For a batching
// engine whose iteration time grows with the number of running sequences this is elastic: at
// 0.9 load the 32-slot server engine runs about 23 of its 32 slots, so its queue forms in
// bursts; engines with few slots, or static batches, queue more. Metrics cover the requests
// that arrived in the steady-state window (after warm-up, until session arrivals stop);
// goodput = requests meeting their SLO per second of that window; SLO attainment = that count
// / offered (rejected, expired and shed requests count as missed).
import { llmds, rng, printTable, writeResults, isMain, quick } from './lib.mjs';

const { init, Scheduler, AdmissionController, KVCache, IndexedHeap } = llmds;

/**
 * A server-class continuous batcher: a 7B-class fp16 model on one datacentre GPU. Per
 * iteration, reading the weights costs ~6 ms, and each running sequence adds ~0.35 ms (reading
 * its KV cache at a 1-3k-token context, without grouped-query attention); prefill runs at
 * 12.5k prompt tokens/s. 32 sequence slots, 393k tokens of KV memory.
 */
export const ENGINE = Object.freeze({
  name: 'server: continuous, 32 slots',
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

/**
 * An edge engine: one consumer GPU serving a 7-8B 4-bit model with a few parallel slots, the
 * shape of a llama.cpp-style server (llmds' audience runs engines of this size or smaller):
 * ~80 tokens/s single-stream decode (12 ms per iteration), +1.5 ms per extra running sequence,
 * ~2.5k prompt tokens/s prefill, 4 slots sharing 32k tokens of KV memory (8k per slot). Each
 * request joins as soon as a slot is free (joinGroup 1, no wait).
 */
export const EDGE_ENGINE = Object.freeze({
  name: 'edge: continuous, 4 slots',
  slots: 4,
  joinGroup: 1,
  groupTokens: 16384,
  maxWaitMs: 0,
  stepMs: 12,
  perSeqMs: 1.5,
  prefillMsPerToken: 0.4, // 2.5k prompt tokens/s
  pageSize: 16,
  maxPages: 2048, // 32k tokens of KV memory
});

/** The engines every run simulates: the server-class continuous batcher, a small static one, and the edge engine. */
export const SCENARIOS = Object.freeze([
  ENGINE,
  Object.freeze({ ...ENGINE, name: 'server: static batches of 8', slots: 8, joinGroup: 8 }),
  EDGE_ENGINE,
]);

const SYSTEM_PROMPT_LENGTHS = [400, 700, 1000, 1300];
/**
 * Request classes. `share` is the share of sessions; token ranges are uniform integer draws;
 * a request generates 30-100% of its max output tokens. SLOs are the application's, the same
 * on every engine:
 * - chat: interactive turns, TTFT <= 1 s, TPOT <= 100 ms. Published chatbot setups put TTFT
 *   at 0.25-4 s depending on model size (DistServe: 0.25 s for a 13B model, 2.5 s for 66B) and
 *   TPOT at 0.1-0.2 s (about human reading speed); the MLPerf Llama-2-70B server scenario uses
 *   TTFT 2 s / TPOT 200 ms and its interactive scenario 450 ms / 40 ms. 1 s is inside that range.
 * - doc: questions about a long document pasted in the first turn: TTFT <= 6 s, TPOT <= 175 ms,
 *   the MLPerf long-context (Llama-3.1-405B) server bounds; DistServe's summarisation workload
 *   uses 15 s / 0.15 s.
 * - background (BACKGROUND): TTFT <= 60 s and no TPOT bound (not streamed to a person): "tens
 *   of seconds"; batch APIs give hours (a 24 h window is common), so 60 s is a strict choice.
 */
export const CLASSES = {
  chat: { share: 0.75, turns: [1, 6], userTokens: [20, 200], docTokens: [0, 0], maxTokens: [64, 256], ttftSloMs: 1000, tpotSloMs: 100 },
  doc: { share: 0.25, turns: [1, 2], userTokens: [20, 80], docTokens: [1500, 3000], maxTokens: [128, 512], ttftSloMs: 6000, tpotSloMs: 175 },
};
/**
 * One background request per session (share = sessions that make one): summarise the finished
 * conversation. Its prompt is the whole conversation (cached in the KV cache unless evicted)
 * plus an instruction; it arrives once the session has been idle for a think time after its
 * last turn.
 */
export const BACKGROUND = { share: 1, instructionTokens: [30, 60], maxTokens: [128, 384], ttftSloMs: 60000, tpotSloMs: null };
const THINK_MS = { fixed: 3000, mean: 8000 }; // gap between a session's turns

/**
 * Orders. `default` = the Scheduler's default, the weighted order: requests by smallest
 * tokens x SLO (tokens = the runtime's estimate of the work: uncached prompt + max output
 * tokens), an overdue request counting latePenalty = 10 times its size, and one past its second
 * deadline (deadline + 20 SLOs) going first. `deadline` = the previous default: earliest deadline
 * first with bounded demotion (an overdue request ranks as if due 10 SLOs later, then goes
 * first). `fcfs` and `shortest` = priorityFn (-arrivalMs, and -tokens). `edf` = plain EDF
 * (`demoteOverdue: false`); `demote-forever` = the deadline order with both limits Infinity
 * (overdue requests behind every request that can still be on time, for good).
 *
 * Candidates for the bound (runCandidates). On the deadline order: `window-Xs` (an absolute
 * window, maxDemotionMs X), `window-Nslo` (maxDemotionFactor N; the deadline order's default is
 * N = 10), `cap-5s` (a starvation cap, emulated through the public API on top of plain EDF: at
 * its deadline the runtime cancels the request and resubmits it without an SLO (demoted behind
 * everything), and 5 s later resubmits it with a 1 us SLO, which puts it ahead of everything
 * still on time, in the order of those resubmissions), `aging` (priority rising linearly with
 * waiting time at rate 1 against the deadline: deadline - (now - arrival) orders requests
 * exactly as arrival + SLO / 2 does, a static priorityFn, so linear aging on EDF is EDF with the
 * SLOs halved, without demotion). On the weighted order: `weighted-Nslo` (the bound at N SLOs),
 * `weighted-unbounded` (no bound), `penalty-P` (latePenalty P; 1 = lateness ignored, Infinity =
 * overdue behind every on-time request), `sjf-bounded` (shortest first by tokens alone, the
 * same bound: the weight 1/SLO ablated). An entry may also give `Scheduler`, a class with the
 * Scheduler's API (submit, getBatch, completeBatch, cancel, readyAt, stats, dispose), to try an
 * order in plain JS before writing it in C++.
 */
const DEADLINE = { order: 'deadline' };
const ABSOLUTE = (ms) => ({ ...DEADLINE, maxDemotionMs: ms, maxDemotionFactor: Infinity });
export const POLICIES = {
  default: {},
  fcfs: { priorityFn: (req) => -req.arrivalMs },
  shortest: { priorityFn: (req) => -req.tokens },
  deadline: DEADLINE,
  edf: { ...DEADLINE, demoteOverdue: false },
  'demote-forever': { ...DEADLINE, maxDemotionMs: Infinity, maxDemotionFactor: Infinity },
  'window-1s': ABSOLUTE(1000),
  'window-2s': ABSOLUTE(2000),
  'window-5s': ABSOLUTE(5000),
  'window-10s': ABSOLUTE(10000),
  'window-2slo': { ...DEADLINE, maxDemotionFactor: 2 },
  'window-5slo': { ...DEADLINE, maxDemotionFactor: 5 },
  'window-20slo': { ...DEADLINE, maxDemotionFactor: 20 },
  'cap-5s': { ...DEADLINE, demoteOverdue: false, demote: true, capMs: 5000 },
  aging: { priorityFn: (req) => -(req.arrivalMs + (req.sloMs ?? 1e9) / 2) },
  'weighted-5slo': { maxDemotionFactor: 5 },
  'weighted-10slo': { maxDemotionFactor: 10 },
  'weighted-40slo': { maxDemotionFactor: 40 },
  'weighted-unbounded': { maxDemotionFactor: Infinity },
  'penalty-1': { latePenalty: 1 },
  'penalty-3': { latePenalty: 3 },
  'penalty-inf': { latePenalty: Infinity },
  'sjf-bounded': { Scheduler: boundedShortestFirst(20) },
};
/** The policies of the main tables; the others are the candidates (runCandidates). */
export const MAIN_POLICIES = ['default', 'fcfs', 'shortest', 'deadline', 'edf', 'demote-forever'];
export const CANDIDATES = ['default', 'fcfs', 'shortest', 'deadline', 'edf', 'demote-forever', 'window-1s', 'window-2s', 'window-5s', 'window-10s', 'window-2slo', 'window-5slo', 'window-20slo', 'cap-5s', 'aging', 'weighted-5slo', 'weighted-10slo', 'weighted-40slo', 'weighted-unbounded', 'penalty-1', 'penalty-3', 'penalty-inf', 'sjf-bounded'];

/**
 * Shortest first by tokens alone with the default order's bound (a request past deadline +
 * `factor` SLOs goes first, earliest such deadline first): the weighted order without its
 * weight 1/SLO and without the late penalty, as a plain-JS Scheduler (a linear scan per pick;
 * the simulator's queues are short enough).
 */
function boundedShortestFirst(factor) {
  return class {
    #o;
    #queued = new Map();
    #inFlight = new Map();
    #next = 0;
    #met = 0;
    #batches = 0;
    #dispatched = 0;
    constructor(o) {
      this.#o = o;
    }
    submit(tokens, sloMs = 0) {
      const now = this.#o.now();
      const id = this.#next++;
      const deadline = sloMs > 0 ? now + sloMs : Infinity;
      this.#queued.set(id, { id, tokens, arrival: now, deadline, second: deadline + factor * sloMs });
      return id;
    }
    readyAt() {
      if (this.#queued.size === 0) return null;
      const now = this.#o.now();
      let tokens = 0;
      let oldest = Infinity;
      for (const r of this.#queued.values()) (tokens += r.tokens), (oldest = Math.min(oldest, r.arrival));
      if (this.#queued.size >= this.#o.maxBatchSize || (this.#o.maxBatchTokens && tokens >= this.#o.maxBatchTokens)) return now;
      return Math.max(now, oldest + this.#o.maxWaitMs);
    }
    getBatch(force = false) {
      const now = this.#o.now();
      if (this.#queued.size === 0 || (!force && this.readyAt() > now)) return [];
      const out = [];
      let tokens = 0;
      const key = (r) => (r.second < now ? [0, r.second] : [1, r.tokens]);
      while (out.length < this.#o.maxBatchSize && this.#queued.size > 0) {
        let best = null;
        for (const r of this.#queued.values()) {
          if (best === null) best = r;
          const [ka, va] = key(r);
          const [kb, vb] = key(best);
          if (ka < kb || (ka === kb && va < vb)) best = r;
        }
        if (out.length > 0 && this.#o.maxBatchTokens && tokens + best.tokens > this.#o.maxBatchTokens) break;
        this.#queued.delete(best.id);
        this.#inFlight.set(best.id, best);
        out.push(best.id);
        tokens += best.tokens;
      }
      this.#batches++;
      this.#dispatched += out.length;
      return out;
    }
    completeBatch(ids) {
      const now = this.#o.now();
      for (const id of ids) {
        if (now <= this.#inFlight.get(id).deadline) this.#met++;
        this.#inFlight.delete(id);
      }
    }
    cancel(id) {
      return this.#queued.delete(id) || this.#inFlight.delete(id);
    }
    stats() {
      return { sloMet: this.#met, avgBatchSize: this.#batches ? this.#dispatched / this.#batches : 0 };
    }
    dispose() {}
  };
}

/**
 * Clients that give up (giveUp option of simulate): a client that has no first token
 * `timeoutMs[kind]` after it sent its request abandons it and retries once at once (a new
 * request with the same prompt and SLO); after a second timeout it gives up for good. The
 * server notices a gone client only when it writes the first token (as a server that streams
 * notices a closed connection), so an abandoned request is still prefilled, and that prefill
 * is wasted. Chat 10 s (10x its TTFT bound: a person leaves or presses regenerate), documents
 * 30 s, background 120 s (2x its bound: a job runner's request timeout).
 */
export const GIVE_UP_MS = { chat: 10000, doc: 30000, background: 120000 };

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
 * `classes` and `background` override CLASSES and BACKGROUND (for the ablations). Background
 * requests draw from their own random stream, so the chat and doc requests are the same with
 * or without them.
 */
export function makeWorkload({ sessions, seed = 1, classes = CLASSES, background = BACKGROUND }) {
  const next = rng(seed);
  const nextBg = rng(seed + 7919);
  const systems = SYSTEM_PROMPT_LENGTHS.map((n) => randomTokens(next, n));
  const requests = [];
  const slo = (cls) => ({ ttftSloMs: cls.ttftSloMs, tpotSloMs: cls.tpotSloMs });
  let sessionStart = 0;
  for (let s = 0; s < sessions; s++) {
    sessionStart += exponential(next, 1000);
    const kind = next() < classes.chat.share ? 'chat' : 'doc';
    const cls = classes[kind];
    const system = systems[Math.floor(next() * systems.length)];
    const turns = between(next, cls.turns);
    let history = concat(system, randomTokens(next, between(next, cls.docTokens)));
    let offset = 0; // ms after the session start
    for (let k = 0; k < turns; k++) {
      const prompt = concat(history, randomTokens(next, between(next, cls.userTokens)));
      const maxTokens = between(next, cls.maxTokens);
      const output = randomTokens(next, Math.max(1, Math.round(maxTokens * (0.3 + 0.7 * next()))));
      requests.push({ session: s, kind, offsetMs: offset, sessionUnitStart: sessionStart, prompt, output, maxTokens, ...slo(cls) });
      history = concat(prompt, output);
      offset += THINK_MS.fixed + exponential(next, THINK_MS.mean);
    }
    // The session has now been idle for a think time after its last turn: summarise it.
    if (background && nextBg() < background.share) {
      const prompt = concat(history, randomTokens(nextBg, between(nextBg, background.instructionTokens)));
      const maxTokens = between(nextBg, background.maxTokens);
      const output = randomTokens(nextBg, Math.max(1, Math.round(maxTokens * (0.3 + 0.7 * nextBg()))));
      requests.push({ session: s, kind: 'background', offsetMs: offset, sessionUnitStart: sessionStart, prompt, output, maxTokens, ...slo(background) });
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

const KINDS = ['chat', 'doc', 'background'];

/** One simulation run. Returns its metrics. */
export function simulate(arrivals, { policy = 'default', capacity, admission = true, admitFactor = 1.1, expiry = 'none', shed = false, window, engine = ENGINE, giveUp = null } = {}) {
  const reset = (r) => ((r.ttftMs = r.firstMs = r.doneMs = r.waitMs = r.tpotMs = r.retry = undefined), (r.met = r.demoted = r.abandoned = r.dropped = false));
  for (const r of arrivals) reset(r);
  const clock = { t: 0 };
  const now = () => clock.t;
  const order = POLICIES[policy];
  // The policy's Scheduler options as they are: an absent one is undefined, the default.
  const sched = new (order.Scheduler ?? Scheduler)({
    maxBatchSize: engine.joinGroup,
    maxWaitMs: engine.maxWaitMs,
    maxBatchTokens: engine.groupTokens,
    priorityFn: order.priorityFn,
    order: order.order,
    latePenalty: order.latePenalty,
    demoteOverdue: order.demoteOverdue,
    maxDemotionMs: order.maxDemotionMs,
    maxDemotionFactor: order.maxDemotionFactor,
    now,
  });
  const meanTokens = arrivals.reduce((s, r) => s + r.prompt.length + r.maxTokens, 0) / arrivals.length;
  // Burst: 2 s of capacity, and at least 16 requests. The burst absorbs the fluctuations of
  // Poisson arrivals, whose size in requests does not shrink with the rate: 2 s alone is 2.5
  // requests on the edge engine, and refused 10% of its requests at 0.5 load.
  const burst = Math.max(16, 2 * capacity);
  const gate = admission && capacity
    ? new AdmissionController({ qpsTarget: admitFactor * capacity, tokenRateLimit: admitFactor * capacity * meanTokens, requestBurst: burst, tokenBurst: burst * meanTokens, now })
    : null;
  const kv = new KVCache({ pageSize: engine.pageSize, maxPages: engine.maxPages });
  const deadlines = new IndexedHeap(); // queued request id -> TTFT deadline, for expiry
  const giveUps = new IndexedHeap(); // attempt index -> when its client gives up
  const attempts = []; // attempts with a give-up time, by index
  const live = new Map(); // request id -> request
  const running = [];
  const m = { offered: arrivals.length, rejected: 0, expired: 0, demoted: 0, shed: 0, kvFull: 0, completed: 0, ttftMet: 0, promptTokens: 0, reusedTokens: 0, iterations: 0, abandoned: 0, retries: 0, prefilled: 0, wastedPrefill: 0 };
  const [from, to] = window ?? [0, arrivals[arrivals.length - 1].arrivalMs];
  let slotMs = 0; // sum over iterations inside the window of running sequences x duration
  let next = 0;
  let busyUntil = null; // end of the iteration in progress
  try {
    const arrive = (r) => {
      const est = r.prompt.length - kv.matchPrefix(r.prompt) + r.maxTokens;
      if (gate && !gate.shouldAdmit(est)[0]) {
        m.rejected++;
        return;
      }
      const id = sched.submit(est, r.ttftSloMs);
      r.deadlineMs = clock.t + r.ttftSloMs;
      r.est = est;
      live.set(id, r);
      const timeout = giveUp?.[r.kind];
      if (timeout !== undefined) {
        giveUps.push(attempts.length, r.arrivalMs + timeout);
        attempts.push(r);
      }
      if (expiry === 'drop') deadlines.push(id, r.deadlineMs);
      else if (order.demote) {
        // Least time to a first token, as of now: its uncached prefill in an iteration of its own.
        const least = order.early ? engine.stepMs + engine.perSeqMs + (r.prompt.length - kv.matchPrefix(r.prompt)) * engine.prefillMsPerToken : 0;
        deadlines.push(id, r.deadlineMs - least);
      }
    };
    const startIteration = () => {
      let prefill = 0;
      if (engine.slots - running.length >= engine.joinGroup) {
        for (const id of sched.getBatch(running.length > 0)) {
          const r = live.get(id);
          deadlines.delete(id);
          const reused = kv.matchPrefix(r.prompt);
          // Shed a request whose first token cannot come out before its deadline even if it
          // were prefilled alone in the next iteration (a lower bound on its TTFT). A demoted
          // request (deadline already passed) is served, late.
          if (shed && !r.demoted) {
            const bestCase = engine.stepMs + engine.perSeqMs * (running.length + 1) + (r.prompt.length - reused) * engine.prefillMsPerToken;
            if (clock.t + bestCase > r.deadlineMs) {
              sched.cancel(id);
              live.delete(id);
              m.shed++;
              r.dropped = true;
              gate?.recordRequest(0);
              continue;
            }
          }
          try {
            kv.attach(id, r.prompt);
          } catch (e) {
            if (e.code !== 'capacity_exceeded') throw e;
            m.kvFull++;
            r.dropped = true;
            sched.cancel(id);
            live.delete(id);
            continue;
          }
          r.waitMs = clock.t - r.arrivalMs;
          m.promptTokens += r.prompt.length;
          m.reusedTokens += reused;
          prefill += r.prompt.length - reused;
          m.prefilled += r.prompt.length - reused;
          running.push({ id, r, left: r.output.length, first: true, prefill: r.prompt.length - reused });
        }
      }
      if (running.length === 0) return;
      m.iterations++;
      const ms = engine.stepMs + engine.perSeqMs * running.length + engine.prefillMsPerToken * prefill;
      if (clock.t >= from && clock.t < to) slotMs += running.length * ms;
      busyUntil = clock.t + ms;
    };
    const finishIteration = () => {
      busyUntil = null;
      for (let i = running.length - 1; i >= 0; i--) {
        const s = running[i];
        if (s.first) {
          // First token: the request leaves the Scheduler, which scores its TTFT deadline.
          s.first = false;
          s.r.ttftMs = clock.t - s.r.arrivalMs;
          s.r.firstMs = clock.t;
          sched.completeBatch([s.id]);
          if (!s.r.demoted && clock.t <= s.r.deadlineMs) m.ttftMet++;
          if (s.r.abandoned) {
            // The client is gone: the server finds out writing the first token. Its prefill
            // was wasted; its prompt stays cached (a retry may reuse it).
            m.wastedPrefill += s.prefill;
            running.splice(i, 1);
            kv.detach(s.id);
            live.delete(s.id);
            gate?.recordRequest(s.r.prompt.length);
            continue;
          }
        }
        if (--s.left > 0) continue;
        running.splice(i, 1);
        m.completed++;
        const r = s.r;
        r.doneMs = clock.t;
        r.tpotMs = r.output.length > 1 ? (clock.t - r.firstMs) / (r.output.length - 1) : 0;
        r.met = !r.demoted && r.ttftMs <= r.ttftSloMs && (r.tpotSloMs == null || r.tpotMs <= r.tpotSloMs);
        try {
          kv.append(s.id, r.output);
        } catch (e) {
          if (e.code !== 'capacity_exceeded') throw e; // the prompt stays cached; only the answer is lost
        }
        kv.detach(s.id); // pages stay findable as a cached prefix for the next turn
        live.delete(s.id);
        gate?.recordRequest(r.prompt.length + r.output.length);
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
      const leaving = giveUps.peek();
      if (leaving) t = Math.min(t, leaving[0]);
      if (t === Infinity) break;
      clock.t = Math.max(clock.t, t);
      if (busyUntil !== null && busyUntil <= clock.t) finishIteration();
      while (next < arrivals.length && arrivals[next].arrivalMs <= clock.t) arrive(arrivals[next++]);
      for (let top = deadlines.peek(); top && top[0] <= clock.t; top = deadlines.peek()) {
        deadlines.pop();
        const id = top[1];
        const r = live.get(id);
        sched.cancel(id);
        live.delete(id);
        if (expiry !== 'drop' && r.demoted) {
          // cap: demoted for capMs; now ahead of every request still on time.
          live.set(sched.submit(r.est, 1e-3), r);
        } else if (expiry !== 'drop') {
          // Still served, but behind every request that can still meet its SLO.
          r.demoted = true;
          const again = sched.submit(r.est);
          live.set(again, r);
          if (order.capMs !== undefined) deadlines.push(again, r.deadlineMs + order.capMs);
          m.demoted++;
        } else {
          m.expired++;
          r.dropped = true;
          gate?.recordRequest(0); // the estimate it reserved was never used
        }
      }
      for (let top = giveUps.peek(); top && top[0] <= clock.t; top = giveUps.peek()) {
        giveUps.pop();
        const r = attempts[top[1]];
        if (r.firstMs !== undefined || r.dropped) continue;
        r.abandoned = true;
        m.abandoned++;
        if (r.original) continue; // a retry: the client gives up for good
        const retry = { ...r, original: r };
        reset(retry);
        retry.arrivalMs = clock.t;
        r.retry = retry;
        m.retries++;
        arrive(retry);
      }
      if (busyUntil === null) startIteration();
    }
    const st = sched.stats();
    if (st.sloMet !== m.ttftMet) throw new Error(`scheduler counted ${st.sloMet} TTFT deadlines met, the simulator ${m.ttftMet}`);
    // Steady-state metrics over the requests that arrived inside the measurement window.
    const inside = arrivals.filter((r) => r.arrivalMs >= from && r.arrivalMs < to);
    const seconds = (to - from) / 1000;
    // Per user request: an abandoned request is good if its retry met the SLO (measured from the
    // retry, as the server sees it); its TTFT is the user's, from the first attempt, and
    // Infinity when the client got no answer.
    for (const r of inside) {
      r.good = r.abandoned ? Boolean(r.retry?.met) : r.met;
      r.userTtftMs = !r.abandoned ? r.ttftMs : r.retry?.firstMs !== undefined && !r.retry.abandoned ? r.retry.firstMs - r.arrivalMs : Infinity;
    }
    const met = inside.filter((r) => r.good).length;
    const sorted = (rs, key) => rs.filter((r) => r[key] !== undefined).map((r) => r[key]).sort((a, b) => a - b);
    const chat = inside.filter((r) => r.kind === 'chat');
    const done = arrivals.filter((r) => r.doneMs !== undefined && r.doneMs >= from && r.doneMs < to).length;
    const attainment = {};
    for (const kind of KINDS) {
      const of = inside.filter((r) => r.kind === kind);
      attainment[kind] = of.length ? of.filter((r) => r.good).length / of.length : NaN;
    }
    return {
      policy,
      expiry,
      offered: inside.length,
      offeredPerS: inside.length / seconds,
      goodputPerS: met / seconds,
      throughputPerS: done / seconds,
      sloAttainment: met / inside.length,
      chatAttainment: attainment.chat,
      docAttainment: attainment.doc,
      backgroundAttainment: attainment.background,
      chatTtftP50Ms: percentile(sorted(chat, 'userTtftMs'), 50),
      chatTtftP95Ms: percentile(sorted(chat, 'userTtftMs'), 95),
      chatTtftP99Ms: percentile(sorted(chat, 'userTtftMs'), 99),
      abandoned: m.abandoned,
      retries: m.retries,
      gaveUpShare: inside.filter((r) => r.abandoned && (!r.retry || r.retry.abandoned || r.retry.firstMs === undefined)).length / inside.length,
      wastedPrefillShare: m.wastedPrefill / Math.max(1, m.prefilled),
      waitP50Ms: percentile(sorted(inside, 'waitMs'), 50),
      waitP95Ms: percentile(sorted(inside, 'waitMs'), 95),
      tpotMissed: inside.filter((r) => r.tpotMs !== undefined && r.tpotSloMs != null && r.tpotMs > r.tpotSloMs).length,
      meanRunning: slotMs / (to - from),
      reusedPrefixTokens: m.reusedTokens,
      reusedShare: m.reusedTokens / Math.max(1, m.promptTokens),
      meanNewPromptTokens: (m.promptTokens - m.reusedTokens) / Math.max(1, m.completed + m.kvFull),
      rejected: m.rejected,
      expired: m.expired,
      demoted: m.demoted,
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
 * A workload source: `at(requestsPerS)` = { arrivals, window } offering that many requests per
 * second, `requests` the unscaled requests (for the capacity estimate).
 */
function syntheticSource({ sessions, seed, classes = CLASSES, background = BACKGROUND }) {
  const workload = makeWorkload({ sessions, seed, classes, background });
  const perSession = workload.length / sessions;
  return {
    requests: workload,
    at(requestsPerS) {
      const sessionsPerSecond = requestsPerS / perSession;
      const arrivals = schedule(workload, sessionsPerSecond);
      return { arrivals, window: windowOf(arrivals, sessionsPerSecond, sessions) };
    },
  };
}

/**
 * The Mooncake trace (bench/data/mooncake-synthetic-trace.jsonl: 3,993 requests over 17
 * minutes, prompts as 512-token prefix blocks shared between requests) as a workload. Prompt
 * lengths are divided by TRACE_LENGTH_SCALE (a 512-token block becomes 32 tokens, keeping which
 * requests share which prefix): the trace comes from a long-context service (prompts 11.6k
 * tokens at the median, up to 191k) and would not fit the simulated engines (the edge engine
 * holds 32k tokens). Output lengths are the trace's; a request's max output tokens (the
 * schedulers' estimate) is its output length. A request whose prompt was at most 16k tokens in
 * the trace gets the chat SLOs, a longer one the document SLOs (CLASSES); no background class.
 * Arrival times are the trace's, scaled to the offered rate.
 */
export const TRACE_LENGTH_SCALE = 16;
let traceCache;
async function traceSource() {
  if (!traceCache) {
    const { loadTrace } = await import('./kv-trace.mjs');
    const trace = loadTrace();
    const next = rng(4242);
    const block = 512 / TRACE_LENGTH_SCALE;
    const requests = trace.map((t) => {
      const n = Math.max(1, Math.round(t.input / TRACE_LENGTH_SCALE));
      const prompt = new Int32Array(n);
      for (let i = 0; i < n; i++) prompt[i] = 1000 + t.hashIds[Math.floor(i / block)] * block + (i % block);
      const kind = t.input <= 16384 ? 'chat' : 'doc';
      const cls = CLASSES[kind];
      return { kind, traceMs: t.arrivalMs, prompt, output: randomTokens(next, Math.max(1, t.output)), maxTokens: Math.max(1, t.output), ttftSloMs: cls.ttftSloMs, tpotSloMs: cls.tpotSloMs };
    });
    const span = requests[requests.length - 1].traceMs;
    const nativePerS = requests.length / (span / 1000);
    traceCache = {
      requests,
      at(requestsPerS) {
        const f = nativePerS / requestsPerS;
        const arrivals = requests.map((r) => ({ ...r, arrivalMs: r.traceMs * f }));
        const end = span * f;
        return { arrivals, window: [Math.min(0.1 * end, 60000), end] };
      },
    };
  }
  return traceCache;
}

/**
 * The engine's capacity: the highest throughput (requests/s completed over the steady-state
 * window) it sustains when offered more than it can take, FCFS, no admission control and no
 * expiry (with expiry, dropped turns would force later turns to prefill their whole history,
 * and the measure would depend on the policy). Measured at 3x a rough estimate, then at 1.1,
 * 1.25 and 1.4x that throughput, keeping the best: a deep backlog alone understates it, since
 * turns that wait minutes find their session's prefix evicted from the KV cache and prefill it
 * again (the edge engine completed 1.25 requests/s when offered 4/s, 1.40 when offered 1.5/s).
 */
function measureCapacity(source, engine) {
  const reqs = source.requests;
  const meanOut = reqs.reduce((s, r) => s + r.output.length, 0) / reqs.length;
  const meanPrompt = reqs.reduce((s, r) => s + r.prompt.length, 0) / reqs.length;
  const roughPerS = 1000 / (0.3 * meanPrompt * engine.prefillMsPerToken + meanOut * (engine.stepMs / engine.slots + engine.perSeqMs));
  const throughputAt = (requestsPerS) => {
    const { arrivals, window } = source.at(requestsPerS);
    return simulate(arrivals, { policy: 'fcfs', admission: false, expiry: 'none', window, engine }).throughputPerS;
  };
  const backlogged = throughputAt(3 * roughPerS);
  return Math.max(backlogged, ...[1.1, 1.25, 1.4].map((f) => throughputAt(f * backlogged)));
}

/** Each policy's goodput and chat TTFT p95 / p99 against FCFS's in the same run. */
function versusFcfs(rows) {
  const fcfs = rows.find((x) => x.policy === 'fcfs');
  if (!fcfs) return rows;
  return rows.map((x) => ({ ...x, goodputVsFcfs: x.goodputPerS / fcfs.goodputPerS, p95VsFcfs: x.chatTtftP95Ms / fcfs.chatTtftP95Ms, p99VsFcfs: x.chatTtftP99Ms / fcfs.chatTtftP99Ms }));
}

/**
 * Every policy at every load on every engine, for one workload: `trace` = the Mooncake trace,
 * else the synthetic sessions of `seed`. `classes`/`background` override the synthetic workload
 * (ablations), `expiry`, `shed`, `giveUp` and `admission` the runtime (see the file comment);
 * `capacities` reuses capacities measured on the same workload (one per engine).
 */
export async function runServingSimulator({
  trace = false,
  sessions = quick ? 800 : 3000,
  loads = quick ? [0.5, 0.9, 1.2] : [0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2],
  seed = 1,
  engines = SCENARIOS,
  policies = MAIN_POLICIES,
  shed = false,
  expiry = 'none',
  admitFactor = 1.1,
  admission = true,
  giveUp = null,
  classes = CLASSES,
  background = BACKGROUND,
  capacities,
} = {}) {
  await init();
  const source = trace ? await traceSource() : syntheticSource({ sessions, seed, classes, background });
  const scenarios = [];
  for (const [e, engine] of engines.entries()) {
    const capacity = capacities?.[e] ?? measureCapacity(source, engine);
    const rows = [];
    for (const load of loads) {
      const { arrivals, window } = source.at(load * capacity);
      const at = policies.map((policy) => ({ load, seed: trace ? 'trace' : seed, ...simulate(arrivals, { policy, capacity, window, engine, shed, expiry, admitFactor, admission, giveUp }) }));
      rows.push(...versusFcfs(at));
    }
    scenarios.push({ engine, capacityPerS: capacity, rows });
  }
  const kinds = Object.fromEntries(KINDS.map((k) => [k, source.requests.filter((r) => r.kind === k).length]));
  return { workload: trace ? 'mooncake trace' : 'synthetic sessions', sessions: trace ? undefined : sessions, requests: source.requests.length, kinds, seed, shed, expiry, admitFactor, admission, giveUp, classes, background, scenarios };
}

/**
 * What each modelling choice does to the goodput ratios at `load`: the runtime of the earlier
 * version (drop at the deadline, shed), the workload without background requests, and a
 * tighter and a looser chat TTFT bound. `main` is a runServingSimulator result on the same
 * sessions and seed, whose capacities are reused where the workload is unchanged.
 */
export async function runAblations(main, { load = 0.9, sessions = main.sessions, seed = main.seed } = {}) {
  const capacities = sessions === main.sessions ? main.scenarios.map((sc) => sc.capacityPerS) : undefined;
  const policies = ['default', 'fcfs', 'shortest', 'deadline'];
  const variants = [
    ['earlier runtime: drop at deadline + shed', { expiry: 'drop', shed: true, capacities }],
    ['no background requests', { background: null }],
    ['chat TTFT 0.5 s', { classes: { ...CLASSES, chat: { ...CLASSES.chat, ttftSloMs: 500 } }, capacities }],
    ['chat TTFT 2 s', { classes: { ...CLASSES, chat: { ...CLASSES.chat, ttftSloMs: 2000 } }, capacities }],
  ];
  const rows = [];
  for (const [variant, opts] of variants) {
    const r = await runServingSimulator({ sessions, seed, loads: [load], policies, ...opts });
    rows.push({ variant, scenarios: r.scenarios.map((sc) => ({ engine: sc.engine.name, rows: sc.rows })) });
  }
  return { load, sessions, seed, rows };
}

/**
 * The targets' runs: `policies` at `loads` on every engine, for each synthetic seed and the
 * trace, with admission control (at 1.1x capacity), and at overload without it and with it at
 * 0.9x capacity (its effect), and with clients that give up (GIVE_UP_MS). Returns the flat rows with `workload`, `variant`, `engine`.
 */
export async function runSweep({ seeds = quick ? [1, 2] : [1, 2, 3], loads = [0.9, 1.2], traceLoads = [0.7, 0.9, 1.2], sessions = quick ? 800 : 3000, policies = MAIN_POLICIES, engines = SCENARIOS, trace = true, variants = ['admission', 'no admission', 'admission 0.9x', 'give up'] } = {}) {
  const rows = [];
  const opts = { admission: { admission: true }, 'no admission': { admission: false }, 'admission 0.9x': { admission: true, admitFactor: 0.9 }, 'give up': { admission: true, giveUp: GIVE_UP_MS } };
  const overloadOnly = new Set(['no admission', 'admission 0.9x']);
  const runs = [...seeds.map((seed) => ({ seed, trace: false, loads })), ...(trace ? [{ trace: true, loads: traceLoads }] : [])];
  for (const run of runs) {
    let capacities;
    for (const variant of variants) {
      const r = await runServingSimulator({ sessions, policies, engines, capacities, ...run, ...opts[variant], loads: overloadOnly.has(variant) ? run.loads.filter((l) => l > 1) : run.loads });
      capacities = r.scenarios.map((sc) => sc.capacityPerS);
      for (const sc of r.scenarios) for (const x of sc.rows) rows.push({ workload: r.workload, variant, engine: sc.engine.name, capacityPerS: sc.capacityPerS, ...x });
    }
  }
  return { seeds, sessions, rows };
}

const short = (name) => name.split(':')[0] + (name.includes('static') ? ' static' : '');
const ms = (v) => (v === Infinity ? 'inf' : Math.round(v));

/** Worst case over the runs (seeds) of each engine x load x policy x variant: the target columns. */
export function summarizeSweep(rows) {
  const groups = new Map();
  for (const x of rows) {
    const key = [x.workload, x.variant, x.engine, x.load, x.policy].join('|');
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(x);
  }
  return [...groups.values()].map((g) => {
    const x = g[0];
    const min = (k) => Math.min(...g.map((y) => y[k]));
    const max = (k) => Math.max(...g.map((y) => y[k]));
    const mean = (k) => g.reduce((s, y) => s + y[k], 0) / g.length;
    return {
      workload: x.workload, variant: x.variant, engine: x.engine, load: x.load, policy: x.policy, runs: g.length,
      goodputPerS: mean('goodputPerS'), goodputVsFcfsMin: min('goodputVsFcfs'), goodputVsFcfsMean: mean('goodputVsFcfs'),
      chatTtftP95Ms: mean('chatTtftP95Ms'), chatTtftP99Ms: mean('chatTtftP99Ms'), p95VsFcfsMax: max('p95VsFcfs'), p99VsFcfsMax: max('p99VsFcfs'),
      sloAttainment: mean('sloAttainment'), rejected: mean('rejected'), gaveUpShare: mean('gaveUpShare'), wastedPrefillShare: mean('wastedPrefillShare'), retries: mean('retries'),
    };
  });
}

/** Whether a summary row of the default policy meets the issue's targets (0.9 load). */
export const meetsTargets = (x) => x.goodputVsFcfsMin >= 1.3 && x.p95VsFcfsMax <= 1.0 && x.p99VsFcfsMax <= 1.5;

export function printSweep(sweep, title = 'Sweep') {
  const summary = summarizeSweep(sweep.rows);
  for (const workload of [...new Set(summary.map((x) => x.workload))]) {
    for (const variant of [...new Set(summary.map((x) => x.variant))]) {
      const rows = summary.filter((x) => x.workload === workload && x.variant === variant);
      if (rows.length === 0) continue;
      printTable(`${title}: ${workload}, ${variant} (${rows[0].runs} run(s) each; goodput ratio = worst run, p95/p99 ratios = worst run)`, rows.map((x) => ({
        engine: short(x.engine),
        load: x.load,
        policy: x.policy,
        'goodput/s': x.goodputPerS,
        'vs fcfs (min)': x.goodputVsFcfsMin,
        'chat p95 ms': ms(x.chatTtftP95Ms),
        ...(variant === 'give up' ? {} : { 'p95 vs fcfs (max)': x.p95VsFcfsMax }),
        'chat p99 ms': ms(x.chatTtftP99Ms),
        ...(variant === 'give up' ? {} : { 'p99 vs fcfs (max)': x.p99VsFcfsMax }),
        'SLO met': x.sloAttainment,
        rejected: Math.round(x.rejected),
        ...(variant === 'give up' ? { 'gave up %': Math.round(x.gaveUpShare * 1000) / 10, 'wasted prefill %': Math.round(x.wastedPrefillShare * 1000) / 10, retries: Math.round(x.retries) } : {}),
        ...(x.policy === 'default' && x.load === 0.9 && variant === 'admission' ? { targets: meetsTargets(x) ? 'met' : 'not met' } : {}),
      })));
    }
  }
}

export function printServingSimulator(r, ablations) {
  for (const sc of r.scenarios) {
    printTable(
      `Serving simulator, ${sc.engine.name}: ${r.workload}, ${r.requests} requests (${Object.entries(r.kinds).map(([k, n]) => `${n} ${k}`).join(', ')}), ` +
        `capacity ${sc.capacityPerS.toFixed(2)} req/s, expiry ${r.expiry}, seed ${r.seed}`,
      sc.rows.map((x) => ({
        load: x.load,
        policy: x.policy,
        'offered/s': x.offeredPerS,
        'goodput/s': x.goodputPerS,
        'vs fcfs': x.goodputVsFcfs,
        'SLO met': x.sloAttainment,
        chat: x.chatAttainment,
        doc: x.docAttainment,
        background: x.backgroundAttainment,
        'chat p50 ms': ms(x.chatTtftP50Ms),
        'chat p95 ms': ms(x.chatTtftP95Ms),
        'chat p99 ms': ms(x.chatTtftP99Ms),
        running: x.meanRunning,
        'reused %': Math.round(x.reusedShare * 1000) / 10,
        rejected: x.rejected,
      })),
    );
  }
  if (ablations) {
    printTable(`Ablations at ${ablations.load} load (${ablations.sessions} sessions): goodput vs FCFS`, ablations.rows.map((row) => ({
      variant: row.variant,
      ...Object.fromEntries(row.scenarios.flatMap((sc) => ['default', 'deadline'].map((p) => [`${short(sc.engine)} ${p}`, sc.rows.find((x) => x.policy === p).goodputVsFcfs]))),
    })));
  }
}

/** The anti-starvation candidates at 0.9 and 1.2 load over seeds (bench/README "Choosing the default"). */
export async function runCandidates({ seeds = quick ? [1, 2] : [1, 2, 3], sessions = quick ? 800 : 3000 } = {}) {
  return runSweep({ seeds, sessions, loads: [0.9, 1.2], traceLoads: [0.9, 1.2], policies: CANDIDATES, variants: ['admission'] });
}

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};

/** Runs, prints and writes bench/results/serving-simulator.json. */
export async function runServingSimulatorBench() {
  const t0 = performance.now();
  const seeds = arg('seeds')?.split(',').map(Number);
  const engines = arg('engines')?.split(',').map((e) => {
    const engine = SCENARIOS.find((sc) => short(sc.name).replace(' ', '-') === e || sc.name.startsWith(e));
    if (!engine) throw new Error(`--engines: unknown engine ${JSON.stringify(e)}; one of ${SCENARIOS.map((sc) => short(sc.name).replace(' ', '-')).join(', ')}`);
    return engine;
  });
  if (process.argv.includes('--candidates')) {
    const c = await runCandidates({ ...(seeds ? { seeds } : {}) });
    printSweep(c, 'Candidates');
    const file = await writeResults('serving-simulator-candidates', c);
    console.log(`\nwrote ${file.pathname} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return c;
  }
  const r = await runServingSimulator({ ...(engines ? { engines } : {}) });
  const ablations = quick ? null : await runAblations(r);
  printServingSimulator(r, ablations);
  const sweep = await runSweep({ ...(seeds ? { seeds } : {}), ...(engines ? { engines } : {}) });
  printSweep(sweep, 'Targets');
  const file = await writeResults('serving-simulator', { ...r, ablations, sweep, summary: summarizeSweep(sweep.rows) });
  console.log(`\nwrote ${file.pathname} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { ...r, ablations, sweep };
}

if (isMain(import.meta)) await runServingSimulatorBench();
