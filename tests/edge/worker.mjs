// SPDX-License-Identifier: MIT
// A Cloudflare Worker using llmds through the `workerd` export condition (bundled like wrangler
// does: esbuild with the workerd condition, the .wasm kept as a compiled-module import).
import * as llmds from 'llmds';
import { runScenario } from '../scenario.mjs';

const ready = llmds.init();
let cache;
let rag;

const DOCS = [
  'paged attention keeps the kv cache in fixed size blocks',
  'prefix caching reuses the kv cache of a shared system prompt',
  'bm25 ranks documents by term frequency and inverse document frequency',
  'hnsw is a graph index for approximate nearest neighbours',
  'continuous batching schedules requests by their deadlines',
];

/** A toy embedder: letter frequencies, enough to make the dense side meaningful here. */
function embed(text) {
  const v = new Float32Array(26);
  for (const ch of text.toLowerCase()) {
    const c = ch.charCodeAt(0) - 97;
    if (c >= 0 && c < 26) v[c] += 1;
  }
  return v;
}

export default {
  async fetch(request) {
    const features = await ready;
    const url = new URL(request.url);
    try {
      if (url.pathname === '/scenario') return Response.json({ features, scenario: await runScenario(llmds) });
      if (url.pathname === '/search') {
        // A RetrievalPipeline built once per isolate, answering hybrid queries.
        if (!rag) {
          rag = new llmds.RetrievalPipeline({ embeddingDim: 26, seed: 1 });
          DOCS.forEach((text, id) => rag.addDocument(id, text, embed(text)));
        }
        const q = url.searchParams.get('q') ?? '';
        const hits = rag.search(q, { queryEmbedding: embed(q), topK: Number(url.searchParams.get('k') ?? 3) });
        return Response.json({ hits, stats: rag.stats() });
      }
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
