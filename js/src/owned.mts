// SPDX-License-Identifier: MIT
// Base of every class that owns engine memory: deterministic dispose(), `using` support, and a
// FinalizationRegistry as a safety net so a forgotten object is freed when collected.
import type { RawHandle } from './engine.mjs';
import { LlmdsError } from './errors.mjs';

// workerd has no FinalizationRegistry: there, dispose() is the only way to free memory.
const collected =
  typeof FinalizationRegistry === 'function' ? new FinalizationRegistry<RawHandle>((raw) => raw.delete()) : undefined;

/** Engine-backed objects: call `dispose()` (or `using`) to free their memory promptly. */
export abstract class Owned<R extends RawHandle> implements Disposable {
  #raw: R | null;

  protected constructor(raw: R) {
    this.#raw = raw;
    collected?.register(this, raw, this);
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
