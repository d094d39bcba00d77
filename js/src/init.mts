// SPDX-License-Identifier: MIT
// Engine start-up shared by every entry point: memoisation, wasm source handling, features().
import { engineErrorCode, isLoaded, setEngine, type RawModuleBase } from './engine.mjs';
import { LlmdsError } from './errors.mjs';
import { show } from './validate.mjs';

/**
 * Where the `.wasm` comes from: a URL or path, the module's bytes, or a compiled module
 * (required on workerd, which forbids compiling bytes at run time).
 */
export type WasmSource = string | URL | ArrayBuffer | ArrayBufferView | WebAssembly.Module | Response;

export interface InitOptions {
  /**
   * Override the `.wasm` location or contents. It must be the build that `simd` selects:
   * `llmds.wasm` by default, `llmds-nosimd.wasm` with `simd: false`.
   */
  wasm?: WasmSource;
  /** `'auto'` (default): the SIMD build when the runtime validates wasm SIMD, else portable. */
  simd?: 'auto' | boolean;
}

export interface Features {
  /** Whether the loaded engine is the wasm SIMD build. */
  simd: boolean;
  version: string;
}

/** @internal An Emscripten MODULARIZE factory. */
export type Factory = (overrides: object) => Promise<RawModuleBase>;

/** @internal How an entry point turns the options into a running engine. */
export type Loader = (options: InitOptions) => Promise<RawModuleBase>;

let pending: Promise<Features> | undefined;
let loadedFeatures: Features | undefined;

/** @internal Runs `load` once per process; concurrent and later callers share the result. */
export function initWith(load: Loader, options: InitOptions | undefined): Promise<Features> {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    return Promise.reject(new LlmdsError('invalid_argument', `init options must be an object, got ${show(options)}`));
  }
  const simd = options?.simd ?? 'auto';
  if (simd !== 'auto' && simd !== true && simd !== false) {
    return Promise.reject(new LlmdsError('invalid_argument', `init option simd must be 'auto', true or false, got ${show(simd)}`));
  }
  pending ??= Promise.resolve()
    .then(() => load({ ...options, simd }))
    .then(
      (module) => {
        setEngine(module);
        loadedFeatures = Object.freeze({ simd: module.simdBuild(), version: module.version() });
        return loadedFeatures;
      },
      (error: unknown) => {
        pending = undefined; // let a later call retry, e.g. with a corrected wasm option
        throw error instanceof LlmdsError ? error : loadFailed('llmds: loading the engine failed', error);
      },
    );
  return pending;
}

/** @internal Why the engine could not be loaded, with the underlying error as `cause`. */
export function loadFailed(what: string, cause: unknown): LlmdsError {
  const detail = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return new LlmdsError('load_failed', `${what}: ${detail}`, { cause });
}

/** What the loaded engine is. Throws `not_initialized` before init() resolved. */
export function features(): Features {
  if (!isLoaded() || !loadedFeatures) throw new LlmdsError('not_initialized', 'llmds is not initialized: await init() before features()');
  return loadedFeatures;
}

/**
 * @internal Starts the Emscripten module on an already compiled WebAssembly.Module. Settles
 * either way: the glue's own promise never rejects when instantiation fails (a module that
 * compiles but needs imports llmds does not provide, or the wrong build), so that failure is
 * caught here and becomes `load_failed` instead of an unhandled rejection.
 */
export function instantiate(factory: Factory, module: WebAssembly.Module): Promise<RawModuleBase> {
  return new Promise<RawModuleBase>((resolve, reject) => {
    const fail = (error: unknown) => reject(loadFailed('llmds: instantiating the wasm module failed', error));
    factory({
      // The glue would resolve its .wasm against import.meta.url, which workerd leaves undefined;
      // it never fetches anything here since instantiateWasm hands it the instance.
      locateFile: (file: string) => file,
      // Called by the engine (wasm/common.cpp) when an allocation fails inside a call.
      makeError: (code: number, message: string) => new LlmdsError(engineErrorCode(code), message),
      onAbort: (what: unknown) => fail(new Error(`aborted: ${String(what)}`)),
      instantiateWasm(imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance) => void) {
        WebAssembly.instantiate(module, imports).then((instance) => {
          try {
            done(instance);
          } catch (error) {
            fail(error); // e.g. a module without the exports this glue expects
          }
        }, fail);
        return {};
      },
    }).then(resolve, fail);
  });
}

/** @internal Whether this runtime validates a module using a wasm SIMD instruction. */
export function simdSupported(): boolean {
  // (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)) from wasm-feature-detect
  const probe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
  try {
    return WebAssembly.validate(probe);
  } catch {
    return false;
  }
}
