// SPDX-License-Identifier: MIT
// How arguments reach the engine: one arena in the wasm heap, reused by every call. Each call
// packs its arrays and UTF-8 strings into it, passes (address, length) pairs, and is done with
// it when the raw call returns. Heap views are re-read after _malloc because growing the memory
// replaces them.
import { LlmdsError } from './errors.mjs';
import type { RawModuleBase } from './engine.mjs';

type HeapArray = Int32Array | Uint32Array | Float32Array | Float64Array | Uint8Array;

/** @internal What a raw call can take: a typed array, or a string (passed as UTF-8 bytes). */
export type HeapInput = HeapArray | string;

/** @internal The arena keeps up to this many bytes between calls; larger calls get memory of their own. */
export const ARENA_KEEP_BYTES = 1 << 20;

interface Arena {
  module: RawModuleBase;
  ptr: number;
  bytes: number;
  busy: boolean; // a raw call that calls back into JS (priorityFn) may nest another call
}

let arena: Arena | undefined;
const encoder = new TextEncoder();

function heapFor(m: RawModuleBase, a: HeapArray): HeapArray {
  if (a instanceof Int32Array) return m.HEAP32;
  if (a instanceof Uint32Array) return m.HEAPU32;
  if (a instanceof Float32Array) return m.HEAPF32;
  if (a instanceof Float64Array) return m.HEAPF64;
  return m.HEAPU8;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8; // not (n + 7) & ~7: sizes reach 2^32

/** UTF-8 needs at most 3 bytes per UTF-16 unit (a surrogate pair: 4 bytes for 2 units). */
const reserved = (input: HeapInput) => align8(typeof input === 'string' ? input.length * 3 : input.byteLength);

function allocate(m: RawModuleBase, bytes: number): number {
  const ptr = m._malloc(bytes) >>> 0; // an i32 export: addresses past 2 GiB come back negative
  if (ptr === 0) throw new LlmdsError('out_of_memory', `the wasm heap is exhausted: could not allocate ${bytes} bytes for the arguments`);
  return ptr;
}

/** The arena, grown to `bytes`, or undefined when the call must use memory of its own. */
function takeArena(m: RawModuleBase, bytes: number): Arena | undefined {
  if (bytes > ARENA_KEEP_BYTES) return undefined;
  if (arena !== undefined && arena.module === m) {
    if (arena.busy) return undefined;
    if (arena.bytes >= bytes) return arena;
    m._free(arena.ptr);
  }
  arena = undefined;
  let size = 4096;
  while (size < bytes) size *= 2;
  arena = { module: m, ptr: allocate(m, size), bytes: size, busy: false };
  return arena;
}

/** Writes one input at `at`; returns its length (elements, or UTF-8 bytes for a string). */
function place(m: RawModuleBase, input: HeapInput, at: number): number {
  if (typeof input === 'string') return encoder.encodeInto(input, m.HEAPU8.subarray(at, at + input.length * 3)).written;
  heapFor(m, input).set(input, at / input.BYTES_PER_ELEMENT);
  return input.length;
}

/** Runs `fn` on `bytes` of argument memory: the arena when it is free and large enough. */
function withBytes<R>(m: RawModuleBase, bytes: number, fn: (base: number) => R): R {
  const shared = takeArena(m, bytes);
  const base = shared?.ptr ?? allocate(m, bytes);
  if (shared) shared.busy = true;
  try {
    return fn(base);
  } finally {
    if (shared) shared.busy = false;
    else m._free(base);
  }
}

/**
 * @internal Copies `input` into the wasm heap and calls `fn` with its address and length
 * (elements for arrays, UTF-8 bytes for strings), valid only during the call. Lone surrogates
 * in strings become U+FFFD, so the engine always sees well-formed UTF-8.
 */
export function withHeap<R>(m: RawModuleBase, input: HeapInput, fn: (ptr: number, length: number) => R): R {
  // withBytes inlined: this is every single-argument call's path (HNSW search, KV attach).
  const bytes = Math.max(reserved(input), 8);
  const shared = takeArena(m, bytes);
  const base = shared?.ptr ?? allocate(m, bytes);
  if (shared) shared.busy = true;
  try {
    return fn(base, place(m, input, base));
  } finally {
    if (shared) shared.busy = false;
    else m._free(base);
  }
}

/** @internal withHeap for several inputs: `fn` gets their addresses and lengths in order. */
export function withHeapAll<R>(m: RawModuleBase, inputs: readonly HeapInput[], fn: (ptrs: number[], lengths: number[]) => R): R {
  let total = 0;
  for (const input of inputs) total += Math.max(reserved(input), 8);
  return withBytes(m, total, (base) => {
    const ptrs: number[] = [];
    const lengths: number[] = [];
    let at = base;
    for (const input of inputs) {
      ptrs.push(at);
      lengths.push(place(m, input, at));
      at += Math.max(reserved(input), 8);
    }
    return fn(ptrs, lengths);
  });
}
