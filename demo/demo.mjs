// SPDX-License-Identifier: MIT
// The demo page: everything runs in the browser on the built package.
import { init, KVCache, LlmdsError } from '../dist/index.mjs';
import { mountKVCache } from './kv-cache-view.mjs';

const engine = document.querySelector('#engine');
try {
  const f = await init();
  engine.textContent = `engine ${f.version}, ${f.simd ? 'wasm SIMD' : 'portable'} build`;
  mountKVCache(document.querySelector('#kv'), { KVCache, LlmdsError });
  document.body.dataset.ready = 'true';
} catch (e) {
  engine.textContent = `failed to start: ${e.message}`;
  throw e;
}
