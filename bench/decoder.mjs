// SPDX-License-Identifier: MIT
// Time to first token with and without the prefix cache, on a real (if small and random) model:
// the Llama-style decoder of demo/decoder/ (matmuls in plain JS, attention in llmds' wasm
// kernel over the cache's pages). A request whose 2,048-token prompt shares its first 1,792
// tokens (a system prompt: 112 full pages of 16) with the previous request is prefilled on a
// cache with prefix sharing (computes the last 256 positions) and on one without (computes all
// 2,048), alternately, in the same run; both must pick the same first token.
//   node bench/decoder.mjs [--quick]
import { llmds, printTable, writeResults, isMain, quick, rng } from './lib.mjs';

const { init, KVCache } = llmds;

/** Big enough that prefill dominates (about 3.5 s for 2,048 tokens on one core), small enough to seed. */
export const CONFIG = { vocab: 1024, dim: 256, layers: 4, heads: 8, kvHeads: 2, headDim: 32, hidden: 512, ropeTheta: 10000, eps: 1e-5 };
export const PAGE_SIZE = 16;
export const PROMPT_TOKENS = 2048;
export const SHARED_TOKENS = 1792;

async function loadDecoder() {
  try {
    return await import('../demo/decoder/dist/index.mjs');
  } catch (e) {
    throw new Error(`demo/decoder is not compiled (${e.code}): run npx tsc -p demo/decoder/tsconfig.json (scripts/build.sh does)`);
  }
}

const tokens = (n, seed) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * CONFIG.vocab));
};

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function maxDelta(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/**
 * `reps` requests (each a new user turn after the shared system prompt) timed on both caches,
 * alternating which goes first. TTFT = prefill until the first token is chosen from the logits;
 * its CPU time too (process.cpuUsage: the machines are shared, so wall time can include waiting).
 */
export async function benchmarkDecoderTTFT({ reps = quick ? 1 : 3 } = {}) {
  await init();
  const { Decoder, argmax } = await loadDecoder();
  const model = Decoder.fromSeed(CONFIG, 1);
  const system = tokens(SHARED_TOKENS, 1);
  const prompt = (i) => [...system, ...tokens(PROMPT_TOKENS - SHARED_TOKENS, 100 + i)];
  const make = (sharing) => new KVCache({ pageSize: PAGE_SIZE, maxPages: 1024, enablePrefixSharing: sharing, kv: model.kvOptions() });
  const modes = [
    { name: 'on', cache: make(true), ttft: [], cpu: [] },
    { name: 'off', cache: make(false), ttft: [], cpu: [] },
  ];
  try {
    model.session(make(false)).prefill(0, prompt(-1).slice(0, 512)); // JIT warm-up, its own cache
    for (const m of modes) {
      m.session = model.session(m.cache);
      m.session.prefill(0, prompt(0)); // the previous request, then it finishes
      m.cache.detach(0);
    }
    let worstDelta = 0;
    for (let r = 1; r <= reps; r++) {
      const steps = {};
      for (const m of r % 2 ? modes : [...modes].reverse()) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const step = m.session.prefill(r, prompt(r));
        const first = argmax(step.logits);
        m.ttft.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        m.cpu.push((c.user + c.system) / 1000);
        steps[m.name] = { step, first };
        m.cache.detach(r);
      }
      if (steps.on.first !== steps.off.first) throw new Error(`request ${r}: first token ${steps.on.first} with the prefix cache, ${steps.off.first} without`);
      worstDelta = Math.max(worstDelta, maxDelta(steps.on.step.logits, steps.off.step.logits));
      for (const m of modes) Object.assign(m, { plan: steps[m.name].step.plan, computed: steps[m.name].step.computed });
    }
    const [on, off] = modes.map((m) => ({ ttftMs: median(m.ttft), cpuMs: median(m.cpu), samplesMs: m.ttft, cachedTokens: m.plan.cachedTokens, computedTokens: m.computed }));
    return { config: CONFIG, pageSize: PAGE_SIZE, promptTokens: PROMPT_TOKENS, sharedTokens: SHARED_TOKENS, reps, on, off, speedup: off.ttftMs / on.ttftMs, cpuSpeedup: off.cpuMs / on.cpuMs, tokenRatio: off.computedTokens / on.computedTokens, maxLogitDelta: worstDelta };
  } finally {
    for (const m of modes) m.cache.dispose();
  }
}

export async function runDecoderBench() {
  const r = await benchmarkDecoderTTFT();
  const c = r.config;
  printTable(`Decoder TTFT, ${r.promptTokens}-token prompt sharing ${r.sharedTokens} tokens with the previous request (dim ${c.dim}, ${c.layers} layers, ${c.heads}/${c.kvHeads} heads, vocab ${c.vocab}, page ${r.pageSize}; median of ${r.reps})`, [
    { prefixCache: 'off', cachedTokens: r.off.cachedTokens, computedTokens: r.off.computedTokens, ttftMs: r.off.ttftMs, cpuMs: r.off.cpuMs, speedup: 1, cpuSpeedup: 1 },
    { prefixCache: 'on', cachedTokens: r.on.cachedTokens, computedTokens: r.on.computedTokens, ttftMs: r.on.ttftMs, cpuMs: r.on.cpuMs, speedup: r.speedup, cpuSpeedup: r.cpuSpeedup },
  ]);
  console.log(`tokens computed off/on: ${r.tokenRatio.toFixed(1)}×; same first token; max |Δlogit| on vs off ${r.maxLogitDelta.toExponential(1)}`);
  await writeResults('decoder', r);
  return r;
}

if (isMain(import.meta)) await runDecoderBench();
