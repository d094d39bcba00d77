// SPDX-License-Identifier: MIT
// A Cloudflare Worker using llmds through the `workerd` export condition (bundled like wrangler
// does: esbuild with the workerd condition, the .wasm kept as a compiled-module import).
import * as llmds from 'llmds';
import { runScenario } from '../scenario.mjs';

const ready = llmds.init();
let cache;

export default {
  async fetch(request) {
    const features = await ready;
    const url = new URL(request.url);
    try {
      if (url.pathname === '/scenario') return Response.json({ features, scenario: await runScenario(llmds) });
      if (url.pathname === '/kv') {
        // A KV cache that lives across requests: attach a prompt, report what was reused.
        cache ??= new llmds.KVCache({ pageSize: 4, maxPages: 256 });
        const tokens = (url.searchParams.get('tokens') ?? '').split(',').filter(Boolean).map(Number);
        const reused = cache.matchPrefix(tokens);
        const seq = Number(url.searchParams.get('seq'));
        cache.attach(seq, tokens);
        return Response.json({ reused, stats: cache.stats() });
      }
      return new Response('not found', { status: 404 });
    } catch (e) {
      const status = e instanceof llmds.LlmdsError ? 400 : 500;
      return Response.json({ error: e.code ?? 'internal', message: e.message }, { status });
    }
  },
};
