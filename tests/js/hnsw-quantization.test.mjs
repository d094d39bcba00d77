// SPDX-License-Identifier: MIT
// HNSW quantization through JS: options and their errors, the memory saving, recall, byte-identical
// round trips, the SIMD, portable and native builds agreeing byte for byte (the fingerprints of
// tests/cpp/hnsw_quantization_test.cpp), f16's range check in add and addBatch, filters.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, throwsCode, disposeAfterEach, inFreshEngine as inFreshWorker, MULBERRY32_SOURCE, CRC32_SOURCE } from './llmds.mjs';

const { HNSW } = llmds;
const track = disposeAfterEach();

// The generator and data of tests/cpp/hnsw_quantization_test.cpp, float for float.
const GENERATOR = `
  ${MULBERRY32_SOURCE}
  function clustered(seed, n, dim, clusters, spread) {
    const next = mulberry32(seed);
    const f = Math.fround;
    const uniform = () => (next() >>> 8) / 16777216 - 0.5;
    const centres = new Float32Array(clusters * dim);
    for (let i = 0; i < centres.length; i++) centres[i] = uniform();
    const s = f(spread);
    const v = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      const c = next() % clusters;
      for (let j = 0; j < dim; j++) {
        const u1 = uniform(), u2 = uniform(), u3 = uniform(), u4 = uniform();
        const noise = f(f(f(u1 + u2) + u3) + u4);
        v[i * dim + j] = f(centres[c * dim + j] + f(s * noise));
      }
    }
    return v;
  }
  ${CRC32_SOURCE}
  // The C++ test "the same bytes natively and in both wasm builds": serialize() bytes, then the
  // ids and distance bits of 20 searches, CRC-32.
  function fingerprints(HNSW) {
    const dim = 37;
    const data = clustered(13, 400, dim, 6, 0.1);
    const out = {};
    for (const [quantization, metric, rescore] of [['f16', 'l2', 0], ['i8', 'l2', 0], ['i8', 'cosine', 2], ['b1', 'ip', 3]]) {
      const h = new HNSW({ dim, M: 12, efConstruction: 100, seed: 11, metric, quantization, rescore });
      h.addBatch(data, Array.from({ length: 400 }, (_, i) => i));
      for (let id = 0; id < 400; id += 9) h.remove(id);
      const parts = [...h.serialize()];
      const word = new DataView(new ArrayBuffer(4));
      for (let qi = 0; qi < 20; qi++) {
        for (const [id, d] of h.search(data.subarray(qi * 3 * dim, (qi * 3 + 1) * dim), 10)) {
          word.setUint32(0, id, true);
          parts.push(...new Uint8Array(word.buffer));
          word.setFloat32(0, d, true);
          parts.push(...new Uint8Array(word.buffer));
        }
      }
      h.dispose();
      out[quantization + '/' + metric] = crc32(parts);
    }
    return out;
  }`;
const { clustered, fingerprints } = new Function(`${GENERATOR}; return { clustered, fingerprints };`)();
const NATIVE = { 'f16/l2': 4264827753, 'i8/l2': 1831832656, 'i8/cosine': 3191548950, 'b1/ip': 2292582668 };

/** inFreshEngine with this file's generators in scope. */
const inFreshEngine = (code) => inFreshWorker(code, GENERATOR);

function exact(data, dim, q, metric, k) {
  const all = [];
  let qq = 0;
  for (let j = 0; j < dim; j++) qq += q[j] * q[j];
  for (let i = 0; i < data.length / dim; i++) {
    let ab = 0, bb = 0, l2 = 0;
    for (let j = 0; j < dim; j++) {
      const x = data[i * dim + j];
      ab += x * q[j];
      bb += x * x;
      l2 += (x - q[j]) ** 2;
    }
    all.push([metric === 'l2' ? l2 : metric === 'cosine' ? 1 - ab / Math.sqrt(qq * bb) : 1 - ab, i]);
  }
  all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return all.slice(0, k).map((x) => x[1]);
}

const ids = (n, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('HNSW quantization', () => {
  before(() => llmds.init());

  test('options: defaults, getters, and invalid combinations', () => {
    const plain = track(new HNSW({ dim: 4 }));
    assert.equal(plain.quantization, 'none');
    assert.equal(plain.rescore, 0);
    assert.equal(track(new HNSW({ dim: 4, quantization: 'f16' })).rescore, 0);
    assert.equal(track(new HNSW({ dim: 4, quantization: 'i8' })).rescore, 0);
    const b1 = track(new HNSW({ dim: 4, quantization: 'b1', metric: 'cosine' }));
    assert.equal(b1.quantization, 'b1');
    assert.equal(b1.rescore, 20);
    assert.equal(track(new HNSW({ dim: 4, quantization: 'i8', rescore: 3 })).rescore, 3);
    throwsCode(() => new HNSW({ dim: 4, quantization: 'b1' }), 'invalid_argument', /'b1' supports metric 'cosine' or 'ip'/);
    throwsCode(() => new HNSW({ dim: 4, rescore: 2 }), 'invalid_argument', /rescore needs quantization/);
    throwsCode(() => new HNSW({ dim: 4, quantization: 'int8' }), 'invalid_argument', /quantization must be/);
    for (const bad of [-1, 1.5, 1025, '2']) {
      throwsCode(() => new HNSW({ dim: 4, quantization: 'i8', rescore: bad }), 'invalid_argument', /rescore/);
    }
  });

  test('stats().bytes shows the saving; rescoreBytes is the f32 kept for rescoring', () => {
    const dim = 256;
    const data = clustered(7, 600, dim, 8, 0.1);
    const stats = {};
    for (const [name, o] of Object.entries({
      f32: {}, f16: { quantization: 'f16' }, i8: { quantization: 'i8' }, b1: { quantization: 'b1', rescore: 0 }, b1r: { quantization: 'b1' },
    })) {
      const h = track(new HNSW({ dim, metric: 'cosine', ...o }));
      h.addBatch(data, ids(600));
      stats[name] = h.stats();
    }
    assert.ok(stats.f16.bytes < 0.65 * stats.f32.bytes);
    assert.ok(stats.i8.bytes < 0.4 * stats.f32.bytes);
    assert.ok(stats.b1.bytes < 0.2 * stats.f32.bytes);
    for (const n of ['f32', 'f16', 'i8', 'b1']) assert.equal(stats[n].rescoreBytes, 0);
    assert.ok(stats.b1r.rescoreBytes >= 600 * dim * 4);
    assert.equal(stats.b1r.bytes - stats.b1r.rescoreBytes, stats.b1.bytes);
  });

  test('recall@10 on a clustered set, every mode and metric', () => {
    const dim = 48;
    const data = clustered(5, 1500, dim, 16, 0.08);
    const noise = clustered(6, 40, dim, 16, 0.08);
    const queries = data.slice(0, noise.length).map((x, i) => Math.fround(x + Math.fround(0.02 * noise[i])));
    const modes = [
      ['none', 'l2', undefined, 0.97], ['f16', 'l2', undefined, 0.97], ['f16', 'cosine', undefined, 0.97],
      ['i8', 'l2', undefined, 0.93], ['i8', 'cosine', undefined, 0.93], ['i8', 'ip', undefined, 0.93],
      ['i8', 'l2', 3, 0.97], ['b1', 'cosine', undefined, 0.75], ['b1', 'ip', undefined, 0.65],
    ];
    for (const [quantization, metric, rescore, floor] of modes) {
      const h = track(new HNSW({ dim, M: 12, efConstruction: 100, seed: 11, metric, quantization, rescore }));
      h.addBatch(data, ids(1500));
      let hits = 0;
      for (let qi = 0; qi < 40; qi++) {
        const q = queries.subarray(qi * dim, (qi + 1) * dim);
        const truth = new Set(exact(data, dim, q, metric, 10));
        for (const [id] of h.search(q, 10, { efSearch: 64 })) hits += truth.has(id) ? 1 : 0;
      }
      const recall = hits / 400;
      assert.ok(recall >= floor, `${quantization}/${metric}/rescore ${rescore}: recall@10 ${recall} < ${floor}`);
    }
  });

  test('serialize → deserialize is byte-identical and searches the same; none stays format 1', () => {
    const dim = 21;
    const data = clustered(9, 300, dim, 10, 0.1);
    for (const [quantization, metric] of [['none', 'l2'], ['f16', 'ip'], ['i8', 'cosine'], ['b1', 'cosine']]) {
      const h = track(new HNSW({ dim, metric, quantization, seed: 3 }));
      h.addBatch(data, ids(300));
      h.remove(5);
      const bytes = h.serialize();
      assert.equal(bytes[8], quantization === 'none' ? 1 : 2);
      const back = track(HNSW.deserialize(bytes));
      assert.deepEqual(back.serialize(), bytes);
      assert.equal(back.quantization, quantization);
      assert.equal(back.rescore, h.rescore);
      const q = data.subarray(10 * dim, 11 * dim);
      assert.deepEqual(back.search(q, 10), h.search(q, 10));
      assert.deepEqual(back.searchBatch(data.subarray(0, 5 * dim), 4), h.searchBatch(data.subarray(0, 5 * dim), 4));
    }
  });

  test('identical bytes and results from the SIMD and the portable build (and the native C++ suite)', async () => {
    const simd = fingerprints(HNSW);
    const portable = await inFreshEngine(`
      const f = await llmds.init({ simd: false });
      return { simd: f.simd, fp: fingerprints(llmds.HNSW) };`);
    assert.equal(portable.error, undefined, portable.error?.message);
    assert.equal(portable.ok.simd, false);
    assert.deepEqual(simd, NATIVE);
    assert.deepEqual(portable.ok.fp, NATIVE);
  });

  test('f16: values outside binary16 are invalid_argument in add and addBatch (all or nothing)', () => {
    const h = track(new HNSW({ dim: 3, quantization: 'f16' }));
    throwsCode(() => h.add([1, 70000, 2], 1), 'invalid_argument', /vector\[1\] is outside the binary16 range/);
    throwsCode(() => h.addBatch([[1, 2, 3], [1, -65520, 3]], [1, 2]), 'invalid_argument', /addBatch: vector 1\[1\] is outside the binary16 range/);
    assert.equal(h.size, 0);
    h.add([1, 65504, 2], 1);
    assert.deepEqual(h.search([1, 70000, 2], 1).map(([id]) => id), [1]); // queries stay f32
    const c = track(new HNSW({ dim: 3, quantization: 'f16', metric: 'cosine' }));
    c.add([1, 70000, 2], 1); // cosine stores the unit vector
  });

  test('filters work with quantized indexes (the k best allowed, exact distances when rescoring)', () => {
    const dim = 16;
    const data = clustered(4, 500, dim, 5, 0.1);
    const h = track(new HNSW({ dim, metric: 'cosine', quantization: 'b1', rescore: 20 }));
    h.addBatch(data, ids(500));
    const even = (id) => id % 2 === 0;
    const q = data.subarray(0, dim);
    const got = h.search(q, 5, { filter: even });
    assert.equal(got.length, 5);
    const truth = exact(data, dim, q, 'cosine', 500).filter(even).slice(0, 5);
    for (const [id, d] of got) {
      assert.ok(even(id));
      // Rescored: exact cosine distances, not b1's Hamming fractions.
      let ab = 0, aa = 0, bb = 0;
      for (let j = 0; j < dim; j++) {
        ab += data[id * dim + j] * q[j];
        aa += data[id * dim + j] ** 2;
        bb += q[j] ** 2;
      }
      assert.ok(Math.abs(d - (1 - ab / Math.sqrt(aa * bb))) < 1e-5, `${id}: ${d}`);
    }
    assert.equal(got[0][0], 0);
    assert.ok(got.filter(([id]) => truth.includes(id)).length >= 4);
  });
});
