// SPDX-License-Identifier: MIT
// Which build to run, and its Emscripten glue.
import { simdSupported, type Factory, type InitOptions } from './init.mjs';

/** @internal The SIMD build unless the options or the runtime say otherwise. */
export function wantsSimd(options: InitOptions): boolean {
  return options.simd === 'auto' || options.simd === undefined ? simdSupported() : options.simd === true;
}

/** @internal */
export async function glue(simd: boolean): Promise<Factory> {
  // Literal specifiers, so bundlers can follow them and split the two builds.
  return simd ? (await import('./llmds.mjs')).default : (await import('./llmds-nosimd.mjs')).default;
}
