// SPDX-License-Identifier: MIT
// The package entry for Node, Deno, browsers, bundlers and Web Workers.
// (Component exports go in api.mts, which the workerd entry shares.)
import { initWith, type Features, type InitOptions } from './init.mjs';
import { loadDefault } from './load.mjs';

export * from './api.mjs';

/**
 * Loads the engine once: the SIMD build when the runtime validates wasm SIMD, else the
 * portable one. Idempotent; concurrent callers share one promise; the first call's options win.
 * @example
 * import { init, KVCache } from 'llmds';
 * await init();
 * const cache = new KVCache({ pageSize: 16 });
 */
export function init(options?: InitOptions): Promise<Features> {
  return initWith(loadDefault, options);
}
