// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, throwsCode, disposeAfterEach, inFreshEngine as inFreshWorker, MULBERRY32_SOURCE, CRC32_SOURCE } from './llmds.mjs';

const { init, features, HNSW, LlmdsError } = llmds;

// Node 20 has no `using` syntax: what a test tracks is disposed after it.
const track = disposeAfterEach();

// mulberry32, the same generator as tests/cpp/hnsw_test.cpp, so both build identical indexes.
const GENERATOR = `
  ${MULBERRY32_SOURCE}
  // Exact float32 values in [-0.5, 0.5): 24 random bits.
  function uniformData(seed, n, dim) {
    const next = mulberry32(seed);
    const out = new Float32Array(n * dim);
    for (let i = 0; i < out.length; i++) out[i] = (next() >>> 8) / 16777216 - 0.5;
    return out;
  }
  // The fingerprint indexes of the C++ test "same seed and order give identical bytes".
  function fingerprintIndexes(HNSW) {
    const data = uniformData(42, 300, 16);
    const ids = Array.from({ length: 300 }, (_, i) => i);
    const out = {};
    for (const metric of ['l2', 'cosine', 'ip']) {
      const index = new HNSW({ dim: 16, M: 16, efConstruction: 200, seed: 7, metric });
      index.addBatch(data, ids);
      index.remove(17);
      out[metric] = index.serialize();
      index.dispose();
    }
    return out;
  }`;
const { uniformData, fingerprintIndexes } = new Function(`${GENERATOR}; return { uniformData, fingerprintIndexes };`)();

// CRC-32 of the bytes before the trailer, as the C++ tests print it (= the stored checksum).
const FINGERPRINTS = { l2: 553296471, cosine: 2929140355, ip: 2179606455 };
const storedCrc = (bytes) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 4, true);

const crc32 = new Function(`${CRC32_SOURCE}; return crc32;`)();

/** inFreshEngine with this file's generators in scope. */
const inFreshEngine = (code) => inFreshWorker(code, GENERATOR);

function bruteForce(data, dim, alive, q, k) {
  const all = [];
  for (let i = 0; i < data.length / dim; i++) {
    if (alive && !alive[i]) continue;
    let d = 0;
    for (let j = 0; j < dim; j++) d += (data[i * dim + j] - q[j]) ** 2;
    all.push([d, i]);
  }
  all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return all.slice(0, k).map((x) => x[1]);
}

describe('HNSW', () => {
  before(async () => {
    await init();
  });

  test('add, has, size, search nearest first with squared L2 distances', () => {
    const index = track(new HNSW({ dim: 3 }));
    assert.equal(index.size, 0);
    assert.deepEqual(index.search([0, 0, 0], 3), []);
    index.add([0, 0, 0], 10);
    index.add(Float32Array.of(1, 0, 0), 11);
    index.add([0, 2, 0], 12);
    index.add([10, 10, 10], 13);
    assert.equal(index.size, 4);
    assert.equal(index.has(12), true);
    assert.equal(index.has(99), false);
    assert.equal(index.has(2 ** 32 - 1), false);
    const r = index.search([1, 0, 0], 3);
    assert.deepEqual(r.map(([id]) => id), [11, 10, 12]);
    assert.deepEqual(r.map(([, d]) => d), [0, 1, 5]);
    assert.ok(Array.isArray(r[0]));
    assert.equal(index.search([1, 0, 0], 10).length, 4);
    assert.equal(index.dim, 3);
    assert.equal(index.metric, 'l2');
    assert.equal(index.efSearch, 50);
  });

  test('stats', () => {
    const index = track(new HNSW({ dim: 4, seed: 3 }));
    assert.deepEqual(index.stats(), { size: 0, levels: 0, entryPoint: -1, nodes: 0, tombstones: 0, edges: 0, avgDegree: 0, bytes: index.stats().bytes, rescoreBytes: 0 });
    index.addBatch(uniformData(1, 50, 4), Array.from({ length: 50 }, (_, i) => i + 100));
    const s = index.stats();
    assert.deepEqual(Object.keys(s).sort(), ['avgDegree', 'bytes', 'edges', 'entryPoint', 'levels', 'nodes', 'rescoreBytes', 'size', 'tombstones']);
    assert.equal(s.size, 50);
    assert.ok(s.levels >= 1);
    assert.ok(s.entryPoint >= 100 && s.entryPoint < 150);
    assert.ok(s.edges > 50);
    assert.ok(s.avgDegree > 1);
    assert.ok(s.bytes > 50 * 4 * 4);
  });

  test('recall@10 >= 0.95 against brute force; efSearch per query', () => {
    const dim = 16;
    const n = 1500;
    const data = uniformData(5, n + 50, dim);
    const index = track(new HNSW({ dim }));
    index.addBatch(data.subarray(0, n * dim), Int32Array.from({ length: n }, (_, i) => i));
    let hits = 0;
    let hitsWide = 0;
    for (let q = 0; q < 50; q++) {
      const query = data.subarray((n + q) * dim, (n + q + 1) * dim);
      const truth = new Set(bruteForce(data.subarray(0, n * dim), dim, null, query, 10));
      hits += index.search(query, 10).filter(([id]) => truth.has(id)).length;
      hitsWide += index.search(query, 10, { efSearch: 300 }).filter(([id]) => truth.has(id)).length;
    }
    assert.ok(hits / 500 >= 0.95, `recall ${hits / 500}`);
    assert.ok(hitsWide >= hits);
    index.efSearch = 1; // the beam is max(efSearch, k)
    assert.equal(index.efSearch, 1);
    assert.equal(index.search(data.subarray(0, dim), 10).length, 10);
  });

  test('addBatch accepts flat arrays and arrays of vectors; searchBatch pads with -1 / Infinity', () => {
    const index = track(new HNSW({ dim: 2 }));
    index.addBatch([[0, 0], Float32Array.of(1, 0)], [1, 2]);
    index.addBatch([0, 5, 5, 5], Uint32Array.of(3, 4));
    assert.equal(index.size, 4);
    const r = index.searchBatch([[0, 0], [5, 5]], 6);
    assert.ok(r.ids instanceof Int32Array);
    assert.ok(r.distances instanceof Float32Array);
    assert.deepEqual(Array.from(r.ids), [1, 2, 3, 4, -1, -1, 4, 3, 2, 1, -1, -1]);
    assert.deepEqual(Array.from(r.distances.subarray(0, 4)), [0, 1, 25, 50]);
    assert.equal(r.distances[4], Infinity);
    assert.equal(r.distances[11], Infinity);
    const flat = index.searchBatch(Float32Array.of(0, 0, 5, 5), 2, { efSearch: 10 });
    assert.deepEqual(Array.from(flat.ids), [1, 2, 4, 3]);
    for (const [i, q] of [[0, 0], [5, 5]].entries()) {
      assert.deepEqual(index.search(q, 2).map(([id]) => id), Array.from(flat.ids.subarray(2 * i, 2 * i + 2)));
    }
    const none = index.searchBatch(new Float32Array(0), 3);
    assert.equal(none.ids.length, 0);
    assert.equal(none.distances.length, 0);
  });

  test('cosine reports 1 - cos and normalises; ip reports 1 - dot', () => {
    const cos = track(new HNSW({ dim: 2, metric: 'cosine' }));
    cos.add([3, 4], 1);
    cos.add([0, 5], 2);
    cos.add([-1, 0], 3);
    const r = cos.search([6, 8], 3);
    assert.deepEqual(r.map(([id]) => id), [1, 2, 3]);
    assert.ok(Math.abs(r[0][1]) < 1e-6);
    assert.ok(Math.abs(r[1][1] - 0.2) < 1e-6);
    assert.ok(Math.abs(r[2][1] - 1.6) < 1e-6);
    assert.equal(cos.metric, 'cosine');
    const ip = track(new HNSW({ dim: 2, metric: 'ip' }));
    ip.add([3, 4], 1);
    ip.add([0, 5], 2);
    assert.deepEqual(ip.search([1, 1], 2), [[1, -6], [2, -4]]);
  });

  test('remove: never returned, graph stays navigable, re-adding works', () => {
    const dim = 8;
    const n = 600;
    const data = uniformData(9, n, dim);
    const index = track(new HNSW({ dim, M: 8 }));
    index.addBatch(data, Array.from({ length: n }, (_, i) => i));
    const alive = new Array(n).fill(true);
    const entry = index.stats().entryPoint;
    index.remove(entry);
    alive[entry] = false;
    for (let i = 0; i < n; i++) alive[i] = alive[i] && i % 3 !== 0;
    for (let i = 0; i < n; i += 3) if (index.has(i)) index.remove(i);
    assert.equal(index.size, alive.filter(Boolean).length);
    assert.ok(alive[index.stats().entryPoint]);
    let hits = 0;
    for (let q = 0; q < 40; q++) {
      const query = data.subarray(q * dim, (q + 1) * dim);
      const got = index.search(query, 10);
      assert.equal(got.length, 10);
      for (const [id] of got) assert.ok(alive[id], `removed id ${id} returned`);
      const truth = new Set(bruteForce(data, dim, alive, query, 10));
      hits += got.filter(([id]) => truth.has(id)).length;
    }
    assert.ok(hits / 400 >= 0.95, `recall after removals ${hits / 400}`);
    throwsCode(() => index.remove(0), 'not_found', /id 0/);
    index.add(data.subarray(0, dim), 0);
    assert.equal(index.has(0), true);
    assert.deepEqual(index.search(data.subarray(0, dim), 1), [[0, 0]]);
  });

  test('bad inputs throw LlmdsError with a stable code and change nothing', () => {
    const index = track(new HNSW({ dim: 3, metric: 'cosine' }));
    index.addBatch([[1, 2, 3], [3, 2, 1]], [1, 2]);
    const before = index.serialize();

    throwsCode(() => new HNSW(), 'invalid_argument', /dim/);
    throwsCode(() => new HNSW({}), 'invalid_argument', /dim/);
    throwsCode(() => new HNSW({ dim: 0 }), 'invalid_argument', /dim.*0/);
    throwsCode(() => new HNSW({ dim: 65537 }), 'invalid_argument', /dim/);
    throwsCode(() => new HNSW({ dim: 1.5 }), 'invalid_argument', /dim/);
    throwsCode(() => new HNSW({ dim: '3' }), 'invalid_argument', /dim/);
    throwsCode(() => new HNSW({ dim: 3, M: 1 }), 'invalid_argument', /M.*1/);
    throwsCode(() => new HNSW({ dim: 3, M: 513 }), 'invalid_argument', /M/);
    throwsCode(() => new HNSW({ dim: 3, efConstruction: 0 }), 'invalid_argument', /efConstruction/);
    throwsCode(() => new HNSW({ dim: 3, efSearch: 0 }), 'invalid_argument', /efSearch/);
    throwsCode(() => new HNSW({ dim: 3, seed: -1 }), 'invalid_argument', /seed/);
    throwsCode(() => new HNSW({ dim: 3, seed: 0.5 }), 'invalid_argument', /seed/);
    throwsCode(() => new HNSW({ dim: 3, metric: 'L2' }), 'invalid_argument', /metric.*L2/);
    throwsCode(() => new HNSW({ dim: 3, metric: 'euclidean' }), 'invalid_argument', /metric/);
    throwsCode(() => new HNSW({ dim: 3, m: 8 }), 'invalid_argument', /unknown option "m"/);
    throwsCode(() => new HNSW(3), 'invalid_argument', /options/);

    throwsCode(() => index.add([1, 2], 3), 'dimension_mismatch', /2 elements.*dim is 3/);
    throwsCode(() => index.add(new Float32Array(4), 3), 'dimension_mismatch');
    throwsCode(() => index.add([1, NaN, 2], 3), 'invalid_argument', /vector\[1\].*NaN/);
    throwsCode(() => index.add(Float32Array.of(1, NaN, 2), 3), 'invalid_argument', /vector\[1\].*NaN/);
    throwsCode(() => index.add([1, 2, Infinity], 3), 'invalid_argument', /vector\[2\].*Infinity/);
    throwsCode(() => index.add(Float32Array.of(-Infinity, 1, 2), 3), 'invalid_argument', /vector\[0\]/);
    throwsCode(() => index.add([1, 2, 1e39], 3), 'invalid_argument', /float32 range/);
    throwsCode(() => index.add([1, '2', 3], 3), 'invalid_argument', /vector\[1\]/);
    throwsCode(() => index.add('abc', 3), 'invalid_argument', /vector/);
    throwsCode(() => index.add(new Float64Array(3), 3), 'invalid_argument', /vector/);
    throwsCode(() => index.add([0, 0, 0], 3), 'invalid_argument', /zero vector/);
    throwsCode(() => index.add([1, 1, 1], -1), 'invalid_argument', /id.*-1/);
    throwsCode(() => index.add([1, 1, 1], 1.5), 'invalid_argument', /id/);
    throwsCode(() => index.add([1, 1, 1], 2 ** 31), 'invalid_argument', /id/);
    throwsCode(() => index.add([1, 1, 1], 1), 'duplicate_id', /id 1/);

    throwsCode(() => index.addBatch([[1, 1, 1], [2, 2, 2]], [5, 5]), 'duplicate_id', /5/);
    throwsCode(() => index.addBatch([[1, 1, 1], [2, 2, 2]], [5, 2]), 'duplicate_id', /2/);
    throwsCode(() => index.addBatch([[1, 1, 1], [2, 2, 2]], [5]), 'dimension_mismatch', /ids/);
    throwsCode(() => index.addBatch([[1, 1, 1], [2, 2]], [5, 6]), 'dimension_mismatch', /vectors\[1\]/);
    throwsCode(() => index.addBatch([1, 1, 1, 2], [5]), 'dimension_mismatch', /multiple of dim/);
    throwsCode(() => index.addBatch([[1, 1, 1], [0, 0, 0]], [5, 6]), 'invalid_argument', /zero vector/);
    throwsCode(() => index.addBatch([[1, 1, 1], [1, NaN, 1]], [5, 6]), 'invalid_argument', /NaN/);
    throwsCode(() => index.addBatch([[1, 1, 1]], [-5]), 'invalid_argument', /ids\[0\]/);
    throwsCode(() => index.addBatch([[1, 1, 1]], null), 'invalid_argument', /ids/);

    throwsCode(() => index.search([1, 1, 1], 0), 'invalid_argument', /k.*0/);
    throwsCode(() => index.search([1, 1, 1], -1), 'invalid_argument', /k/);
    throwsCode(() => index.search([1, 1, 1], 1.5), 'invalid_argument', /k/);
    throwsCode(() => index.search([1, 1, 1]), 'invalid_argument', /k.*undefined/);
    throwsCode(() => index.search([1, 1, 1], 2 ** 21), 'invalid_argument', /k/);
    throwsCode(() => index.search([1, 1, 1], 1, { efSearch: 0 }), 'invalid_argument', /efSearch/);
    throwsCode(() => index.search([1, 1, 1], 1, { ef: 10 }), 'invalid_argument', /unknown option "ef"/);
    throwsCode(() => index.search([1, 1], 1), 'dimension_mismatch');
    throwsCode(() => index.search([1, NaN, 1], 1), 'invalid_argument', /query\[1\]/);
    throwsCode(() => index.search(Float32Array.of(1, NaN, 1), 1), 'invalid_argument', /query\[1\]/);
    throwsCode(() => index.search([0, 0, 0], 1), 'invalid_argument', /zero vector/);
    throwsCode(() => index.searchBatch([[1, 1, 1], [1, 1]], 1), 'dimension_mismatch', /queries\[1\]/);
    throwsCode(() => index.searchBatch([1, 1, 1, 1], 1), 'dimension_mismatch');
    throwsCode(() => index.searchBatch([[1, 1, 1]], 0), 'invalid_argument', /k/);
    throwsCode(() => index.searchBatch([[1, 1, 1], [0, 0, 0]], 1), 'invalid_argument', /zero vector/);
    throwsCode(() => index.searchBatch(new Float32Array(3 * 20), 2 ** 20), 'invalid_argument', /limit/);
    throwsCode(() => index.remove(99), 'not_found', /99/);
    throwsCode(() => index.remove(-1), 'invalid_argument', /id/);
    throwsCode(() => index.has('1'), 'invalid_argument', /id/);
    throwsCode(() => (index.efSearch = 0), 'invalid_argument', /efSearch/);

    assert.deepEqual(index.serialize(), before);
    assert.equal(index.size, 2);
  });

  test('serialize / deserialize round trip', () => {
    const dim = 6;
    const data = uniformData(11, 200, dim);
    const ids = Array.from({ length: 200 }, (_, i) => i * 2);
    const a = track(new HNSW({ dim, M: 6, efConstruction: 40, efSearch: 20, seed: 5, metric: 'ip' }));
    a.addBatch(data, ids);
    a.remove(10);
    const bytes = a.serialize();
    assert.ok(bytes instanceof Uint8Array);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), 'LLMDSHNW');
    assert.equal(storedCrc(bytes), crc32(bytes.subarray(0, bytes.length - 4)));
    const b = track(HNSW.deserialize(bytes));
    assert.ok(b instanceof HNSW);
    assert.deepEqual(b.serialize(), bytes);
    assert.equal(b.size, 199);
    assert.equal(b.dim, dim);
    assert.equal(b.metric, 'ip');
    assert.equal(b.efSearch, 20);
    assert.deepEqual(b.stats().entryPoint, a.stats().entryPoint);
    assert.deepEqual(b.searchBatch(data.subarray(0, 10 * dim), 5), a.searchBatch(data.subarray(0, 10 * dim), 5));
    const c = track(HNSW.deserialize(bytes.slice().buffer)); // ArrayBuffer too
    assert.equal(c.size, 199);
    // Continuing after a round trip gives the same graph as never having serialized.
    a.add([1, 2, 3, 4, 5, 6], 7777);
    b.add([1, 2, 3, 4, 5, 6], 7777);
    assert.deepEqual(b.serialize(), a.serialize());
  });

  test('deserialize rejects every truncation, bit flips, other versions and non-bytes', () => {
    const index = track(new HNSW({ dim: 3, M: 4, efConstruction: 16 }));
    index.addBatch(uniformData(3, 30, 3), Array.from({ length: 30 }, (_, i) => i));
    const bytes = index.serialize();
    for (let len = 0; len < bytes.length; len++) {
      throwsCode(() => HNSW.deserialize(bytes.subarray(0, len)), 'corrupt_data');
    }
    let seed = 7;
    const rand = (n) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    for (let i = 0; i < 300; i++) {
      const copy = bytes.slice();
      const bit = rand(copy.length * 8);
      copy[bit >> 3] ^= 1 << (bit & 7);
      throwsCode(() => HNSW.deserialize(copy), 'corrupt_data');
    }
    // A well-formed file from another format version (1 and 2 load; 2 adds quantization).
    const future = bytes.slice();
    new DataView(future.buffer).setUint32(8, 3, true);
    new DataView(future.buffer).setUint32(future.length - 4, crc32(future.subarray(0, future.length - 4)), true);
    throwsCode(() => HNSW.deserialize(future), 'version_mismatch', /version 3/);
    throwsCode(() => HNSW.deserialize('bytes'), 'invalid_argument', /bytes/);
    throwsCode(() => HNSW.deserialize([1, 2, 3]), 'invalid_argument', /bytes/);
  });

  test('compact(): tombstones reclaimed, the index a fresh build of the live vectors would be', () => {
    const dim = 8;
    const n = 800;
    const data = uniformData(21, n, dim);
    const options = { dim, M: 8, efConstruction: 32, seed: 4 };
    const index = track(new HNSW(options));
    index.addBatch(data, Array.from({ length: n }, (_, i) => i));
    const full = index.stats();
    for (let i = 0; i < n; i += 2) index.remove(i);
    const before = index.stats();
    assert.deepEqual([before.size, before.nodes, before.tombstones], [n / 2, n, n / 2]);
    index.compact();
    const after = index.stats();
    assert.deepEqual([after.size, after.nodes, after.tombstones], [n / 2, n / 2, 0]);
    assert.ok(after.bytes < 0.7 * full.bytes, `bytes ${full.bytes} -> ${after.bytes}`);
    for (let i = 0; i < n; i++) assert.equal(index.has(i), i % 2 === 1);
    // The same as building from the live vectors in insertion order with the same options.
    const fresh = track(new HNSW(options));
    for (let i = 1; i < n; i += 2) fresh.add(data.subarray(i * dim, (i + 1) * dim), i);
    assert.deepEqual(index.serialize(), fresh.serialize());
    const alive = Array.from({ length: n }, (_, i) => i % 2 === 1);
    let hits = 0;
    for (let q = 0; q < 40; q++) {
      const query = data.subarray(q * dim, (q + 1) * dim);
      const truth = new Set(bruteForce(data, dim, alive, query, 10));
      hits += index.search(query, 10).filter(([id]) => truth.has(id)).length;
    }
    assert.ok(hits / 400 >= 0.95, `recall after compact ${hits / 400}`);
    index.compact(); // nothing to do
    assert.deepEqual(index.serialize(), fresh.serialize());
  });

  test('compactThreshold compacts on remove; bad thresholds are invalid_argument and change nothing', () => {
    const dim = 4;
    const data = uniformData(3, 100, dim);
    const index = track(new HNSW({ dim, M: 4, seed: 2, compactThreshold: 0.3 }));
    index.addBatch(data, Array.from({ length: 100 }, (_, i) => i));
    for (let i = 0; i < 30; i++) index.remove(i);
    assert.equal(index.stats().tombstones, 30); // 30 % is not more than 0.3
    index.remove(30);
    assert.deepEqual([index.stats().tombstones, index.stats().nodes, index.size], [0, 69, 69]);
    assert.equal(index.compactThreshold, 0.3);
    for (const bad of [1, -0.1, NaN, '0.5', null]) {
      throwsCode(() => (index.compactThreshold = bad), 'invalid_argument', /compactThreshold/);
      if (bad !== null) throwsCode(() => new HNSW({ dim, compactThreshold: bad }), 'invalid_argument', /compactThreshold/);
    }
    assert.equal(index.compactThreshold, 0.3);
    index.compactThreshold = 0;
    const copy = track(HNSW.deserialize(index.serialize()));
    assert.equal(copy.compactThreshold, 0); // a runtime policy: not serialized
    index.dispose();
    throwsCode(() => index.compact(), 'disposed');
  });

  test('addBatch larger than one 1 MiB chunk: same graph as one add at a time, all or nothing', () => {
    const dim = 256;
    const n = 6000; // 6000 × (256 + 1) × 4 bytes = 6.2 MB: seven chunks
    const data = uniformData(13, n, dim);
    const ids = Array.from({ length: n }, (_, i) => i);
    const options = { dim, M: 8, efConstruction: 16, seed: 1 };
    const batch = track(new HNSW(options));
    batch.addBatch(data, ids);
    const one = track(new HNSW(options));
    for (let i = 0; i < n; i++) one.add(data.subarray(i * dim, (i + 1) * dim), i);
    assert.equal(batch.size, n);
    assert.deepEqual(batch.serialize(), one.serialize());

    // A bad row or id at the very end (in the last chunk) is found before anything is inserted.
    const index = track(new HNSW(options));
    index.addBatch(data.subarray(0, 10 * dim), ids.slice(0, 10));
    const before = index.serialize();
    const rest = ids.map((i) => i + 10);
    const nan = data.slice();
    nan[n * dim - 3] = NaN;
    throwsCode(() => index.addBatch(nan, rest), 'invalid_argument', new RegExp(`vector ${n - 1}\\[${dim - 3}\\] must be finite, got NaN`));
    const inf = data.slice();
    inf[(n - 2) * dim] = -Infinity;
    throwsCode(() => index.addBatch(inf, rest), 'invalid_argument', new RegExp(`vector ${n - 2}\\[0\\].*-Infinity`));
    throwsCode(() => index.addBatch(data, [...rest.slice(0, -1), 3]), 'duplicate_id', /ids\[5999\] = 3 is already in the index/);
    throwsCode(() => index.addBatch(data, [...rest.slice(0, -1), 10]), 'duplicate_id', /ids\[5999\] = 10 appears more than once/);
    assert.deepEqual(index.serialize(), before);
    assert.equal(index.size, 10);

    const cos = track(new HNSW({ ...options, metric: 'cosine' }));
    const zero = data.slice();
    zero.fill(0, (n - 1) * dim);
    throwsCode(() => cos.addBatch(zero, ids), 'invalid_argument', /vector 5999 is the zero vector/);
    assert.equal(cos.size, 0);
    cos.addBatch(data.subarray(0, 2 * dim), [0, 1]);
    assert.equal(cos.size, 2);
  });

  test('a 30 MB addBatch grows the wasm heap by little more than the vectors and links', async () => {
    // One call with 60,000 × 128 vectors, in a fresh engine. The batch goes in 4 MiB chunks and
    // the index stores vectors in blocks, so no copy of the batch or of a doubled array stays
    // in the heap (which never shrinks); previously the heap grew by 2.7x the vectors + links.
    const r = await inFreshEngine(`
      await llmds.init();
      const dim = 128, n = 60000;
      const data = uniformData(21, n, dim);
      const mem = llmds.memoryProfiler();
      const index = new llmds.HNSW({ dim, M: 8, efConstruction: 16, seed: 1 });
      index.addBatch(data, Array.from({ length: n }, (_, i) => i));
      mem.sample();
      const s = index.stats();
      const needed = n * dim * 4 + s.edges * 4;
      return { size: s.size, heap: (mem.wasmHeapDeltaMb * 2 ** 20) / needed, stats: s.bytes / needed };`);
    assert.equal(r.error, undefined, r.error?.message);
    assert.equal(r.ok.size, 60000);
    assert.ok(r.ok.heap <= 1.3, `wasm heap growth ${r.ok.heap.toFixed(2)}x vectors + links`);
    assert.ok(r.ok.stats <= 1.3, `stats().bytes ${r.ok.stats.toFixed(2)}x vectors + links`);
  });

  test('results stay valid after the wasm heap grows', () => {
    const index = track(new HNSW({ dim: 4, M: 4, efConstruction: 8 }));
    index.addBatch(uniformData(4, 10, 4), Array.from({ length: 10 }, (_, i) => i));
    const r = index.search([0, 0, 0, 0], 3);
    const b = index.searchBatch([0, 0, 0, 0], 3);
    const bytes = index.serialize();
    const big = track(new HNSW({ dim: 1024, M: 2, efConstruction: 1 }));
    big.addBatch(new Float32Array(1024 * 8000).fill(1), Array.from({ length: 8000 }, (_, i) => i)); // 32 MB of vectors
    assert.equal(r.length, 3);
    assert.equal(b.ids.length, 3);
    assert.deepEqual(Array.from(b.ids), r.map(([id]) => id));
    assert.equal(HNSW.deserialize(bytes).size, 10);
    assert.deepEqual(index.search([0, 0, 0, 0], 3), r);
  });

  test('dispose: idempotent, later calls throw disposed', () => {
    const index = new HNSW({ dim: 2 });
    index.add([1, 2], 1);
    index.dispose();
    index.dispose();
    assert.equal(index.disposed, true);
    for (const call of [
      () => index.add([1, 2], 2),
      () => index.search([1, 2], 1),
      () => index.searchBatch([1, 2], 1),
      () => index.size,
      () => index.dim,
      () => index.has(1),
      () => index.remove(1),
      () => index.serialize(),
      () => index.stats(),
      () => index.efSearch,
    ]) {
      throwsCode(call, 'disposed', /HNSW/);
    }
    const scoped = new HNSW({ dim: 2 });
    scoped[Symbol.dispose]();
    assert.equal(scoped.disposed, true);
  });

  test('identical bytes from the SIMD and the portable build (and the native C++ suite)', async () => {
    assert.equal(features().simd, true); // Node 20 validates wasm SIMD
    const simd = fingerprintIndexes(HNSW);
    const portable = await inFreshEngine(`
      const f = await llmds.init({ simd: false });
      return { simd: f.simd, bytes: fingerprintIndexes(llmds.HNSW) };`);
    assert.equal(portable.error, undefined, portable.error?.message);
    assert.equal(portable.ok.simd, false);
    for (const metric of ['l2', 'cosine', 'ip']) {
      assert.deepEqual(portable.ok.bytes[metric], simd[metric], `${metric}: SIMD and portable bytes differ`);
      assert.equal(storedCrc(simd[metric]), FINGERPRINTS[metric], `${metric}: differs from the native fingerprint`);
    }
  });

  test('before init(): not_initialized', async () => {
    const r = await inFreshEngine(`
      try { new llmds.HNSW({ dim: 2 }); } catch (e) { return e.code; }
      return 'no error';`);
    assert.equal(r.ok, 'not_initialized');
    assert.ok(LlmdsError);
  });
});
