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
      blockHashes: Array.from(llmds.KVCache.blockHashes([...system, 9, 10, 11, 12], 4), String),
    };
    try {
      cache.fork(9, 10);
    } catch (e) {
      out.kv.error = [e.name, e.code, e instanceof llmds.LlmdsError];
    }
  } finally {
    cache.dispose();
  }

  // K/V payload and paged attention (rounded: f32 sums may differ in the last bit across builds).
  const paged = new llmds.KVCache({ pageSize: 4, maxPages: 16, kv: { layers: 1, kvHeads: 2, headDim: 3, dtype: 'f16' } });
  try {
    paged.attach(1, [1, 2, 3, 4, 5, 6, 7]);
    const values = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));
    paged.writeKV(1, 0, 0, values(7 * 6, 1), values(7 * 6, 2));
    paged.fork(1, 2);
    paged.writeKV(2, 0, 6, values(6, 3), values(6, 4)); // copy-on-write of the shared tail
    const round = (a) => Array.from(a, (x) => Math.round(x * 1e5) / 1e5 || 0);
    out.payload = {
      attention: round(paged.attention(1, 0, values(2 * 4 * 3, 5), { numHeads: 4 })),
      forked: round(paged.readKV(2, 0, 6, 1).k),
      original: round(paged.readKV(1, 0, 6, 1).k),
      payloadBytes: paged.stats().payloadBytes,
    };
  } finally {
    paged.dispose();
  }

  // The block manager: plans and KV events (bigints as strings: the result is JSON).
  const manager = new llmds.KVCache({ pageSize: 4, maxPages: 6, events: true });
  try {
    const plain = (plan) => ({ ...plan, blockTable: Array.from(plan.blockTable), newPages: Array.from(plan.newPages), copies: Array.from(plan.copies) });
    const plans = [manager.attach(1, [1, 2, 3, 4, 5, 6, 7, 8, 9]), manager.attach(2, [1, 2, 3, 4, 5, 6, 7, 8, 40, 41])];
    manager.fork(2, 3);
    plans.push(manager.append(3, [42]));
    manager.detach(1);
    manager.detach(2);
    manager.detach(3);
    manager.attach(4, [60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76]); // evicts
    manager.clear();
    out.blockManager = {
      plans: plans.map(plain),
      events: manager.drainEvents().map((e) => ({
        ...e,
        ...(e.blockHashes && { blockHashes: Array.from(e.blockHashes, String) }),
        ...(e.tokens && { tokens: Array.from(e.tokens) }),
        ...(e.parentHash !== undefined && { parentHash: e.parentHash === null ? null : String(e.parentHash) }),
      })),
    };
  } finally {
    manager.dispose();
  }

  // KVRouter: approximate routing, precise mirroring of a cache's events (llmds and vLLM shapes),
  // loads, and a snapshot restored (bytes as a checksum-free sum: the result is JSON).
  const router = new llmds.KVRouter({ blockSize: 4 });
  const precise = new llmds.KVRouter({ blockSize: 4, mode: 'precise' });
  const source = new llmds.KVCache({ pageSize: 4, maxPages: 8, events: true });
  try {
    const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
    for (const w of ['http://b', 'http://a']) router.addWorker(w);
    for (const w of ['cache', 'vllm']) precise.addWorker(w);
    const first = router.route(prompt, { requestId: 'r1' });
    router.started(first.worker, 'r1', prompt.length);
    const second = router.route({ text: 'system prompt '.repeat(20) }, { requestId: 'r2' });
    router.finished('r1');
    source.attach(1, prompt);
    const events = source.drainEvents();
    precise.applyEvents('cache', events);
    precise.applyEvents('vllm', [{ type: 'BlockStored', block_hashes: ['7', '8'], parent_block_hash: null, token_ids: prompt.slice(0, 8), block_size: 4 }]);
    const restored = llmds.KVRouter.deserialize(router.serialize());
    out.router = {
      first, second,
      again: router.route([...prompt.slice(0, 8), 99]),
      precise: precise.route(prompt),
      restored: restored.route(prompt).candidates,
      stats: router.stats(),
      snapshotSum: Array.from(router.serialize()).reduce((a, b) => (a * 31 + b) >>> 0, 0),
    };
    restored.dispose();
    try {
      precise.applyEvents('vllm', [{ type: 'BlockStored', block_hashes: [9], parent_block_hash: 1234, token_ids: [1, 2, 3, 4], block_size: 4 }]);
    } catch (e) {
      out.router.error = [e.name, e.code, e instanceof llmds.LlmdsError];
    }
  } finally {
    router.dispose();
    precise.dispose();
    source.dispose();
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
      // Filtered: the k nearest among allowed ids (graph walk, predicate, exact scan).
      filtered: {
        byIds: index.search(query, 5, { filter: Uint32Array.from({ length: 100 }, (_, i) => i * 3) }).map(([id]) => id),
        byPredicate: index.search(query, 5, { filter: (id) => id % 7 === 0 }).map(([id]) => id),
        exactScan: index.search(query, 5, { filter: [10, 20, 30, 40, 50, 60, 3] }).map(([id]) => id),
        batch: Array.from(index.searchBatch([query, vectors.subarray(0, dim)], 3, { filter: new Set([1, 2, 4, 8, 16, 32, 64, 128]) }).ids),
      },
    };
    for (let i = 0; i < 300; i += 4) if (index.has(i)) index.remove(i);
    index.compact(); // deterministic too: the same bytes everywhere
    const compacted = index.serialize();
    out.hnsw.compacted = {
      checksum: compacted.reduce((h, b) => (Math.imul(h, 31) + b) >>> 0, 0),
      stats: index.stats(),
      top: index.search(query, 3).map(([id]) => id),
    };
    copy.dispose();
  } finally {
    index.dispose();
  }

  // Quantized HNSW: codes, the walk and the rescoring are the same in every runtime and build.
  for (const [quantization, rescore] of [['f16', 0], ['i8', 4], ['b1', 20]]) {
    const q = new llmds.HNSW({ dim, M: 8, efConstruction: 64, seed: 42, metric: 'cosine', quantization, rescore });
    try {
      q.addBatch(vectors, Array.from({ length: 300 }, (_, i) => i));
      const bytes = q.serialize();
      (out.quantized ??= {})[quantization] = {
        top: q.search(vectors.subarray(5 * dim, 6 * dim), 5).map(([id, d]) => [id, Math.round(d * 1e5) / 1e5 || 0]),
        checksum: bytes.reduce((h, b) => (Math.imul(h, 31) + b) >>> 0, 0),
        bytes: q.stats().bytes,
        rescoreBytes: q.stats().rescoreBytes,
      };
    } finally {
      q.dispose();
    }
  }

  // Scheduler and AdmissionController on a fake clock.
  let t = 0;
  const now = () => t;
  const scheduler = new llmds.Scheduler({ maxBatchSize: 3, maxWaitMs: 10, now });
  const admission = new llmds.AdmissionController({ qpsTarget: 5, tokenRateLimit: 1000, now });
  try {
    const decisions = [];
    const ids = [];
    for (let i = 0; i < 6; i++) {
      const [admitted, reason] = admission.shouldAdmit(100);
      decisions.push(admitted ? 'admitted' : reason.split(':')[0]);
      if (admitted) ids.push(scheduler.submit(10 + i, i % 2 ? 50 : undefined));
      t += 120;
    }
    const batches = [];
    for (let b = scheduler.getBatch(); b.length > 0 || scheduler.stats().queued > 0; b = scheduler.getBatch(true)) {
      batches.push(b);
      scheduler.completeBatch(b);
      if (batches.length > 10) break;
    }
    out.serving = { decisions, ids, batches, scheduler: scheduler.stats(), admission: admission.stats() };
  } finally {
    scheduler.dispose?.();
    admission.dispose?.();
  }

  // RetrievalPipeline: hybrid search over a tiny corpus with embeddings for some documents.
  const rag = new llmds.RetrievalPipeline({ embeddingDim: 4, hnswM: 8, hnswEfConstruction: 32, seed: 5 });
  try {
    rag.addDocument(1, 'paged attention keeps the kv cache in fixed size blocks', [1, 0, 0, 0], { metadata: { lang: 'en', year: 2023, paged: true } });
    rag.addDocument(2, 'bm25 ranks documents by term frequency and inverse document frequency', [0, 1, 0, 0], { metadata: { lang: 'en', year: 1994 } });
    rag.addDocument(3, 'prefix caching reuses the kv cache of a shared system prompt', [0.8, 0.2, 0, 0], { metadata: { lang: 'de', year: 2024 } });
    rag.addDocument(4, 'hnsw is a graph index for approximate nearest neighbours');
    const round = (hits) => hits.map(([id, score]) => [id, Math.round(score * 1e9) / 1e9]);
    const restoredWithMetadata = llmds.RetrievalPipeline.deserialize(rag.serialize());
    out.ragFilters = {
      where: round(rag.search('kv cache', { queryEmbedding: [1, 0.1, 0, 0], where: { lang: { in: ['en', 'de'] }, year: { gte: 2000 } } })),
      whereNone: round(rag.search('kv cache', { where: { paged: false } })),
      filtered: round(rag.search('kv cache', { queryEmbedding: [1, 0.1, 0, 0], filter: (id) => id !== 1 })),
      both: round(rag.search('index', { queryEmbedding: [0, 1, 0, 0], where: { lang: 'en' }, filter: [2, 4] })),
      metadata: restoredWithMetadata.getMetadata(1),
      restoredWhere: round(restoredWithMetadata.search('cache', { where: { year: { lt: 2024 } } })),
    };
    restoredWithMetadata.dispose();
    out.rag = {
      bm25: round(rag.search('kv cache')),
      hybrid: round(rag.search('kv cache', { queryEmbedding: [1, 0.1, 0, 0], topK: 3 })),
      rrf: round(rag.search('graph index', { queryEmbedding: [0, 1, 0, 0], fusion: 'rrf' })),
      restored: round(llmds.RetrievalPipeline.deserialize(rag.serialize()).search('kv cache')),
      stats: rag.stats(),
    };
  } finally {
    rag.dispose();
  }
  return out;
}
