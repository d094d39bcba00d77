// SPDX-License-Identifier: MIT
// The KV cache's payload is real: a small Llama-style decoder (demo/decoder/) computing only what
// the cache's plans ask for and attending over its pages gives the logits of a full recompute
// with dense attention and no cache (Decoder.forwardNoCache), within 1e-5, through prefix reuse,
// fork, eviction; f16 pages within a documented bound; safetensors in and out.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, disposeAfterEach } from './llmds.mjs';

const { init, KVCache } = llmds;
const track = disposeAfterEach();
before(() => init());

const built = new URL('../../demo/decoder/dist/index.mjs', import.meta.url);
const { Decoder, argmax, configFromHF, f16ToF32, f32ToF16, bf16ToF32, f32ToBf16, readSafetensors, writeSafetensors } = await import(built).catch((e) => {
  throw new Error(`demo/decoder is not compiled (${e.code}): run npx tsc -p demo/decoder/tsconfig.json (scripts/build.sh does)`);
});
const { linear, rmsNorm, ropeTable, applyRope } = await import(new URL('ops.mjs', built));

/** GQA ratio 3, odd sizes everywhere so no off-by-one hides behind a power of two. */
const CONFIG = { vocab: 61, dim: 36, layers: 2, heads: 6, kvHeads: 2, headDim: 6, hidden: 52, ropeTheta: 10000, eps: 1e-5 };
const TOL = 1e-5;
const model = Decoder.fromSeed(CONFIG, 42);

const tokens = (n, seed) => Array.from({ length: n }, (_, i) => (i * 17 + seed * 29 + 5) % CONFIG.vocab);
const newCache = (pageSize, o = {}) => track(new KVCache({ pageSize, maxPages: 256, kv: model.kvOptions(o.dtype), ...o.cache }));

function maxDelta(a, b) {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Every logits vector of a run against the oracle's at the same positions of `sequence`. */
function assertMatchesOracle(m, sequence, firstPos, logits, what, tol = TOL) {
  const ref = m.forwardNoCache(sequence);
  logits.forEach((l, i) => {
    const d = maxDelta(l, ref[firstPos + i]);
    assert.ok(d <= tol, `${what}: position ${firstPos + i}: max |Δlogit| ${d} > ${tol}`);
  });
}

describe('decoder kernels and input checks', () => {
  test('linear is x Wᵀ in the HF [out, in] layout, for any row count', () => {
    const w = Float32Array.of(1, 2, 3, 4, 5, 6); // 3 outputs × 2 inputs
    assert.deepEqual([...linear(Float32Array.of(1, 0, 0, 1), 2, 2, w, 3)], [1, 3, 5, 2, 4, 6]);
    // The blocked (4 × 2) path and the tail give the same numbers as a plain loop.
    const x = Float32Array.from({ length: 7 * 5 }, (_, i) => Math.sin(i));
    const ww = Float32Array.from({ length: 3 * 5 }, (_, i) => Math.cos(i));
    const y = linear(x, 7, 5, ww, 3);
    for (let r = 0; r < 7; r++) for (let o = 0; o < 3; o++) {
      let s = 0;
      for (let i = 0; i < 5; i++) s += x[r * 5 + i] * ww[o * 5 + i];
      assert.equal(y[r * 3 + o], Math.fround(s));
    }
  });

  test('rmsNorm and rotate-half RoPE on known values', () => {
    const y = rmsNorm(Float32Array.of(3, 4), 1, 2, Float32Array.of(1, 2), 0);
    assert.deepEqual([...y].map((v) => +v.toFixed(6)), [+(3 / Math.sqrt(12.5)).toFixed(6), +(8 / Math.sqrt(12.5)).toFixed(6)]);
    // headDim 4: pairs (0, 2) and (1, 3); at position 1 pair 0 turns by 1 rad, pair 1 by θ^(-1/2) rad.
    const x = Float32Array.of(1, 1, 0, 0);
    applyRope(x, 1, 1, 4, ropeTable(1, 1, 4, 100));
    const close = (a, b) => assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
    [Math.cos(1), Math.cos(0.1), Math.sin(1), Math.sin(0.1)].forEach((v, i) => close(x[i], v));
    const p0 = Float32Array.of(1, 2, 3, 4);
    applyRope(p0, 1, 1, 4, ropeTable(0, 1, 4, 100)); // position 0: identity
    assert.deepEqual([...p0], [1, 2, 3, 4]);
  });

  test('the model depends on its context, and a corrupted page changes its logits', () => {
    // Without these, agreement with the oracle could come from a model that ignores its K/V.
    const a = model.forwardNoCache(tokens(20, 1));
    const changed = tokens(20, 1);
    changed[0] = (changed[0] + 1) % CONFIG.vocab;
    assert.ok(maxDelta(a[19], model.forwardNoCache(changed)[19]) > 1e-3, 'the first token matters to the last logits');
    const cache = newCache(5);
    const s = model.session(cache);
    s.prefill(1, tokens(20, 1));
    const kv = cache.readKV(1, 0, 3, 1);
    cache.writeKV(1, 0, 3, kv.k.map((x) => x + 0.5), kv.v);
    const step = s.decodeStep(1, 7);
    assert.ok(maxDelta(step.logits, model.forwardNoCache([...tokens(20, 1), 7])[20]) > 1e-3, 'a wrong key at position 3 is visible');
  });

  test('a token outside the vocabulary is refused before the cache changes', () => {
    const cache = newCache(4);
    const s = model.session(cache);
    assert.throws(() => s.prefill(1, [1, 2, CONFIG.vocab]), /token 61 at position 2 is not in \[0, 61\)/);
    assert.equal(cache.has(1), false);
    s.prefill(1, [1, 2, 3]);
    assert.throws(() => s.decodeStep(1, -1), /token -1/);
    assert.deepEqual(cache.get(1), Int32Array.of(1, 2, 3));
    assert.throws(() => s.generate(2, [1], 0), /maxNew must be a positive integer/);
  });
});

describe('decoder on the paged KV cache == full recompute without a cache', () => {
  test('(a) prefill and decode steps, odd page sizes, GQA 3:1', () => {
    for (const pageSize of [1, 3, 5, 7, 64]) {
      const cache = newCache(pageSize);
      const prompt = tokens(19, pageSize);
      const g = model.session(cache).generate(1, prompt, 8);
      assert.equal(g.prefill.plan.computeFrom, 0);
      assert.equal(g.prefill.computed, 19);
      assert.equal(g.tokens.length, 8);
      assertMatchesOracle(model, [...prompt, ...g.tokens], prompt.length - 1, g.logits, `page size ${pageSize}`);
      assert.deepEqual(cache.get(1), Int32Array.from([...prompt, ...g.tokens.slice(0, -1)]));
    }
  });

  test('(b) a second request sharing a system prompt reuses its pages and computes only the rest', () => {
    const system = tokens(23, 3); // 4 full pages of 5, then 3 tokens sharing a page with the user turn
    const userA = [11, 12, 13, 14, 15, 16, 17];
    const userB = [40, 41, 42, 43, 44, 45];
    const cache = newCache(5);
    const s = model.session(cache);
    const a = s.prefill(1, [...system, ...userA]);
    assert.equal(a.plan.cachedTokens, 0);
    assert.equal(a.computed, 30);

    // B while A is live (pages shared, refcount 2), then C after both left (cached pages).
    for (const [seq, user] of [[2, userB], [3, [50, 51]]]) {
      const prompt = [...system, ...user];
      const b = s.prefill(seq, prompt);
      assert.equal(b.plan.cachedTokens, 20, 'the system prompt\'s full pages: floor(23 / 5) × 5');
      assert.equal(b.plan.computeFrom, 20);
      assert.equal(b.computed, prompt.length - 20);
      const logits = [b.logits];
      for (const t of [7, 8, 9]) logits.push(s.decodeStep(seq, t).logits);
      assertMatchesOracle(model, [...prompt, 7, 8, 9], prompt.length - 1, logits, `request ${seq}`);
      // The same request on a cache without prefix sharing computes everything, same logits.
      const fresh = model.session(newCache(5, { cache: { enablePrefixSharing: false } })).prefill(1, prompt);
      assert.equal(fresh.computed, prompt.length);
      assert.ok(maxDelta(fresh.logits, b.logits) <= TOL);
      if (seq === 2) {
        assert.equal(cache.stats().sharedPages, 4);
        cache.detach(1);
        cache.detach(2);
      }
    }
    assert.ok(cache.stats().prefixHits >= 8);
  });

  test('(b) a page-aligned prompt cached in full: only the last position\'s query runs again', () => {
    const prompt = tokens(30, 4); // 6 full pages
    const cache = newCache(5);
    const s = model.session(cache);
    s.prefill(1, prompt);
    const again = s.prefill(2, prompt);
    assert.equal(again.plan.cachedTokens, 30);
    assert.equal(again.computed, 1);
    assert.equal(cache.stats().cowCopies, 0, 'nothing was written into the shared pages');
    const next = s.decodeStep(2, 3);
    assertMatchesOracle(model, [...prompt, 3], 29, [again.logits, next.logits], 'fully cached prompt');
  });

  test('(c) fork for parallel sampling: branches diverge, each equals its recompute, the original is unchanged', () => {
    const prompt = tokens(17, 5); // the tail page (positions 15, 16) is shared after fork: copy-on-write
    const cache = newCache(5);
    const s = model.session(cache);
    const root = s.prefill(1, prompt);
    const before = [0, 1].map((layer) => cache.readKV(1, layer, 0, 17));
    cache.fork(1, 2);
    cache.fork(1, 3);
    const branches = {};
    for (const [seq, first] of [[2, 5], [3, 9]]) {
      const logits = [];
      const seqTokens = [first];
      logits.push(s.decodeStep(seq, first).logits);
      for (let i = 0; i < 4; i++) {
        seqTokens.push(argmax(logits.at(-1)));
        logits.push(s.decodeStep(seq, seqTokens.at(-1)).logits);
      }
      assertMatchesOracle(model, [...prompt, ...seqTokens], prompt.length, logits, `branch ${seq}`);
      branches[seq] = logits;
    }
    assert.ok(maxDelta(branches[2][0], branches[3][0]) > 1e-3, 'the branches diverge');
    assert.ok(cache.stats().cowCopies >= 2, 'each branch copied the shared tail page');
    assert.deepEqual(cache.get(1), Int32Array.from(prompt));
    [0, 1].forEach((layer) => assert.deepEqual(cache.readKV(1, layer, 0, 17), before[layer], `original's K/V, layer ${layer}`));
    const orig = s.decodeStep(1, 30);
    assertMatchesOracle(model, [...prompt, 30], 16, [root.logits, orig.logits], 'the original');
  });

  test('(d) an evicted prefix is recomputed and gives the same logits', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 10, kv: model.kvOptions() }));
    const s = model.session(cache);
    const prompt = tokens(26, 6); // 7 pages, 6 of them full
    const first = s.prefill(1, prompt);
    cache.detach(1); // its 6 full pages stay cached
    s.prefill(2, tokens(32, 7)); // 8 pages: at least 4 cached ones are evicted
    const evictions = cache.stats().evictions;
    assert.ok(evictions >= 4, `evictions ${evictions}`);
    cache.detach(2);
    const again = s.prefill(3, prompt);
    assert.ok(again.plan.cachedTokens < 24, `part of the prefix was evicted (cached ${again.plan.cachedTokens})`);
    assert.equal(again.computed, 26 - again.plan.cachedTokens);
    assert.ok(maxDelta(again.logits, first.logits) <= TOL);
    const next = s.decodeStep(3, 1);
    assertMatchesOracle(model, [...prompt, 1], 25, [again.logits, next.logits], 'after eviction');
  });

  test('(e) f16 pages: within 1e-3 of the f32 oracle (K and V rounded to 11 significant bits)', () => {
    // The bound: f16 stores K and V with a relative error ≤ 2^-11 ≈ 4.9e-4. Through two layers
    // and lm_head this model's logits (|logit| < 2) moved by 0.8e-4 to 1.2e-4 (measured, page
    // sizes 8 and 3); 1e-3 leaves 8× headroom. One wrong key moves them by more (test above).
    let worst = 0;
    for (const pageSize of [3, 8]) {
      const cache = newCache(pageSize, { dtype: 'f16' });
      const prompt = tokens(21, pageSize);
      const g = model.session(cache).generate(1, prompt, 6);
      const ref = model.forwardNoCache([...prompt, ...g.tokens]);
      g.logits.forEach((l, i) => (worst = Math.max(worst, maxDelta(l, ref[20 + i]))));
    }
    assert.ok(worst <= 1e-3, `f16 max |Δlogit| ${worst}`);
    assert.ok(worst > TOL, `f16 pages should differ from f32 at all (${worst}): is the payload f16?`);
  });
});

describe('safetensors', () => {
  const sameWeights = (a, b, map = (x) => x) => {
    const flat = (m) => [m.weights.embed, ...m.weights.layers.flatMap((l) => Object.values(l)), m.weights.norm, m.weights.lmHead];
    flat(a).forEach((t, i) => assert.deepEqual(flat(b)[i], t.map(map), `tensor ${i}`));
  };

  test('(f) f32 round trip: the same weights, the same logits through the cache', () => {
    const bytes = model.toSafetensors('F32');
    const back = Decoder.fromSafetensors(bytes);
    assert.deepEqual(back.config, CONFIG);
    sameWeights(model, back);
    const prompt = tokens(12, 8);
    const g = back.session(newCache(3)).generate(1, prompt, 3);
    assertMatchesOracle(model, [...prompt, ...g.tokens], 11, g.logits, 'f32 file');
  });

  test('(f) f16 and bf16 round trips: weights rounded to nearest even, then exact', () => {
    // Bit patterns from IEEE 754 binary16 / bfloat16, not from this codec.
    const f16 = [[1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [2 ** -24, 0x0001], [1 / 3, 0x3555], [1e5, 0x7c00], [2 ** -26, 0], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02]];
    for (const [x, bits] of f16) assert.equal(f32ToF16(x), bits, `f16(${x})`);
    for (const [bits, x] of [[0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x3555, 0.333251953125], [0x7c00, Infinity], [0xfc00, -Infinity], [0x8000, -0]]) {
      assert.equal(f16ToF32(bits), x, `f16 bits ${bits.toString(16)}`);
    }
    assert.ok(Number.isNaN(f16ToF32(0x7e00)));
    for (const [x, bits] of [[1, 0x3f80], [-2, 0xc000], [1 / 3, 0x3eab], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82]]) assert.equal(f32ToBf16(x), bits, `bf16(${x})`);
    assert.equal(bf16ToF32(0x3eab), 0.333984375);

    for (const [dtype, round] of [['F16', (x) => f16ToF32(f32ToF16(x))], ['BF16', (x) => bf16ToF32(f32ToBf16(x))]]) {
      const bytes = model.toSafetensors(dtype);
      assert.ok(bytes.length < model.toSafetensors('F32').length * 0.6, 'two bytes per weight');
      const back = Decoder.fromSafetensors(bytes);
      sameWeights(model, back, round);
      assert.deepEqual(back.toSafetensors(dtype), bytes, 'rewriting the rounded weights changes nothing');
      const prompt = tokens(12, 9);
      const g = back.session(newCache(4)).generate(1, prompt, 3);
      assertMatchesOracle(back, [...prompt, ...g.tokens], 11, g.logits, `${dtype} file`);
      const d = maxDelta(back.forwardNoCache(prompt)[11], model.forwardNoCache(prompt)[11]);
      assert.ok(d > 0 && d < 0.05, `${dtype} weights move the logits a little (${d})`);
    }
  });

  test('(f) a file written by hand in the HF layout loads into the right weights', () => {
    // An independent writer: header JSON + little-endian f32, tensors in reverse order, no lm_head
    // (tied embeddings), an unused tensor, and a config passed in rather than stored.
    const c = { vocab: 3, dim: 2, layers: 1, heads: 1, kvHeads: 1, headDim: 2, hidden: 2, ropeTheta: 500000, eps: 1e-6 };
    const names = ['model.embed_tokens.weight', 'model.layers.0.input_layernorm.weight', 'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.k_proj.weight', 'model.layers.0.self_attn.v_proj.weight', 'model.layers.0.self_attn.o_proj.weight',
      'model.layers.0.post_attention_layernorm.weight', 'model.layers.0.mlp.gate_proj.weight', 'model.layers.0.mlp.up_proj.weight',
      'model.layers.0.mlp.down_proj.weight', 'model.norm.weight', 'model.layers.0.self_attn.rotary_emb.inv_freq'].reverse();
    const shape = (n) => (n.includes('norm') || n.includes('inv_freq') ? [2] : n.includes('embed') ? [3, 2] : [2, 2]);
    const header = {};
    const chunks = [];
    let offset = 0;
    names.forEach((n, i) => {
      const values = Float32Array.from({ length: shape(n).reduce((a, b) => a * b) }, (_, j) => i + j / 10);
      header[n] = { dtype: 'F32', shape: shape(n), data_offsets: [offset, offset + values.byteLength] };
      offset += values.byteLength;
      chunks.push(Buffer.from(values.buffer));
    });
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    const m = Decoder.fromSafetensors(new Uint8Array(Buffer.concat([length, json, ...chunks])), c);
    const at = (n) => names.indexOf(n);
    assert.deepEqual([...m.weights.embed], [0, 0.1, 0.2, 0.3, 0.4, 0.5].map((j) => Math.fround(at('model.embed_tokens.weight') + j)));
    assert.deepEqual([...m.weights.layers[0].wk], [0, 0.1, 0.2, 0.3].map((j) => Math.fround(at('model.layers.0.self_attn.k_proj.weight') + j)));
    assert.deepEqual([...m.weights.norm], [0, 0.1].map((j) => Math.fround(at('model.norm.weight') + j)));
    assert.equal(m.weights.lmHead, m.weights.embed, 'no lm_head.weight: tied to the embeddings');
    const logits = m.forwardNoCache([2, 0, 1]);
    assert.equal(logits.length, 3);
    assert.ok(logits.every((l) => l.length === 3 && l.every(Number.isFinite)));
  });

  test('(f) bad files are rejected with an Error that says what is wrong', () => {
    const good = model.toSafetensors('F32');
    const headerLength = Number(new DataView(good.buffer).getBigUint64(0, true));
    const withHeader = (mutate) => {
      const { tensors, metadata } = readSafetensors(good);
      return writeSafetensors(mutate([...tensors].map(([n, t]) => [n, { shape: t.shape, data: t.data }])), { metadata });
    };
    const patchedJson = (edit) => {
      const json = new TextDecoder().decode(good.subarray(8, 8 + headerLength));
      const text = edit(json).padEnd(headerLength, ' ');
      assert.equal(text.length, headerLength);
      const out = good.slice();
      out.set(new TextEncoder().encode(text), 8);
      return out;
    };
    const cases = [
      ['truncated data', good.subarray(0, good.length - 10), /run past the \d+ data bytes: truncated file\?/],
      ['truncated header', good.subarray(0, 100), /header claims \d+ bytes but only 92 follow/],
      ['shorter than 8 bytes', good.subarray(0, 5), /5 bytes: too short/],
      ['not JSON', patchedJson((j) => j.replace('{', '[')), /header is not valid JSON/],
      ['a JSON array', patchedJson(() => '[1, 2]'), /must be a JSON object/],
      ['bad dtype', patchedJson((j) => j.replace('"F32"', '"I64"')), /tensor model\.embed_tokens\.weight: dtype "I64" is not supported/],
      ['size mismatch', patchedJson((j) => j.replace(`"shape":[${CONFIG.vocab},${CONFIG.dim}]`, `"shape":[${CONFIG.vocab},${CONFIG.dim - 1}]`)), /embed_tokens\.weight: data_offsets \[0, \d+\] hold \d+ bytes, but F32 \[61,35\] needs/],
      ['trailing bytes', new Uint8Array([...good, 0, 0, 0, 0]), /4 bytes after the last tensor belong to none/],
      ['wrong shape', withHeader((ts) => ts.map(([n, t]) => (n === 'model.layers.1.self_attn.k_proj.weight' ? [n, { shape: [t.shape[1], t.shape[0]], data: t.data }] : [n, t]))),
        /tensor model\.layers\.1\.self_attn\.k_proj\.weight has shape \[36,12\], the config needs \[12,36\]/],
      ['missing tensor', withHeader((ts) => ts.filter(([n]) => n !== 'model.layers.0.mlp.up_proj.weight')), /missing tensor model\.layers\.0\.mlp\.up_proj\.weight/],
    ];
    for (const [what, bytes, message] of cases) {
      assert.throws(() => Decoder.fromSafetensors(bytes), (e) => e instanceof Error && message.test(e.message), what);
      assert.throws(() => Decoder.fromSafetensors(bytes), /^Error: safetensors: /, what);
    }
    const bare = writeSafetensors([...readSafetensors(good).tensors].map(([n, t]) => [n, t]));
    assert.throws(() => Decoder.fromSafetensors(bare), /no config given and the file has no llmds\.decoder metadata/);
    assert.throws(() => Decoder.fromSafetensors(good, { ...CONFIG, hidden: 50 }), /gate_proj\.weight has shape \[52,36\], the config needs \[50,36\]/);
    assert.throws(() => Decoder.fromSeed({ ...CONFIG, heads: 5 }, 1), /heads \(5\) must be a multiple of kvHeads \(2\)/);
  });

  test('configFromHF reads a Llama config.json', () => {
    const hf = { vocab_size: 32000, hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, intermediate_size: 8192, rope_theta: 500000, rms_norm_eps: 1e-5 };
    assert.deepEqual(configFromHF(hf), { vocab: 32000, dim: 2048, layers: 16, heads: 32, kvHeads: 8, headDim: 64, hidden: 8192, ropeTheta: 500000, eps: 1e-5 });
  });
});
