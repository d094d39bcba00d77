// SPDX-License-Identifier: MIT
// The loaded engine (the embind module) and the one place engine status codes become errors.
import { LlmdsError, engineErrorCode } from './errors.mjs';

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
  /** Code of the last failure reported by the engine (for factories that return null). */
  lastErrorCode(): number;
  version(): string;
  simdBuild(): boolean;
}

/** @internal An embind object handle: must be deleted exactly once. */
export interface RawHandle {
  delete(): void;
}

let loaded: RawModuleBase | undefined;

/** @internal */
export function setEngine(module: RawModuleBase): void {
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

/** @internal Throws the LlmdsError for a non-zero engine status code. */
export function check(rc: number): void {
  if (rc !== 0) throw new LlmdsError(engineErrorCode(rc), engine().lastErrorMessage());
}

/** @internal Throws the engine's last error when a factory returned null. */
export function checkCreated<T>(handle: T | null): T {
  if (handle === null) throw new LlmdsError(engineErrorCode(engine().lastErrorCode()), engine().lastErrorMessage());
  return handle;
}
