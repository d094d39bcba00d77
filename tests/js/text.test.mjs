// SPDX-License-Identifier: MIT
// Tokenizer, InvertedIndex (BM25) and CountMinSketch through the public JS API.
import assert from 'node:assert/strict';
import { describe, test, before } from 'node:test';
import fc from 'fast-check';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';
import { argOf, checkMethod, hostile } from './hostile.mjs';

const { init, Tokenizer, InvertedIndex, CountMinSketch, LlmdsError } = llmds;

// Node 20 has no `using` syntax: what a test tracks is disposed after it.
const track = disposeAfterEach();

// Runs first, in this file's own process, before anything called init().
test('Tokenizer, InvertedIndex and CountMinSketch throw not_initialized before init()', () => {
  throwsCode(() => new Tokenizer(), 'not_initialized');
  throwsCode(() => new InvertedIndex(), 'not_initialized');
  throwsCode(() => new CountMinSketch(), 'not_initialized');
  throwsCode(() => InvertedIndex.deserialize(new Uint8Array(4)), 'not_initialized');
});

/** Deterministic PRNG (LCG) for the randomized tests. */
function rng(seed) {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

/** Zipf sampler over ranks 0..n-1. */
function zipf(n, s, rand) {
  const cdf = [];
  let sum = 0;
  for (let i = 0; i < n; i++) cdf.push((sum += 1 / (i + 1) ** s));
  return () => {
    const u = (rand(1 << 24) + 0.5) / (1 << 24) * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

describe('Tokenizer', () => {
  before(async () => {
    await init();
  });

  test('encode / decode / countTokens / vocabSize', () => {
    const tok = track(new Tokenizer());
    const ids = tok.encode('The cat sat on the MAT');
    assert.ok(ids instanceof Int32Array);
    assert.deepEqual(ids, Int32Array.of(0, 1, 2, 3, 0, 4));
    assert.equal(tok.vocabSize, 5);
    assert.equal(tok.decode(ids), 'the cat sat on the mat');
    assert.equal(tok.decode([1, 4]), 'cat mat');
    assert.equal(tok.decode(Uint32Array.of(4)), 'mat');
    assert.equal(tok.decode([]), '');
    assert.deepEqual(tok.encode(''), new Int32Array(0));
    assert.equal(tok.countTokens('brand new words, the cat'), 5);
    assert.equal(tok.vocabSize, 5); // countTokens never grows the vocabulary
    assert.deepEqual(tok.encode('cat NEW'), Int32Array.of(1, 5));
  });

  test('Unicode: accents, Greek, Cyrillic, CJK, digits, punctuation', () => {
    const tok = track(new Tokenizer());
    const roundTrip = (s) => tok.decode(tok.encode(s));
    assert.equal(roundTrip('Café ÉCOLE Straße'), 'café école straße');
    assert.equal(roundTrip('Привет, МИР!'), 'привет мир');
    assert.equal(roundTrip('ΟΔΟΣ οδός'), 'οδοσ οδόσ');
    assert.equal(roundTrip('中文 测试。日本語'), '中 文 测 试 日 本 語');
    assert.equal(roundTrip('abc123 4.5, x-y_z'), 'abc123 4 5 x y z');
    assert.equal(roundTrip('!!! ... ???'), '');
    assert.equal(roundTrip('a😀b'), 'a b'); // astral symbols separate
    assert.equal(tok.countTokens('İstanbul'), 1);
    assert.equal(roundTrip('İstanbul'), 'istanbul');
  });

  test('lone surrogates become U+FFFD (a separator) and never break anything', () => {
    const tok = track(new Tokenizer());
    assert.equal(tok.decode(tok.encode('ab\uD800cd')), 'ab cd');
    assert.equal(tok.decode(tok.encode('x\uDFFF')), 'x');
    const rand = rng(7);
    for (let round = 0; round < 300; round++) {
      let s = '';
      const len = rand(40);
      for (let i = 0; i < len; i++) s += String.fromCharCode(rand(4) === 0 ? 0xd800 + rand(0x800) : rand(0x3000));
      const ids = tok.encode(s);
      assert.equal(ids.length, tok.countTokens(s));
      const text = tok.decode(ids);
      assert.equal(tok.countTokens(text), ids.length);
    }
  });

  test('long texts (past the scratch buffer) and results after heap growth', () => {
    const tok = track(new Tokenizer());
    const first = tok.encode('alpha beta');
    const words = Array.from({ length: 200_000 }, (_, i) => `w${i % 5000}`);
    const ids = tok.encode(words.join(' ')); // ~1.4 MB of UTF-8
    assert.equal(ids.length, 200_000);
    assert.equal(tok.vocabSize, 5002);
    assert.deepEqual(first, Int32Array.of(0, 1));
    assert.equal(tok.decode(ids.subarray(0, 3)), 'w0 w1 w2');
  });

  test('bad inputs throw LlmdsError', () => {
    const tok = track(new Tokenizer());
    tok.encode('a b');
    throwsCode(() => tok.encode(42), 'invalid_argument', /text must be a string.*42/);
    throwsCode(() => tok.encode(null), 'invalid_argument', /text/);
    throwsCode(() => tok.countTokens(undefined), 'invalid_argument', /text/);
    throwsCode(() => tok.decode([0, 2]), 'invalid_argument', /ids\[1\] = 2/);
    throwsCode(() => tok.decode([-1]), 'invalid_argument', /ids\[0\]/);
    throwsCode(() => tok.decode([0.5]), 'invalid_argument', /ids\[0\]/);
    throwsCode(() => tok.decode('0 1'), 'invalid_argument', /ids/);
    assert.equal(tok.vocabSize, 2);
  });

  test('dispose: idempotent, later calls throw disposed', () => {
    const tok = new Tokenizer();
    tok.encode('x');
    tok.dispose();
    tok.dispose();
    assert.equal(tok.disposed, true);
    for (const call of [() => tok.encode('x'), () => tok.decode([0]), () => tok.countTokens('x'), () => tok.vocabSize]) {
      throwsCode(call, 'disposed', /Tokenizer/);
    }
    const scoped = new Tokenizer();
    scoped[Symbol.dispose]();
    assert.equal(scoped.disposed, true);
  });
});

/** Textbook BM25 over plain Maps (every document scored), tokenized by a Tokenizer. */
function referenceBm25(docs, query, tok, k1 = 1.2, b = 0.75) {
  const terms = (s) => tok.decode(tok.encode(s)).split(' ').filter(Boolean);
  const parsed = new Map([...docs].map(([id, text]) => [id, terms(text)]));
  const n = parsed.size;
  let total = 0;
  for (const t of parsed.values()) total += t.length;
  const avgdl = total / n;
  const q = terms(query);
  const out = [];
  for (const [id, t] of parsed) {
    let score = 0;
    let any = false;
    for (const term of q) {
      const tf = t.filter((x) => x === term).length;
      if (tf === 0) continue;
      const df = [...parsed.values()].filter((d) => d.includes(term)).length;
      const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
      score += (idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * t.length) / avgdl));
      any = true;
    }
    if (any) out.push([id, score]);
  }
  return out.sort((x, y) => y[1] - x[1] || x[0] - y[0]);
}

function assertHits(actual, expected, k) {
  const want = expected.slice(0, k);
  assert.equal(actual.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(actual[i][1] - want[i][1]) < 1e-6, `score ${i}: ${actual[i][1]} vs ${want[i][1]}`);
    const tie = (j) => j >= 0 && j < expected.length && Math.abs(expected[j][1] - want[i][1]) < 1e-9;
    if (!tie(i - 1) && !tie(i + 1)) assert.equal(actual[i][0], want[i][0]);
  }
}

const CORPUS = new Map([
  [1, 'The quick brown fox jumps over the lazy dog'],
  [2, 'A quick brown dog outpaces a quick fox'],
  [3, 'Lorem ipsum dolor sit amet'],
  [4, 'The dog sleeps. The dog dreams. The dog wakes.'],
  [5, 'Foxes are quick; dogs are loyal'],
  [6, ''],
  [7, 'Café, CAFÉ and café'],
  [8, 'Быстрая коричневая лиса'],
  [4000000000, 'quick quick quick quick'],
]);

describe('InvertedIndex', () => {
  before(async () => {
    await init();
  });

  test('search matches a reference BM25; ties by docId; defaults', () => {
    const index = track(new InvertedIndex());
    const tok = track(new Tokenizer());
    assert.equal(index.k1, 1.2);
    assert.equal(index.b, 0.75);
    for (const [id, text] of CORPUS) index.addDocument(id, text);
    assert.equal(index.size, CORPUS.size);
    for (const q of ['quick fox', 'the dog', 'QUICK', 'café', 'лиса', 'quick quick', 'nothing here', '', 'dog dog cat']) {
      const all = index.search(q, 100);
      assertHits(all, referenceBm25(CORPUS, q, tok), 100);
      assertHits(index.search(q, 2), referenceBm25(CORPUS, q, tok), 2);
      assert.equal(index.search(q).length, Math.min(10, all.length)); // topK defaults to 10
      for (const [id, score] of all) {
        assert.ok(Number.isInteger(id) && id >= 0);
        assert.ok(score > 0);
      }
    }
    const hits = index.search('quick', 10);
    assert.ok(Array.isArray(hits) && Array.isArray(hits[0]) && hits[0].length === 2);
    assert.equal(hits[0][0], 4000000000); // doc ids up to 2^32 - 1 round-trip

    const ties = track(new InvertedIndex({ k1: 0.9, b: 0.4 }));
    for (const id of [9, 3, 5, 1]) ties.addDocument(id, id === 5 ? 'other' : 'same words');
    assert.deepEqual(ties.search('same', 10).map(([id]) => id), [1, 3, 9]);
    assertHits(ties.search('words', 10), referenceBm25(new Map([[9, 'same words'], [3, 'same words'], [5, 'other'], [1, 'same words']]), 'words', tok, 0.9, 0.4), 10);
  });

  test('pruned top-k equals the reference on a seeded Zipf corpus', () => {
    const index = track(new InvertedIndex());
    const tok = track(new Tokenizer());
    const rand = rng(2024);
    const word = zipf(2000, 1.05, rand);
    const docs = new Map();
    for (let i = 0; i < 600; i++) {
      const len = 5 + rand(40);
      const text = Array.from({ length: len }, () => `w${word()}`).join(' ');
      docs.set(i * 3, text);
      index.addDocument(i * 3, text);
    }
    for (let q = 0; q < 40; q++) {
      const query = Array.from({ length: 1 + rand(4) }, () => `w${rand(3) === 0 ? rand(20) : word()}`).join(' ');
      assertHits(index.search(query, 10), referenceBm25(docs, query, tok), 10);
    }
  });

  test('remove, re-add, frequencies and stats', () => {
    const index = track(new InvertedIndex());
    index.addDocument(1, 'apple banana');
    index.addDocument(2, 'banana cherry CHERRY');
    assert.equal(index.getDocumentFrequency('banana'), 2);
    assert.equal(index.getTermFrequency('Cherry!', 2), 2);
    assert.equal(index.getTermFrequency('cherry', 1), 0);
    assert.equal(index.getTermFrequency('cherry', 99), 0);
    assert.equal(index.getDocumentFrequency('nope'), 0);
    let s = index.stats();
    assert.deepEqual(Object.keys(s).sort(), ['avgDocLength', 'bytes', 'compressedBytes', 'deadPostings', 'documents', 'postings', 'terms', 'tokens', 'uncompressedBytes']);
    assert.equal(s.documents, 2);
    assert.equal(s.terms, 3);
    assert.equal(s.postings, 4);
    assert.equal(s.tokens, 5);
    assert.equal(s.avgDocLength, 2.5);
    assert.ok(s.compressedBytes > 0 && s.compressedBytes < s.uncompressedBytes);
    assert.ok(s.bytes > s.compressedBytes);

    assert.equal(index.removeDocument(1), true);
    assert.equal(index.removeDocument(1), false);
    assert.equal(index.removeDocument(777), false);
    assert.equal(index.hasDocument(1), false);
    assert.equal(index.hasDocument(2), true);
    assert.deepEqual(index.search('apple'), []);
    assert.equal(index.getDocumentFrequency('banana'), 1);

    index.addDocument(2, 'durian'); // re-adding replaces
    assert.deepEqual(index.search('banana cherry'), []);
    assert.equal(index.search('durian')[0][0], 2);
    assert.equal(index.size, 1);
    s = index.stats();
    assert.equal(s.documents, 1);
    assert.equal(s.terms, 1);

    index.clear();
    assert.equal(index.size, 0);
    assert.deepEqual(index.search('durian'), []);
    index.addDocument(5, 'again');
    assert.equal(index.search('again')[0][0], 5);
  });

  test('serialize / deserialize round trip, and every truncation and bit flip is rejected', () => {
    const index = track(new InvertedIndex({ k1: 1.5, b: 0.6 }));
    for (const [id, text] of CORPUS) index.addDocument(id, text);
    index.removeDocument(3);
    const bytes = index.serialize();
    assert.ok(bytes instanceof Uint8Array);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), 'LLMDSBM2');
    const copy = track(InvertedIndex.deserialize(bytes));
    assert.equal(copy.k1, 1.5);
    assert.equal(copy.b, 0.6);
    assert.equal(copy.size, index.size);
    for (const q of ['quick fox', 'dog', 'café', 'lorem']) assert.deepEqual(copy.search(q, 20), index.search(q, 20));
    assert.deepEqual(copy.serialize(), bytes);
    const fromBuffer = track(InvertedIndex.deserialize(bytes.slice().buffer));
    assert.equal(fromBuffer.size, index.size);

    for (let n = 0; n < bytes.length; n++) {
      throwsCode(() => InvertedIndex.deserialize(bytes.subarray(0, n)), 'corrupt_data');
    }
    const rand = rng(99);
    for (let round = 0; round < 300; round++) {
      const bad = bytes.slice();
      const at = rand(bad.length);
      bad[at] ^= 1 << rand(8);
      assert.throws(
        () => InvertedIndex.deserialize(bad),
        (e) => e instanceof LlmdsError && (e.code === 'corrupt_data' || e.code === 'version_mismatch'),
      );
    }
    throwsCode(() => InvertedIndex.deserialize('LLMDSBM2'), 'invalid_argument', /bytes must be a Uint8Array/);
    throwsCode(() => InvertedIndex.deserialize(null), 'invalid_argument', /bytes/);
    throwsCode(() => InvertedIndex.deserialize(new Float32Array(8)), 'invalid_argument', /bytes must be a Uint8Array/);
    const gone = bytes.slice().buffer;
    structuredClone(gone, { transfer: [gone] });
    throwsCode(() => InvertedIndex.deserialize(gone), 'invalid_argument', /detached/);
  });

  test('bad inputs throw LlmdsError and change nothing', () => {
    const index = track(new InvertedIndex());
    index.addDocument(1, 'alpha beta');
    const before = JSON.stringify([index.stats(), index.search('alpha beta')]);
    throwsCode(() => index.addDocument(-1, 'x'), 'invalid_argument', /docId.*-1/);
    throwsCode(() => index.addDocument(1.5, 'x'), 'invalid_argument', /docId/);
    throwsCode(() => index.addDocument(2 ** 32, 'x'), 'invalid_argument', /docId/);
    throwsCode(() => index.addDocument(NaN, 'x'), 'invalid_argument', /docId.*NaN/);
    throwsCode(() => index.addDocument('1', 'x'), 'invalid_argument', /docId/);
    throwsCode(() => index.addDocument(2, 42), 'invalid_argument', /text must be a string/);
    throwsCode(() => index.addDocument(2), 'invalid_argument', /text/);
    throwsCode(() => index.removeDocument(-3), 'invalid_argument', /docId/);
    throwsCode(() => index.search(42), 'invalid_argument', /query must be a string/);
    throwsCode(() => index.search('alpha', 0), 'invalid_argument', /topK.*0/);
    throwsCode(() => index.search('alpha', 2.5), 'invalid_argument', /topK/);
    throwsCode(() => index.search('alpha', -1), 'invalid_argument', /topK/);
    throwsCode(() => index.getTermFrequency('alpha beta', 1), 'invalid_argument', /single word/);
    throwsCode(() => index.getTermFrequency('', 1), 'invalid_argument', /one word/);
    throwsCode(() => index.getTermFrequency('alpha', -1), 'invalid_argument', /docId/);
    throwsCode(() => index.getTermFrequency(7, 1), 'invalid_argument', /term must be a string/);
    throwsCode(() => index.getDocumentFrequency('!!'), 'invalid_argument', /one word/);
    assert.equal(JSON.stringify([index.stats(), index.search('alpha beta')]), before);

    throwsCode(() => new InvertedIndex({ k1: -1 }), 'invalid_argument', /k1.*-1/);
    throwsCode(() => new InvertedIndex({ k1: Infinity }), 'invalid_argument', /k1/);
    throwsCode(() => new InvertedIndex({ k1: '1' }), 'invalid_argument', /k1/);
    throwsCode(() => new InvertedIndex({ b: 1.5 }), 'invalid_argument', /b must be.*1.5/);
    throwsCode(() => new InvertedIndex({ b: NaN }), 'invalid_argument', /b must be/);
    throwsCode(() => new InvertedIndex({ K1: 1 }), 'invalid_argument', /unknown option "K1"/);
    throwsCode(() => new InvertedIndex(5), 'invalid_argument', /options/);
    const edge = track(new InvertedIndex({ k1: 0, b: 1 }));
    edge.addDocument(1, 'x');
    assert.equal(edge.search('x').length, 1);
  });

  test('dispose: idempotent, later calls throw disposed', () => {
    const index = new InvertedIndex();
    index.addDocument(1, 'x');
    index.dispose();
    index.dispose();
    for (const call of [() => index.search('x'), () => index.addDocument(2, 'y'), () => index.stats(), () => index.size, () => index.serialize()]) {
      throwsCode(call, 'disposed', /InvertedIndex/);
    }
  });

  test('results and the index survive heap growth', () => {
    const index = track(new InvertedIndex());
    index.addDocument(1, 'first doc');
    const hits = index.search('first');
    const big = 'lorem ipsum dolor sit amet '.repeat(400_000); // ~11 MB of text in one call
    index.addDocument(2, big);
    for (let i = 10; i < 2010; i++) index.addDocument(i, `doc ${i} ${'word '.repeat(i % 50)}`);
    assert.equal(hits[0][0], 1);
    assert.equal(index.search('first')[0][0], 1);
    assert.equal(index.getTermFrequency('lorem', 2), 400_000);
  });
});

describe('CountMinSketch', () => {
  before(async () => {
    await init();
  });

  test('defaults, add / estimate / isHot / errorBound / totalCount / reset', () => {
    const cms = track(new CountMinSketch());
    assert.equal(cms.width, 2048);
    assert.equal(cms.depth, 4);
    assert.equal(cms.seed, 0);
    assert.equal(cms.totalCount, 0);
    cms.add('apple');
    cms.add('apple', 4);
    cms.add(7, 2);
    cms.add('7');
    cms.add('fig', 0);
    assert.equal(cms.estimate('apple'), 5);
    assert.equal(cms.estimate(7), 3); // numbers count as their decimal string
    assert.equal(cms.estimate('7'), 3);
    assert.equal(cms.estimate('fig'), 0);
    assert.equal(cms.totalCount, 8);
    assert.equal(cms.isHot('apple', 5), true);
    assert.equal(cms.isHot('apple', 5.5), false);
    assert.ok(Math.abs(cms.errorBound() - (Math.E / 2048) * 8) < 1e-12);
    assert.ok(Math.abs(cms.confidence() - (1 - Math.exp(-4))) < 1e-12);
    cms.add('ünïcödé', 2);
    assert.equal(cms.estimate('ünïcödé'), 2);
    cms.add(2 ** 40);
    assert.equal(cms.estimate(String(2 ** 40)), 1);
    cms.reset();
    assert.equal(cms.totalCount, 0);
    assert.equal(cms.estimate('apple'), 0);
  });

  test('Zipf stream: never under-estimates; the error bound holds for >= 1 - e^-depth', () => {
    const cms = track(new CountMinSketch({ width: 256, depth: 4 }));
    const rand = rng(3);
    const next = zipf(5000, 1.0, rand);
    const truth = new Map();
    for (let i = 0; i < 50_000; i++) {
      const item = `q${next()}`;
      truth.set(item, (truth.get(item) ?? 0) + 1);
      cms.add(item);
    }
    assert.equal(cms.totalCount, 50_000);
    let within = 0;
    for (let r = 0; r < 5000; r++) {
      const item = `q${r}`;
      const t = truth.get(item) ?? 0;
      const est = cms.estimate(item);
      assert.ok(est >= t, `${item}: ${est} < ${t}`);
      if (est - t <= cms.errorBound()) within++;
    }
    assert.ok(within / 5000 >= cms.confidence(), `${within / 5000}`);
  });

  test('merge: compatible sketches sum; incompatible ones are rejected', () => {
    const a = track(new CountMinSketch({ width: 512, depth: 3, seed: 9 }));
    const b = track(new CountMinSketch({ width: 512, depth: 3, seed: 9 }));
    a.add('x', 3);
    b.add('x', 4);
    b.add('y');
    a.merge(b);
    assert.ok(a.estimate('x') >= 7);
    assert.ok(a.estimate('y') >= 1);
    assert.equal(a.totalCount, 8);
    assert.equal(b.totalCount, 5);
    throwsCode(() => a.merge(track(new CountMinSketch({ width: 256, depth: 3, seed: 9 }))), 'invalid_argument', /same width, depth and seed/);
    throwsCode(() => a.merge(track(new CountMinSketch({ width: 512, depth: 3, seed: 1 }))), 'invalid_argument', /seed/);
    throwsCode(() => a.merge({}), 'invalid_argument', /other must be a CountMinSketch/);
    const gone = new CountMinSketch({ width: 512, depth: 3, seed: 9 });
    gone.dispose();
    throwsCode(() => a.merge(gone), 'disposed');
    assert.equal(a.totalCount, 8);
  });

  test('bad inputs throw LlmdsError and change nothing', () => {
    const cms = track(new CountMinSketch({ width: 64, depth: 2 }));
    cms.add('a');
    throwsCode(() => cms.add(null), 'invalid_argument', /item must be a string or a finite number/);
    throwsCode(() => cms.add(NaN), 'invalid_argument', /item/);
    throwsCode(() => cms.add(Infinity), 'invalid_argument', /item/);
    throwsCode(() => cms.add({}), 'invalid_argument', /item/);
    throwsCode(() => cms.add('a', -1), 'invalid_argument', /count.*-1/);
    throwsCode(() => cms.add('a', 1.5), 'invalid_argument', /count/);
    throwsCode(() => cms.add('a', 2 ** 53), 'invalid_argument', /count/);
    throwsCode(() => cms.estimate(undefined), 'invalid_argument', /item/);
    throwsCode(() => cms.isHot('a', NaN), 'invalid_argument', /threshold/);
    throwsCode(() => cms.isHot('a', '1'), 'invalid_argument', /threshold/);
    cms.add('big', Number.MAX_SAFE_INTEGER - 1);
    throwsCode(() => cms.add('a', 1), 'capacity_exceeded', /2\^53/);
    assert.equal(cms.totalCount, Number.MAX_SAFE_INTEGER);
    assert.equal(cms.estimate('a'), 1);

    throwsCode(() => new CountMinSketch({ width: 0 }), 'invalid_argument', /width.*0/);
    throwsCode(() => new CountMinSketch({ width: 2 ** 24 + 1 }), 'invalid_argument', /width/);
    throwsCode(() => new CountMinSketch({ depth: 33 }), 'invalid_argument', /depth.*33/);
    throwsCode(() => new CountMinSketch({ depth: 1.5 }), 'invalid_argument', /depth/);
    throwsCode(() => new CountMinSketch({ seed: -1 }), 'invalid_argument', /seed/);
    throwsCode(() => new CountMinSketch({ width: 2 ** 24, depth: 4 }), 'invalid_argument', /width \* depth/);
    throwsCode(() => new CountMinSketch({ widht: 5 }), 'invalid_argument', /unknown option "widht"/);
  });

  test('dispose: idempotent, later calls throw disposed', () => {
    const cms = new CountMinSketch();
    cms.add('x');
    cms.dispose();
    cms.dispose();
    for (const call of [() => cms.add('x'), () => cms.estimate('x'), () => cms.totalCount, () => cms.errorBound(), () => cms.reset()]) {
      throwsCode(call, 'disposed', /CountMinSketch/);
    }
  });
});

describe('Tokenizer, InvertedIndex and CountMinSketch with hostile inputs', () => {
  before(async () => {
    await init();
  });
  const words = fc.array(fc.constantFrom('a', 'b', 'c', ' ', 'É', 'я', '中', '!', '\uD800'), { maxLength: 12 }).map((a) => a.join(''));
  const docId = fc.integer({ min: 0, max: 4 });

  const tokenizer = () => {
    const t = new Tokenizer();
    t.encode('a b c');
    return t;
  };
  for (const [method, args] of Object.entries({
    encode: [argOf(words)],
    decode: [argOf(fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 5 }))],
    countTokens: [argOf(words)],
  })) {
    test(`Tokenizer.${method}`, () => checkMethod({ make: tokenizer, method, args, snapshot: (t) => t.vocabSize }));
  }

  const index = () => {
    const x = new InvertedIndex();
    x.addDocument(1, 'a b c');
    x.addDocument(2, 'b c');
    return x;
  };
  const indexSnapshot = (x) => ({ stats: x.stats(), hits: x.search('a b c É я 中', 10), bytes: [...x.serialize()] });
  for (const [method, args] of Object.entries({
    addDocument: [argOf(docId), argOf(words)],
    removeDocument: [argOf(docId)],
    search: [argOf(words), fc.oneof(fc.constant(undefined), argOf(fc.integer({ min: 1, max: 5 })))],
    getTermFrequency: [argOf(words), argOf(docId)],
    getDocumentFrequency: [argOf(words)],
  })) {
    test(`InvertedIndex.${method}`, () => checkMethod({ make: index, method, args, snapshot: indexSnapshot }));
  }

  const sketch = () => {
    const c = new CountMinSketch({ width: 32, depth: 3 });
    c.add('a', 3);
    return c;
  };
  const sketchSnapshot = (c) => ({ total: c.totalCount, a: c.estimate('a'), one: c.estimate(1) });
  const item = fc.oneof(words, fc.integer({ min: -3, max: 3 }));
  for (const [method, args] of Object.entries({
    add: [argOf(item), fc.oneof(fc.constant(undefined), argOf(fc.integer({ min: 0, max: 5 })))],
    estimate: [argOf(item)],
    isHot: [argOf(item), argOf(fc.integer({ min: 0, max: 5 }))],
    merge: [hostile],
  })) {
    test(`CountMinSketch.${method}`, () => checkMethod({ make: sketch, method, args, snapshot: sketchSnapshot }));
  }

  test('constructors and deserialize', () => {
    const attempt = (f) => {
      try {
        f()?.dispose();
      } catch (e) {
        assert.ok(e instanceof LlmdsError, String(e));
      }
    };
    fc.assert(
      fc.property(fc.oneof(hostile, fc.record({ k1: hostile, b: hostile }, { requiredKeys: [] })), (o) => attempt(() => new InvertedIndex(o))),
      { numRuns: 200, seed: 2 },
    );
    fc.assert(
      fc.property(fc.oneof(hostile, fc.record({ width: hostile, depth: hostile, seed: hostile }, { requiredKeys: [] })), (o) =>
        attempt(() => new CountMinSketch(o)),
      ),
      { numRuns: 200, seed: 3 },
    );
    fc.assert(fc.property(hostile, (b) => attempt(() => InvertedIndex.deserialize(b))), { numRuns: 200, seed: 4 });
  });
});
