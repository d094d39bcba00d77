// SPDX-License-Identifier: MIT
// Hybrid retrieval benchmark through the JS API: RetrievalPipeline QPS (cache misses and hits)
// and top-10 overlap with the exact fusion, on a seeded corpus whose text and embeddings share
// topics (so BM25 and dense both carry signal); and the build rate at 5k vs 50k documents.
//   node bench/retrieval.mjs [--quick]
import { llmds, rng, nsPerOp, printTable, writeResults, isMain, quick } from './lib.mjs';

const { init, RetrievalPipeline, InvertedIndex, HNSW, memoryProfiler } = llmds;

/** Topics with their own words and embedding centroid; documents mix a topic with Zipf noise. */
export function hybridCorpus({ docs, dim, topics = 50, vocabulary = 5000, seed = 1 }) {
  const next = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
  const word = (i) => `w${i.toString(36)}`;
  const zipf = () => Math.min(vocabulary - 1, Math.floor(Math.exp(next() * Math.log(vocabulary))) - 1);
  const centroids = Array.from({ length: topics }, () => Float32Array.from({ length: dim }, gauss));
  const topicWords = Array.from({ length: topics }, () => Array.from({ length: 20 }, () => Math.floor(next() * vocabulary)));
  const embedNear = (topic, spread) => {
    const c = centroids[topic];
    return Float32Array.from({ length: dim }, (_, j) => c[j] + spread * gauss());
  };
  const documents = Array.from({ length: docs }, (_, id) => {
    const topic = Math.floor(next() * topics);
    const words = [];
    const length = 20 + Math.floor(next() * 40);
    for (let i = 0; i < length; i++) words.push(word(next() < 0.3 ? topicWords[topic][Math.floor(next() * 20)] : zipf()));
    return { id, text: words.join(' '), embedding: embedNear(topic, 1.5) };
  });
  const query = () => {
    const topic = Math.floor(next() * topics);
    const terms = 2 + Math.floor(next() * 3);
    const text = Array.from({ length: terms }, () => word(next() < 0.6 ? topicWords[topic][Math.floor(next() * 20)] : zipf())).join(' ');
    return { text, embedding: embedNear(topic, 1.5) };
  };
  return { documents, query };
}

export async function benchmarkRetrieval({ docs = quick ? 5000 : 20000, dim = 384, queries = quick ? 200 : 1000, topK = 10 } = {}) {
  await init();
  const { documents, query } = hybridCorpus({ docs, dim });
  const qs = Array.from({ length: queries }, query);
  const mem = memoryProfiler();
  const pipeline = new RetrievalPipeline({ embeddingDim: dim, seed: 3 });
  try {
    const t0 = performance.now();
    for (const d of documents) pipeline.addDocument(d.id, d.text, d.embedding);
    const buildSeconds = (performance.now() - t0) / 1000;
    mem.sample();
    const run = (fn) => {
      for (const q of qs.slice(0, 20)) fn(q, -1); // warm-up
      return 1e9 / nsPerOp(qs.length, () => qs.forEach(fn), 3);
    };
    let round = 0;
    // Every repetition changes the text by a suffix token that matches nothing, so each search
    // misses the result cache: the QPS of real work.
    const missQps = run((q, i) => pipeline.search(`${q.text} zz${round++}`, { queryEmbedding: q.embedding, topK }));
    const hitQps = run((q) => pipeline.search(q.text, { queryEmbedding: q.embedding, topK }));
    const bm25Qps = run((q) => pipeline.search(`${q.text} zz${round++}`, { topK }));
    let overlap = 0;
    let overlapRrf = 0;
    for (const q of qs) {
      const options = { queryEmbedding: q.embedding, topK };
      const exact = new Set(pipeline.searchExhaustive(q.text, options).map(([id]) => id));
      overlap += pipeline.search(q.text, options).filter(([id]) => exact.has(id)).length / Math.max(1, exact.size);
      const rrf = { ...options, fusion: 'rrf' };
      const exactRrf = new Set(pipeline.searchExhaustive(q.text, rrf).map(([id]) => id));
      overlapRrf += pipeline.search(q.text, rrf).filter(([id]) => exactRrf.has(id)).length / Math.max(1, exactRrf.size);
    }
    const stats = pipeline.stats();
    return {
      docs, dim, queries, topK,
      buildDocsPerSec: docs / buildSeconds,
      hybridQps: missQps,
      cachedQps: hitQps,
      bm25OnlyQps: bm25Qps,
      overlapWeighted: overlap / qs.length,
      overlapRrf: overlapRrf / qs.length,
      wasmHeapMb: mem.peakWasmHeapMb,
      pipelineMb: stats.bytes / 2 ** 20,
    };
  } finally {
    pipeline.dispose();
  }
}

/**
 * Build-rate scaling: a pipeline of 5,000 and one of 50,000 documents of hybridCorpus at 64-d
 * (M 8, efConstruction 40; the 5k build is the first 5k documents of the same corpus). Docs/s per
 * CPU second (process.cpuUsage(): the machines are shared) and wall; `ratio` = 50k rate / 5k rate
 * stays near 1 unless adding a document costs more as the pipeline grows. llmds_bench --suite
 * retrieval-build measures the same natively (bench/cpp/retrieval_bench.cpp).
 */
export async function benchmarkBuildScaling({ sizes = [5000, 50000], dim = 64 } = {}) {
  await init();
  const { documents } = hybridCorpus({ docs: Math.max(...sizes), dim });
  /** Wall and CPU seconds of fn(): the rates are per CPU second because the machines are shared. */
  const timed = (fn) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    const c = process.cpuUsage(c0);
    return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (c.user + c.system) / 1e6 };
  };
  const build = (docs) => {
    const pipeline = new RetrievalPipeline({ embeddingDim: dim, hnswM: 8, hnswEfConstruction: 40 });
    try {
      const t = timed(() => {
        for (let i = 0; i < docs; i++) pipeline.addDocument(documents[i].id, documents[i].text, documents[i].embedding);
      });
      return { docs, dim, docsPerSec: docs / t.seconds, docsPerCpuSec: docs / t.cpuSeconds };
    } finally {
      pipeline.dispose();
    }
  };
  // The same vectors into a plain HNSW with the same settings: what the dense side costs alone,
  // so the table shows how much of the slowdown with size is HNSW's own (cache misses as the
  // graph outgrows the CPU caches) rather than the pipeline's.
  const hnswOnly = (docs) => {
    const index = new HNSW({ dim, M: 8, efConstruction: 40, metric: 'cosine' });
    try {
      return docs / timed(() => {
        for (let i = 0; i < docs; i++) index.add(documents[i].embedding, documents[i].id);
      }).cpuSeconds;
    } finally {
      index.dispose();
    }
  };
  build(2000); // warm-up (the engine tiers the wasm up), as hnsw.mjs warms up with 1,000 vectors
  hnswOnly(2000);
  const rows = sizes.map((docs) => ({ ...build(docs), hnswVectorsPerCpuSec: hnswOnly(docs) }));
  const first = rows[0];
  const last = rows[rows.length - 1];
  return {
    rows,
    ratio: last.docsPerCpuSec / first.docsPerCpuSec,
    wallRatio: last.docsPerSec / first.docsPerSec,
    hnswRatio: last.hnswVectorsPerCpuSec / first.hnswVectorsPerCpuSec,
  };
}

export async function runRetrievalBench() {
  const scaling = await benchmarkBuildScaling();
  printTable('RetrievalPipeline build rate vs size (64-d, M 8, efConstruction 40, through the JS API)', scaling.rows.map((row) => ({
    docs: row.docs,
    'docs/s': Math.round(row.docsPerSec),
    'docs/CPU s': Math.round(row.docsPerCpuSec),
    'plain HNSW vectors/CPU s': Math.round(row.hnswVectorsPerCpuSec),
    'pipeline / HNSW': (row.docsPerCpuSec / row.hnswVectorsPerCpuSec).toFixed(2),
  })));
  const big = scaling.rows.at(-1).docs / 1000;
  const small = scaling.rows[0].docs / 1000;
  console.log(`  ${big}k / ${small}k per CPU s: pipeline ${scaling.ratio.toFixed(2)}, plain HNSW ${scaling.hnswRatio.toFixed(2)}`);
  const r = await benchmarkRetrieval();
  r.buildScaling = scaling;
  printTable(`RetrievalPipeline hybrid search (${r.docs} docs × ${r.dim}-d, top-${r.topK}, through the JS API)`, [{
    'build docs/s': Math.round(r.buildDocsPerSec),
    'hybrid QPS (cache miss)': Math.round(r.hybridQps),
    'cached QPS': Math.round(r.cachedQps),
    'BM25-only QPS': Math.round(r.bm25OnlyQps),
    'overlap@10 weighted': r.overlapWeighted,
    'overlap@10 rrf': r.overlapRrf,
    'pipeline MB': r.pipelineMb,
  }]);
  const file = await writeResults('retrieval', r);
  console.log(`\nwritten ${file.pathname}`);
  return r;
}

if (isMain(import.meta)) await runRetrievalBench();
