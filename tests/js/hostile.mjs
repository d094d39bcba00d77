// SPDX-License-Identifier: MIT
// Random and hostile values for property tests of the JS boundary: every public method must
// either work or throw LlmdsError, never trap or abort, and leave the object unchanged on throw.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { llmds } from './llmds.mjs';

/** Gives a value the name fast-check prints for it in a counterexample. */
export const named = (value, name) => Object.defineProperty(value, fc.toStringMethod, { value: () => name });

/** A view on a detached buffer (length 0); fast-check cannot print one, so it is named. */
export function detachedView(Kind) {
  const a = new Kind(4);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return named(a, `detached ${Kind.name}`);
}

/** An ArrayBuffer that was transferred away. */
export function detachedBuffer() {
  const b = new ArrayBuffer(8);
  structuredClone(b, { transfer: [b] });
  return named(b, 'detached ArrayBuffer');
}

/** Any JS value a careless or malicious caller might pass. */
export const hostile = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, 1, -1, 0.5, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE),
  fc.constantFrom('', '1', 'abc', null, undefined, true, false, 1n, Symbol('s'), () => 1),
  fc.constantFrom({}, [], [NaN], [1, 'a'], [-1], [0.5], [2 ** 31], { length: 3 }, Object.create(null)),
  fc.constant(0).map(() => detachedView(Int32Array)),
  fc.constant(0).map(() => detachedView(Float32Array)),
  fc.constant(0).map(() => new Float64Array([1, 2, 3])),
  fc.constant(0).map(() => new Int8Array([1, 2, 3])),
  fc.constant(0).map(() => new Uint8Array(16)),
  fc.constant(0).map(() => Float32Array.of(NaN, 1, 2, 3)),
  fc.constant(0).map(() => new Array(3)), // holes
  fc.integer({ min: -5, max: 40 }),
  fc.double(),
  fc.string(),
  fc.array(fc.integer({ min: -3, max: 2 ** 31 + 3 }), { maxLength: 40 }),
  fc.array(fc.double(), { maxLength: 16 }).map((a) => Float32Array.from(a)),
);

/** Either a plausible value from `good` or a hostile one. */
export const argOf = (good) => fc.oneof({ weight: 2, arbitrary: good }, { weight: 1, arbitrary: hostile });

/**
 * Runs random calls of `method` on a fresh object from `make()`; each call must succeed or throw
 * LlmdsError, and a throwing call must leave `snapshot(obj)` unchanged.
 */
export function checkMethod({ make, method, args, snapshot, numRuns = 150 }) {
  fc.assert(
    fc.property(fc.array(fc.tuple(...args), { minLength: 1, maxLength: 6 }), (calls) => {
      const obj = make();
      try {
        for (const callArgs of calls) {
          const before = snapshot(obj);
          try {
            obj[method](...callArgs);
          } catch (e) {
            if (!(e instanceof llmds.LlmdsError)) throw new Error(`${method}(${callArgs.map(String).join(', ')}) threw ${e?.name}: ${e?.message}`);
            assert.deepEqual(snapshot(obj), before, `${method} threw ${e.code} but changed the object`);
          }
        }
      } finally {
        obj.dispose();
      }
    }),
    { numRuns, seed: 20261126 },
  );
}
