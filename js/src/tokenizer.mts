// SPDX-License-Identifier: MIT
import { engine, type RawHandle, type RawModuleBase } from './engine.mjs';
import { LlmdsError, engineErrorCode } from './errors.mjs';
import { withHeap } from './memory.mjs';
import { Owned } from './owned.mjs';
import * as v from './validate.mjs';
import type { TokenArray } from './kv-cache.mjs';

/** @internal */
interface RawTokenizer extends RawHandle {
  encode(text: number, n: number): Int32Array | null;
  decode(ids: number, n: number): Uint8Array | null;
  countTokens(text: number, n: number): number;
  vocabSize(): number;
}

/** @internal */
interface TokenizerEngine {
  RawTokenizer: { create(): RawTokenizer };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Texts up to this many UTF-16 units go through one reusable heap buffer (no malloc per call);
// longer ones get an exact-size allocation of their own.
const SCRATCH_UNITS = 1 << 18;
let scratch: { module: RawModuleBase; ptr: number; bytes: number } | undefined;

/**
 * @internal Hands `text` to `fn` as UTF-8 in the wasm heap (pointer, byte length), valid only
 * during the call. TextEncoder writes straight into the heap; it turns lone surrogates into
 * U+FFFD, so the engine always sees well-formed UTF-8.
 */
export function withUtf8<R>(m: RawModuleBase, text: string, fn: (ptr: number, n: number) => R): R {
  if (text.length <= SCRATCH_UNITS) {
    const need = text.length * 3; // UTF-8 needs at most 3 bytes per UTF-16 unit
    if (scratch === undefined || scratch.module !== m || scratch.bytes < need) {
      if (scratch !== undefined && scratch.module === m) m._free(scratch.ptr);
      scratch = undefined;
      let bytes = 4096;
      while (bytes < need) bytes *= 2;
      const ptr = m._malloc(bytes);
      if (ptr === 0) throw new LlmdsError('out_of_memory', `could not allocate ${bytes} bytes in the wasm heap`);
      scratch = { module: m, ptr, bytes };
    }
    const { ptr } = scratch;
    // Read HEAPU8 after any _malloc: growing memory replaces the view.
    const { written } = encoder.encodeInto(text, m.HEAPU8.subarray(ptr, ptr + need));
    return fn(ptr, written);
  }
  const bytes = encoder.encode(text);
  return withHeap(m, [bytes], (p) => fn(p!, bytes.length));
}

/** @internal The engine's last error (after a raw call returned null) as an LlmdsError. */
export function lastError(): LlmdsError {
  const m = engine();
  return new LlmdsError(engineErrorCode(m.lastErrorCode()), m.lastErrorMessage());
}

/** @internal A string argument or invalid_argument. */
export function textArg(value: unknown, name: string): string {
  if (typeof value !== 'string') v.fail(`${name} must be a string, got ${v.show(value)}`);
  return value;
}

/**
 * Word-level tokenizer with a growable vocabulary. Terms are the lower-cased maximal runs of
 * Unicode letters, combining marks and decimal digits (é, ß, Greek, Cyrillic, CJK ideographs
 * are letters; final sigma folds to σ); everything else separates terms. No stemming, no
 * stop-words. Ids are dense, in order of first appearance. Unpaired UTF-16 surrogates are
 * replaced by U+FFFD, which is a separator.
 * @example
 * const tok = new Tokenizer();
 * tok.encode('The cat sat on the MAT');   // Int32Array [0, 1, 2, 3, 0, 4]
 * tok.decode([1, 4]);                     // 'cat mat'
 * tok.countTokens('Ünïcödé, straße!');    // 2 (never grows the vocabulary)
 * tok.dispose();
 * @see llmds::Tokenizer
 */
export class Tokenizer extends Owned<RawTokenizer> {
  constructor() {
    super(engine<TokenizerEngine>().RawTokenizer.create());
  }

  /** The ids of the terms of `text`, adding unseen terms to the vocabulary. */
  encode(text: string): Int32Array {
    const raw = this.raw;
    const t = textArg(text, 'text');
    const ids = withUtf8(engine(), t, (p, n) => raw.encode(p, n));
    if (ids === null) throw lastError();
    return ids;
  }

  /** The terms of `ids` joined by single spaces; an unknown id is `invalid_argument`. */
  decode(ids: TokenArray): string {
    const raw = this.raw;
    const t = v.tokens(ids, 'ids');
    const bytes = withHeap(engine(), [t], (p) => raw.decode(p!, t.length));
    if (bytes === null) throw lastError();
    return decoder.decode(bytes);
  }

  /** How many terms `text` holds; the vocabulary is left unchanged. */
  countTokens(text: string): number {
    const raw = this.raw;
    const t = textArg(text, 'text');
    return withUtf8(engine(), t, (p, n) => raw.countTokens(p, n));
  }

  /** Distinct terms seen so far (the next new term gets this id). */
  get vocabSize(): number {
    return this.raw.vocabSize();
  }
}

