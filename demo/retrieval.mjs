// SPDX-License-Identifier: MIT
// Retrieval over the demo corpus: BM25 (InvertedIndex), dense (HNSW over the embeddings) and a
// hybrid of both. The hybrid list comes from the package's RetrievalPipeline when the package
// exports one; otherwise this module fuses the two lists itself (see fuse()).

/** Candidates taken from each list before fusing. */
const CANDIDATES = 50;

/** Mean ms per call of fn, repeated for at least 4 ms: the browser's clock is coarse (~0.1 ms). */
export function timeIt(fn, minMs = 4) {
  let n = 0;
  let result;
  const t0 = performance.now();
  let elapsed;
  do {
    result = fn();
    n++;
    elapsed = performance.now() - t0;
  } while (elapsed < minMs && n < 5000);
  return { result, ms: elapsed / n, runs: n };
}

/**
 * Fuses BM25 `[id, score]` and dense `[id, cosine similarity]` lists, best first, with the
 * RetrievalPipeline's formulas (src/llmds/retrieval_pipeline.hpp):
 * - `weighted`: `alpha · dense + (1 − alpha) · bm25`, where bm25 = BM25 / the list's best BM25
 *   and dense = the similarity mapped to [0, 1] ((1 + cos) / 2, as 1 − d/2 for cosine distance
 *   d), then rescaled min-max over the dense list (a single or all-equal list scores 1). Unlike
 *   the pipeline, a BM25 hit missing from the dense list counts dense as 0 here (the pipeline
 *   computes its exact similarity).
 * - `rrf`: reciprocal rank fusion, `alpha / (60 + rank_dense) + (1 − alpha) / (60 + rank_bm25)`
 *   (ranks from 1).
 * Ties go to the lower id. Returns `[{ id, score, bm25Rank?, denseRank? }]`.
 */
export function fuse(bm25, dense, { topK = 10, alpha = 0.5, method = 'weighted' } = {}) {
  const byId = new Map();
  const entry = (id) => {
    let e = byId.get(id);
    if (!e) byId.set(id, (e = { id, score: 0 }));
    return e;
  };
  const bestBm25 = bm25.reduce((best, [, s]) => Math.max(best, s), 0);
  const sims = dense.map(([, cos]) => (1 + cos) / 2);
  const lo = Math.min(...sims);
  const hi = Math.max(...sims);
  const denseNorm = (sim) => (hi > lo ? Math.min(1, Math.max(0, (sim - lo) / (hi - lo))) : 1);
  bm25.forEach(([id, s], i) => {
    const e = entry(id);
    e.bm25Rank = i + 1;
    e.score += method === 'rrf' ? (1 - alpha) / (60 + i + 1) : bestBm25 > 0 ? ((1 - alpha) * s) / bestBm25 : 0;
  });
  dense.forEach(([id], i) => {
    const e = entry(id);
    e.denseRank = i + 1;
    e.score += method === 'rrf' ? alpha / (60 + i + 1) : alpha * denseNorm(sims[i]);
  });
  return [...byId.values()].sort((a, b) => b.score - a.score || a.id - b.id).slice(0, topK);
}

const isZero = (v) => v.every((x) => x === 0);

/** Checks an embedder's output: one finite vector of `dim` numbers per text, as Float32Array. */
function checkVectors(out, n, dim) {
  if (!Array.isArray(out) || out.length !== n) throw new Error(`embed(texts) must return an array of ${n} vectors, got ${out?.length ?? typeof out}`);
  return out.map((v, i) => {
    const f = v instanceof Float32Array ? v : Float32Array.from(v);
    if (dim !== undefined && f.length !== dim) throw new Error(`embed: vector ${i} has ${f.length} dimensions, expected ${dim}`);
    if (!f.every(Number.isFinite)) throw new Error(`embed: vector ${i} holds a non-finite number`);
    return f;
  });
}

/**
 * Indexes `docs` (`[{ id, title, text }]`) with `embedder` (`{ name, embed(texts) }`, embed may
 * be async). Resolves to a retriever: `search(query, { topK, alpha, method })`, `info`, `dispose()`.
 */
export async function buildRetriever(llmds, docs, embedder, { onProgress = () => {} } = {}) {
  const { HNSW, InvertedIndex, RetrievalPipeline } = llmds;
  const texts = docs.map((d) => `${d.title}. ${d.text}`);
  const byId = new Map(docs.map((d) => [d.id, d]));
  const timings = {};

  let t0 = performance.now();
  const vectors = [];
  const BATCH = 32;
  for (let i = 0; i < texts.length; i += BATCH) {
    const batch = texts.slice(i, i + BATCH);
    vectors.push(...checkVectors(await embedder.embed(batch), batch.length, vectors[0]?.length));
    onProgress(`embedding documents ${Math.min(i + BATCH, texts.length)}/${texts.length}`);
  }
  timings.embedMs = performance.now() - t0;
  const dim = vectors[0].length;

  t0 = performance.now();
  const bm25Index = new InvertedIndex();
  docs.forEach((d, i) => bm25Index.addDocument(d.id, texts[i]));
  timings.bm25Ms = performance.now() - t0;

  t0 = performance.now();
  const hnsw = new HNSW({ dim, metric: 'cosine', M: 16, efConstruction: 200, efSearch: 64, seed: 1 });
  docs.forEach((d, i) => isZero(vectors[i]) || hnsw.add(vectors[i], d.id)); // a featureless text stays BM25-only
  timings.hnswMs = performance.now() - t0;

  // Warm up the search paths (the wasm engine compiles hot code lazily) so the first query's
  // timings are representative.
  for (let i = 0; i < 20; i++) {
    bm25Index.search(texts[i], 10);
    if (hnsw.size) hnsw.search(vectors[i], 10);
  }

  // The package's own hybrid search, when it has one; else fuse() above.
  let pipeline = null;
  let pipelineError = null;
  if (typeof RetrievalPipeline === 'function') {
    try {
      t0 = performance.now();
      pipeline = new RetrievalPipeline({ embeddingDim: dim, metric: 'cosine', seed: 1 });
      docs.forEach((d, i) => (isZero(vectors[i]) ? pipeline.addDocument(d.id, texts[i]) : pipeline.addDocument(d.id, texts[i], vectors[i])));
      timings.pipelineMs = performance.now() - t0;
      pipeline.search(texts[0], { queryEmbedding: vectors[0], topK: 10 }); // warm-up, like the indexes above
    } catch (e) {
      pipeline?.dispose?.();
      pipeline = null;
      pipelineError = String(e?.message ?? e);
    }
  }

  const info = {
    documents: docs.length,
    dim,
    embedder: embedder.name ?? 'custom embedder',
    hybrid: pipeline ? 'RetrievalPipeline' : 'fused in the page',
    pipelineError,
    timings,
    bm25Bytes: bm25Index.stats().bytes,
    hnswBytes: hnsw.stats().bytes,
  };

  const describe = (id, extra) => ({ id, title: byId.get(id)?.title ?? `#${id}`, topic: byId.get(id)?.topic, text: byId.get(id)?.text ?? '', ...extra });

  async function search(query, { topK = 5, alpha = 0.5, method = 'weighted' } = {}) {
    const n = Math.max(CANDIDATES, topK);
    // Embed once for real; time the built-in (synchronous) embedder over repeated runs.
    let t = performance.now();
    const [qv] = checkVectors(await embedder.embed([query]), 1, dim);
    let embedMs = performance.now() - t;
    if (embedder.builtin) embedMs = timeIt(() => embedder.embed([query])).ms;
    const hasVector = !isZero(qv);

    const bm25 = timeIt(() => bm25Index.search(query, n));
    const dense = hasVector
      ? timeIt(() => hnsw.search(qv, Math.min(n, Math.max(hnsw.size, 1)), { efSearch: Math.max(64, n) }).map(([id, d]) => [id, 1 - d]))
      : { result: [], ms: 0 };

    let hybrid;
    let hybridMs;
    let cachedMs; // pipeline only: a repeated query, from its result cache
    if (pipeline) {
      const opts = { topK, fusionWeight: alpha, fusion: method, ...(hasVector ? { queryEmbedding: qv } : {}) };
      // The first run of a query is the real cost; repeats are answered by the result cache.
      t = performance.now();
      const list = await pipeline.search(query, opts);
      hybridMs = embedMs + performance.now() - t;
      cachedMs = timeIt(() => pipeline.search(query, opts)).ms;
      const bRank = new Map(bm25.result.map(([id], i) => [id, i + 1]));
      const dRank = new Map(dense.result.map(([id], i) => [id, i + 1]));
      hybrid = list.map(([id, score]) => ({ id, score, bm25Rank: bRank.get(id), denseRank: dRank.get(id) }));
    } else {
      const f = timeIt(() => fuse(bm25.result, dense.result, { topK, alpha, method }));
      hybrid = f.result;
      hybridMs = embedMs + bm25.ms + dense.ms + f.ms;
    }
    return {
      hasVector,
      bm25: { ms: bm25.ms, items: bm25.result.slice(0, topK).map(([id, score]) => describe(id, { score })) },
      dense: { ms: dense.ms, embedMs, items: dense.result.slice(0, topK).map(([id, score]) => describe(id, { score })) },
      hybrid: { ms: hybridMs, cachedMs, items: hybrid.map((h) => describe(h.id, h)) },
    };
  }

  function dispose() {
    bm25Index.dispose();
    hnsw.dispose();
    pipeline?.dispose?.();
  }

  return { search, info, dispose };
}
