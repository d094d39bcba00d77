// A module Web Worker; bundle it (esbuild, Vite, webpack: no configuration needed) and start it
// with new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }).
import { init, KVCache } from 'llmds';

const ready = init();
const cache = ready.then(() => new KVCache({ pageSize: 16 }));

self.onmessage = async ({ data: { seqId, tokens } }) => {
  const kv = await cache;
  const reused = kv.matchPrefix(tokens); // prefill can skip these
  kv.attach(seqId, tokens);
  self.postMessage({ seqId, reused });
};
