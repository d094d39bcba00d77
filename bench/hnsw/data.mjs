// SPDX-License-Identifier: MIT
// Data sets for the HNSW benchmark, exact ground truth (cached in bench/results/) and the binary
// files the native CLI (llmds_bench --suite hnsw) reads.
//
// File layouts (little-endian), as big-ann-benchmarks' .fbin/.ibin:
//   *.f32  u32 rows, u32 dim, then rows × dim float32
//   *.i32  u32 rows, u32 k,   then rows × k int32 (ground-truth ids, nearest first)
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { rng } from '../lib.mjs';

export const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
export const FASHION_MNIST_DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

/** Reads an IDX3 (images) file, gzipped or not: { count, dim, pixels: Uint8Array }. */
function readIdxImages(file) {
  let buf = readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(0) !== 2051) throw new Error(`${file}: not an IDX3 image file (magic ${dv.getUint32(0)})`);
  const count = dv.getUint32(4);
  const dim = dv.getUint32(8) * dv.getUint32(12);
  if (buf.length !== 16 + count * dim) throw new Error(`${file}: truncated`);
  return { count, dim, pixels: buf.subarray(16) };
}

/** Scales each row of `v` (rows × dim) to unit length, in place; returns v. */
export function normalizeRows(v, dim) {
  for (let o = 0; o < v.length; o += dim) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += v[o + i] * v[o + i];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let i = 0; i < dim; i++) v[o + i] *= inv;
  }
  return v;
}

function imagesAsUnitFloats(file, rows) {
  const { count, dim, pixels } = readIdxImages(file);
  if (rows > count) throw new Error(`${file} has ${count} images, ${rows} requested`);
  const out = new Float32Array(rows * dim);
  for (let i = 0; i < out.length; i++) out[i] = pixels[i];
  return { dim, vectors: normalizeRows(out, dim) };
}

/**
 * Fashion-MNIST (Debian package dataset-fashion-mnist): the first `nBase` of the 60,000 training
 * images as the base set and the first `nQueries` of the 10,000 test images as queries, 784-d,
 * unit-normalised float32; metric l2.
 */
export function fashionMnist({ nBase = 60000, nQueries = 1000 } = {}) {
  const train = `${FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz`;
  const test = `${FASHION_MNIST_DIR}/t10k-images-idx3-ubyte.gz`;
  if (!existsSync(train) || !existsSync(test)) {
    throw new Error(`Fashion-MNIST not found in ${FASHION_MNIST_DIR}: apt-get install -y dataset-fashion-mnist (or set FASHION_MNIST_DIR)`);
  }
  const b = imagesAsUnitFloats(train, nBase);
  const q = imagesAsUnitFloats(test, nQueries);
  return { name: `fmnist-${nBase}`, label: 'Fashion-MNIST', dim: b.dim, metric: 'l2', base: b.vectors, queries: q.vectors, nBase, nQueries };
}

/** A standard normal variate from a uniform generator (Box-Muller). */
function gaussian(next) {
  let u = 0;
  while (u === 0) u = next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

/**
 * Seeded clustered vectors (embedding-like): `clusters` centres drawn from N(0, I), each point a
 * centre plus N(0, spread² I) noise; queries drawn the same way from the same centres (other
 * points). Not normalised: the libraries normalise for the cosine metric.
 */
export function clustered({ nBase = 50000, nQueries = 1000, dim = 384, clusters = 100, spread = 0.5, seed = 1234 } = {}) {
  const next = rng(seed);
  const centres = new Float32Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = gaussian(next);
  const draw = (rows) => {
    const out = new Float32Array(rows * dim);
    for (let r = 0; r < rows; r++) {
      const c = Math.floor(next() * clusters) * dim;
      for (let i = 0; i < dim; i++) out[r * dim + i] = centres[c + i] + spread * gaussian(next);
    }
    return out;
  };
  const base = draw(nBase);
  const queries = draw(nQueries);
  return { name: `clustered-${nBase}-d${dim}-c${clusters}-s${seed}`, label: `clustered ${dim}-d`, dim, metric: 'cosine', base, queries, nBase, nQueries };
}

/** The metric's distance, smaller is nearer: squared l2, or 1 - cos for unit vectors. */
export function distanceFn(metric, dim) {
  if (metric === 'l2') {
    return (a, ao, b, bo) => {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let i = 0;
      for (; i + 4 <= dim; i += 4) {
        const d0 = a[ao + i] - b[bo + i], d1 = a[ao + i + 1] - b[bo + i + 1];
        const d2 = a[ao + i + 2] - b[bo + i + 2], d3 = a[ao + i + 3] - b[bo + i + 3];
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
      }
      for (; i < dim; i++) { const d = a[ao + i] - b[bo + i]; s0 += d * d; }
      return s0 + s1 + s2 + s3;
    };
  }
  return (a, ao, b, bo) => {
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let i = 0;
    for (; i + 4 <= dim; i += 4) {
      s0 += a[ao + i] * b[bo + i]; s1 += a[ao + i + 1] * b[bo + i + 1];
      s2 += a[ao + i + 2] * b[bo + i + 2]; s3 += a[ao + i + 3] * b[bo + i + 3];
    }
    for (; i < dim; i++) s0 += a[ao + i] * b[bo + i];
    return 1 - (s0 + s1 + s2 + s3);
  };
}

/**
 * Plain-JS exact k-NN (the brute-force competitor and the ground truth): a linear scan keeping
 * the k best in a small sorted array. For 'cosine' `base` and `query` must be unit vectors.
 */
export function bruteForce(base, dim, query, qo, k, metric, dist = distanceFn(metric, dim)) {
  const ids = new Int32Array(k).fill(-1);
  const ds = new Float64Array(k).fill(Infinity);
  const n = base.length / dim;
  for (let j = 0; j < n; j++) {
    const d = dist(query, qo, base, j * dim);
    if (d >= ds[k - 1]) continue;
    let p = k - 1;
    while (p > 0 && ds[p - 1] > d) { ds[p] = ds[p - 1]; ids[p] = ids[p - 1]; p--; }
    ds[p] = d;
    ids[p] = j;
  }
  return { ids, distances: ds };
}

function writeBin(file, rows, cols, typed) {
  const header = new Uint32Array([rows, cols]);
  const buf = Buffer.concat([Buffer.from(header.buffer), Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength)]);
  writeFileSync(file, buf);
}

function readBin(file, Type) {
  const buf = readFileSync(file);
  const rows = buf.readUInt32LE(0), cols = buf.readUInt32LE(4);
  const body = buf.subarray(8);
  if (body.length !== rows * cols * 4) throw new Error(`${file}: size does not match its header`);
  const out = new Type(rows * cols);
  new Uint8Array(out.buffer).set(body);
  return { rows, cols, data: out };
}

/**
 * Exact top-k ids of every query (brute force over unit vectors for cosine), cached in
 * bench/results/<name>-q<n>-gt.i32 (git-ignored).
 */
export function groundTruth(set, k = 10) {
  mkdirSync(resultsDir, { recursive: true });
  const file = `${resultsDir}${set.name}-q${set.nQueries}-gt.i32`;
  if (existsSync(file)) {
    const g = readBin(file, Int32Array);
    // Spot-check the cache against a fresh scan of the first query (the data may have changed).
    if (g.rows === set.nQueries && g.cols === k) {
      const { base, queries } = unitCopies(set);
      const first = bruteForce(base, set.dim, queries, 0, k, set.metric).ids;
      if (first.every((id, i) => id === g.data[i])) return { ids: g.data, file, cached: true };
    }
  }
  const { base, queries } = unitCopies(set);
  const ids = new Int32Array(set.nQueries * k);
  const dist = distanceFn(set.metric, set.dim);
  const t0 = performance.now();
  for (let q = 0; q < set.nQueries; q++) ids.set(bruteForce(base, set.dim, queries, q * set.dim, k, set.metric, dist).ids, q * k);
  console.log(`  ground truth for ${set.name}: ${set.nQueries} queries in ${((performance.now() - t0) / 1000).toFixed(1)} s (cached in ${file})`);
  writeBin(file, set.nQueries, k, ids);
  return { ids, file, cached: false };
}

/** The base and query vectors as the metric compares them (unit copies for cosine, cached on the set). */
export function unitCopies(set) {
  if (set.metric !== 'cosine') return { base: set.base, queries: set.queries };
  set.unit ??= { base: normalizeRows(set.base.slice(), set.dim), queries: normalizeRows(set.queries.slice(), set.dim) };
  return set.unit;
}

/** Writes <name>-base.f32 and <name>-q<n>-query.f32 for the native CLI; returns their paths. */
export function writeVectors(set) {
  mkdirSync(resultsDir, { recursive: true });
  const base = `${resultsDir}${set.name}-base.f32`;
  const query = `${resultsDir}${set.name}-q${set.nQueries}-query.f32`;
  writeBin(base, set.nBase, set.dim, set.base);
  writeBin(query, set.nQueries, set.dim, set.queries);
  return { base, query };
}

/**
 * recall@k of `found` (ids of one query, -1 padded) against the exact neighbours: a returned id
 * counts when its exact distance is within the k-th exact distance (ties count, as in
 * ann-benchmarks), so duplicate vectors do not make a correct answer look wrong.
 */
export function recallAt(found, foundOffset, k, truthIds, truthOffset, set, dist) {
  const { base, queries } = unitCopies(set);
  const qo = (truthOffset / k) * set.dim;
  const kth = dist(queries, qo, base, truthIds[truthOffset + k - 1] * set.dim);
  const limit = kth + 1e-6 * Math.max(1, Math.abs(kth));
  let hits = 0;
  for (let i = 0; i < k; i++) {
    const id = found[foundOffset + i];
    if (id >= 0 && dist(queries, qo, base, id * set.dim) <= limit) hits++;
  }
  return hits / k;
}
