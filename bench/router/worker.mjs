// SPDX-License-Identifier: MIT
// The routing-cost workload inside workerd (bench/router/cost.mjs drives it). workerd's clocks
// do not advance while JS runs (a Spectre mitigation), so the driver times requests from outside:
// GET /route?n=N routes N queries; the cost per route is (t(N) − t(0)) / N.
import * as llmds from 'llmds';
import { buildRoutingWorkload, routeMany } from './workload.mjs';

let workload;

export default {
  async fetch(request) {
    await llmds.init();
    const url = new URL(request.url);
    if (url.pathname === '/build') {
      workload?.router.dispose();
      workload = buildRoutingWorkload(llmds, JSON.parse(url.searchParams.get('options') ?? '{}'));
      return Response.json({ stats: workload.stats, simd: llmds.features().simd });
    }
    if (url.pathname === '/route') {
      const n = Number(url.searchParams.get('n') ?? 0);
      return Response.json({ overlap: routeMany(workload.router, workload.queries, n) });
    }
    return new Response('not found', { status: 404 });
  },
};
