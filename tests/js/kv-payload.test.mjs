// SPDX-License-Identifier: MIT
// KVCache with K/V payload through JS: writeKV / readKV, copy-on-write of the payload, cached
// prefixes keeping their K/V, and paged attention against a dense f64 reference written here.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';

const { init, KVCache } = llmds;
const track = disposeAfterEach();
before(() => init());

const range = (from, n) => Array.from({ length: n }, (_, i) => from + i);
const wave = (n, seed) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 1.5);

/** Causal grouped-query attention in f64 over dense K/V (length × kvHeads × headDim). */
function reference(q, k, v, { m, length, numHeads, kvHeads, headDim, scale = 1 / Math.sqrt(headDim) }) {
  const out = new Float64Array(m * numHeads * headDim);
  const group = numHeads / kvHeads;
  for (let i = 0; i < m; i++) {
    const pos = length - m + i;
    for (let h = 0; h < numHeads; h++) {
      const kh = Math.floor(h / group);
      const qo = (i * numHeads + h) * headDim;
      const scores = [];
      for (let j = 0; j <= pos; j++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[qo + d] * k[(j * kvHeads + kh) * headDim + d];
        scores.push(s * scale);
      }
      const max = Math.max(...scores);
      const w = scores.map((s) => Math.exp(s - max));
      const sum = w.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= pos; j++) {
        for (let d = 0; d < headDim; d++) out[qo + d] += (w[j] / sum) * v[(j * kvHeads + kh) * headDim + d];
      }
    }
  }
  return out;
}

const close = (got, want, tol, what) => {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
};

describe('KVCache K/V payload', () => {
  test('writeKV / readKV round trip (f32 exact, f16 rounded); payloadBytes', () => {
    for (const dtype of ['f32', 'f16']) {
      const cache = track(new KVCache({ pageSize: 4, maxPages: 16, kv: { layers: 2, kvHeads: 2, headDim: 3, dtype } }));
      assert.equal(cache.stats().payloadBytes, 0);
      cache.attach(1, range(1, 10));
      const k = wave(10 * 6, 1);
      const v = wave(10 * 6, 2);
      cache.writeKV(1, 1, 0, k, v);
      const back = cache.readKV(1, 1, 0, 10);
      if (dtype === 'f32') assert.deepEqual([back.k, back.v], [k, v]);
      else close(back.k, k, 2 ** -11, 'f16 k');
      assert.ok(cache.stats().payloadBytes > 0);
      assert.deepEqual(cache.readKV(1, 0, 0, 2).k, new Float32Array(12)); // unwritten: zeros
    }
  });

  test('attention equals a dense f64 reference (decode and prefill chunks, GQA, odd head dims)', () => {
    for (const [pageSize, kvHeads, group, headDim, length, m] of [[4, 1, 1, 3, 9, 1], [3, 2, 2, 5, 17, 3], [16, 2, 4, 17, 40, 1], [1, 1, 8, 8, 6, 6]]) {
      const numHeads = kvHeads * group;
      const cache = track(new KVCache({ pageSize, maxPages: 64, kv: { layers: 1, kvHeads, headDim } }));
      cache.attach(7, range(1, length));
      const k = wave(length * kvHeads * headDim, 3);
      const v = wave(length * kvHeads * headDim, 4);
      cache.writeKV(7, 0, 0, k, v);
      const q = wave(m * numHeads * headDim, 5);
      const got = cache.attention(7, 0, q, { numHeads });
      close(got, reference(q, k, v, { m, length, numHeads, kvHeads, headDim }), 1e-5, `page ${pageSize} gqa ${group} dim ${headDim}`);
      const scaled = cache.attention(7, 0, q, { numHeads, scale: 0.5 });
      close(scaled, reference(q, k, v, { m, length, numHeads, kvHeads, headDim, scale: 0.5 }), 1e-5, 'scale 0.5');
    }
  });

  test('copy-on-write carries the payload; a cached prefix keeps its K/V', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 32, kv: { layers: 1, kvHeads: 1, headDim: 2 } }));
    cache.attach(1, range(1, 8));
    const k = wave(16, 6);
    const v = wave(16, 7);
    cache.writeKV(1, 0, 0, k, v);
    cache.fork(1, 2);
    cache.writeKV(2, 0, 6, [9, 9, 9, 9], [8, 8, 8, 8]); // a shared page: copied first
    assert.deepEqual(cache.readKV(1, 0, 0, 8), { k, v }); // the other sequence is unchanged
    assert.deepEqual(Array.from(cache.readKV(2, 0, 6, 2).k), [9, 9, 9, 9]);
    assert.ok(cache.stats().cowCopies >= 1);
    cache.detach(1);
    cache.detach(2);
    const plan = cache.attach(3, range(1, 10));
    assert.equal(plan.cachedTokens, 8);
    assert.deepEqual(cache.readKV(3, 0, 0, 8), { k, v }); // reused pages carry their K/V
  });

  test('bad input is rejected and changes nothing', () => {
    const plain = track(new KVCache({ pageSize: 4 }));
    plain.attach(1, [1, 2]);
    throwsCode(() => plain.writeKV(1, 0, 0, [1], [1]), 'invalid_argument', /no K\/V/);
    throwsCode(() => new KVCache({ kv: { layers: 1, kvHeads: 0, headDim: 4 } }), 'invalid_argument', /kvHeads/);
    throwsCode(() => new KVCache({ kv: { layers: 1, kvHeads: 1, headDim: 4, dtype: 'bf16' } }), 'invalid_argument', /dtype/);
    throwsCode(() => new KVCache({ kv: { layers: 1, kvHeads: 1 } }), 'invalid_argument', /headDim/);
    const cache = track(new KVCache({ pageSize: 4, maxPages: 8, kv: { layers: 1, kvHeads: 2, headDim: 2 } }));
    cache.attach(1, range(1, 5));
    cache.writeKV(1, 0, 0, wave(20, 1), wave(20, 2));
    const stats = cache.stats();
    const before = cache.readKV(1, 0, 0, 5);
    throwsCode(() => cache.writeKV(1, 0, 0, [1, 2, 3], [1, 2, 3]), 'invalid_argument', /n × 4/);
    throwsCode(() => cache.writeKV(1, 0, 4, wave(8, 1), wave(8, 2)), 'invalid_argument'); // past the length
    throwsCode(() => cache.writeKV(1, 1, 0, wave(4, 1), wave(4, 2)), 'invalid_argument', /layer/);
    throwsCode(() => cache.writeKV(1, 0, 0, [0, 0, Infinity, 0], [0, 0, 0, 0]), 'invalid_argument', /k\[2\]/);
    throwsCode(() => cache.writeKV(9, 0, 0, wave(4, 1), wave(4, 2)), 'not_found');
    throwsCode(() => cache.readKV(1, 0, 3, 5), 'invalid_argument');
    throwsCode(() => cache.attention(1, 0, wave(6, 1), { numHeads: 3 }), 'invalid_argument');
    throwsCode(() => cache.attention(1, 0, wave(6 * 4 * 2, 1), { numHeads: 4 }), 'invalid_argument', /m/); // m 6 > length 5
    throwsCode(() => cache.attention(1, 0, [NaN, 0, 0, 0], { numHeads: 2 }), 'invalid_argument', /q/);
    throwsCode(() => cache.attention(1, 0, wave(4, 1)), 'invalid_argument', /numHeads/);
    assert.deepEqual(cache.stats(), stats);
    assert.deepEqual(cache.readKV(1, 0, 0, 5), before);
    cache.dispose();
    throwsCode(() => cache.attention(1, 0, wave(4, 1), { numHeads: 2 }), 'disposed');
  });
});
