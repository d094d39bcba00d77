// SPDX-License-Identifier: MIT
// The demo's fallback fusion (demo/retrieval.mjs fuse()) must rank and score exactly as the
// RetrievalPipeline does, so the page shows the same hybrid list with or without the pipeline.
// With every document embedded and fewer documents than the candidate depth (50), both see the
// same candidates, so the results must agree.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { fuse } from '../../demo/retrieval.mjs';
import { llmds, disposeAfterEach } from './llmds.mjs';

const { init, HNSW, InvertedIndex, RetrievalPipeline } = llmds;
const track = disposeAfterEach();
before(() => init());

const words = ['kv', 'cache', 'page', 'prefix', 'token', 'batch', 'query', 'vector', 'index', 'score'];

function corpus(seed) {
  let s = seed;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: 40 }, (_, id) => ({
    id,
    text: Array.from({ length: 6 }, () => words[Math.floor(next() * words.length)]).join(' '),
    embedding: Float32Array.from({ length: 8 }, () => next() * 2 - 1),
  }));
}

for (const method of ['weighted', 'rrf']) {
  for (const alpha of [0, 0.3, 0.5, 1]) {
    test(`demo fuse() equals RetrievalPipeline.search (${method}, w ${alpha})`, () => {
      const docs = corpus(7);
      const pipeline = track(new RetrievalPipeline({ embeddingDim: 8, hnswM: 8, hnswEfConstruction: 64, seed: 3, tokenBudget: 0 }));
      const hnsw = track(new HNSW({ dim: 8, M: 8, efConstruction: 64, seed: 3, metric: 'cosine' }));
      const bm25 = track(new InvertedIndex());
      for (const d of docs) {
        pipeline.addDocument(d.id, d.text, d.embedding);
        hnsw.add(d.embedding, d.id);
        bm25.addDocument(d.id, d.text);
      }
      const query = 'prefix cache token';
      const q = corpus(99)[0].embedding;
      const expected = pipeline.search(query, { queryEmbedding: q, topK: 10, fusionWeight: alpha, fusion: method });
      const dense = hnsw.search(q, 50, { efSearch: 100 }).map(([id, d]) => [id, 1 - d]);
      const got = fuse(bm25.search(query, 50), dense, { topK: 10, alpha, method });
      assert.deepEqual(got.map((h) => h.id), expected.map(([id]) => id));
      got.forEach((h, i) => assert.ok(Math.abs(h.score - expected[i][1]) < 1e-6, `${h.score} vs ${expected[i][1]}`));
    });
  }
}
