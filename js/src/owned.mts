// SPDX-License-Identifier: MIT
// Base of every class that owns engine memory: deterministic dispose(), `using` support, and a
// FinalizationRegistry as a safety net so a forgotten object is freed when collected.
import { checked, engine, type RawHandle } from './engine.mjs';
import { LlmdsError } from './errors.mjs';
import { withHeap } from './memory.mjs';
import * as v from './validate.mjs';

/** Called with the class name of an object that was garbage collected without dispose(). */
export type UndisposedReporter = (className: string) => void;

function developing(): boolean {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; LLMDS_DEBUG?: unknown };
  return g.process?.env?.['NODE_ENV'] === 'development' || Boolean(g.LLMDS_DEBUG);
}

let reporter: UndisposedReporter | null = (name) => {
  if (developing()) console.warn(`llmds: a ${name} was garbage collected without dispose(); its memory was freed late`);
};

/**
 * Sets who hears about objects collected without dispose() (a leak of wasm memory until the
 * collector ran). Default: a console warning when NODE_ENV is 'development' or
 * globalThis.LLMDS_DEBUG is set; null silences it.
 */
export function onUndisposed(report: UndisposedReporter | null): void {
  reporter = report;
}

// workerd has no FinalizationRegistry: there, dispose() is the only way to free memory.
const collected =
  typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry<{ raw: RawHandle; name: string }>(({ raw, name }) => {
        raw.delete();
        reporter?.(name);
      })
    : undefined;

/** Engine-backed objects: call `dispose()` (or `using`) to free their memory promptly. */
export abstract class Owned<R extends RawHandle> implements Disposable {
  #raw: R | null;

  protected constructor(raw: R) {
    this.#raw = raw;
    collected?.register(this, { raw, name: new.target.name }, this);
  }

  /** @internal The engine handle; throws `disposed` after dispose(). */
  protected get raw(): R {
    if (this.#raw === null) throw new LlmdsError('disposed', `${this.constructor.name} was disposed`);
    return this.#raw;
  }

  /** Whether dispose() has been called. */
  get disposed(): boolean {
    return this.#raw === null;
  }

  /** Frees the engine memory now. Idempotent; any other call afterwards throws `disposed`. */
  dispose(): void {
    if (this.#raw === null) return;
    collected?.unregister(this);
    this.#raw.delete();
    this.#raw = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * @internal An engine handle made by a static factory (deserialize) and handed to the public
 * constructor, which adopts it instead of creating one from options.
 */
export class Adopted<R extends RawHandle> {
  constructor(readonly raw: R) {}
}

/** @internal The handle a constructor wraps: the adopted one, or a new one from its options. */
export function adoptOr<R extends RawHandle>(arg: unknown, create: () => R): R {
  return arg instanceof Adopted ? (arg.raw as R) : create();
}

/**
 * @internal The one deserialisation path: checks the bytes, copies them into the heap, and
 * runs the raw class's static deserialize factory. Pass the result to the class constructor.
 */
export function deserializeRaw<R extends RawHandle>(bytes: unknown, factory: (ptr: number, n: number) => R | null): Adopted<R> {
  const data = v.bytes(bytes, 'bytes');
  return new Adopted(checked(withHeap(engine(), data, (p, n) => factory(p, n))));
}
