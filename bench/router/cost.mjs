// SPDX-License-Identifier: MIT
// KVRouter routing cost through the JS API, Node and workerd in one run: route() of a
// 12,000-token prompt given as token ids (hashing included), 8 workers holding 100,000 blocks
// each. Issue 14's targets: ≤ 20 µs p50 in Node and workerd; ≤ 48 bytes per indexed block.
//   node bench/router/cost.mjs [--quick]
import { fileURLToPath } from 'node:url';
import { isMain, llmds, printTable, quick, summarize, timeEach, writeResults } from '../lib.mjs';
import { startWorkerd } from '../../tests/edge/workerd.mjs';
import { buildRoutingWorkload, routeMany } from './workload.mjs';

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function nodeCost(options, rounds) {
  const { router, queries, stats } = buildRoutingWorkload(llmds, options);
  try {
    routeMany(router, queries, queries.length * 2); // warm-up: tier the wasm code up
    const samples = timeEach(queries.length * rounds, (i) => router.route(queries[i % queries.length]));
    const s = summarize('route', samples);
    return { p50Us: s.routeP50Ms * 1e3, p99Us: s.routeP99Ms * 1e3, meanUs: s.routeMeanMs * 1e3, stats };
  } finally {
    router.dispose();
  }
}

/** Mean µs per route inside workerd: (t(n) − t(0)) / n, the median of `reps` pairs. */
async function workerdCost(options, n, reps) {
  const server = await startWorkerd(fileURLToPath(new URL('./worker.mjs', import.meta.url)));
  try {
    const get = async (path) => {
      const res = await fetch(server.base + path);
      if (!res.ok) throw new Error(`workerd ${path}: ${res.status} ${await res.text()}`);
      return res.json();
    };
    const { stats } = await get(`/build?options=${encodeURIComponent(JSON.stringify(options))}`);
    await get(`/route?n=${n}`); // warm-up
    const perRoute = [];
    for (let r = 0; r < reps; r++) {
      let t = performance.now();
      await get('/route?n=0');
      const empty = performance.now() - t;
      t = performance.now();
      await get(`/route?n=${n}`);
      perRoute.push(((performance.now() - t - empty) * 1e3) / n);
    }
    return { meanUs: median(perRoute), stats };
  } finally {
    server.stop();
  }
}

export async function runRouterCostBench() {
  await llmds.init();
  const options = { workers: 8, blocksPerWorker: quick ? 20000 : 100000, queries: 200 };
  const node = nodeCost(options, quick ? 5 : 20);
  const workerd = await workerdCost(options, quick ? 1000 : 4000, quick ? 3 : 7);
  const rows = [
    { runtime: 'Node', 'route p50 µs': node.p50Us, 'route p99 µs': node.p99Us, 'route mean µs': node.meanUs, 'bytes / indexed block': node.stats.bytes / node.stats.indexedBlocks, 'indexed blocks': node.stats.indexedBlocks },
    { runtime: 'workerd', 'route p50 µs': '—', 'route p99 µs': '—', 'route mean µs': workerd.meanUs, 'bytes / indexed block': workerd.stats.bytes / workerd.stats.indexedBlocks, 'indexed blocks': workerd.stats.indexedBlocks },
  ];
  printTable(`KVRouter.route(12,000 token ids), ${options.workers} workers × ${options.blocksPerWorker} blocks, cache-aware (workerd: mean from outside, its clocks stand still while JS runs)`, rows);
  await writeResults('router-cost', { options, node, workerd });
  return { node, workerd };
}

if (isMain(import.meta)) await runRouterCostBench();
