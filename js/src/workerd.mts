// SPDX-License-Identifier: MIT
// The entry for Cloudflare Workers (workerd): the .wasm is imported as a module, which the
// runtime compiles, because compiling bytes and evaluating strings are forbidden there.
/// <reference path="./wasm-module.d.ts" />
import factory from './llmds-noeval.mjs';
// The no-eval glue only changes the JS side: its .wasm is byte-identical to the SIMD build's
// (a package test checks), so the package ships that one file.
import wasm from './llmds.wasm';
import type { RawModuleBase } from './engine.mjs';
import { initWith, instantiate, type Features, type InitOptions } from './init.mjs';

export * from './api.mjs';

/** Loads the engine once (the no-eval SIMD build; `options.wasm` may pass another compiled module). */
export function init(options?: InitOptions): Promise<Features> {
  return initWith(
    (o) => instantiate(factory, o.wasm instanceof WebAssembly.Module ? o.wasm : wasm) as Promise<RawModuleBase>,
    options,
  );
}
