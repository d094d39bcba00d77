// SPDX-License-Identifier: MIT
// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N
// bytes of JSON { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {string:
// string} }, then the tensors' bytes, little-endian, offsets relative to the end of the header.
// Every tensor is widened to Float32Array on read. Errors name the tensor and what is wrong: a
// truncated download and a mismatched checkpoint must be told apart at a glance.

export type Dtype = 'F32' | 'F16' | 'BF16';

/** Bytes per element of each dtype read and written here. */
const SIZES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor & { dtype: Dtype }>;
  metadata: Record<string, string>;
}

const fail = (what: string): never => {
  throw new Error(`safetensors: ${what}`);
};

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits → number (subnormals, infinities and NaN included). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number → IEEE binary16 bits, rounded to nearest even (what numpy and PyTorch do). */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → ±∞
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal → ±0
    mant |= 0x800000; // the implicit bit, then shift into the subnormal range
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let out = mant >>> shift;
    if (rest > half || (rest === half && out & 1)) out++;
    return sign | out;
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out++; // a carry into the exponent is right
  return sign | out;
}

/** bfloat16 bits → number: the top half of an f32. */
export function bf16ToF32(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

/** number → bfloat16 bits, rounded to nearest even. */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40; // NaN stays NaN
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

const isDtype = (d: unknown): d is Dtype => d === 'F32' || d === 'F16' || d === 'BF16';
const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** Parses a .safetensors file. Throws an Error naming what is wrong (and which tensor). */
export function readSafetensors(input: Uint8Array | ArrayBuffer): SafetensorsFile {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (bytes.length < 8) fail(`the file is ${bytes.length} bytes: too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) fail(`the header claims ${headerLength} bytes but only ${bytes.length - 8} follow: truncated file or not safetensors`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header must be a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: Array<[number, number, string]> = [];
  const tensors = new Map<string, Tensor & { dtype: Dtype }>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries((entry ?? {}) as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} must be a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDtype(dtype)) fail(`tensor ${name}: dtype ${JSON.stringify(dtype)} is not supported (F32, F16, BF16)`);
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(`tensor ${name}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) fail(`tensor ${name}: data_offsets must be [begin, end], got ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end - begin !== count * SIZES[dtype as Dtype]) {
      fail(`tensor ${name}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} [${shape}] needs ${count * SIZES[dtype as Dtype]}`);
    }
    if (end > dataLength) fail(`tensor ${name}: data_offsets [${begin}, ${end}] run past the ${dataLength} data bytes: truncated file?`);
    spans.push([begin, end, name]);
    tensors.set(name, { dtype: dtype as Dtype, shape: shape as number[], data: decode(view, dataStart + begin, count, dtype as Dtype) });
  }
  // The format forbids overlaps and holes, so that no byte is read twice or hides something else.
  spans.sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== at) fail(`tensor ${name} starts at byte ${begin}, expected ${at}: overlapping tensors or a hole in the data`);
    at = end;
  }
  if (at !== dataLength) fail(`${dataLength - at} bytes after the last tensor belong to none`);
  return { tensors, metadata };
}

function decode(view: DataView, at: number, count: number, dtype: Dtype): Float32Array {
  const out = new Float32Array(count);
  if (dtype === 'F32') for (let i = 0; i < count; i++) out[i] = view.getFloat32(at + 4 * i, true);
  else if (dtype === 'F16') for (let i = 0; i < count; i++) out[i] = f16ToF32(view.getUint16(at + 2 * i, true));
  else for (let i = 0; i < count; i++) out[i] = bf16ToF32(view.getUint16(at + 2 * i, true));
  return out;
}

/**
 * Writes tensors (in the given order) as one .safetensors file of `dtype`. The header is padded
 * with spaces so the data starts 8-byte aligned, as the reference writer does.
 */
export function writeSafetensors(tensors: Iterable<[string, Tensor]>, { dtype = 'F32', metadata }: { dtype?: Dtype; metadata?: Record<string, string> } = {}): Uint8Array {
  if (!isDtype(dtype)) fail(`cannot write dtype ${JSON.stringify(dtype)} (F32, F16, BF16)`);
  const size = SIZES[dtype];
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const list = [...tensors];
  let offset = 0;
  for (const [name, t] of list) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) fail(`tensor ${name}: shape [${t.shape}] holds ${count} values, data has ${t.data.length}`);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + count * size] };
    offset += count * size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(padded - json.length));
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const [, t] of list) {
    for (const x of t.data) {
      if (dtype === 'F32') view.setFloat32(at, x, true);
      else view.setUint16(at, dtype === 'F16' ? f32ToF16(x) : f32ToBf16(x), true);
      at += size;
    }
  }
  return out;
}
