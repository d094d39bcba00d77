// SPDX-License-Identifier: MIT
// Filtered HNSW search through the JS API (issue 16): recall@10 and QPS when a filter allows
// 50 %, 10 % and 1 % of the vectors, against brute force over the allowed set, on
// Fashion-MNIST (784-d unit vectors, l2; apt-get install dataset-fashion-mnist), M=16,
// efConstruction=200 as in hnsw.mjs. Filters are seeded random id subsets (uncorrelated with
// the vectors), passed as a Uint32Array; one column passes the same set as a predicate to show
// what evaluating it in JS costs. Needs only llmds (not the comparison libraries).
//
//   node bench/hnsw/filtered.mjs [--quick]   # writes bench/results/hnsw-filtered.json
import os from 'node:os';
import { llmds, quick, printTable, writeResults, isMain, rng } from '../lib.mjs';
import { fashionMnist, clustered, distanceFn } from './data.mjs';

const M = 16;
const EF_CONSTRUCTION = 200;
const K = 10;
const SELECTIVITIES = [0.5, 0.1, 0.01];
const EF_SEARCH = quick ? [16, 64, 128] : [16, 32, 64, 128, 256];
const MIN_SECONDS = 0.3;

function cpuTimed(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

/** Queries per CPU second (and per wall second) of whole passes over the queries. */
function qpsOf(n, pass) {
  pass(); // warm-up
  let wall = 0, cpu = 0, passes = 0;
  while (wall < MIN_SECONDS) {
    const t = cpuTimed(pass);
    wall += t.wall;
    cpu += t.cpu;
    passes++;
  }
  return { qps: (n * passes) / wall, cpuQps: (n * passes) / cpu };
}

/** Exact k nearest among `allowed` (ascending ids): ids and the k-th distance. */
function exact(set, dist, q, allowed) {
  const ids = new Int32Array(K).fill(-1);
  const ds = new Float64Array(K).fill(Infinity);
  for (const j of allowed) {
    const d = dist(set.queries, q * set.dim, set.base, j * set.dim);
    if (d >= ds[K - 1]) continue;
    let p = K - 1;
    while (p > 0 && ds[p - 1] > d) { ds[p] = ds[p - 1]; ids[p] = ids[p - 1]; p--; }
    ds[p] = d;
    ids[p] = j;
  }
  return { ids, kth: ds[Math.min(K, allowed.length) - 1] };
}

/** recall@10 with ties counted (a returned id within the k-th exact distance is a hit). */
function recall(set, dist, q, found, truth, allowedCount) {
  const limit = truth.kth + 1e-6 * Math.max(1, Math.abs(truth.kth));
  let hits = 0;
  for (const [id] of found) if (dist(set.queries, q * set.dim, set.base, id * set.dim) <= limit) hits++;
  return hits / Math.min(K, allowedCount);
}

export async function runFilteredHnswBench() {
  await llmds.init();
  let set;
  try {
    set = fashionMnist(quick ? { nBase: 10000, nQueries: 200 } : { nBase: 60000, nQueries: 500 });
  } catch (e) {
    console.log(`\n(${e.message}; using the clustered synthetic set instead)`);
    set = clustered(quick ? { nBase: 10000, nQueries: 200 } : { nBase: 50000, nQueries: 500 });
  }
  const dist = distanceFn(set.metric, set.dim);
  console.log(`\nHNSW filtered search: ${set.label}, ${set.nBase} × ${set.dim}, ${set.nQueries} queries, M=${M}, efConstruction=${EF_CONSTRUCTION}`);
  const index = new llmds.HNSW({ dim: set.dim, M, efConstruction: EF_CONSTRUCTION, seed: 100, metric: set.metric });
  const build = cpuTimed(() => index.addBatch(set.base, Int32Array.from({ length: set.nBase }, (_, i) => i)));
  console.log(`  built in ${build.wall.toFixed(1)} s`);
  const queries = Array.from({ length: set.nQueries }, (_, q) => set.queries.subarray(q * set.dim, (q + 1) * set.dim));

  const rows = [];
  const next = rng(16);
  for (const selectivity of SELECTIVITIES) {
    const allowedList = [];
    const mask = new Uint8Array(set.nBase);
    for (let i = 0; i < set.nBase; i++) if (next() < selectivity) { allowedList.push(i); mask[i] = 1; }
    const filter = Uint32Array.from(allowedList);
    const predicate = (id) => mask[id] === 1;
    const truth = queries.map((_, q) => exact(set, dist, q, allowedList));
    const brute = qpsOf(Math.min(50, set.nQueries), () => { for (let q = 0; q < Math.min(50, set.nQueries); q++) exact(set, dist, q, allowedList); });
    for (const ef of EF_SEARCH) {
      const found = new Array(queries.length);
      const filtered = qpsOf(queries.length, () => { for (let q = 0; q < queries.length; q++) found[q] = index.search(queries[q], K, { efSearch: ef, filter }); });
      let r = 0;
      for (let q = 0; q < queries.length; q++) r += recall(set, dist, q, found[q], truth[q], allowedList.length);
      const byPredicate = qpsOf(queries.length, () => { for (let q = 0; q < queries.length; q++) index.search(queries[q], K, { efSearch: ef, filter: predicate }); });
      const unfiltered = qpsOf(queries.length, () => { for (let q = 0; q < queries.length; q++) index.search(queries[q], K, { efSearch: ef }); });
      const scan = allowedList.length ** 2 <= 0.5 * Math.max(ef, K) * M * set.nBase; // HNSW::prefers_exact_scan
      rows.push({
        selectivity, allowed: allowedList.length, efSearch: ef, plan: scan ? 'exact scan' : 'graph',
        [`recall@${K}`]: r / queries.length, qps: filtered.cpuQps, predicateQps: byPredicate.cpuQps,
        unfilteredQps: unfiltered.cpuQps, bruteForceJsQps: brute.cpuQps,
      });
      const row = rows.at(-1);
      console.log(`  ${selectivity * 100}% ef ${ef}: ${row.plan}, R@${K} ${row[`recall@${K}`].toFixed(4)}, ${Math.round(row.qps)} QPS (predicate ${Math.round(row.predicateQps)}, unfiltered ${Math.round(row.unfilteredQps)}, JS brute force ${Math.round(row.bruteForceJsQps)})`);
    }
  }
  index.dispose();
  printTable(`HNSW filtered search (${set.label}, ${set.nBase} × ${set.dim}; QPS per CPU second, one thread)`, rows);
  const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAvg: os.loadavg() };
  await writeResults('hnsw-filtered', { set: { name: set.name, nBase: set.nBase, dim: set.dim, nQueries: set.nQueries }, params: { M, efConstruction: EF_CONSTRUCTION, k: K }, machine, rows });
  return rows;
}

if (isMain(import.meta)) await runFilteredHnswBench();
