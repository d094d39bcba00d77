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

  // HNSW: a seeded build must give the same graph (hence serialized bytes) in every runtime.
  const dim = 16;
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  const vectors = Float32Array.from({ length: 300 * dim }, rand);
  const index = new llmds.HNSW({ dim, M: 8, efConstruction: 64, seed: 42, metric: 'cosine' });
  try {
    index.addBatch(vectors, Array.from({ length: 300 }, (_, i) => i));
    index.remove(3);
    const bytes = index.serialize();
    const copy = llmds.HNSW.deserialize(bytes);
    const query = vectors.subarray(5 * dim, 6 * dim);
    out.hnsw = {
      top: index.search(query, 5).map(([id, d]) => [id, Math.round(d * 1e5) / 1e5 || 0]), // || 0: no -0
      sameAfterRoundTrip: JSON.stringify(copy.search(query, 5)) === JSON.stringify(index.search(query, 5)),
      checksum: bytes.reduce((h, b) => (Math.imul(h, 31) + b) >>> 0, 0),
      bytes: bytes.length,
      stats: index.stats(),
    };
    copy.dispose();
  } finally {
    index.dispose();
  }
  return out;
}
