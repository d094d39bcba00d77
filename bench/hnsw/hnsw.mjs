// SPDX-License-Identifier: MIT
// HNSW benchmark: build rate, and recall@10 against QPS for a sweep of efSearch, single-threaded,
// for llmds (through the JS API, wasm) side by side in the same run with hnswlib-wasm 0.8.2,
// hnswlib-node (native hnswlib), a plain-JS brute force and llmds' own C++ natively
// (llmds_bench --suite hnsw on the same data files). M=16, efConstruction=200 everywhere.
//
//   cd bench/hnsw && npm_config_nodedir=/usr npm install   # once: the libraries compared
//   node bench/hnsw/hnsw.mjs [--quick]   # writes bench/results/hnsw.json; then node bench/hnsw/plot.mjs
//
// Data: Fashion-MNIST (apt-get install dataset-fashion-mnist; 784-d unit vectors, l2) and a
// seeded 384-d clustered set (cosine). Each data set runs in its own child process so the wasm
// heap growth of each index is measured from a fresh heap; the parent writes the data files, the
// cached ground truth and the manifest the native CLI reads, then merges and prints everything.
// The libraries are measured interleaved and rates are per CPU second (see timed() and runChild;
// HNSW_BENCH_BASIS=wall compares wall-clock rates). The method is in bench/README.md.
// The native figures come from $LLMDS_BENCH, else build-native/llmds_bench (skipped if absent).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { llmds, quick, printTable, writeResults, isMain } from '../lib.mjs';
import {
  fashionMnist, clustered, groundTruth, writeVectors, unitCopies, bruteForce, distanceFn, recallAt, resultsDir,
} from './data.mjs';

export const M = 16;
export const EF_CONSTRUCTION = 200;
export const SEED = 100; // llmds' and hnswlib's default seed
export const K = 10;
export const EF_SEARCH = quick ? [16, 32, 64, 128, 256] : [16, 24, 32, 48, 64, 96, 128, 192, 256];
const REPS = quick ? 2 : 3; // best-of for every search measurement
const WARMUP_VECTORS = 1000;

/** The data sets of a run: full, or the --quick sizes (about a minute in all). */
export function dataSets() {
  return quick
    ? [() => fashionMnist({ nBase: 10000, nQueries: 200 }), () => clustered({ nBase: 10000, nQueries: 200 })]
    : [() => fashionMnist({ nBase: 60000, nQueries: 1000 }), () => clustered({ nBase: 50000, nQueries: 1000 })];
}

const here = fileURLToPath(import.meta.url);
const MIN_SECONDS = 0.2; // shortest timed measurement of a search sweep

/**
 * Wall and CPU time of fn() in seconds. The machines are shared (other tenants' builds), so wall
 * time includes waiting for a core; CPU time of this process (process.cpuUsage(): all of its
 * threads, so V8's background GC/compiler work is charged to the library being timed) is the
 * contention-robust figure. Rates are reported both ways.
 */
function timed(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

// ---------------------------------------------------------------------------------------------
// The libraries, behind one shape: warm(set); begin(set); addRange(set, from, to) → { wall, cpu };
// finish() → build facts (memory); queries(set) → queries shaped as the library takes them
// (prepared outside the timed loops); search(q, ef) → result; ids(result) → ids; dispose().

async function llmdsLib() {
  await llmds.init();
  let index, mem;
  const make = (set) => new llmds.HNSW({ dim: set.dim, M, efConstruction: EF_CONSTRUCTION, seed: SEED, metric: set.metric });
  return {
    name: 'llmds (wasm, JS API)',
    key: 'llmds',
    warm(set) {
      const w = make(set);
      for (let i = 0; i < WARMUP_VECTORS; i++) w.add(row(set.base, set.dim, i), i);
      w.search(row(set.queries, set.dim, 0), K);
      w.dispose();
    },
    begin(set) {
      mem = llmds.memoryProfiler();
      index = make(set);
    },
    addRange: (set, from, to) => timed(() => { for (let i = from; i < to; i++) index.add(row(set.base, set.dim, i), i); }),
    finish() {
      mem.sample();
      const s = index.stats();
      return { statsBytes: s.bytes, edges: s.edges, levels: s.levels, avgDegree: s.avgDegree, wasmHeapGrowthBytes: mem.wasmHeapDeltaMb * 2 ** 20 };
    },
    queries: (set) => Array.from({ length: set.nQueries }, (_, q) => row(set.queries, set.dim, q)),
    search: (q, ef) => index.search(q, K, { efSearch: ef }),
    ids: (r) => r.map(([id]) => id),
    // searchBatch: every query in one call (no per-query JS ↔ wasm crossing); flat n × K ids.
    batch: (set, ef) => index.searchBatch(set.queries, K, { efSearch: ef }).ids,
    dispose() { index.dispose(); },
  };
}

async function hnswlibWasmLib() {
  // hnswlib-wasm targets browsers: it calls importScripts and mounts an IndexedDB file system.
  await import('fake-indexeddb/auto');
  globalThis.importScripts ??= () => {};
  const log = console.log;
  console.log = () => {}; // it logs its file-system mounting
  let lib;
  try {
    lib = await (await import('hnswlib-wasm/dist/hnswlib.js')).loadHnswlib();
  } finally {
    console.log = log;
  }
  let index, heap0;
  const make = (set, n) => {
    const x = new lib.HierarchicalNSW(set.metric, set.dim, '');
    x.initIndex(n, M, EF_CONSTRUCTION, SEED);
    return x;
  };
  return {
    name: 'hnswlib-wasm 0.8.2',
    key: 'hnswlibWasm',
    warm(set) {
      const w = make(set, WARMUP_VECTORS);
      for (let i = 0; i < WARMUP_VECTORS; i++) w.addPoint(row(set.base, set.dim, i), i, false);
      w.searchKnn(row(set.queries, set.dim, 0), K, undefined);
      w.delete();
    },
    begin(set) {
      heap0 = lib.HEAPU8.length;
      index = make(set, set.nBase); // hnswlib allocates maxElements up front
    },
    addRange: (set, from, to) => timed(() => { for (let i = from; i < to; i++) index.addPoint(row(set.base, set.dim, i), i, false); }),
    finish: () => ({ wasmHeapGrowthBytes: lib.HEAPU8.length - heap0 }),
    queries: (set) => Array.from({ length: set.nQueries }, (_, q) => row(set.queries, set.dim, q)),
    search(q, ef) {
      if (ef !== this.ef) index.setEfSearch((this.ef = ef));
      return index.searchKnn(q, K, undefined);
    },
    ids: (r) => r.neighbors,
    dispose() { index.delete(); },
  };
}

async function hnswlibNodeLib() {
  const { HierarchicalNSW } = (await import('hnswlib-node')).default;
  let index;
  const make = (set, n) => {
    const x = new HierarchicalNSW(set.metric, set.dim);
    x.initIndex(n, M, EF_CONSTRUCTION, SEED);
    return x;
  };
  return {
    name: 'hnswlib-node 3.0.0 (native)',
    key: 'hnswlibNode',
    warm(set) {
      const w = make(set, WARMUP_VECTORS);
      for (let i = 0; i < WARMUP_VECTORS; i++) w.addPoint(Array.from(row(set.base, set.dim, i)), i);
      w.searchKnn(Array.from(row(set.queries, set.dim, 0)), K);
    },
    begin(set) {
      index = make(set, set.nBase);
    },
    addRange(set, from, to) {
      // hnswlib-node takes number[] only: convert (untimed), then add.
      const arrays = [];
      for (let i = from; i < to; i++) arrays.push(Array.from(row(set.base, set.dim, i)));
      return timed(() => { for (let i = from; i < to; i++) index.addPoint(arrays[i - from], i); });
    },
    finish: () => ({}),
    queries: (set) => Array.from({ length: set.nQueries }, (_, q) => Array.from(row(set.queries, set.dim, q))),
    search(q, ef) {
      if (ef !== this.ef) index.setEf((this.ef = ef));
      return index.searchKnn(q, K);
    },
    ids: (r) => r.neighbors,
    dispose() { index = undefined; },
  };
}

function row(v, dim, i) {
  return v.subarray(i * dim, (i + 1) * dim);
}

// ---------------------------------------------------------------------------------------------
// One data set in this (child) process. The machine is shared, so the libraries are measured
// interleaved: the build adds BUILD_CHUNK vectors to each index in turn, and the search sweep
// measures every library once per repetition at each efSearch. A busy spell then slows all of
// them alike instead of whichever library happened to be running.

const BUILD_CHUNK = 1000;

function recallOf(set, truth, idsPerQuery) {
  const dist = distanceFn(set.metric, set.dim);
  let sum = 0;
  for (let q = 0; q < idsPerQuery.length; q++) sum += recallAt(idsPerQuery[q], 0, K, truth, q * K, set, dist);
  return sum / idsPerQuery.length;
}

/** Whole passes of `pass()` until MIN_SECONDS; wall and CPU seconds per pass. */
function measurePasses(pass) {
  let wall = 0, cpu = 0, passes = 0;
  while (wall < MIN_SECONDS) {
    const t = timed(pass);
    wall += t.wall;
    cpu += t.cpu;
    passes++;
  }
  return { wall: wall / passes, cpu: cpu / passes };
}

function benchBruteForce(set, truth) {
  const { base, queries } = unitCopies(set);
  const n = Math.min(set.nQueries, quick ? 50 : 100);
  const dist = distanceFn(set.metric, set.dim);
  bruteForce(base, set.dim, queries, 0, K, set.metric, dist); // warm-up
  const found = [];
  const t = timed(() => { for (let q = 0; q < n; q++) found.push(bruteForce(base, set.dim, queries, q * set.dim, K, set.metric, dist).ids); });
  const recall = recallOf({ ...set, nQueries: n }, truth, found);
  console.log(`  plain-JS brute force: ${(n / t.cpu).toFixed(1)} QPS per CPU s over ${n} queries`);
  return { library: 'bruteForce', name: 'plain-JS brute force', queries: n, points: [{ efSearch: null, qps: n / t.wall, cpuQps: n / t.cpu, recall }] };
}

/** Reads a set's files (written by the parent) and runs every JS library on it. */
async function runChild(spec) {
  const read = (file, Type) => {
    const buf = readFileSync(file);
    const out = new Type((buf.length - 8) / 4);
    new Uint8Array(out.buffer).set(buf.subarray(8));
    return { rows: buf.readUInt32LE(0), cols: buf.readUInt32LE(4), data: out };
  };
  const b = read(spec.files.base, Float32Array);
  const q = read(spec.files.query, Float32Array);
  const truth = read(spec.files.truth, Int32Array).data;
  const set = { ...spec, dim: b.cols, base: b.data, queries: q.data, nBase: b.rows, nQueries: q.rows };
  console.log(`\n${set.label}: ${set.nBase} × ${set.dim} base, ${set.nQueries} queries, metric ${set.metric}`);

  const libs = [];
  for (const make of [llmdsLib, hnswlibWasmLib, hnswlibNodeLib]) libs.push(await make());
  // llmds begins first, so its wasm heap growth is measured on a heap that only held its warm-up.
  for (const lib of libs) lib.warm(set);
  for (const lib of libs) lib.begin(set);
  const build = libs.map(() => ({ seconds: 0, cpuSeconds: 0 }));
  for (let from = 0; from < set.nBase; from += BUILD_CHUNK) {
    const to = Math.min(set.nBase, from + BUILD_CHUNK);
    libs.forEach((lib, i) => {
      const t = lib.addRange(set, from, to);
      build[i].seconds += t.wall;
      build[i].cpuSeconds += t.cpu;
    });
  }
  libs.forEach((lib, i) => {
    Object.assign(build[i], lib.finish(), { vectorsPerSecond: set.nBase / build[i].seconds, vectorsPerCpuSecond: set.nBase / build[i].cpuSeconds });
    console.log(`  ${lib.name}: built ${set.nBase} vectors in ${build[i].seconds.toFixed(1)} s, ${build[i].cpuSeconds.toFixed(1)} CPU s (${Math.round(build[i].vectorsPerCpuSecond)}/CPU s)`);
  });

  // Search: each measured thing runs whole passes over the queries; results of the last pass
  // give the recall.
  const runs = [];
  for (const lib of libs) {
    const queries = lib.queries(set);
    const results = new Array(queries.length);
    runs.push({ lib, kind: 'search', results, pass: (ef) => { for (let i = 0; i < queries.length; i++) results[i] = lib.search(queries[i], ef); } });
    if (lib.batch) {
      const holder = { ids: null };
      runs.push({ lib, kind: 'batch', holder, pass: (ef) => { holder.ids = lib.batch(set, ef); } });
    }
  }
  for (const r of runs) r.pass(EF_SEARCH[0]); // warm-up
  const points = new Map(libs.map((lib) => [lib, []]));
  for (const ef of EF_SEARCH) {
    const best = runs.map(() => ({ wall: Infinity, cpu: Infinity }));
    for (let rep = 0; rep < REPS; rep++) {
      runs.forEach((r, i) => {
        const t = measurePasses(() => r.pass(ef));
        best[i].wall = Math.min(best[i].wall, t.wall);
        best[i].cpu = Math.min(best[i].cpu, t.cpu);
      });
    }
    const n = set.nQueries;
    runs.forEach((r, i) => {
      if (r.kind === 'search') {
        points.get(r.lib).push({ efSearch: ef, qps: n / best[i].wall, cpuQps: n / best[i].cpu, recall: recallOf(set, truth, r.results.map(r.lib.ids)) });
      } else {
        const p = points.get(r.lib).find((x) => x.efSearch === ef);
        p.batchQps = n / best[i].wall;
        p.batchCpuQps = n / best[i].cpu;
        p.batchRecall = recallOf(set, truth, Array.from({ length: n }, (_, q) => r.holder.ids.subarray(q * K, q * K + K)));
      }
    });
    console.log(`  efSearch ${ef}: ${libs.map((lib) => `${lib.key} ${Math.round(points.get(lib).at(-1).cpuQps)} QPS/CPU s, R@${K} ${points.get(lib).at(-1).recall.toFixed(4)}`).join('; ')}`);
  }
  const libraries = libs.map((lib, i) => ({ library: lib.key, name: lib.name, build: build[i], points: points.get(lib) }));
  for (const lib of libs) lib.dispose();
  libraries.push(benchBruteForce(set, truth));
  writeFileSync(spec.out, JSON.stringify({ libraries }));
}

// ---------------------------------------------------------------------------------------------
// Parent: data files, ground truth, children, native CLI, tables, targets.

/** Rates compared: per CPU second of the benchmark process ('cpu', the default) or per wall second. */
const BASIS = process.env.HNSW_BENCH_BASIS === 'wall' ? 'wall' : 'cpu';
const qpsOf = (p) => (BASIS === 'cpu' ? p.cpuQps : p.qps);
const buildRateOf = (l) => (BASIS === 'cpu' ? l.build.vectorsPerCpuSecond : l.build.vectorsPerSecond);

/**
 * QPS at `recall`, interpolated in (recall, log QPS) between the efSearch points that bracket it;
 * when even the smallest efSearch exceeds `recall`, that point's QPS (`atLeast`: an underestimate
 * of the QPS at exactly `recall`). null when no efSearch reaches it.
 */
export function qpsAtRecall(points, recall, qps = qpsOf) {
  const ps = points.filter((p) => p.efSearch !== null).slice().sort((a, b) => a.efSearch - b.efSearch);
  if (ps.length === 0) return null;
  if (ps[0].recall >= recall) return { qps: qps(ps[0]), atLeast: ps[0].recall > recall };
  for (let i = 1; i < ps.length; i++) {
    const a = ps[i - 1], b = ps[i];
    if (b.recall >= recall) {
      const t = b.recall === a.recall ? 1 : (recall - a.recall) / (b.recall - a.recall);
      return { qps: Math.exp(Math.log(qps(a)) + t * (Math.log(qps(b)) - Math.log(qps(a)))), atLeast: false };
    }
  }
  return null;
}

function nativeCli() {
  const candidates = [process.env.LLMDS_BENCH, fileURLToPath(new URL('../../build-native/llmds_bench', import.meta.url))];
  return candidates.find((c) => c && existsSync(c));
}

function runNative(manifest) {
  const cli = nativeCli();
  if (!cli) {
    console.log('\n(native llmds skipped: set LLMDS_BENCH or build build-native/llmds_bench)');
    return null;
  }
  console.log(`\nnative: ${cli} --suite hnsw`);
  const out = `${resultsDir}hnsw-native.json`;
  const r = spawnSync(cli, ['--suite', 'hnsw', '--hnsw-manifest', manifest, '--json', out, ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`native bench failed (${r.status})`);
  for (const line of r.stdout.split('\n')) if (line.startsWith('  llmds (native')) console.log(line);
  return { cli, ...JSON.parse(readFileSync(out, 'utf8')) };
}

const TARGET_RECALLS = [0.9, 0.95, 0.99];
const round = (x) => (x === undefined || x === null ? '-' : Math.round(x));

/** Targets and ratios of one data set, all from this run. */
function targetsOf(set) {
  const by = (key) => set.libraries.find((l) => l.library === key);
  const ours = by('llmds'), wasm = by('hnswlibWasm'), node = by('hnswlibNode'), nat = by('llmdsNative');
  const atRecall = (a, b) => Object.fromEntries(TARGET_RECALLS.map((rc) => {
    const x = qpsAtRecall(a.points, rc), y = qpsAtRecall(b.points, rc);
    return [rc, x && y ? { a: x.qps, b: y.qps, ratio: x.qps / y.qps, atLeast: x.atLeast || y.atLeast } : null];
  }));
  const raw = set.nBase * set.dim * 4;
  const links = ours.build.edges * 4;
  return {
    basis: BASIS,
    vsHnswlibWasm: {
      build: { llmds: buildRateOf(ours), hnswlibWasm: buildRateOf(wasm), ratio: buildRateOf(ours) / buildRateOf(wasm),
        wallRatio: ours.build.vectorsPerSecond / wasm.build.vectorsPerSecond },
      qps: atRecall(ours, wasm),
      wallQps: Object.fromEntries(TARGET_RECALLS.map((rc) => {
        const x = qpsAtRecall(ours.points, rc, (p) => p.qps), y = qpsAtRecall(wasm.points, rc, (p) => p.qps);
        return [rc, x && y ? x.qps / y.qps : null];
      })),
    },
    vsHnswlibNode: node && {
      build: { ratio: buildRateOf(ours) / buildRateOf(node) },
      qps: atRecall(ours, node),
    },
    memory: {
      rawVectorBytes: raw, linkBytes: links, statsBytes: ours.build.statsBytes, wasmHeapGrowthBytes: ours.build.wasmHeapGrowthBytes,
      statsRatio: ours.build.statsBytes / (raw + links), heapRatio: ours.build.wasmHeapGrowthBytes / (raw + links),
      hnswlibWasmHeapGrowthBytes: wasm.build.wasmHeapGrowthBytes, hnswlibWasmHeapRatio: wasm.build.wasmHeapGrowthBytes / (raw + links),
    },
    // wasm / native time ratios of llmds' own C++ (> 1: wasm slower), same data and parameters.
    wasmOverNative: nat && {
      build: buildRateOf(nat) / buildRateOf(ours),
      search: Object.fromEntries(ours.points.map((p) => {
        const q = nat.points.find((x) => x.efSearch === p.efSearch);
        return [p.efSearch, q ? qpsOf(q) / qpsOf(p) : null];
      })),
      sameRecall: ours.points.every((p) => nat.points.some((x) => x.efSearch === p.efSearch && Math.abs(x.recall - p.recall) < 1e-9)),
    },
  };
}

function printSet(set) {
  const unit = BASIS === 'cpu' ? 'per CPU second' : 'per wall second';
  printTable(`${set.label} (${set.nBase} × ${set.dim}, ${set.metric}): build, M=${M}, efConstruction=${EF_CONSTRUCTION}, one thread`,
    set.libraries.filter((l) => l.build).map((l) => ({
      library: l.name, wallSeconds: l.build.seconds, cpuSeconds: l.build.cpuSeconds,
      vectorsPerCpuSec: round(l.build.vectorsPerCpuSecond), vectorsPerWallSec: round(l.build.vectorsPerSecond),
      wasmHeapGrowthMb: l.build.wasmHeapGrowthBytes === undefined ? '-' : l.build.wasmHeapGrowthBytes / 2 ** 20,
      statsMb: l.build.statsBytes === undefined ? '-' : l.build.statsBytes / 2 ** 20,
    })));
  const rows = EF_SEARCH.map((ef) => {
    const r = { ef };
    for (const l of set.libraries) {
      const p = l.points.find((x) => x.efSearch === ef);
      if (!p) continue;
      r[`${l.library} R@${K}`] = p.recall;
      r[`${l.library} QPS`] = round(qpsOf(p));
      if (p.batchQps !== undefined) r[`${l.library} batch`] = round(BASIS === 'cpu' ? p.batchCpuQps : p.batchQps);
    }
    return r;
  });
  const bf = set.libraries.find((l) => l.library === 'bruteForce').points[0];
  printTable(`${set.label}: recall@${K} and QPS (${unit}) per efSearch; plain-JS brute force: ${qpsOf(bf).toFixed(1)} QPS, recall ${bf.recall}`, rows);

  const t = set.targets;
  const x = (v) => (v === null || v === undefined ? 'n/a' : `${v.toFixed(2)}x`);
  const w = t.vsHnswlibWasm;
  const rows2 = [
    { target: 'build rate >= 1.5x hnswlib-wasm', measured: `${x(w.build.ratio)} (${round(w.build.llmds)} vs ${round(w.build.hnswlibWasm)} vectors/s)`, met: w.build.ratio >= 1.5 },
    ...TARGET_RECALLS.map((rc) => ({
      target: `QPS >= 2x hnswlib-wasm at recall ${rc}`,
      measured: w.qps[rc] ? `${x(w.qps[rc].ratio)} (${round(w.qps[rc].a)} vs ${round(w.qps[rc].b)})${w.qps[rc].atLeast ? ' [lowest ef above it]' : ''}` : 'recall not reached',
      met: w.qps[rc] ? w.qps[rc].ratio >= 2 : false,
    })),
    { target: 'memory: stats().bytes <= 1.2x (vectors + links)', measured: x(t.memory.statsRatio), met: t.memory.statsRatio <= 1.2 },
    { target: 'memory: wasm heap growth <= 1.2x (vectors + links)', measured: x(t.memory.heapRatio), met: t.memory.heapRatio <= 1.2 },
  ];
  if (t.vsHnswlibNode) {
    rows2.push({ target: 'vs hnswlib-node: build rate (info)', measured: x(t.vsHnswlibNode.build.ratio), met: '-' });
    for (const rc of TARGET_RECALLS) {
      const v = t.vsHnswlibNode.qps[rc];
      rows2.push({ target: `vs hnswlib-node: QPS at recall ${rc} (info)`, measured: v ? x(v.ratio) : 'n/a', met: '-' });
    }
  }
  if (t.wasmOverNative) {
    const vals = Object.values(t.wasmOverNative.search).filter((v) => v !== null);
    rows2.push({ target: 'llmds wasm/native time, build (info)', measured: x(t.wasmOverNative.build), met: '-' });
    rows2.push({ target: 'llmds wasm/native time per query (info)', measured: `${x(Math.min(...vals))} .. ${x(Math.max(...vals))}`, met: '-' });
    rows2.push({ target: 'llmds wasm and native give the same recall', measured: String(t.wasmOverNative.sameRecall), met: t.wasmOverNative.sameRecall });
  }
  printTable(`${set.label}: targets (rates ${unit})`, rows2);
}

export async function runHnswBench() {
  const load0 = os.loadavg();
  const specs = [];
  const manifest = `${resultsDir}hnsw-sets.txt`;
  const lines = [];
  for (const load of dataSets()) {
    const set = load();
    const truth = groundTruth(set, K);
    const files = { ...writeVectors(set), truth: truth.file };
    specs.push({ name: set.name, label: set.label, metric: set.metric, nBase: set.nBase, dim: set.dim, nQueries: set.nQueries, files,
      out: `${resultsDir}${set.name}-libs.json` });
    lines.push([set.name, set.metric, files.base, files.query, files.truth, K, EF_SEARCH.join(',')].join(' '));
  }
  writeFileSync(manifest, lines.join('\n') + '\n');

  const sets = [];
  for (const spec of specs) {
    const r = spawnSync(process.execPath, [here, '--child', JSON.stringify(spec), ...(quick ? ['--quick'] : [])], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`HNSW bench of ${spec.name} failed (${r.status})`);
    sets.push({ ...spec, ...JSON.parse(readFileSync(spec.out, 'utf8')) });
  }

  const native = runNative(manifest);
  sets.forEach((set, i) => {
    if (!native) return;
    const b = native.hnswBuild.find((r) => r.set === i);
    set.libraries.push({
      library: 'llmdsNative', name: 'llmds (native C++)',
      build: { seconds: b.buildSeconds, cpuSeconds: b.buildCpuSeconds, vectorsPerSecond: b.vectorsPerSecond,
        vectorsPerCpuSecond: b.vectorsPerCpuSecond, statsBytes: b.bytes, edges: b.edges, levels: b.levels },
      points: native.hnswSearch.filter((r) => r.set === i).map((r) => ({ efSearch: r.efSearch, qps: r.qps, cpuQps: r.cpuQps, recall: r.recall })),
    });
  });

  for (const set of sets) {
    set.targets = targetsOf(set);
    printSet(set);
  }
  const load1 = os.loadavg();
  console.log(`\nload average (1 min) at start ${load0[0].toFixed(2)}, at end ${load1[0].toFixed(2)} on ${os.cpus().length} cores`);

  await llmds.init(); // writeResults records llmds.features()
  const params = { M, efConstruction: EF_CONSTRUCTION, seed: SEED, k: K, efSearch: EF_SEARCH, reps: REPS, minSeconds: MIN_SECONDS, basis: BASIS };
  const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAvgStart: load0, loadAvgEnd: load1, nativeCli: native?.cli };
  const clean = sets.map(({ out, ...s }) => s);
  const file = await writeResults('hnsw', { params, machine, sets: clean });
  console.log(`written ${file.pathname} (plot: node bench/hnsw/plot.mjs)`);
  return { params, sets: clean };
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) await runChild(JSON.parse(process.argv[childAt + 1]));
else if (isMain(import.meta)) await runHnswBench();
