// SPDX-License-Identifier: MIT
// Serving simulator: a seeded discrete-event simulation of one LLM engine behind an
// AdmissionController and a Scheduler, on simulated time (the injectable `now` clock), so a
// minute of traffic runs in milliseconds and the same seed always gives the same run.
//
// Workload: Poisson arrivals at `rate` requests/s for `durationS` seconds. 70 % are chat
// requests (50-600 prompt tokens, 16-160 output tokens, deadline `sloMs`), 30 % are document
// jobs (800-3000 prompt tokens, 100-400 output tokens, deadline 4 × `sloMs`). The deadline is
// for the whole answer; a client whose request is still queued at its deadline gives up
// (Scheduler.cancel, found with an IndexedHeap of deadlines).
//
// Engine: static micro-batching. When it is free and the Scheduler releases a batch (full, or
// its oldest request waited `maxWaitMs`), the batch is prefilled (all prompts), then decoded
// one token per step for every sequence; each request completes after its own last token, and
// the engine takes the next batch when the longest one is done.
//   prefill = 5 ms + 0.02 ms × prompt tokens;  step = 3 ms + 0.1 ms × batch size  (ENGINE below).
//
// Policies: `weighted` is the Scheduler's default (smallest tokens × SLO first; a late request
// counts 10× its size and one 10 SLOs past its deadline goes first; clients here cancel at their
// deadline, so lateness rarely applies), `edf` the Scheduler's deadline order (earliest deadline
// first), `fcfs` and `shortest` are priorityFn orders (-arrivalMs; -tokens with tokens = prompt
// + output).

export const ENGINE = Object.freeze({ prefillBaseMs: 5, prefillMsPerToken: 0.02, stepMs: 3, stepMsPerSeq: 0.1 });
export const CLASSES = Object.freeze({
  chat: { share: 0.7, prompt: [50, 600], output: [16, 160], sloFactor: 1 },
  doc: { share: 0.3, prompt: [800, 3000], output: [100, 400], sloFactor: 4 },
});
export const POLICIES = Object.freeze({
  weighted: { label: 'tokens × SLO (default)' },
  edf: { label: 'deadline first', order: 'deadline' },
  fcfs: { label: 'first come first served', priorityFn: (req) => -req.arrivalMs },
  shortest: { label: 'shortest first', priorityFn: (req) => -req.tokens },
});
export const DEFAULTS = Object.freeze({ rate: 9, sloMs: 3000, batchSize: 16, maxWaitMs: 25, policy: 'weighted', qpsLimit: 0, seed: 1, durationS: 60 });

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The requests of a run, sorted by arrival: `{ arrivalMs, kind, prompt, output, sloMs }`. */
export function makeWorkload({ rate, sloMs, seed, durationS }) {
  const next = rng(seed);
  const between = ([lo, hi]) => lo + Math.floor(next() * (hi - lo + 1));
  const requests = [];
  for (let t = -Math.log(1 - next()) * (1000 / rate); t < durationS * 1000; t += -Math.log(1 - next()) * (1000 / rate)) {
    const kind = next() < CLASSES.chat.share ? 'chat' : 'doc';
    const c = CLASSES[kind];
    requests.push({ arrivalMs: t, kind, prompt: between(c.prompt), output: between(c.output), sloMs: sloMs * c.sloFactor });
  }
  return requests;
}

const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] : NaN);

/**
 * Runs one simulation with the package's classes (`llmds`: Scheduler, AdmissionController,
 * IndexedHeap). Returns `{ params, requests, queue, bins, summary }`: every request with its
 * outcome, the queue length every `sampleMs`, and per-second offered / completed / goodput.
 */
export function simulate(llmds, options = {}) {
  const p = { ...DEFAULTS, ...options };
  const { Scheduler, AdmissionController, IndexedHeap } = llmds;
  const wallStart = performance.now();
  const clock = { t: 0 };
  const now = () => clock.t;
  const { priorityFn, order } = POLICIES[p.policy];
  const sched = new Scheduler({ maxBatchSize: p.batchSize, maxWaitMs: p.maxWaitMs, priorityFn, order, now });
  const gate = p.qpsLimit > 0 ? new AdmissionController({ qpsTarget: p.qpsLimit, tokenRateLimit: 1e12, requestBurst: Math.max(1, p.qpsLimit), now }) : null;
  const deadlines = new IndexedHeap(); // queued request id -> deadline (min first)
  try {
    const requests = makeWorkload(p);
    const byId = new Map();
    const completions = []; // [timeMs, request], kept sorted by time
    const queue = [];
    const sampleMs = 250;
    let nextSample = 0;
    let nextArrival = 0;
    let engineFreeAt = 0;

    for (;;) {
      const tArrive = requests[nextArrival]?.arrivalMs ?? Infinity;
      const tDone = completions[0]?.[0] ?? Infinity;
      const tExpire = deadlines.size ? deadlines.peek()[0] : Infinity;
      const ready = sched.readyAt();
      const tStart = ready === null ? Infinity : Math.max(ready, engineFreeAt);
      const t = Math.min(tArrive, tDone, tExpire, tStart);
      if (t === Infinity) break;
      for (; nextSample <= t; nextSample += sampleMs) queue.push([nextSample, sched.stats().queued]);
      clock.t = t;

      while (completions.length && completions[0][0] <= t) {
        const [, r] = completions.shift();
        sched.completeBatch([r.id]);
      }
      while (deadlines.size && deadlines.peek()[0] <= t) {
        const [, id] = deadlines.pop();
        sched.cancel(id);
        byId.get(id).outcome = 'expired';
      }
      while (nextArrival < requests.length && requests[nextArrival].arrivalMs <= t) {
        const r = requests[nextArrival++];
        if (gate && !gate.shouldAdmit(r.prompt + r.output)[0]) {
          r.outcome = 'rejected';
          continue;
        }
        gate?.recordRequest(r.prompt + r.output);
        r.id = sched.submit(r.prompt + r.output, r.sloMs);
        byId.set(r.id, r);
        deadlines.push(r.id, r.arrivalMs + r.sloMs);
      }
      if (t >= engineFreeAt) {
        const batch = sched.getBatch();
        if (!batch.length && t === tStart && t !== tArrive && t !== tDone && t !== tExpire) {
          throw new Error(`Scheduler.readyAt() said a batch was due at ${t} ms but getBatch() returned none`);
        }
        if (batch.length) {
          const reqs = batch.map((id) => byId.get(id));
          for (const id of batch) deadlines.delete(id);
          const prefillMs = ENGINE.prefillBaseMs + ENGINE.prefillMsPerToken * reqs.reduce((s, r) => s + r.prompt, 0);
          const stepMs = ENGINE.stepMs + ENGINE.stepMsPerSeq * reqs.length;
          for (const r of reqs) {
            r.batchSize = reqs.length;
            r.ttftMs = t + prefillMs + stepMs - r.arrivalMs;
            r.doneMs = t + prefillMs + stepMs * r.output;
            r.outcome = r.doneMs <= r.arrivalMs + r.sloMs ? 'met' : 'late';
            completions.push([r.doneMs, r]);
          }
          completions.sort((a, b) => a[0] - b[0]);
          engineFreeAt = t + prefillMs + stepMs * Math.max(...reqs.map((r) => r.output));
        }
      }
    }
    queue.push([clock.t, sched.stats().queued]);

    // Per-second bins until the last request finished.
    const bins = Array.from({ length: Math.max(p.durationS, Math.floor(clock.t / 1000) + 1) }, (_, s) => ({ s, offered: 0, completed: 0, goodput: 0 }));
    const bin = (ms) => bins[Math.floor(ms / 1000)];
    for (const r of requests) {
      bin(r.arrivalMs).offered++;
      if (r.doneMs !== undefined) bin(r.doneMs).completed++;
      if (r.outcome === 'met') bin(r.doneMs).goodput++;
    }

    const count = (o) => requests.filter((r) => r.outcome === o).length;
    const ttfts = requests.filter((r) => r.ttftMs !== undefined).map((r) => r.ttftMs).sort((a, b) => a - b);
    const s = sched.stats();
    const met = count('met');
    const summary = {
      offered: requests.length,
      rejected: count('rejected'),
      expired: count('expired'),
      late: count('late'),
      met,
      sloAttainment: requests.length ? met / requests.length : 0,
      goodput: met / p.durationS,
      ttftP50: percentile(ttfts, 50),
      ttftP95: percentile(ttfts, 95),
      avgBatchSize: s.avgBatchSize,
      batches: s.batches,
      schedulerSloMet: s.sloMet,
      schedulerSloMissed: s.sloMissed,
      simulatedMs: clock.t,
      wallMs: performance.now() - wallStart,
    };
    return { params: p, requests, queue, bins, summary };
  } finally {
    sched.dispose();
    gate?.dispose();
    deadlines.dispose();
  }
}
