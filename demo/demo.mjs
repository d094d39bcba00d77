// SPDX-License-Identifier: MIT
// The demo page: loads the engine, then mounts the four panels. Everything runs in the browser
// on the built package; nothing is fetched from outside this origin.
//
// Embedder hook: /demo/?embedder=<module URL on this origin> imports that module and uses its
// `embed(texts) → Float32Array[]` (sync or async) and optional `name` instead of the built-in
// hashed n-gram embedder. See demo/README.md (e.g. demo/embedders/transformers.mjs).
import * as llmds from '../dist/index.mjs';
import { hashEmbedder } from './embedder.mjs';
import { mountDecoder } from './decoder-view.mjs';
import { mountKVCache } from './kv-cache-view.mjs';
import { mountRAG } from './rag-view.mjs';
import { mountSimulator } from './sim-view.mjs';

const engine = document.querySelector('#engine');

/** The embedder named by ?embedder=, or the built-in one. */
async function loadEmbedder() {
  const param = new URLSearchParams(location.search).get('embedder');
  if (!param) return hashEmbedder({ dim: 384 });
  const url = new URL(param, location.href);
  if (url.origin !== location.origin) throw new Error(`?embedder= must name a module on this origin, got ${url.origin}`);
  const mod = await import(url.href);
  if (typeof mod.embed !== 'function') throw new Error(`${url.pathname} must export embed(texts)`);
  return { name: mod.name ?? url.pathname, embed: mod.embed };
}

/** Mounts one panel; a failure shows in that panel and is reported, the others still work. */
async function panel(id, mount) {
  const root = document.getElementById(id);
  try {
    return await mount(root);
  } catch (e) {
    root.querySelector('[role=status]').textContent = `This panel failed: ${e.message}`;
    reportError(e);
    return null;
  }
}

try {
  const f = await llmds.init();
  engine.textContent = `Engine ${f.version}, ${f.simd ? 'wasm SIMD' : 'portable wasm'} build`;
} catch (e) {
  engine.textContent = `The engine failed to start: ${e.message}`;
  document.body.dataset.ready = 'error';
  throw e;
}

const kv = await panel('kv', (root) => mountKVCache(root, llmds));
const decoder = await panel('decoder', (root) => mountDecoder(root, llmds));
const sim = await panel('sim', (root) => mountSimulator(root, llmds));
const rag = await panel('rag', async (root) => {
  const [corpus, embedder] = await Promise.all([fetch(new URL('corpus.json', import.meta.url)).then((r) => r.json()), loadEmbedder()]);
  return mountRAG(root, llmds, { corpus: corpus.documents, embedder });
});
globalThis.llmdsDemo = { llmds, kv, decoder, sim, rag }; // for the console and the tests
document.body.dataset.ready = kv && decoder && sim && rag ? 'true' : 'error';
