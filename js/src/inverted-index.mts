// SPDX-License-Identifier: MIT
import { check, checked, engine, limits, type RawHandle } from './engine.mjs';
import { allowedIds, type IdFilter } from './filter.mjs';
import { withHeap, withHeapAll } from './memory.mjs';
import { adoptOr, deserializeRaw, Owned } from './owned.mjs';
import { setGlobalStatsOn, termStatsOf, type RawTermStats, type TermStats } from './sharding.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawInvertedIndex extends RawHandle {
  add(doc: number, text: number, n: number): number;
  remove(doc: number): boolean;
  has(doc: number): boolean;
  size(): number;
  clear(): void;
  k1(): number;
  b(): number;
  search(query: number, n: number, k: number, filtered: boolean, allowed: number, nAllowed: number): { ids: Uint32Array; scores: Float64Array } | null;
  ids(): Uint32Array;
  termFrequency(term: number, n: number, doc: number): number;
  documentFrequency(term: number, n: number): number;
  stats(): InvertedIndexStats;
  serialize(): Uint8Array;
  termStats(text: number, n: number, ofText: boolean): RawTermStats;
  setGlobalStats(documents: number, tokens: number, terms: number, termsBytes: number, df: number, count: number, clear: boolean): number;
  hasGlobalStats(): boolean;
}

/** @internal */
interface InvertedIndexEngine {
  RawInvertedIndex: {
    create(k1: number, b: number): RawInvertedIndex | null;
    deserialize(bytes: number, n: number): RawInvertedIndex | null;
    limits(): { maxDocuments: number; maxTopK: number };
  };
}

const indexLimits = () => limits('InvertedIndex', (m) => (m as unknown as InvertedIndexEngine).RawInvertedIndex.limits());

export interface InvertedIndexOptions {
  /** Term-frequency saturation: a finite number >= 0. Default 1.2. */
  k1?: number;
  /** Length normalisation, in [0, 1]. Default 0.75. */
  b?: number;
}

export interface InvertedIndexStats {
  /** Live documents. */
  documents: number;
  /** Distinct terms in at least one live document. */
  terms: number;
  /** Live (term, document) pairs: the sum of document frequencies. */
  postings: number;
  /** Terms over all live documents. */
  tokens: number;
  /** tokens / documents (0 when empty). */
  avgDocLength: number;
  /** Postings of removed or replaced documents not yet compacted away. */
  deadPostings: number;
  /** Bytes of delta + varint encoded postings. */
  compressedBytes: number;
  /** The same postings as (u32 doc, u32 tf) pairs, for comparison. */
  uncompressedBytes: number;
  /** Approximate wasm-heap bytes of the whole index. */
  bytes: number;
}

export interface InvertedIndexSearchOptions {
  /**
   * Only these documents may be returned: the exact top k among them (disallowed documents are
   * skipped inside the MaxScore loop). See {@link IdFilter}.
   */
  filter?: IdFilter;
}

/** Results of `search`: `[docId, score]`, best first. */
export type SearchResult = Array<[docId: number, score: number]>;

const OPTIONS = ['k1', 'b'] as const;

/** @internal Bytes accepted by deserialize(): a Uint8Array (Node's Buffer is one) or an ArrayBuffer. */
function createRaw(options: unknown): RawInvertedIndex {
  const o = v.options(options, 'InvertedIndex options', OPTIONS);
  const k1 = o.k1 ?? 1.2;
  const b = o.b ?? 0.75;
  if (typeof k1 !== 'number' || !Number.isFinite(k1) || k1 < 0) v.fail(`k1 must be a finite number >= 0, got ${v.show(k1)}`);
  if (typeof b !== 'number' || !(b >= 0 && b <= 1)) v.fail(`b must be a number in [0, 1], got ${v.show(b)}`);
  return checked(engine<InvertedIndexEngine>().RawInvertedIndex.create(k1, b));
}

/**
 * BM25 full-text index with compressed postings and exact top-k search.
 *
 * Scores are Okapi BM25 with the non-negative IDF `ln(1 + (N − df + 0.5) / (df + 0.5))`:
 * `Σ idf · tf·(k1+1) / (tf + k1·(1 − b + b·|d|/avgdl))` over the query's terms (a repeated
 * query word counts once per repetition). Text is tokenized like {@link Tokenizer}. `search`
 * is exact (MaxScore pruning skips documents that cannot enter the top k; it never changes
 * the result); ties are broken by ascending document id.
 *
 * Removing or replacing a document tombstones its postings at once (scores never see them);
 * they are compacted away as they accumulate (`stats().deadPostings`).
 * @example
 * const index = new InvertedIndex();
 * index.addDocument(1, 'The quick brown fox');
 * index.addDocument(2, 'A quick brown dog outpaces a quick fox');
 * index.search('quick fox', 10);          // [[1, 0.422...], [2, 0.389...]] (doc 1 is shorter)
 * index.getDocumentFrequency('quick');    // 2
 * index.search('quick', 10, { filter: [2] }); // [[2, ...]]: the best among allowed documents
 * const copy = InvertedIndex.deserialize(index.serialize());
 * @see llmds::InvertedIndex
 */
export class InvertedIndex extends Owned<RawInvertedIndex> {
  #ids: Uint32Array | undefined; // live ids for predicate filters; reset by every change

  constructor(options?: InvertedIndexOptions) {
    super(adoptOr(options, () => createRaw(options)));
  }

  #liveIds = (): Uint32Array => (this.#ids ??= this.raw.ids());

  /** Indexes `text` under `docId` (an integer in [0, 2^32)), replacing any earlier text. */
  addDocument(docId: number, text: string): void {
    const raw = this.raw;
    const id = v.id(docId, 'docId');
    const t = v.text(text, 'text');
    this.#ids = undefined;
    withHeap(engine(), t, (p, n) => check(raw.add(id, p, n)));
  }

  /** Removes a document: true if it was indexed, false (a no-op) for an unknown id. */
  removeDocument(docId: number): boolean {
    const raw = this.raw;
    const id = v.id(docId, 'docId');
    this.#ids = undefined;
    return raw.remove(id);
  }

  /** Whether `docId` is indexed. */
  hasDocument(docId: number): boolean {
    const raw = this.raw;
    return raw.has(v.id(docId, 'docId'));
  }

  /** Live documents. */
  get size(): number {
    return this.raw.size();
  }

  get k1(): number {
    return this.raw.k1();
  }

  get b(): number {
    return this.raw.b();
  }

  /**
   * The `topK` (an integer >= 1) best documents for `query`: `[docId, score]`, best first.
   * `options.filter` restricts them to allowed documents (the exact top k among those).
   */
  search(query: string, topK = 10, options?: InvertedIndexSearchOptions): SearchResult {
    const raw = this.raw;
    const q = v.text(query, 'query');
    const k = v.integer(topK, 'topK', 1, indexLimits().maxTopK);
    const { filter } = v.options(options, 'search options', ['filter'] as const);
    const m = engine();
    const { ids, scores } = checked(
      filter === undefined
        ? withHeap(m, q, (p, n) => raw.search(p, n, k, false, 0, 0))
        : withHeapAll(m, [q, allowedIds(filter, this.#liveIds)], ([p, a], [n, na]) => raw.search(p!, n!, k, true, a!, na!)),
    );
    const out: SearchResult = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = [ids[i]!, scores[i]!];
    return out;
  }

  /**
   * Occurrences of `term` in document `docId`; 0 when either is unknown. `term` is normalised
   * like document text ('Fox!' means 'fox') and must be one word, else `invalid_argument`.
   */
  getTermFrequency(term: string, docId: number): number {
    const raw = this.raw;
    const t = v.text(term, 'term');
    const id = v.id(docId, 'docId');
    return check(withHeap(engine(), t, (p, n) => raw.termFrequency(p, n, id)));
  }

  /** Live documents containing `term` (normalised and checked like getTermFrequency). */
  getDocumentFrequency(term: string): number {
    const raw = this.raw;
    const t = v.text(term, 'term');
    return check(withHeap(engine(), t, (p, n) => raw.documentFrequency(p, n)));
  }

  stats(): InvertedIndexStats {
    return this.raw.stats();
  }

  /** Removes every document (the options stay). */
  clear(): void {
    const raw = this.raw;
    this.#ids = undefined;
    raw.clear();
  }

  /**
   * This index's own BM25 statistics (never the global ones set on it): documents, tokens and
   * every term's document frequency; with `text`, only the distinct terms of that text (a
   * query's, far smaller than the vocabulary). For {@link mergeTermStats} when the corpus is
   * split over shards.
   * @example
   * const global = mergeTermStats(shards.map((s) => s.termStats()));
   * for (const s of shards) s.setGlobalStats(global);  // now each scores like one index
   */
  termStats(text?: string): TermStats {
    return termStatsOf(this.raw, text);
  }

  /**
   * Scores BM25 with corpus-wide statistics (a {@link mergeTermStats} of every shard's
   * termStats(), which must include this index's own) instead of this index's: its scores then
   * equal those of one index over the whole corpus, bit for bit. Adds and removes made here
   * afterwards count on top (the statistics are kept as what the rest of the corpus adds);
   * terms missing from `stats` count only this index's documents. `null` goes back to the
   * index's own statistics; clear() and deserialize() start without, serialize() does not
   * store them. `invalid_argument` (nothing changed) when `stats` is malformed or has fewer
   * documents, tokens or df than this index.
   */
  setGlobalStats(stats: TermStats | null): void {
    setGlobalStatsOn(this.raw, stats);
  }

  /** Whether global statistics are set (setGlobalStats). */
  hasGlobalStats(): boolean {
    return this.raw.hasGlobalStats();
  }

  /**
   * Versioned, CRC-32-checked bytes (magic "LLMDSBM2", postings delta + varint encoded);
   * identical from every build.
   */
  serialize(): Uint8Array {
    return this.raw.serialize();
  }

  /**
   * Rebuilds an index from serialize() output. Truncated, altered or foreign bytes throw
   * `corrupt_data`; bytes of another format version throw `version_mismatch`.
   */
  static deserialize(bytes: Uint8Array | ArrayBuffer): InvertedIndex {
    return new InvertedIndex(deserializeRaw(bytes, (p, n) => engine<InvertedIndexEngine>().RawInvertedIndex.deserialize(p, n)) as never);
  }
}

