// SPDX-License-Identifier: MIT
// The entry bundlers pick through the `browser` export condition. Bundlers disagree on assets
// (esbuild does not rewrite `new URL('./x.wasm', import.meta.url)`), so by default the .wasm
// comes embedded in a lazily imported chunk, which works with every bundler and no
// configuration. Pass `init({ wasm: url })` to load a separately served .wasm instead (the
// embedded chunk is then never imported).
import { glue, wantsSimd } from './glue.mjs';
import { initWith, instantiate, type Features, type InitOptions } from './init.mjs';
import { compile } from './load.mjs';

export * from './api.mjs';

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function embedded(simd: boolean): Promise<WebAssembly.Module> {
  const chunk = simd ? await import('./llmds-wasm.inline.mjs') : await import('./llmds-nosimd-wasm.inline.mjs');
  return WebAssembly.compile(decodeBase64(chunk.default));
}

/** Loads the engine once (see index.mts); the .wasm is embedded unless `options.wasm` is given. */
export function init(options?: InitOptions): Promise<Features> {
  return initWith(async (o) => {
    const simd = wantsSimd(o);
    const [factory, module] = await Promise.all([glue(simd), o.wasm ? compile(o.wasm) : embedded(simd)]);
    return instantiate(factory, module);
  }, options);
}
