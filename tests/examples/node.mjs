import { init, KVCache, LlmdsError } from 'llmds';

await init(); // loads the engine once: the wasm SIMD build where supported
const cache = new KVCache({ pageSize: 16, maxPages: 4096 });
try {
  const system = Array.from({ length: 64 }, (_, i) => i + 1); // a 64-token system prompt
  cache.attach(1, [...system, 900, 901]);
  const plan = cache.attach(2, [...system, 902], system); // shares the 4 pages of the system prompt
  console.log(plan.cachedTokens, plan.newPages); // 64 Int32Array [ 5 ]: compute K/V from position 64 into page 5
  cache.fork(2, 3); // parallel sampling: no copy
  console.log(cache.append(3, [7]).copies); // Int32Array [ 5, 6 ]: copy-on-write of the shared tail page
  console.log(cache.matchPrefix([...system, 5])); // 64: prefill can skip these tokens
  console.log(cache.blockTable(2)); // Int32Array of page ids for a paged-attention kernel
  console.log(cache.stats().sharedPages); // 4
  cache.fork(99, 4);
} catch (e) {
  if (!(e instanceof LlmdsError)) throw e;
  console.log(e.code); // "not_found": sequence 99 does not exist
} finally {
  cache.dispose(); // wasm memory is not garbage collected
}
