// SPDX-License-Identifier: MIT
// One scenario, every runtime: Node computes the expected result, and the browser page, the
// module Web Worker, workerd and Deno must produce exactly the same object. Takes the llmds
// module namespace (however the runtime imported it) after init() resolved; plain JSON out.
export async function runScenario(llmds) {
  const out = {};

  const cache = new llmds.KVCache({ pageSize: 4, maxPages: 64 });
  try {
    const system = [1, 2, 3, 4, 5, 6, 7, 8];
    cache.attach(1, [...system, 9, 10], system);
    cache.attach(2, [...system, 11], system);
    cache.fork(2, 3);
    cache.append(3, [12, 13, 14, 15]);
    cache.detach(1);
    out.kv = {
      seq2: Array.from(cache.get(2)),
      seq3: Array.from(cache.get(3)),
      match: cache.matchPrefix([...system, 99]),
      stats: cache.stats(),
    };
    try {
      cache.fork(9, 10);
    } catch (e) {
      out.kv.error = [e.name, e.code, e instanceof llmds.LlmdsError];
    }
  } finally {
    cache.dispose();
  }
  return out;
}
