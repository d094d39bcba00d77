// SPDX-License-Identifier: MIT
// The routing-cost workload, runtime-agnostic so Node and workerd run exactly the same thing:
// a fleet whose workers each hold `blocksPerWorker` blocks (recorded in approximate mode from
// fresh 12,000-token prompts, cache-aware with loads spreading them), and queries that share
// their first half with a prompt one worker holds (the walk visits half the prompt's blocks).
import { rng } from '../rng.mjs';

/** @returns {{ router, queries: Int32Array[], stats: object }} */
export function buildRoutingWorkload(llmds, { workers = 8, blocksPerWorker = 100000, promptTokens = 12000, blockSize = 16, queries = 200, seed = 1 } = {}) {
  const rand = rng(seed);
  const fresh = () => Int32Array.from({ length: promptTokens }, () => Math.floor(rand() * 2 ** 31));
  const router = new llmds.KVRouter({ blockSize, capacityBlocks: blocksPerWorker });
  for (let w = 0; w < workers; w++) router.addWorker(`http://10.0.0.${w + 1}:8000`);
  const perPrompt = Math.floor(promptTokens / blockSize);
  const prompts = Math.ceil((workers * blocksPerWorker) / perPrompt);
  const recent = [];
  for (let i = 0; i < prompts; i++) {
    const p = fresh();
    const id = `fill-${i}`;
    const { worker } = router.route(p, { requestId: id });
    router.started(worker, id, promptTokens); // spreads the fill: cost-aware picks the least loaded
    if (i >= prompts - queries) recent.push(p);
  }
  for (let i = 0; i < prompts; i++) router.finished(`fill-${i}`);
  const qs = recent.map((held) => {
    const q = fresh();
    q.set(held.subarray(0, promptTokens >> 1));
    return q;
  });
  return { router, queries: qs, stats: router.stats() };
}

/** Routes `n` queries round the list; returns the overlap blocks summed (so nothing is optimised away). */
export function routeMany(router, queries, n) {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += router.route(queries[i % queries.length]).overlapBlocks;
  return sum;
}
