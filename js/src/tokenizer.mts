// SPDX-License-Identifier: MIT
import { checked, engine, type RawHandle } from './engine.mjs';
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

const decoder = new TextDecoder();

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
    const t = v.text(text, 'text');
    return checked(withHeap(engine(), t, (p, n) => raw.encode(p, n)));
  }

  /** The terms of `ids` joined by single spaces; an unknown id is `invalid_argument`. */
  decode(ids: TokenArray): string {
    const raw = this.raw;
    const t = v.tokens(ids, 'ids');
    return decoder.decode(checked(withHeap(engine(), t, (p, n) => raw.decode(p, n))));
  }

  /** How many terms `text` holds; the vocabulary is left unchanged. */
  countTokens(text: string): number {
    const raw = this.raw;
    const t = v.text(text, 'text');
    return withHeap(engine(), t, (p, n) => raw.countTokens(p, n));
  }

  /** Distinct terms seen so far (the next new term gets this id). */
  get vocabSize(): number {
    return this.raw.vocabSize();
  }
}

