// SPDX-License-Identifier: MIT
// npm run bench [-- --quick]: every component benchmark through the JS API, then the native CLI
// on the same workloads for the wasm/native ratios (bench/ratios.mjs). JSON goes to
// bench/results/ (git-ignored). scripts/bench-setup.sh (run by npm run bench) installs the data
// sets and each comparison benchmark's own dependencies.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { quick, printTable, writeResults } from './lib.mjs';
import { runKVCacheBench } from './kv-cache.mjs';
import { nativeRatios } from './ratios.mjs';

const installed = (dir) => existsSync(fileURLToPath(new URL(`./${dir}/node_modules`, import.meta.url)));
const skipped = (what, dir) => console.log(`\n(${what} skipped: cd bench/${dir} && npm install, or run npm run bench)`);

const js = { kv: await runKVCacheBench() };
js.kvTrace = await (await import('./kv-trace.mjs')).runKVTraceBench();
js.attention = await (await import('./attention.mjs')).runAttentionBench(); // runs the native suite itself
js.decoder = await (await import('./decoder.mjs')).runDecoderBench();
js.routerSim = await (await import('./router-sim.mjs')).runRouterSimBench();
js.retrieval = await (await import('./retrieval.mjs')).runRetrievalBench();
js.shards = await (await import('./shards.mjs')).runShardsBench(); // in process and under workerd
if (installed('bm25')) js.bm25 = await (await import('./bm25/bm25.mjs')).runBm25Bench();
else skipped('BM25 vs wink/minisearch/flexsearch', 'bm25');
js.hnswFiltered = await (await import('./hnsw/filtered.mjs')).runFilteredHnswBench();
js.hnswQuantization = await (await import("./hnsw/quantization.mjs")).runQuantizationBench();
if (installed('hnsw')) js.hnsw = await (await import('./hnsw/hnsw.mjs')).runHnswBench();
else skipped('HNSW vs hnswlib', 'hnsw');
// Serving control (its lru-cache columns need bench/serving's install) and the simulator.
js.serving = await (await import('./serving.mjs')).runServingBench();
js.routerCost = await (await import('./router/cost.mjs')).runRouterCostBench();
js.servingSimulator = await (await import('./serving-simulator.mjs')).runServingSimulatorBench();

const rows = await nativeRatios({ quick, js });
if (rows.length > 0) {
  printTable('wasm (through the JS API) / native C++: same workloads, this run (ratio = wasm time / native time)', rows);
  await writeResults('ratios', { rows });
}
