// A Cloudflare Worker: wrangler bundles it with the `workerd` export condition, which imports the
// .wasm as a module (workerd forbids compiling wasm from bytes).
import { init, KVCache } from 'llmds';

const ready = init();
let cache; // lives as long as the isolate

export default {
  async fetch(request) {
    await ready;
    cache ??= new KVCache({ pageSize: 16, maxPages: 4096 });
    const tokens = await request.json(); // e.g. [1, 2, 3, ...]
    const reused = cache.matchPrefix(tokens);
    cache.attach(1, tokens);
    return Response.json({ reused, usedPages: cache.stats().usedPages });
  },
};
