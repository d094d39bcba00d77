// SPDX-License-Identifier: MIT
// Decode attention through the JS API (issue 13): KVCache.attention per step at contexts 512 to
// 8192, f32 and f16 payload, next to a copy-bandwidth probe run in this process, a plain JS
// attention over the same K/V (checked against llmds' output), and the native C++ suite
// (`llmds_bench --suite attention`) for the wasm/native ratio.
//   node bench/attention.mjs [--quick]
//
// Shape as the native suite: one layer, 8 KV heads × head_dim 128, 32 query heads (GQA group 4),
// page size 16, m = 1 (decode), default scale 1/sqrt(128). K, V and q come from the native
// suite's LCG (seed 7 + context, K then V per 256-position chunk, then q), so both sides hold
// the same values. K/V bytes read per step = context × 8 × 128 × 2 × (4 or 2).
//
// Timing (as the native suite): one warm-up call, then the median of 5 rounds, each `reps` calls
// sized to take about 0.1 s (0.02 s with --quick). The wasm figure is the whole JS call: q
// copied into wasm memory, the kernel, the result copied out to a fresh Float32Array.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { llmds, printTable, writeResults, isMain, quick } from './lib.mjs';
import { nativeCli } from './ratios.mjs';

const { init, KVCache } = llmds;

export const KV_HEADS = 8;
export const HEAD_DIM = 128;
export const NUM_HEADS = 32;
export const PAGE_SIZE = 16;
export const CONTEXTS = quick ? [512, 2048, 8192] : [512, 1024, 2048, 4096, 8192]; // the native --quick set
const ROW = KV_HEADS * HEAD_DIM;
const PROBE_BYTES = 128 << 20; // bytes copied per probe call (the native probe's 128 MiB)

/** Seconds per call: the median of 5 rounds of `reps` calls, reps sized to `target` seconds. */
function timePerCall(fn, target = quick ? 0.02 : 0.1) {
  fn();
  const t0 = performance.now();
  fn();
  const once = Math.max(1e-7, (performance.now() - t0) / 1000);
  const reps = Math.max(1, Math.floor(target / once));
  const rounds = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    for (let i = 0; i < reps; i++) fn();
    rounds.push((performance.now() - t) / 1000 / reps);
  }
  return rounds.sort((a, b) => a - b)[2];
}

// ---------------------------------------------------------------------------------------------
// Copy-bandwidth probe. The native suite memcpy's 128 MiB; from JS the copies V8 offers are
// TypedArray.prototype.copyWithin (memmove inside one buffer) and TypedArray.prototype.set
// between two buffers, both V8's native memmove; and, to measure a copy done *by wasm code in
// wasm linear memory* without adding C++, a tiny hand-assembled wasm module (below) with
// memory.copy (bulk memory) and a plain v128.load/v128.store loop.

const leb = (n) => {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const section = (id, bytes) => [id, ...leb(bytes.length), ...bytes];
const vec = (items) => [...leb(items.length), ...items.flat()];
const name = (s) => [...leb(s.length), ...Buffer.from(s, 'latin1')];

/**
 * (module (memory (export "mem") pages)
 *   (func (export "copy") (param $dst i32) (param $src i32) (param $n i32) memory.copy)
 *   (func (export "copySimd") (param $dst i32) (param $src i32) (param $n i32)   ;; n % 64 == 0
 *     64 bytes per iteration: four v128.load / v128.store pairs))
 */
function copyProbeModule(pages) {
  const get = (i) => [0x20, i];
  const set = (i) => [0x21, i];
  const load = (offset) => [0xfd, 0x00, 4, ...leb(offset)];
  const store = (offset) => [0xfd, 0x0b, 4, ...leb(offset)];
  const bump = (i) => [...get(i), 0x41, 0xc0, 0x00 /* i32.const 64 */, 0x6a /* i32.add */, ...set(i)];
  const copy = [0x00, ...get(0), ...get(1), ...get(2), 0xfc, 0x0a, 0x00, 0x00, 0x0b];
  const simd = [
    0x01, 0x01, 0x7f, // one i32 local: $end
    ...get(1), ...get(2), 0x6a, ...set(3), // $end = src + n
    0x02, 0x40, 0x03, 0x40, // block loop
    ...get(1), ...get(3), 0x4f, 0x0d, 0x01, // br_if 1 (src >= end)
    ...[0, 16, 32, 48].flatMap((o) => [...get(0), ...get(1), ...load(o), ...store(o)]),
    ...bump(0), ...bump(1),
    0x0c, 0x00, 0x0b, 0x0b, 0x0b, // br 0, end loop, end block, end func
  ];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 3, 0x7f, 0x7f, 0x7f, 0]])), // type (i32 i32 i32) -> ()
    ...section(3, vec([[0], [0]])),
    ...section(5, vec([[0x00, ...leb(pages)]])),
    ...section(7, vec([[...name('mem'), 2, 0], [...name('copy'), 0, 0], [...name('copySimd'), 0, 1]])),
    ...section(10, vec([[...leb(copy.length), ...copy], [...leb(simd.length), ...simd]])),
  ];
  return new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(bytes))).exports;
}

/** GB/s (bytes copied once per second, as the native probe counts them) of each copy method. */
export function copyProbe(bytes = PROBE_BYTES) {
  const reps = quick ? 2 : 5;
  const best = (fn) => {
    fn(); // touch every page first
    let s = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      fn();
      s = Math.min(s, (performance.now() - t0) / 1000);
    }
    return bytes / s / 1e9;
  };
  const out = {};
  {
    const buf = new Uint8Array(2 * bytes).fill(1);
    out.copyWithin = best(() => buf.copyWithin(0, bytes, 2 * bytes));
  }
  {
    const src = new Uint8Array(bytes).fill(1);
    const dst = new Uint8Array(bytes);
    out.set = best(() => dst.set(src));
  }
  {
    const wasm = copyProbeModule((2 * bytes) >>> 16);
    new Uint8Array(wasm.mem.buffer).fill(1);
    out.wasmMemoryCopy = best(() => wasm.copy(0, bytes, bytes));
    out.wasmSimdLoop = best(() => wasm.copySimd(0, bytes, bytes));
  }
  out.best = Math.max(out.copyWithin, out.set, out.wasmMemoryCopy, out.wasmSimdLoop);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Data and the plain JS attention.

/** The native suite's draw(): an LCG giving floats in [-1, 1) (exact in f32). */
function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s >>> 8) * (1 / 8388608) - 1;
  };
}

/** K, V (ctx × kvHeads × headDim) and q (numHeads × headDim) exactly as the native suite draws them. */
export function attentionData(ctx) {
  const draw = lcg(7 + ctx);
  const k = new Float32Array(ctx * ROW);
  const v = new Float32Array(ctx * ROW);
  for (let from = 0; from < ctx; from += 256) {
    const n = Math.min(256, ctx - from) * ROW;
    for (let i = 0; i < 256 * ROW; i++) {
      const x = draw();
      if (i < n) k[from * ROW + i] = x;
    }
    for (let i = 0; i < 256 * ROW; i++) {
      const x = draw();
      if (i < n) v[from * ROW + i] = x;
    }
  }
  const q = new Float32Array(NUM_HEADS * HEAD_DIM);
  for (let i = 0; i < q.length; i++) q[i] = draw();
  return { k, v, q };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** f32 -> IEEE binary16 bits, round to nearest even (finite inputs below 65520). */
export function toHalf(x) {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e < 102) return sign; // at most a quarter of the smallest subnormal: rounds to zero
  if (e < 113) { // subnormal half
    m |= 0x800000;
    const shift = 126 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const h = ((e - 112) << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  return sign | (h + (rest > 0x1000 || (rest === 0x1000 && h & 1) ? 1 : 0));
}

/** Every binary16 bit pattern widened to f32: what a JS user without Float16Array looks halves up in. */
export const HALF_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    const x = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
    t[h] = h & 0x8000 ? -x : x;
  }
  return t;
})();

/**
 * The attention a user would write in plain TypeScript: K/V in flat arrays laid out
 * [position][kvHead][dim], for each query head the scores over every position, max-subtracted
 * softmax, then the weighted sum of V rows; query head h reads KV head floor(h / group). Decode
 * (one query). `k`, `v` are Float32Arrays, or (f16) Uint16Arrays of binary16 bits widened
 * through HALF_TABLE.
 */
export function plainAttention(q, k, v, ctx, { numHeads, kvHeads, headDim, scale = 1 / Math.sqrt(headDim) }, out, scores) {
  const group = numHeads / kvHeads;
  for (let h = 0; h < numHeads; h++) {
    const kh = Math.floor(h / group);
    const qo = h * headDim;
    let max = -Infinity;
    for (let t = 0; t < ctx; t++) {
      const ko = (t * kvHeads + kh) * headDim;
      let s = 0;
      for (let d = 0; d < headDim; d++) s += q[qo + d] * k[ko + d];
      s *= scale;
      scores[t] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let t = 0; t < ctx; t++) {
      const e = Math.exp(scores[t] - max);
      scores[t] = e;
      sum += e;
    }
    for (let d = 0; d < headDim; d++) out[qo + d] = 0;
    for (let t = 0; t < ctx; t++) {
      const w = scores[t] / sum;
      const vo = (t * kvHeads + kh) * headDim;
      for (let d = 0; d < headDim; d++) out[qo + d] += w * v[vo + d];
    }
  }
  return out;
}

/** The same, over binary16 K/V (Uint16Array bits, widened through HALF_TABLE on every read). */
export function plainAttentionF16(q, k, v, ctx, { numHeads, kvHeads, headDim, scale = 1 / Math.sqrt(headDim) }, out, scores) {
  const T = HALF_TABLE;
  const group = numHeads / kvHeads;
  for (let h = 0; h < numHeads; h++) {
    const kh = Math.floor(h / group);
    const qo = h * headDim;
    let max = -Infinity;
    for (let t = 0; t < ctx; t++) {
      const ko = (t * kvHeads + kh) * headDim;
      let s = 0;
      for (let d = 0; d < headDim; d++) s += q[qo + d] * T[k[ko + d]];
      s *= scale;
      scores[t] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let t = 0; t < ctx; t++) {
      const e = Math.exp(scores[t] - max);
      scores[t] = e;
      sum += e;
    }
    for (let d = 0; d < headDim; d++) out[qo + d] = 0;
    for (let t = 0; t < ctx; t++) {
      const w = scores[t] / sum;
      const vo = (t * kvHeads + kh) * headDim;
      for (let d = 0; d < headDim; d++) out[qo + d] += w * T[v[vo + d]];
    }
  }
  return out;
}

/**
 * The check: every output element within 1e-5 × max(1, |reference|) of the plain JS one (the
 * criterion of tests/js/kv-payload.test.mjs), and within 1e-5 of the largest output magnitude.
 * Throws otherwise.
 */
function checkSame(got, want, what) {
  let maxAbs = 0;
  let maxErr = 0;
  for (let i = 0; i < want.length; i++) maxAbs = Math.max(maxAbs, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    maxErr = Math.max(maxErr, err);
    if (!(err <= 1e-5 * Math.max(1, Math.abs(want[i]))) || !(err <= 1e-5 * maxAbs)) {
      throw new Error(`attention bench: ${what}: llmds and the plain JS attention differ at [${i}]: ${got[i]} vs ${want[i]} (largest |output| ${maxAbs})`);
    }
  }
  return { maxAbsError: maxErr, relativeToLargest: maxErr / maxAbs };
}

// ---------------------------------------------------------------------------------------------

/** One context and dtype: llmds through JS and the plain JS attention, checked, timed. */
export function benchmarkDecode(ctx, dtype) {
  const f16 = dtype === 'f16';
  const { k, v, q } = attentionData(ctx);
  const shape = { numHeads: NUM_HEADS, kvHeads: KV_HEADS, headDim: HEAD_DIM };
  const cache = new KVCache({ pageSize: PAGE_SIZE, maxPages: ctx / PAGE_SIZE + 1, kv: { layers: 1, kvHeads: KV_HEADS, headDim: HEAD_DIM, dtype } });
  try {
    const tokens = Int32Array.from({ length: ctx }, (_, i) => i);
    cache.attach(1, tokens);
    for (let from = 0; from < ctx; from += 256) {
      const n = Math.min(256, ctx - from) * ROW;
      cache.writeKV(1, 0, from, k.subarray(from * ROW, from * ROW + n), v.subarray(from * ROW, from * ROW + n));
    }
    // The plain JS side holds what llmds holds: f32 as written; f16 as binary16 bits, which must
    // widen to exactly what readKV returns.
    let jk = k;
    let jv = v;
    let plain = plainAttention;
    if (f16) {
      const back = cache.readKV(1, 0, 0, ctx);
      jk = Uint16Array.from(k, toHalf);
      jv = Uint16Array.from(v, toHalf);
      for (let i = 0; i < jk.length; i++) {
        if (HALF_TABLE[jk[i]] !== back.k[i] || HALF_TABLE[jv[i]] !== back.v[i]) {
          throw new Error(`attention bench: f16 rounding differs from llmds' at [${i}]: ${HALF_TABLE[jk[i]]} vs ${back.k[i]}`);
        }
      }
      plain = plainAttentionF16;
    }
    const out = new Float32Array(NUM_HEADS * HEAD_DIM);
    const scores = new Float32Array(ctx);
    const check = checkSame(cache.attention(1, 0, q, { numHeads: NUM_HEADS }), plain(q, jk, jv, ctx, shape, out, scores), `${dtype} context ${ctx}`);

    const wasmS = timePerCall(() => cache.attention(1, 0, q, { numHeads: NUM_HEADS }));
    const plainS = timePerCall(() => plain(q, jk, jv, ctx, shape, out, scores));
    const kvBytes = ctx * ROW * 2 * (f16 ? 2 : 4);
    return {
      context: ctx, dtype, usPerStep: wasmS * 1e6, kvGBps: kvBytes / wasmS / 1e9, plainUsPerStep: plainS * 1e6,
      plainKvGBps: kvBytes / plainS / 1e9, speedup: plainS / wasmS, kvBytesPerStep: kvBytes,
      payloadBytes: cache.stats().payloadBytes, ...check,
    };
  } finally {
    cache.dispose();
  }
}

/** `llmds_bench --suite attention` in this run: { cli, copyGBps, rows } or null when there is no CLI. */
export function runNative() {
  const cli = nativeCli();
  if (!cli) return null;
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const out = `${dir}native-attention.json`;
  const argv = ['--suite', 'attention', '--json', out, ...(quick ? ['--quick'] : [])];
  const r = spawnSync(cli, argv, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cli} ${argv.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  const n = JSON.parse(readFileSync(out, 'utf8'));
  return { cli, copyGBps: n.attentionCopyProbe[0].copyGBps, rows: n.attentionDecode };
}

export async function benchmarkAttention() {
  await init();
  const probeBefore = copyProbe();
  const rows = [];
  for (const dtype of ['f32', 'f16']) {
    for (const ctx of CONTEXTS) rows.push(benchmarkDecode(ctx, dtype));
  }
  const probeAfter = copyProbe(); // the machine is shared: the better of two probes
  const copyGBps = Math.max(probeBefore.best, probeAfter.best);
  const native = runNative();
  for (const r of rows) {
    r.copyFraction = r.kvGBps / copyGBps;
    const n = native?.rows.find((x) => x.context === r.context && x.f16 === (r.dtype === 'f16' ? 1 : 0));
    r.nativeUsPerStep = n ? n.usPerCall : null;
    r.wasmOverNative = n ? r.usPerStep / n.usPerCall : null;
  }
  return {
    shape: { kvHeads: KV_HEADS, headDim: HEAD_DIM, numHeads: NUM_HEADS, pageSize: PAGE_SIZE, m: 1 },
    probe: { bytes: PROBE_BYTES, before: probeBefore, after: probeAfter, copyGBps },
    native: native && { cli: native.cli, copyGBps: native.copyGBps, rows: native.rows },
    rows,
  };
}

export async function runAttentionBench() {
  const r = await benchmarkAttention();
  const p = r.probe;
  const gb = (x) => x.toFixed(2);
  printTable(`Copy-bandwidth probe, ${p.bytes >> 20} MiB per copy (GB/s; before / after the attention runs)`, [
    ...['copyWithin', 'set', 'wasmMemoryCopy', 'wasmSimdLoop'].map((m) => ({ method: m, before: gb(p.before[m]), after: gb(p.after[m]) })),
    ...(r.native ? [{ method: 'native memcpy (llmds_bench)', before: gb(r.native.copyGBps), after: '' }] : []),
  ]);
  printTable(`Decode attention through the JS API: ${r.shape.numHeads} query heads, ${r.shape.kvHeads} KV heads × ${r.shape.headDim}, page ${r.shape.pageSize} (copy limit ${gb(p.copyGBps)} GB/s)`, r.rows.map((x) => ({
    context: x.context,
    dtype: x.dtype,
    'wasm µs': x.usPerStep.toFixed(0),
    'K/V GB/s': gb(x.kvGBps),
    '% of copy': `${(x.copyFraction * 100).toFixed(0)} %`,
    'plain JS µs': x.plainUsPerStep.toFixed(0),
    speedup: `${x.speedup.toFixed(1)}×`,
    'native µs': x.nativeUsPerStep === null ? 'n/a' : x.nativeUsPerStep.toFixed(0),
    'wasm/native': x.wasmOverNative === null ? 'n/a' : x.wasmOverNative.toFixed(2),
    'max |err|': x.maxAbsError.toExponential(1),
  })));
  if (!r.native) console.log('\n(native column skipped: set LLMDS_BENCH or build build-native/llmds_bench)');
  const file = await writeResults('attention', r);
  console.log(`\nwritten ${file.pathname}`);
  return r;
}

if (isMain(import.meta)) await runAttentionBench();
