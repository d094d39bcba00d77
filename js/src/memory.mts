// SPDX-License-Identifier: MIT
// Copies JS arrays into the wasm heap for one call. Heap views are re-read after _malloc
// because malloc may grow memory and detach every earlier view.
import type { RawModuleBase } from './engine.mjs';

type HeapArray = Int32Array | Uint32Array | Float32Array | Float64Array | Uint8Array;

function heapFor(m: RawModuleBase, a: HeapArray): HeapArray {
  if (a instanceof Int32Array) return m.HEAP32;
  if (a instanceof Uint32Array) return m.HEAPU32;
  if (a instanceof Float32Array) return m.HEAPF32;
  if (a instanceof Float64Array) return m.HEAPF64;
  return m.HEAPU8;
}

/**
 * @internal Copies the arrays into freshly allocated heap memory, calls `fn` with their
 * addresses, and frees them even when `fn` throws.
 */
export function withHeap<R>(m: RawModuleBase, arrays: readonly HeapArray[], fn: (...ptrs: number[]) => R): R {
  const ptrs: number[] = [];
  try {
    for (const a of arrays) {
      const ptr = m._malloc(Math.max(a.byteLength, 8));
      if (ptr === 0) throw new RangeError('wasm heap exhausted');
      ptrs.push(ptr);
      heapFor(m, a).set(a, ptr / a.BYTES_PER_ELEMENT);
    }
    return fn(...ptrs);
  } finally {
    for (const p of ptrs) m._free(p);
  }
}
