// SPDX-License-Identifier: MIT
// Property tests of RetrievalPipeline's JS boundary (fast-check, fixed seeds): every method
// with random and hostile values works or throws LlmdsError and, when it throws, leaves the
// pipeline as it was (stats, documents, serialized bytes); the result cache never changes a
// result; deserialize of random or altered bytes is an LlmdsError or a usable pipeline.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { llmds } from './llmds.mjs';
import { checkMethod, detachedBuffer, detachedView, hostile, named } from './hostile.mjs';

const { init, RetrievalPipeline, LlmdsError } = llmds;

before(async () => {
  await init();
});


const dim = 4;
/** hostile.mjs's values plus what a pipeline adds: huge texts and vectors, other typed arrays. */
const hostileX = fc.oneof(
  { weight: 6, arbitrary: hostile },
  fc.constant(0).map(() => detachedView(Uint8Array)),
  fc.constant(0).map(() => named(new Float32Array(1 << 16).fill(0.5), 'Float32Array(2^16)')),
  fc.constant(0).map(() => named(new Array(1 << 16).fill(1), 'number[2^16]')),
  fc.constant('apple '.repeat(1 << 15)), // 196 KB of text
  fc.constant(0).map(() => Float32Array.of(Infinity, 0, 0, 0)),
  fc.constant(0).map(() => Float32Array.of(3.4e38, 3.4e38, 3.4e38, 3.4e38)), // norm overflows float32
  fc.constant(0).map(() => new Float64Array(dim).fill(1)),
  fc.constant(0).map(() => new Int32Array(dim).fill(1)),
  fc.constantFrom([0, 0, 0, 0], [1e-45, 0, 0, 0], [1e39, 0, 0, 0], [-0, 1, 0, 0], 2 ** 31 - 1, 2 ** 31, 2 ** 53),
);
const arg = (good) => fc.oneof({ weight: 2, arbitrary: good }, { weight: 1, arbitrary: hostileX });

const docId = fc.integer({ min: 0, max: 6 });
const text = fc.array(fc.constantFrom('apple', 'banana', 'cherry', 'durian', ' ', 'É', '中', '!', '\uD800', 'x'), { maxLength: 8 }).map((a) => a.join(' '));
const vec = fc.array(fc.float({ min: -2, max: 2, noNaN: true }), { minLength: dim, maxLength: dim }).filter((a) => a.some((x) => x !== 0));
const embedding = fc.oneof(vec, vec.map((a) => Float32Array.from(a)));
// Filters of every form, and predicates that throw or return non-booleans.
const filter = fc.oneof(
  fc.array(docId, { maxLength: 5 }),
  fc.array(docId, { maxLength: 5 }).map((a) => named(Uint32Array.from(a), `Uint32Array [${a}]`)),
  fc.array(docId, { maxLength: 5 }).map((a) => named(new Set(a), `Set {${a}}`)),
  fc.integer({ min: 0, max: 3 }).map((m) => named((id) => id % (m + 1) === 0, `id % ${m + 1} === 0`)),
  fc.constant(named(() => 1, '() => 1')),
  fc.constant(named((id) => { if (id === 2) throw new Error('boom'); return true; }, 'throws at 2')),
);
const scalar = fc.oneof(fc.constantFrom('en', 'fr', '', 'é'), fc.integer({ min: 2018, max: 2024 }), fc.boolean());
const metadata = fc.dictionary(fc.constantFrom('lang', 'year', 'ok', ''), scalar, { maxKeys: 3 });
const condition = fc.oneof(
  scalar,
  fc.record({ eq: scalar, in: fc.array(scalar, { maxLength: 3 }), gt: scalar, gte: scalar, lt: scalar, lte: scalar }, { requiredKeys: [] }),
  fc.record({ bad: scalar }),
);
const where = fc.dictionary(fc.constantFrom('lang', 'year', 'ok', 'missing'), condition, { maxKeys: 3 });
const searchOptions = fc.record(
  {
    queryEmbedding: arg(embedding),
    topK: arg(fc.integer({ min: 1, max: 8 })),
    fusionWeight: arg(fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0, 1, -0))),
    fusion: arg(fc.constantFrom('weighted', 'rrf')),
    filter: arg(filter),
    where: arg(where),
  },
  { requiredKeys: [] },
);
const addOptions = fc.oneof(fc.constant(undefined), fc.record({ metadata: arg(metadata) }, { requiredKeys: [] }), hostileX);

function make(metric = 'cosine') {
  const p = new RetrievalPipeline({ embeddingDim: dim, hnswM: 4, hnswEfConstruction: 16, tokenBudget: 40, seed: 5, metric });
  p.addDocument(0, 'apple banana apple', [1, 0, 0, 0], { metadata: { lang: 'en', year: 2020 } });
  p.addDocument(1, 'apple cherry cherry', Float32Array.of(0, 1, 0, 0), { metadata: { lang: 'fr', ok: true } });
  p.addDocument(2, 'banana durian');
  p.addDocument(3, 'durian x', [0.5, 0.5, 0, 0.1]);
  p.search('apple'); // a cache entry
  return p;
}
const ids = [0, 1, 2, 3, 4, 5, 6];
const snapshot = (p) => ({ stats: p.stats(), docs: ids.map((i) => p.hasDocument(i)), bytes: p.serialize(), options: p.options(), metadata: ids.map((i) => p.getMetadata(i)) });

describe('RetrievalPipeline with hostile inputs', () => {
  for (const [method, args] of Object.entries({
    addDocument: [arg(docId), arg(text), fc.oneof(fc.constant(undefined), arg(embedding)), addOptions],
    getMetadata: [arg(docId)],
    removeDocument: [arg(docId)],
    hasDocument: [arg(docId)],
    search: [arg(text), fc.oneof(fc.constant(undefined), searchOptions, hostileX)],
    searchExhaustive: [arg(text), fc.oneof(fc.constant(undefined), searchOptions, hostileX)],
    serialize: [],
    options: [],
    stats: [],
  })) {
    test(method, () => checkMethod({ make, method, args, snapshot, numRuns: 150 }));
  }

  test('constructor', () => {
    const options = fc.oneof(
      hostileX,
      fc.record(
        {
          embeddingDim: arg(fc.integer({ min: 1, max: 8 })),
          hnswM: arg(fc.integer({ min: 2, max: 8 })),
          hnswEfConstruction: arg(fc.integer({ min: 1, max: 32 })),
          hnswEfSearch: arg(fc.integer({ min: 1, max: 32 })),
          tokenBudget: arg(fc.integer({ min: 1, max: 1000 })),
          seed: arg(fc.nat()),
          metric: arg(fc.constantFrom('l2', 'cosine', 'ip')),
          k1: arg(fc.double({ min: 0, max: 3, noNaN: true })),
          b: arg(fc.double({ min: 0, max: 1, noNaN: true })),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(options, (o) => {
        try {
          new RetrievalPipeline(o).dispose();
        } catch (e) {
          assert.ok(e instanceof LlmdsError, `${e?.name}: ${e?.message}`);
        }
      }),
      { numRuns: 250, seed: 21 },
    );
  });
});

describe('RetrievalPipeline results', () => {
  const op = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constant('add'), docId, text, fc.option(embedding, { nil: undefined }), fc.option(metadata, { nil: undefined })) },
    { weight: 1, arbitrary: fc.tuple(fc.constant('remove'), docId) },
    { weight: 3, arbitrary: fc.tuple(fc.constant('search'), text, searchOptions.filter((o) => validOptions(o))) },
  );

  function validOptions(o) {
    try {
      const p = new RetrievalPipeline({ embeddingDim: dim });
      try {
        for (const id of ids) p.addDocument(id, 'x'); // so that a predicate runs on every id
        p.search('x', o);
      } finally {
        p.dispose();
      }
      return true;
    } catch {
      return false;
    }
  }

  test('the cache never changes a result, and small corpora get the exhaustive answer', () => {
    fc.assert(
      fc.property(fc.constantFrom('cosine', 'l2', 'ip'), fc.array(op, { minLength: 1, maxLength: 25 }), (metric, ops) => {
        const p = make(metric);
        try {
          for (const [o, a, b, c, d] of ops) {
            if (o === 'add') p.addDocument(a, b, c, d === undefined ? undefined : { metadata: d });
            else if (o === 'remove') p.removeDocument(a);
            else {
              const exact = p.searchExhaustive(a, b);
              const first = p.search(a, b);
              const again = p.search(a, b); // from the cache when it kept the entry
              assert.deepEqual(again, first);
              assert.deepEqual(first, exact);
              const k = b.topK ?? 10;
              assert.ok(first.length <= k && first.length <= p.size);
              for (let i = 1; i < first.length; i++) {
                const [[id0, s0], [id1, s1]] = [first[i - 1], first[i]];
                assert.ok(s0 > s1 || (s0 === s1 && id0 < id1), `order at ${i}: ${JSON.stringify(first)}`);
              }
              for (const [id, s] of first) assert.ok(p.hasDocument(id) && Number.isFinite(s), `hit ${id} ${s}`);
              // Every hit is allowed by the filter and matches every condition.
              for (const [id] of first) {
                if (b.filter !== undefined) {
                  const f = b.filter;
                  assert.ok(typeof f === 'function' ? f(id) : Array.isArray(f) ? f.includes(id) : f.has ? f.has(id) : f.includes(id), `hit ${id} not allowed`);
                }
                const m = p.getMetadata(id) ?? {};
                for (const [field, c] of Object.entries(b.where ?? {})) {
                  assert.ok(field in m, `hit ${id} lacks ${field}`);
                  if (typeof c !== 'object') assert.equal(m[field], c);
                }
              }
            }
            const st = p.stats();
            assert.ok(st.cacheTokens <= 40, `cache over budget: ${st.cacheTokens}`);
          }
          // Persisted and restored: same bytes, same answers.
          const bytes = p.serialize();
          const q = RetrievalPipeline.deserialize(bytes);
          try {
            assert.deepEqual(q.serialize(), bytes);
            assert.deepEqual(q.options(), p.options());
            for (const query of ['apple', 'banana cherry durian x']) {
              assert.deepEqual(q.searchExhaustive(query, { queryEmbedding: [1, 0, 0, 0] }), p.searchExhaustive(query, { queryEmbedding: [1, 0, 0, 0] }));
            }
          } finally {
            q.dispose();
          }
        } finally {
          p.dispose();
        }
      }),
      { numRuns: 300, seed: 22 },
    );
  });
});

describe('RetrievalPipeline.deserialize of random and altered bytes', () => {
  /** Either an LlmdsError with a deserialize code, or a pipeline that works. */
  function attempt(bytes) {
    let p;
    try {
      p = RetrievalPipeline.deserialize(bytes);
    } catch (e) {
      assert.ok(e instanceof LlmdsError, `${e?.name}: ${e?.message}`);
      assert.ok(['corrupt_data', 'version_mismatch', 'invalid_argument'].includes(e.code), e.code);
      return false;
    }
    try {
      const d = p.options().embeddingDim;
      p.search('apple cherry', { queryEmbedding: new Float32Array(d).fill(0.5), topK: 3 });
      p.addDocument(6, 'new apple', new Float32Array(d).fill(0.25));
      p.removeDocument(0);
      const again = RetrievalPipeline.deserialize(p.serialize());
      again.dispose();
    } finally {
      p.dispose();
    }
    return true;
  }

  test('hostile values, random bytes, truncations, flipped bits and bytes', () => {
    const valid = make().serialize();
    const altered = fc.oneof(
      fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 7 })).map(([i, bit]) => {
        const c = valid.slice();
        c[i] ^= 1 << bit;
        return c;
      }),
      fc.tuple(fc.nat(valid.length - 1), fc.nat(255)).map(([i, b]) => {
        const c = valid.slice();
        c[i] = b;
        return c;
      }),
      fc.nat(valid.length).map((n) => valid.slice(0, n)),
      fc.uint8Array({ minLength: 24, maxLength: 24 }).map((tail) => Uint8Array.from([...valid, ...tail])),
    );
    fc.assert(
      fc.property(fc.oneof(hostile, fc.constant(0).map(() => detachedView(Uint8Array)), fc.uint8Array({ maxLength: 300 }), altered, altered.map((a) => a.buffer)), (bytes) => {
        attempt(bytes);
      }),
      { numRuns: 1500, seed: 23 },
    );
    assert.equal(attempt(valid), true);
    assert.equal(attempt(valid.buffer.slice(valid.byteOffset, valid.byteOffset + valid.length)), true);
  });

  // Found by these properties: deserialize of a detached buffer throws a TypeError instead of an
  // LlmdsError in three places: RetrievalPipeline and HNSW run `new Uint8Array(bytes)` on a
  // detached ArrayBuffer; HNSW and InvertedIndex pass a detached Uint8Array to withHeap, whose
  // HEAPU8.set() throws (RetrievalPipeline already calls v.attached() on it). Fix: one shared
  // bytes check in js/src/validate.mts (Uint8Array -> attached(); ArrayBuffer -> fail when
  // detached: `.detached === true`, or on Node 20 byteLength 0 and `.slice(0, 0)` throws; then
  // `new Uint8Array(buffer)`), used by the three deserialize() methods.
  test('deserialize of a detached buffer throws LlmdsError (RetrievalPipeline, HNSW, InvertedIndex)', () => {
    for (const Kind of [RetrievalPipeline, llmds.HNSW, llmds.InvertedIndex]) {
      for (const bytes of [detachedBuffer(), detachedView(Uint8Array)]) {
        assert.throws(() => Kind.deserialize(bytes), LlmdsError, `${Kind.name}.deserialize(${bytes[fc.toStringMethod]()})`);
      }
    }
  });
});
