// SPDX-License-Identifier: MIT
// Sharding through the JS API: shardOf is the C++ hash, term statistics survive JSON, and a
// corpus split over 1..6 shards (random corpora, fixed fast-check seed) merges to exactly what
// one index returns: ids and scores compared with Object.is, after a JSON round trip of every
// shard answer (as over a fetch()).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { llmds, throwsCode } from './llmds.mjs';

const { init, InvertedIndex, RetrievalPipeline, shardOf, mergeTermStats, mergeShardResults } = llmds;

before(() => init());

const json = (x) => JSON.parse(JSON.stringify(x));

/** lowbias32 in BigInt arithmetic: an independent reference for shardOf. */
function reference(id, n) {
  const M = 0xffffffffn;
  let x = BigInt(id);
  x ^= x >> 16n;
  x = (x * 0x7feb352dn) & M;
  x ^= x >> 15n;
  x = (x * 0x846ca68bn) & M;
  x ^= x >> 16n;
  return Number(x % BigInt(n));
}

/** Every shard's termStats → JSON → merged → JSON → setGlobalStats. */
function exchange(shards) {
  const global = mergeTermStats(shards.map((s) => json(s.termStats())));
  for (const s of shards) s.setGlobalStats(json(global));
  return global;
}

function dispose(...xs) {
  for (const x of xs.flat()) x.dispose();
}

describe('shardOf', () => {
  test('the same values as llmds::shard_of (tests/cpp/sharding_test.cpp) and a BigInt reference', () => {
    assert.equal(shardOf(0, 4), 0);
    assert.equal(shardOf(1, 4), 0);
    assert.equal(shardOf(2, 4), 1);
    assert.equal(shardOf(12345, 7), 1);
    assert.equal(shardOf(2147483647, 5), 1);
    assert.equal(shardOf(4294967295, 1000), 346);
    assert.equal(shardOf(17, 1), 0);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 0xffffffff }), (id, n) => shardOf(id, n) === reference(id, n)),
      { seed: 7, numRuns: 2000 },
    );
  });

  test('rejects what is not a document id or a shard count', () => {
    throwsCode(() => shardOf(-1, 4), 'invalid_argument', /docId/);
    throwsCode(() => shardOf(1.5, 4), 'invalid_argument', /docId/);
    throwsCode(() => shardOf(1, 0), 'invalid_argument', /shards/);
  });
});

describe('term statistics', () => {
  test('termStats, termStats(text), mergeTermStats: plain objects that survive JSON', () => {
    const a = new InvertedIndex();
    const b = new InvertedIndex();
    try {
      a.addDocument(1, 'The quick brown fox');
      a.addDocument(2, 'the lazy dog');
      b.addDocument(3, 'a quick dog, a quick cat');
      b.addDocument(4, '');
      assert.deepEqual(a.termStats(), { documents: 2, tokens: 7, terms: ['brown', 'dog', 'fox', 'lazy', 'quick', 'the'], df: [1, 1, 1, 1, 1, 2] });
      assert.deepEqual(b.termStats('Quick quick CAT zebra'), { documents: 2, tokens: 6, terms: ['cat', 'quick'], df: [1, 1] });
      assert.deepEqual(new InvertedIndex().termStats(), { documents: 0, tokens: 0, terms: [], df: [] });
      const merged = mergeTermStats([json(a.termStats()), b.termStats()]);
      assert.deepEqual(merged, { documents: 4, tokens: 13, terms: ['a', 'brown', 'cat', 'dog', 'fox', 'lazy', 'quick', 'the'], df: [1, 1, 1, 2, 1, 1, 2, 2] });
      assert.deepEqual(mergeTermStats([]), { documents: 0, tokens: 0, terms: [], df: [] });
      // Terms in UTF-8 byte order (not UTF-16 order: U+FF21 sorts before U+1F600's surrogates in UTF-16, after it in UTF-8).
      const c = new InvertedIndex();
      c.addDocument(1, 'ｚ 𝒜 é e');
      assert.deepEqual(c.termStats().terms, ['e', 'é', 'ｚ', '𝒜']);
      assert.deepEqual(mergeTermStats([c.termStats(), c.termStats()]).df, [2, 2, 2, 2]);
      c.dispose();
    } finally {
      dispose(a, b);
    }
  });

  test('malformed statistics are invalid_argument and change nothing', () => {
    const a = new InvertedIndex();
    try {
      a.addDocument(1, 'apple banana');
      a.addDocument(2, 'apple');
      const good = a.termStats();
      throwsCode(() => mergeTermStats([{ ...good, terms: ['banana', 'apple'] }]), 'invalid_argument', /ascending/);
      throwsCode(() => mergeTermStats([{ ...good, df: [1] }]), 'invalid_argument', /same length/);
      throwsCode(() => mergeTermStats([{ ...good, df: [3, 1] }]), 'invalid_argument', /df of "apple"/);
      throwsCode(() => mergeTermStats([{ ...good, terms: ['a b', 'c'] }]), 'invalid_argument', /without spaces/);
      throwsCode(() => mergeTermStats([{ ...good, documents: -1 }]), 'invalid_argument', /documents/);
      throwsCode(() => mergeTermStats(good), 'invalid_argument', /array/);
      throwsCode(() => a.setGlobalStats({ ...good, documents: 1, df: [1, 1] }), 'invalid_argument', /must include this index's own/);
      throwsCode(() => a.setGlobalStats({ documents: 9, tokens: 9, terms: ['apple'], df: [1] }), 'invalid_argument', /must include/);
      throwsCode(() => a.setGlobalStats('stats'), 'invalid_argument', /TermStats/);
      assert.equal(a.hasGlobalStats(), false);
      a.setGlobalStats({ documents: 4, tokens: 6, terms: ['apple', 'banana'], df: [3, 2] });
      assert.equal(a.hasGlobalStats(), true);
      assert.deepEqual(a.termStats(), good, 'termStats reports the index\'s own statistics, never the global ones');
      a.setGlobalStats(null);
      assert.equal(a.hasGlobalStats(), false);
    } finally {
      a.dispose();
    }
  });

  test('RetrievalPipeline.setGlobalStats clears the result cache; null goes back to local scores', () => {
    const p = new RetrievalPipeline({ embeddingDim: 2 });
    try {
      p.addDocument(1, 'red apple');
      p.addDocument(2, 'red red cherry pie');
      const local = p.search('red apple');
      assert.equal(p.stats().cacheEntries, 1);
      const g = p.termStats();
      p.setGlobalStats({ documents: g.documents + 50, tokens: g.tokens + 500, terms: g.terms, df: g.df.map((x) => x + 10) });
      assert.equal(p.stats().cacheEntries, 0);
      assert.notDeepEqual(p.search('red apple'), local);
      p.setGlobalStats(null);
      assert.deepEqual(p.search('red apple'), local);
    } finally {
      p.dispose();
    }
  });
});

/** A vector of `dim` floats in (-1, 1) from a seed (mulberry32): distances between such vectors
 * practically never tie, and ties are where the merge (by id) and HNSW (by insertion order)
 * may order differently (documented). */
function vectorOf(seed, dim) {
  let a = seed >>> 0;
  return Array.from({ length: dim }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  });
}
const vectorArb = (dim) => fc.integer({ min: 1, max: 2 ** 31 - 1 }).map((seed) => vectorOf(seed, dim));

/** A seeded corpus: Zipf-ish words over a small vocabulary (ties happen), some empty texts,
 * some documents without an embedding, ids spread over [0, 2^31). */
const corpusArb = (dim) =>
  fc.uniqueArray(
    fc.record({
      id: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      words: fc.array(fc.nat(40).map((i) => `w${Math.floor(i * i / 40)}`), { maxLength: 12 }),
      embedding: fc.option(vectorArb(dim), { freq: 6 }),
    }),
    { selector: (d) => d.id, minLength: 1, maxLength: 90 },
  );
const queryArb = (dim) =>
  fc.record({
    text: fc.array(fc.nat(45).map((i) => `w${Math.floor(i * i / 40)}`), { minLength: 1, maxLength: 4 }).map((a) => a.join(' ')),
    embedding: vectorArb(dim),
    topK: fc.integer({ min: 1, max: 25 }),
    fusionWeight: fc.constantFrom(0, 0.25, 0.5, 0.8, 1),
    fusion: fc.constantFrom('weighted', 'rrf'),
  });

describe('merged shards = one index (property, fixed seed)', () => {
  test('InvertedIndex: BM25 over 1..6 shards with global statistics, ids and scores', () => {
    fc.assert(
      fc.property(corpusArb(1), fc.integer({ min: 1, max: 6 }), fc.array(queryArb(1), { minLength: 1, maxLength: 6 }), (docs, n, queries) => {
        const single = new InvertedIndex();
        const shards = Array.from({ length: n }, () => new InvertedIndex());
        try {
          for (const d of docs) {
            single.addDocument(d.id, d.words.join(' '));
            shards[shardOf(d.id, n)].addDocument(d.id, d.words.join(' '));
          }
          assert.deepEqual(exchange(shards), single.termStats());
          for (const q of queries) {
            const merged = mergeShardResults(shards.map((s) => json(s.search(q.text, q.topK))), q.topK);
            assert.deepStrictEqual(merged, single.search(q.text, q.topK), q.text);
          }
        } finally {
          dispose(single, shards);
        }
      }),
      { seed: 42, numRuns: 40 },
    );
  });

  test('RetrievalPipeline: BM25-only and hybrid (exact dense) over 1..6 shards', () => {
    const dim = 6;
    fc.assert(
      fc.property(corpusArb(dim), fc.integer({ min: 1, max: 6 }), fc.constantFrom('cosine', 'l2', 'ip'), fc.array(queryArb(dim), { minLength: 1, maxLength: 5 }), (docs, n, metric, queries) => {
        const options = { embeddingDim: dim, metric, hnswM: 8, hnswEfConstruction: 64, seed: 5 };
        const single = new RetrievalPipeline(options);
        const shards = Array.from({ length: n }, () => new RetrievalPipeline(options));
        try {
          for (const d of docs) {
            const e = d.embedding ?? undefined;
            single.addDocument(d.id, d.words.join(' '), e);
            shards[shardOf(d.id, n)].addDocument(d.id, d.words.join(' '), e);
          }
          exchange(shards);
          for (const q of queries) {
            const { text, embedding, ...fusion } = q;
            const bm25 = shards.map((s) => json(s.searchShard(text, fusion)));
            assert.deepStrictEqual(mergeShardResults(bm25), single.search(text, fusion), `BM25 ${text}`);
            const hybrid = { ...fusion, queryEmbedding: embedding };
            const parts = shards.map((s) => json(s.searchShard(text, { ...hybrid, exhaustive: true })));
            assert.deepStrictEqual(mergeShardResults(parts), single.searchExhaustive(text, hybrid), `hybrid ${text}`);
            // A smaller merged topK and other fusion options from the same shard answers.
            const k = Math.max(1, q.topK - 3);
            assert.deepStrictEqual(
              mergeShardResults(parts, k, { fusion: 'rrf', fusionWeight: 0.3 }),
              single.searchExhaustive(text, { ...hybrid, topK: k, fusion: 'rrf', fusionWeight: 0.3 }),
            );
          }
        } finally {
          dispose(single, shards);
        }
      }),
      { seed: 1234, numRuns: 30 },
    );
  });
});

describe('searchShard and mergeShardResults', () => {
  test('a shard answer is a JSON-safe object; null marks a candidate without embedding', () => {
    const p = new RetrievalPipeline({ embeddingDim: 2 });
    try {
      p.addDocument(1, 'red apple', [1, 0]);
      p.addDocument(2, 'green apple');
      const r = p.searchShard('apple', { queryEmbedding: [1, 0.2], topK: 5, fusion: 'rrf' });
      assert.deepEqual(Object.keys(r).sort(), ['bm25', 'bm25Distances', 'dense', 'fusion', 'fusionWeight', 'hybrid', 'metric', 'topK']);
      assert.equal(r.hybrid, true);
      assert.equal(r.metric, 'cosine');
      assert.equal(r.fusion, 'rrf');
      assert.deepEqual(json(r), r);
      assert.equal(r.bm25.length, 2);
      assert.equal(r.bm25Distances[r.bm25.findIndex(([id]) => id === 2)], null);
      assert.deepEqual(r.dense.map(([id]) => id), [1]);
      const textOnly = p.searchShard('apple');
      assert.equal(textOnly.hybrid, false);
      assert.equal(textOnly.dense, undefined);
      assert.deepEqual(mergeShardResults([r]), p.search('apple', { queryEmbedding: [1, 0.2], topK: 5, fusion: 'rrf' }));
      assert.deepEqual(mergeShardResults([]), []);
      throwsCode(() => mergeShardResults([r, textOnly]), 'invalid_argument', /some shards were searched with a query embedding/);
      throwsCode(() => mergeShardResults([r, r]), 'invalid_argument', /in two shards/);
      throwsCode(() => mergeShardResults([r], 6), 'invalid_argument', /smaller topK than the merged topK/);
      throwsCode(() => mergeShardResults([[[1, 2]], [[1, 3]]]), 'invalid_argument', /in two shards/);
      throwsCode(() => mergeShardResults([{ ...r, metric: 'manhattan' }]), 'invalid_argument', /metric/);
      throwsCode(() => mergeShardResults([{ ...r, bm25Distances: [] }]), 'invalid_argument', /bm25Distances/);
      throwsCode(() => p.searchShard('apple', { exhaustive: 1 }), 'invalid_argument', /exhaustive/);
      throwsCode(() => p.searchShard('apple', { filterz: 1 }), 'invalid_argument', /filterz/);
    } finally {
      p.dispose();
    }
  });

  test('adds and removes after the exchange count on top: that shard is exact, the others catch up at the next exchange', () => {
    const n = 3;
    const single = new InvertedIndex();
    const shards = Array.from({ length: n }, () => new InvertedIndex());
    try {
      for (let id = 0; id < 60; id++) {
        const text = Array.from({ length: 1 + (id % 7) }, (_, i) => `w${(id * 7 + i * 3) % 11}`).join(' ');
        single.addDocument(id, text);
        shards[shardOf(id, n)].addDocument(id, text);
      }
      exchange(shards);
      const s = shardOf(1000, n);
      for (const x of [single, shards[s]]) x.addDocument(1000, 'w0 w1 w1 w2');
      const removed = [...Array(60).keys()].find((id) => shardOf(id, n) === s);
      for (const x of [single, shards[s]]) x.removeDocument(removed);
      const q = 'w0 w1 w2 w5';
      const own = single.search(q, 1000).filter(([id]) => shardOf(id, n) === s);
      assert.deepStrictEqual(shards[s].search(q, 1000), own);
      const before = mergeShardResults(shards.map((x) => x.search(q, 10)), 10);
      exchange(shards);
      const after = mergeShardResults(shards.map((x) => x.search(q, 10)), 10);
      assert.deepStrictEqual(after, single.search(q, 10));
      assert.notDeepEqual(before, after);
    } finally {
      dispose(single, shards);
    }
  });
});
