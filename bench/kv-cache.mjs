// SPDX-License-Identifier: MIT
// KV cache benchmark through the JS API: attach/get/detach latencies, prefix sharing savings,
// prefix-match cost per token, leaked pages.
//   node bench/kv-cache.mjs [--quick]
import { llmds, rng, summarize, timeEach, nsPerOp, printTable, writeResults, isMain, quick } from './lib.mjs';

const { init, KVCache, memoryProfiler } = llmds;

function randomSequences(numSequences, tokensPerSeq, seed, prefix = []) {
  const next = rng(seed);
  return Array.from({ length: numSequences }, () => {
    const t = new Int32Array(tokensPerSeq);
    t.set(prefix.slice(0, tokensPerSeq));
    for (let i = prefix.length; i < tokensPerSeq; i++) t[i] = Math.floor(next() * 50000);
    return t;
  });
}

/**
 * attach, get and detach every sequence once; percentiles from sorted samples.
 * @returns {Promise<object>} { attachP50Ms, attachP95Ms, attachP99Ms, getP50Ms, ..., detachP99Ms,
 *   peakRssMb, memoryDeltaMb, leakedPages }
 */
export async function benchmarkKVCache({ numSequences = 1000, tokensPerSeq = 1000, pageSize = 512 } = {}) {
  await init();
  const seqs = randomSequences(numSequences, tokensPerSeq, 42);
  const mem = memoryProfiler();
  const maxPages = numSequences * Math.ceil(tokensPerSeq / pageSize) + 16;
  const cache = new KVCache({ pageSize, maxPages });
  try {
    // Warm-up: one full untimed pass, so V8 has tiered the wasm up from its baseline compiler
    // and the cache's storage has grown to size before anything is sampled.
    for (let i = 0; i < numSequences; i++) cache.attach(i, seqs[i]);
    for (let i = 0; i < numSequences; i++) cache.get(i);
    for (let i = 0; i < numSequences; i++) cache.detach(i);
    const attach = timeEach(numSequences, (i) => cache.attach(i, seqs[i]));
    mem.sample();
    const get = timeEach(numSequences, (i) => cache.get(i));
    const detach = timeEach(numSequences, (i) => cache.detach(i));
    mem.sample();
    const leakedPages = cache.stats().usedPages;
    return {
      numSequences,
      tokensPerSeq,
      pageSize,
      ...summarize('attach', attach),
      ...summarize('get', get),
      ...summarize('detach', detach),
      peakRssMb: mem.peakRssMb,
      memoryDeltaMb: mem.memoryDeltaMb,
      wasmHeapMb: mem.peakWasmHeapMb,
      leakedPages,
    };
  } finally {
    cache.dispose();
  }
}

/** Pages used by sequences that share a common prefix, with and without prefix sharing. */
export async function benchmarkSharedPrefix({ numSequences = 1000, tokensPerSeq = 1000, prefixTokens = 512, pageSize = 512 } = {}) {
  await init();
  const prefix = Array.from({ length: prefixTokens }, (_, i) => 1 + i);
  const seqs = randomSequences(numSequences, tokensPerSeq, 7, prefix);
  const result = { numSequences, tokensPerSeq, prefixTokens, pageSize };
  for (const sharing of [true, false]) {
    const cache = new KVCache({ pageSize, maxPages: numSequences * Math.ceil(tokensPerSeq / pageSize) + 16, enablePrefixSharing: sharing });
    const t0 = performance.now();
    seqs.forEach((s, i) => cache.attach(i, s));
    const ms = performance.now() - t0;
    const s = cache.stats();
    for (let i = 0; i < numSequences; i++) cache.detach(i);
    const key = sharing ? 'shared' : 'unshared';
    result[`${key}Pages`] = s.usedPages;
    result[`${key}AttachMeanMs`] = ms / numSequences;
    result[`${key}LeakedPages`] = cache.stats().usedPages;
    cache.dispose();
  }
  result.pagesSaved = result.unsharedPages - result.sharedPages;
  return result;
}

/** matchPrefix cost per token on a fully cached sequence (includes copying it into wasm). */
export async function benchmarkPrefixMatch({ tokens = 65536, pageSize = 16 } = {}) {
  await init();
  const [seq] = randomSequences(1, tokens, 99);
  const cache = new KVCache({ pageSize, maxPages: Math.ceil(tokens / pageSize) + 1 });
  try {
    cache.attach(1, seq);
    const reps = quick ? 20 : 100;
    for (let r = 0; r < 50; r++) cache.matchPrefix(seq); // warm-up: let V8 tier the wasm up
    let matched = 0;
    const ns = nsPerOp(reps * tokens, () => {
      for (let r = 0; r < reps; r++) matched = cache.matchPrefix(seq);
    });
    if (matched !== tokens) throw new Error(`matchPrefix returned ${matched}, expected ${tokens}`);
    return { tokens, pageSize, nsPerToken: ns };
  } finally {
    cache.dispose();
  }
}

export async function runKVCacheBench() {
  const n = quick ? 300 : 1000;
  const latency = [await benchmarkKVCache({ numSequences: n, tokensPerSeq: 1000, pageSize: 512 }),
    await benchmarkKVCache({ numSequences: n, tokensPerSeq: 1000, pageSize: 16 })];
  const sharing = [await benchmarkSharedPrefix({ numSequences: n, pageSize: 512 }),
    await benchmarkSharedPrefix({ numSequences: n, pageSize: 16 })];
  const match = [await benchmarkPrefixMatch({ pageSize: 16 }), await benchmarkPrefixMatch({ pageSize: 512 })];
  printTable('KVCache latency through the JS API (ms; 1000-token sequences)', latency.map((r) => ({
    seqs: r.numSequences, page: r.pageSize,
    attachP50: r.attachP50Ms, attachP95: r.attachP95Ms, attachP99: r.attachP99Ms,
    getP50: r.getP50Ms, getP95: r.getP95Ms, detachP50: r.detachP50Ms, detachP95: r.detachP95Ms,
    peakRssMb: r.peakRssMb, leakedPages: r.leakedPages,
  })));
  printTable('Shared prefix (512 common tokens): pages used', sharing.map((r) => ({
    seqs: r.numSequences, page: r.pageSize, shared: r.sharedPages, unshared: r.unsharedPages,
    saved: r.pagesSaved, leakedAfterDetach: r.sharedLeakedPages + r.unsharedLeakedPages,
  })));
  printTable('matchPrefix cost', match);
  const file = await writeResults('kv-cache', { latency, sharing, match });
  console.log(`\nwritten ${file.pathname}`);
  return { latency, sharing, match };
}

if (isMain(import.meta)) await runKVCacheBench();
