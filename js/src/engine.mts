// SPDX-License-Identifier: MIT
// The loaded engine (the embind module), the one place engine failures become LlmdsError, and
// the engine's limits. The convention every raw call follows is written in wasm/common.hpp: a
// failed call returns -1 (numbers) or null (objects and handles) and leaves its code and
// message in the engine; check() and checked() turn that into the error.
import { LlmdsError, type ErrorCode } from './errors.mjs';

/** @internal What every build of the module provides, whatever components it holds. */
export interface RawModuleBase {
  HEAPU8: Uint8Array;
  HEAP32: Int32Array;
  HEAPU32: Uint32Array;
  HEAPF32: Float32Array;
  HEAPF64: Float64Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  lastErrorMessage(): string;
  /** llmds::Errc value of the last failure the engine recorded. */
  lastErrorCode(): number;
  /** Every llmds::Errc name, indexed by value. */
  errorNames(): string[];
  version(): string;
  simdBuild(): boolean;
}

/** @internal An embind object handle: must be deleted exactly once. */
export interface RawHandle {
  delete(): void;
}

let loaded: RawModuleBase | undefined;
let codeNames: readonly string[] = [];
const limitCache = new Map<string, unknown>();

/** @internal */
export function setEngine(module: RawModuleBase): void {
  codeNames = Object.freeze(module.errorNames());
  limitCache.clear();
  loaded = module;
}

/** @internal */
export function isLoaded(): boolean {
  return loaded !== undefined;
}

/**
 * @internal The engine, typed with the raw classes a component needs. Throws `not_initialized`
 * before `init()` has resolved.
 */
export function engine<T extends object = object>(): RawModuleBase & T {
  if (!loaded) throw new LlmdsError('not_initialized', 'llmds is not initialized: await init() before using it');
  return loaded as RawModuleBase & T;
}

/** @internal The name of an llmds::Errc value, as the engine defines it. */
export function engineErrorCode(code: number): ErrorCode {
  return (codeNames[code] ?? 'invalid_argument') as ErrorCode;
}

/** @internal The failure the engine recorded last, as an LlmdsError. */
export function engineError(): LlmdsError {
  const m = engine();
  return new LlmdsError(engineErrorCode(m.lastErrorCode()), m.lastErrorMessage());
}

/** @internal Passes a raw call's number through, or throws the engine's error for -1. */
export function check(result: number): number {
  if (result < 0) throw engineError();
  return result;
}

/** @internal Passes a raw call's object or handle through, or throws the engine's error for null. */
export function checked<T>(result: T | null): T {
  if (result === null) throw engineError();
  return result;
}

/**
 * @internal A component's limits, read once per engine from its raw class (the C++ constants),
 * so no limit is written twice.
 */
export function limits<T>(component: string, read: (m: RawModuleBase) => T): T {
  let l = limitCache.get(component) as T | undefined;
  if (l === undefined) {
    l = Object.freeze(read(engine()));
    limitCache.set(component, l);
  }
  return l;
}
