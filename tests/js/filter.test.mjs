// SPDX-License-Identifier: MIT
// Filtered search (HNSW, InvertedIndex, RetrievalPipeline) and the pipeline's metadata and
// `where` conditions through the JS API: every filter form gives the same result, the result is
// the top k among allowed ids (checked against brute force), bad filters are LlmdsError
// invalid_argument and leave the object unchanged.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { rng } from '../../bench/rng.mjs';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';

const { init, HNSW, InvertedIndex, RetrievalPipeline, LlmdsError } = llmds;
const track = disposeAfterEach();

before(() => init());

function vectors(n, dim, seed) {
  const next = rng(seed);
  const centres = Array.from({ length: 10 }, () => Float32Array.from({ length: dim }, () => next() - 0.5));
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(next() * 10)];
    return Float32Array.from(c, (x) => x + 0.2 * (next() - 0.5));
  });
}

const l2 = (a, b) => a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0);

/** Filters of every form that allow the same ids. */
function forms(ids) {
  const set = new Set(ids);
  return { Uint32Array: Uint32Array.from(ids), Set: set, array: [...ids], predicate: (id) => set.has(id) };
}

describe('HNSW filtered search', () => {
  const dim = 8, n = 2000, k = 10;
  const data = vectors(n, dim, 1);
  const queries = vectors(30, dim, 2);
  let index;
  before(() => {
    index = new HNSW({ dim, M: 12, efConstruction: 100, seed: 3 });
    index.addBatch(data, data.map((_, i) => i));
  });

  test('the k nearest among allowed ids, same for every filter form, recall >= 0.95 at 50 %, 10 %, 1 %', () => {
    const next = rng(4);
    for (const selectivity of [0.5, 0.1, 0.01]) {
      const allowed = [];
      for (let i = 0; i < n; i++) if (next() < selectivity) allowed.push(i);
      let hits = 0, total = 0;
      for (const q of queries) {
        const truth = allowed.map((id) => [id, l2(data[id], q)]).sort((a, b) => a[1] - b[1]).slice(0, k).map(([id]) => id);
        const results = Object.entries(forms(allowed)).map(([form, filter]) => [form, index.search(q, k, { filter })]);
        for (const [form, r] of results) {
          assert.deepEqual(r, results[0][1], `${form} differs`);
          assert.equal(r.length, Math.min(k, allowed.length), 'never fewer than k when k are allowed');
          for (const [id] of r) assert.ok(allowed.includes(id));
        }
        hits += results[0][1].filter(([id]) => truth.includes(id)).length;
        total += truth.length;
      }
      assert.ok(hits / total >= 0.95, `recall ${hits / total} at selectivity ${selectivity}`);
    }
  });

  test('ids not in the index, repeats, removed ids and empty filters', () => {
    const q = queries[0];
    assert.deepEqual(index.search(q, 5, { filter: [] }), []);
    assert.deepEqual(index.search(q, 5, { filter: new Set() }), []);
    assert.deepEqual(index.search(q, 5, { filter: () => false }), []);
    assert.deepEqual(index.search(q, 5, { filter: [7, 7, 99999, 2 ** 32 - 1] }).map(([id]) => id), [7]);
    const copy = track(HNSW.deserialize(index.serialize()));
    copy.remove(7);
    assert.deepEqual(copy.search(q, 5, { filter: [7, 8] }).map(([id]) => id), [8]);
    const seen = [];
    copy.search(q, 5, { filter: (id) => (seen.push(id), true) });
    assert.equal(seen.length, n - 1, 'a predicate runs once per live id');
    assert.ok(!seen.includes(7));
    copy.add(data[7], 7);
    seen.length = 0;
    copy.search(q, 5, { filter: (id) => (seen.push(id), 1) }); // truthy allows
    assert.equal(seen.length, n, 'the id list is refreshed after add');
  });

  test('searchBatch with a filter equals one filtered search per row', () => {
    const filter = Uint32Array.from({ length: 200 }, (_, i) => i * 3);
    const b = index.searchBatch(queries.slice(0, 4), 5, { filter, efSearch: 64 });
    queries.slice(0, 4).forEach((q, r) => {
      const one = index.search(q, 5, { filter, efSearch: 64 });
      assert.deepEqual(Array.from(b.ids.subarray(r * 5, r * 5 + 5)), one.map(([id]) => id));
    });
  });

  test('bad filters are invalid_argument and change nothing; a throwing predicate is wrapped with its cause', () => {
    const q = queries[0];
    const bytes = index.serialize();
    for (const filter of [1, 'x', null, {}, [1.5], [-1], [2 ** 32], ['1'], new Int32Array(2), new Set([0.5]), new Set(['a'])]) {
      throwsCode(() => index.search(q, 5, { filter }), 'invalid_argument', /filter/);
      throwsCode(() => index.searchBatch([q], 5, { filter }), 'invalid_argument', /filter/);
    }
    const boom = new TypeError('boom');
    assert.throws(
      () => index.search(q, 5, { filter: (id) => { if (id === 3) throw boom; return true; } }),
      (e) => e instanceof LlmdsError && e.code === 'invalid_argument' && /predicate threw for id 3: boom/.test(e.message) && e.cause === boom,
    );
    throwsCode(() => index.search(q, 5, { filtr: [1] }), 'invalid_argument', /unknown option "filtr"/);
    assert.deepEqual(index.serialize(), bytes);
  });
});

describe('InvertedIndex filtered search', () => {
  test('exact top k among allowed documents, every form', () => {
    const ix = track(new InvertedIndex());
    const words = ['red', 'green', 'blue', 'cyan', 'teal', 'gold'];
    const next = rng(8);
    for (let d = 0; d < 500; d++) {
      ix.addDocument(d, Array.from({ length: 1 + Math.floor(next() * 8) }, () => words[Math.floor(next() * next() * 6)]).join(' '));
    }
    for (let d = 0; d < 500; d += 9) ix.removeDocument(d);
    for (const selectivity of [0.5, 0.1, 0.01]) {
      const allowed = [];
      for (let d = 0; d < 520; d++) if (next() < selectivity) allowed.push(d);
      for (const query of ['red', 'teal gold', 'green blue cyan']) {
        const all = ix.search(query, 1000);
        const expect = all.filter(([id]) => allowed.includes(id)).slice(0, 10);
        for (const [form, filter] of Object.entries(forms(allowed))) {
          assert.deepEqual(ix.search(query, 10, { filter }), expect, `${form} at ${selectivity}`);
        }
      }
    }
    throwsCode(() => ix.search('red', 10, { filter: 'red' }), 'invalid_argument', /filter/);
  });
});

describe('RetrievalPipeline filters and metadata', () => {
  function pipeline(options = {}) {
    const p = track(new RetrievalPipeline({ embeddingDim: 2, hnswM: 4, hnswEfConstruction: 16, seed: 5, ...options }));
    for (let d = 0; d < 8; d++) {
      p.addDocument(d, `apple pie ${d}`, [Math.cos(d), Math.sin(d)], { metadata: { lang: d % 2 ? 'en' : 'fr', year: 2018 + d, draft: d === 3 } });
    }
    p.addDocument(8, 'apple without metadata', [1, 0]);
    p.addDocument(9, 'apple en only', undefined, { metadata: { lang: 'en' } });
    return p;
  }
  const ids = (hits) => hits.map(([id]) => id).sort((a, b) => a - b);
  const q = { queryEmbedding: [1, 0.5], topK: 20 };

  test('where: equality, in, ranges, types, missing fields, AND with filter', () => {
    const p = pipeline();
    const where = (w, extra = {}) => ids(p.search('apple', { ...q, where: w, ...extra }));
    assert.deepEqual(where({ lang: 'en' }), [1, 3, 5, 7, 9]);
    assert.deepEqual(where({ lang: 'en', year: { gte: 2020 } }), [3, 5, 7]); // 9 has no year
    assert.deepEqual(where({ year: { gt: 2019, lte: 2022 } }), [2, 3, 4]);
    assert.deepEqual(where({ year: { in: [2018, 2025, '2019'] } }), [0, 7]); // '2019' is a string
    assert.deepEqual(where({ year: { in: [] } }), []);
    assert.deepEqual(where({ draft: true }), [3]);
    assert.deepEqual(where({ draft: { eq: 1 } }), []); // 1 is not true
    assert.deepEqual(where({ lang: { lt: 'f' } }), [1, 3, 5, 7, 9]);
    assert.deepEqual(where({ lang: { gt: 0 } }), []); // a number bound never matches a string
    assert.deepEqual(where({}), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(where({ lang: 'en' }, { filter: [1, 2, 3, 8] }), [1, 3]);
    assert.deepEqual(where({ lang: 'en' }, { filter: (id) => id < 4 }), [1, 3]);
    assert.deepEqual(ids(p.search('apple', { ...q, filter: new Set([0, 9]) })), [0, 9]);
    // searchExhaustive takes them too and agrees on this small corpus.
    assert.deepEqual(p.searchExhaustive('apple', { ...q, where: { lang: 'fr' } }), p.search('apple', { ...q, where: { lang: 'fr' } }));
  });

  test('bad metadata and conditions are invalid_argument and change nothing', () => {
    const p = pipeline();
    const before = p.serialize();
    for (const metadata of [null, 1, 'x', [], [['a', 1]], new Map(), { a: null }, { a: undefined }, { a: NaN }, { a: Infinity }, { a: {} }, { a: [1] }, { a: 1n }, Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, i]))]) {
      throwsCode(() => p.addDocument(1, 'changed', [0, 1], { metadata }), 'invalid_argument', /metadata/);
    }
    throwsCode(() => p.addDocument(1, 'changed', [0, 1], { meta: {} }), 'invalid_argument', /unknown option "meta"/);
    for (const where of [null, 1, [], { year: { foo: 1 } }, { year: {} }, { year: { gte: true } }, { year: { gte: NaN } }, { year: null }, { year: [2020] }, { year: { in: 2020 } }, { year: { in: [null] } }, { year: { eq: {} } }, { y: undefined }]) {
      throwsCode(() => p.search('apple', { where }), 'invalid_argument', /where/);
    }
    assert.deepEqual(p.serialize(), before);
  });

  test('metadata replaced, removed, persisted; getMetadata', () => {
    const p = pipeline();
    assert.deepEqual(p.getMetadata(1), { draft: false, lang: 'en', year: 2019 });
    assert.equal(p.getMetadata(8), undefined);
    assert.equal(p.getMetadata(99), undefined);
    p.addDocument(1, 'apple replaced', [1, 0]); // no metadata: cleared
    assert.equal(p.getMetadata(1), undefined);
    assert.equal(p.removeDocument(3), true);
    assert.equal(p.getMetadata(3), undefined);
    assert.deepEqual(ids(p.search('apple', { ...q, where: { lang: 'en' } })), [5, 7, 9]);
    p.addDocument(20, 'odd keys', undefined, { metadata: { '': 'empty key', __proto__x: 1, 'a\0b': 'x\0y', 'é': -0 } });
    assert.equal(p.stats().metadataDocuments, 8);
    const copy = track(RetrievalPipeline.deserialize(p.serialize()));
    for (const id of [0, 1, 5, 9, 20]) assert.deepEqual(copy.getMetadata(id), p.getMetadata(id));
    assert.equal(Object.is(copy.getMetadata(20)['é'], 0), true, '-0 is stored as 0');
    assert.deepEqual(copy.search('apple', { ...q, where: { year: { lt: 2024 } } }), p.search('apple', { ...q, where: { year: { lt: 2024 } } }));
    assert.deepEqual(copy.serialize(), p.serialize());
  });

  test('cache: where queries are cached by condition, filtered queries bypass it', () => {
    const p = pipeline();
    const a = p.search('apple', { ...q, where: { lang: 'en' } });
    const s0 = p.stats();
    assert.deepEqual(p.search('apple', { ...q, where: { lang: 'en' } }), a);
    assert.equal(p.stats().cacheHits, s0.cacheHits + 1);
    assert.deepEqual(ids(p.search('apple', { ...q, where: { lang: 'fr' } })), [0, 2, 4, 6]);
    const s1 = p.stats();
    p.search('apple', { ...q, filter: [1, 2] });
    p.search('apple', { ...q, filter: [1, 2] });
    const s2 = p.stats();
    assert.equal(s2.searches, s1.searches + 2);
    assert.deepEqual([s2.cacheHits, s2.cacheMisses, s2.cacheEntries], [s1.cacheHits, s1.cacheMisses, s1.cacheEntries]);
  });
});
