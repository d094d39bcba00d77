// SPDX-License-Identifier: MIT
// HNSW quantization (issue 16) side by side in one run: llmds (wasm, JS API) f32 / f16 / i8 /
// b1 + rescoring against usearch's own f32 / f16 / i8 indexes (npm usearch, native addon), on
// Fashion-MNIST (784-d unit vectors, l2; apt-get install dataset-fashion-mnist) and on the 384-d
// clustered synthetic set (cosine; a clustered set flatters quantization: neighbours are far
// apart relative to the coding error). M = connectivity = 16, efConstruction = expansion_add =
// 200, one thread everywhere (usearch's add and search get threads = 1), K = 10.
//
// Memory: llmds' stats().bytes (everything the index holds in the wasm heap: rows, links, ids,
// scratch; with rescore > 0 also the f32 rows kept for rescoring, reported apart as
// rescoreBytes); usearch's JS binding has no memory figure, so its size is that of its own
// save() file (vectors + graph, no allocator slack).
//
// b1 rows: metric 'cosine' (b1 needs cosine or ip); on Fashion-MNIST's unit vectors that ranks
// exactly as l2, so the same ground truth applies. Two ways to rescore:
//   - "b1 + rescore R (f32 in index)": quantization 'b1', rescore R: the index keeps the f32 rows;
//     R = 10 and 20 (the default);
//   - "b1 + rescore R (f32 outside)": quantization 'b1', rescore 0: search(q, R × k) walks the
//     codes, then JS measures those R × k candidates exactly on the caller's own Float32Array of
//     vectors (which the application has anyway) and keeps the k nearest; the index holds no f32.
//     R = 10, 20, 30, 50 on one index (the beam is max(ef, R × k), so b1 sweeps ef less).
//
//   node bench/hnsw/quantization.mjs [--quick]   # writes bench/results/hnsw-quantization.json
import os from 'node:os';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { llmds, quick, printTable, writeResults, isMain } from '../lib.mjs';
import { fashionMnist, clustered, groundTruth, distanceFn, recallAt, unitCopies } from './data.mjs';

const M = 16;
const EF_CONSTRUCTION = 200;
const SEED = 100;
const K = 10;
const EF_SEARCH = quick ? [16, 64, 128] : [16, 32, 64, 128, 256];
const B1_RESCORE_IN = [10, 20]; // b1 with the f32 rows in the index (20 = llmds' default)
const B1_RESCORE_OUT = [10, 20, 30, 50]; // b1 with the f32 rows outside: one index, R × k candidates
const B1_EF = quick ? [16, 64] : [16, 64, 256]; // the b1 beam is max(ef, R × k) anyway
const MIN_SECONDS = quick ? 0.15 : 0.3;

function cpuTimed(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6, value };
}

/** Queries per CPU second of whole passes (at least MIN_SECONDS of them, after a warm-up). */
function qpsOf(n, pass) {
  pass();
  let cpu = 0, wall = 0, passes = 0;
  while (wall < MIN_SECONDS) {
    const t = cpuTimed(pass);
    cpu += t.cpu;
    wall += t.wall;
    passes++;
  }
  return { cpuQps: (n * passes) / cpu, wallQps: (n * passes) / wall };
}

/**
 * One llmds configuration: build, then search(q, ef) → ids. `shared`: configurations that differ
 * only in how JS rescores reuse one index (built once, disposed by the caller).
 */
function llmdsConfig(set, label, options, external = 0, shared = null) {
  return {
    lib: 'llmds', label, external,
    efs: options.quantization === 'b1' ? B1_EF : EF_SEARCH,
    build() {
      const key = JSON.stringify(options);
      if (shared?.has(key)) {
        ({ index: this.index, facts: this.facts } = shared.get(key));
        this.shared = true;
        return this.facts;
      }
      this.index = new llmds.HNSW({ dim: set.dim, M, efConstruction: EF_CONSTRUCTION, seed: SEED, metric: set.metric, ...options });
      const ids = Int32Array.from({ length: set.nBase }, (_, i) => i);
      const t = cpuTimed(() => this.index.addBatch(set.base, ids));
      const s = this.index.stats();
      this.facts = { buildCpuS: t.cpu, buildWallS: t.wall, bytes: s.bytes, rescoreBytes: s.rescoreBytes };
      if (shared) {
        shared.set(key, { index: this.index, facts: this.facts });
        this.shared = true;
      }
      return this.facts;
    },
    searcher(ef) {
      const index = this.index;
      if (!external) return (q) => index.search(q, K, { efSearch: ef }).map(([id]) => id);
      // Rescoring outside the index: R × k candidates from the codes, exact distances from the
      // caller's vectors (unit copies for cosine, as the index compares them).
      const { base } = unitCopies(set);
      const exact = distanceFn(set.metric === 'l2' ? 'l2' : 'cosine', set.dim);
      const unitQ = new Float32Array(set.dim);
      return (q) => {
        const cands = index.search(q, external * K, { efSearch: ef });
        let qq = q;
        if (set.metric !== 'l2') {
          let s = 0;
          for (let i = 0; i < set.dim; i++) s += q[i] * q[i];
          const inv = 1 / Math.sqrt(s);
          for (let i = 0; i < set.dim; i++) unitQ[i] = q[i] * inv;
          qq = unitQ;
        }
        for (const c of cands) c[1] = exact(qq, 0, base, c[0] * set.dim);
        cands.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
        return cands.slice(0, K).map(([id]) => id);
      };
    },
    dispose() { if (!this.shared) this.index.dispose(); },
  };
}

function usearchConfig(Index, set, quantization, dir) {
  const metric = set.metric === 'l2' ? 'l2sq' : 'cos';
  const make = (ef) => new Index({ dimensions: set.dim, metric, quantization, connectivity: M, expansion_add: EF_CONSTRUCTION, expansion_search: ef });
  const file = join(dir, `usearch-${set.name}-${quantization}.bin`);
  return {
    lib: 'usearch', label: `usearch ${quantization}`, efs: EF_SEARCH,
    build() {
      const index = make(64);
      const keys = BigUint64Array.from({ length: set.nBase }, (_, i) => BigInt(i));
      const t = cpuTimed(() => index.add(keys, set.base, 1));
      index.save(file);
      return { buildCpuS: t.cpu, buildWallS: t.wall, bytes: statSync(file).size, rescoreBytes: 0 };
    },
    searcher(ef) {
      // expansion_search is fixed at construction: load the saved index into one made with ef.
      this.index = make(ef);
      this.index.load(file);
      const index = this.index;
      return (q) => Array.from(index.search(q, K, 1).keys, Number);
    },
    dispose() { rmSync(file, { force: true }); },
  };
}

async function runSet(set, Index, dir) {
  console.log(`\n${set.label}: ${set.nBase} × ${set.dim}, ${set.nQueries} queries, metric ${set.metric}`);
  const truth = groundTruth(set, K).ids;
  const dist = distanceFn(set.metric, set.dim);
  const queries = Array.from({ length: set.nQueries }, (_, q) => set.queries.subarray(q * set.dim, (q + 1) * set.dim));
  // b1 needs cosine / ip: on unit vectors (Fashion-MNIST) cosine ranks as l2 does.
  const b1Metric = { metric: set.metric === 'l2' ? 'cosine' : set.metric };
  const shared = new Map();
  const configs = [
    llmdsConfig(set, 'llmds f32', {}),
    llmdsConfig(set, 'llmds f16', { quantization: 'f16' }),
    llmdsConfig(set, 'llmds i8', { quantization: 'i8' }),
    ...B1_RESCORE_IN.map((r) => llmdsConfig(set, `llmds b1 + rescore ${r} (f32 in index)`, { ...b1Metric, quantization: 'b1', rescore: r })),
    ...B1_RESCORE_OUT.map((r) => llmdsConfig(set, `llmds b1 + rescore ${r} (f32 outside)`, { ...b1Metric, quantization: 'b1', rescore: 0 }, r, shared)),
    llmdsConfig(set, 'llmds b1, no rescoring', { ...b1Metric, quantization: 'b1', rescore: 0 }, 0, shared),
  ];
  if (Index) for (const q of ['f32', 'f16', 'i8']) configs.push(usearchConfig(Index, set, q, dir));
  const rows = [];
  for (const c of configs) {
    const b = c.build();
    console.log(`  ${c.label}: built in ${b.buildCpuS.toFixed(1)} CPU s, ${(b.bytes / 2 ** 20).toFixed(1)} MiB`);
    for (const ef of c.efs) {
      const search = c.searcher(ef);
      const found = queries.map(search);
      let r = 0;
      for (let q = 0; q < queries.length; q++) r += recallAt(found[q], 0, K, truth, q * K, set, dist);
      const { cpuQps, wallQps } = qpsOf(queries.length, () => { for (const q of queries) search(q); });
      rows.push({ set: set.label, config: c.label, lib: c.lib, efSearch: ef, [`recall@${K}`]: r / queries.length, qps: cpuQps, wallQps, ...b });
      console.log(`    ef ${ef}: R@${K} ${(r / queries.length).toFixed(4)}, ${Math.round(cpuQps)} QPS`);
    }
    c.dispose();
  }
  for (const { index } of shared.values()) index.dispose();
  return rows;
}

/** The best QPS among a configuration's sweep points with recall >= target (or null). */
function qpsAt(rows, config, target) {
  const ok = rows.filter((r) => r.config === config && r[`recall@${K}`] >= target);
  return ok.length ? Math.max(...ok.map((r) => r.qps)) : null;
}

function summarize(rows, setLabel) {
  const rs = rows.filter((r) => r.set === setLabel);
  const configs = [...new Set(rs.map((r) => r.config))];
  const f32 = rs.find((r) => r.config === 'llmds f32');
  return configs.map((config) => {
    const r = rs.find((x) => x.config === config);
    const external = config.includes('outside');
    const row = {
      set: setLabel, config,
      bytes: r.bytes, memoryVsF32: r.bytes / f32.bytes,
      withoutRescoreRows: (r.bytes - r.rescoreBytes) / f32.bytes,
      [`bestRecall@${K}`]: Math.max(...rs.filter((x) => x.config === config).map((x) => x[`recall@${K}`])),
      qpsAt090: qpsAt(rs, config, 0.9), qpsAt095: qpsAt(rs, config, 0.95), qpsAt099: qpsAt(rs, config, 0.99),
      buildCpuS: r.buildCpuS,
    };
    if (external) row.note = 'caller keeps the f32 vectors (not counted)';
    return row;
  });
}

export async function runQuantizationBench() {
  await llmds.init();
  let Index = null;
  try {
    const mod = await import('usearch');
    Index = mod.Index ?? mod.default.Index;
  } catch (e) {
    console.log(`(usearch not available: ${e.message}; cd bench/hnsw && npm install)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'llmds-quant-'));
  const sets = [];
  try {
    sets.push(fashionMnist(quick ? { nBase: 10000, nQueries: 200 } : { nBase: 60000, nQueries: 1000 }));
  } catch (e) {
    console.log(`(${e.message})`);
  }
  sets.push(clustered(quick ? { nBase: 10000, nQueries: 200 } : { nBase: 50000, nQueries: 1000 }));
  const rows = [];
  try {
    for (const set of sets) rows.push(...(await runSet(set, Index, dir)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const summary = sets.flatMap((s) => summarize(rows, s.label));
  printTable(`HNSW quantization (QPS per CPU second, one thread, M=${M}, efConstruction=${EF_CONSTRUCTION})`, summary);
  const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAvg: os.loadavg() };
  await writeResults('hnsw-quantization', {
    params: { M, efConstruction: EF_CONSTRUCTION, k: K, efSearch: EF_SEARCH, b1Ef: B1_EF, b1RescoreIn: B1_RESCORE_IN, b1RescoreOut: B1_RESCORE_OUT },
    machine, summary, rows,
  });
  return { rows, summary };
}

if (isMain(import.meta)) await runQuantizationBench();
