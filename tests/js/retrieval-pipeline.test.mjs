// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';

const { init, RetrievalPipeline } = llmds;
// Node 20 has no `using` syntax: what a test tracks is disposed after it.
const track = disposeAfterEach();

function corpus(options = {}) {
  const p = track(new RetrievalPipeline({ embeddingDim: 4, hnswM: 8, hnswEfConstruction: 64, seed: 7, ...options }));
  p.addDocument(0, 'apple banana apple', [1, 0, 0, 0]);
  p.addDocument(1, 'apple apple apple apple cherry', Float32Array.of(0, 1, 0, 0));
  p.addDocument(2, 'banana cherry', [0.9, 0.1, 0, 0]);
  p.addDocument(3, 'durian', [0, 0, 1, 0]);
  return p;
}

describe('RetrievalPipeline', () => {
  before(async () => {
    await init();
  });

  test('weighted fusion: BM25 at w=0, dense at w=1, best first', () => {
    const p = corpus();
    const q = [1, 0, 0, 0];
    const sparse = p.search('apple', { queryEmbedding: q, fusionWeight: 0 });
    assert.equal(sparse[0][0], 1);
    assert.equal(sparse[0][1], 1);
    const dense = p.search('apple', { queryEmbedding: q, fusionWeight: 1 });
    assert.deepEqual(dense.slice(0, 2).map(([id]) => id), [0, 2]);
    const mixed = p.search('apple', { queryEmbedding: Float32Array.from(q) });
    assert.equal(mixed[0][0], 0);
    for (let i = 1; i < mixed.length; i++) assert.ok(mixed[i - 1][1] >= mixed[i][1]);
  });

  test('a single BM25 hit scores 1, not 0; no match is empty', () => {
    const p = corpus();
    assert.deepEqual(p.search('durian'), [[3, 1]]);
    assert.deepEqual(p.search('nothing here'), []);
  });

  test('reciprocal rank fusion', () => {
    const p = corpus();
    const [top] = p.search('apple', { queryEmbedding: [1, 0, 0, 0], fusion: 'rrf' });
    assert.equal(top[0], 0);
    assert.ok(Math.abs(top[1] - (0.5 / 61 + 0.5 / 62)) < 1e-12);
  });

  test('a document without an embedding is BM25 only', () => {
    const p = track(new RetrievalPipeline({ embeddingDim: 4 }));
    p.addDocument(5, 'lonely text');
    assert.deepEqual(p.stats().denseDocuments, 0);
    assert.deepEqual(p.search('lonely', { queryEmbedding: [0, 0, 0, 1] }), [[5, 1]]);
    assert.equal(p.size, 1);
    assert.equal(p.hasDocument(5), true);
  });

  test('addDocument is atomic; re-adding replaces; removeDocument', () => {
    const p = corpus();
    const before = p.search('apple banana', { queryEmbedding: [1, 0, 0, 0] });
    throwsCode(() => p.addDocument(0, 'zebra', [1, 2, 3]), 'dimension_mismatch', /embedding.*3.*4/);
    throwsCode(() => p.addDocument(0, 'zebra', [1, NaN, 0, 0]), 'invalid_argument', /embedding\[1\]/);
    throwsCode(() => p.addDocument(0, 'zebra', Float32Array.of(1, NaN, 0, 0)), 'invalid_argument', /embedding\[1\]/);
    throwsCode(() => p.addDocument(9, 'zebra', [0, 0, 0, 0]), 'invalid_argument', /zero vector/);
    throwsCode(() => p.addDocument(2 ** 31, 'zebra'), 'invalid_argument', /docId/);
    throwsCode(() => p.addDocument(1.5, 'zebra'), 'invalid_argument', /docId/);
    throwsCode(() => p.addDocument(4, 42), 'invalid_argument', /text/);
    assert.deepEqual(p.search('zebra'), []);
    assert.deepEqual(p.search('apple banana', { queryEmbedding: [1, 0, 0, 0] }), before);
    p.addDocument(0, 'zebra');
    assert.equal(p.stats().denseDocuments, 3);
    assert.deepEqual(p.search('zebra'), [[0, 1]]);
    assert.equal(p.removeDocument(0), true);
    assert.equal(p.removeDocument(0), false);
    assert.equal(p.stats().documents, 3);
  });

  test('the result cache hits and is cleared by add and remove', () => {
    const p = corpus();
    p.search('apple');
    p.search('apple');
    assert.equal(p.stats().cacheHits, 1);
    p.search('apple', { topK: 3 });
    assert.equal(p.stats().cacheMisses, 2);
    p.addDocument(7, 'apple apple apple apple apple apple');
    assert.equal(p.stats().cacheEntries, 0);
    assert.equal(p.search('apple')[0][0], 7);
    p.removeDocument(7);
    assert.equal(p.search('apple')[0][0], 1);
  });

  test('tokenBudget 0 turns the result cache off', () => {
    const p = track(new RetrievalPipeline({ embeddingDim: 4, hnswM: 4, hnswEfConstruction: 16, tokenBudget: 0, seed: 1 }));
    p.addDocument(1, 'apple banana', [1, 0, 0, 0]);
    p.addDocument(2, 'apple cherry');
    const first = p.search('apple', { queryEmbedding: [1, 0, 0, 0] });
    assert.deepEqual(p.search('apple', { queryEmbedding: [1, 0, 0, 0] }), first);
    const s = p.stats();
    assert.deepEqual([s.searches, s.cacheHits, s.cacheMisses, s.cacheEntries, s.cacheTokens], [2, 0, 0, 0, 0]);
    const copy = track(RetrievalPipeline.deserialize(p.serialize()));
    assert.equal(copy.options().tokenBudget, 0);
  });

  test('bad search arguments', () => {
    const p = corpus();
    throwsCode(() => p.search('apple', { topK: 0 }), 'invalid_argument', /topK/);
    throwsCode(() => p.search('apple', { fusionWeight: 1.5 }), 'invalid_argument', /fusionWeight/);
    throwsCode(() => p.search('apple', { fusionWeight: NaN }), 'invalid_argument', /fusionWeight/);
    throwsCode(() => p.search('apple', { fusion: 'max' }), 'invalid_argument', /fusion/);
    throwsCode(() => p.search('apple', { queryEmbedding: [1, 2] }), 'dimension_mismatch', /queryEmbedding/);
    throwsCode(() => p.search('apple', { topk: 3 }), 'invalid_argument', /unknown option "topk"/);
    throwsCode(() => p.search(null), 'invalid_argument', /query/);
    throwsCode(() => new RetrievalPipeline({ metric: 'euclid' }), 'invalid_argument', /metric/);
    throwsCode(() => new RetrievalPipeline({ tokenBudget: -1 }), 'invalid_argument', /tokenBudget/);
    throwsCode(() => new RetrievalPipeline({ embeddingDim: 0 }), 'invalid_argument', /embeddingDim/);
    assert.equal(p.stats().searches, 0);
  });

  test('serialize / deserialize round trip; corrupt bytes rejected', () => {
    const p = corpus();
    p.addDocument(8, 'text only doc apple');
    const bytes = p.serialize();
    const copy = track(RetrievalPipeline.deserialize(bytes));
    assert.deepEqual(copy.options(), p.options());
    assert.equal(copy.stats().documents, 5);
    const q = { queryEmbedding: [1, 0, 0, 0] };
    assert.deepEqual(copy.search('apple', q), p.search('apple', q));
    assert.deepEqual(copy.serialize(), bytes);
    for (const n of [0, 10, 24, bytes.length - 1]) throwsCode(() => RetrievalPipeline.deserialize(bytes.subarray(0, n)), 'corrupt_data');
    const flipped = bytes.slice();
    flipped[40] ^= 4;
    throwsCode(() => RetrievalPipeline.deserialize(flipped), 'corrupt_data');
    throwsCode(() => RetrievalPipeline.deserialize('bytes'), 'invalid_argument', /bytes/);
  });

  test('searchExhaustive is the exact fusion the candidate search approximates', () => {
    const p = corpus();
    const q = { queryEmbedding: [1, 0, 0, 0], topK: 3 };
    assert.deepEqual(p.searchExhaustive('apple', q), p.search('apple', q));
  });

  test('dispose', () => {
    const p = new RetrievalPipeline({ embeddingDim: 2 });
    p.dispose();
    throwsCode(() => p.search('x'), 'disposed');
  });
});
