// SPDX-License-Identifier: MIT
import { check, checked, engine, limits, type RawHandle } from './engine.mjs';
import { hnswLimits, type HNSWMetric } from './hnsw.mjs';
import { withHeap, withHeapAll } from './memory.mjs';
import { adoptOr, deserializeRaw, Owned } from './owned.mjs';
import { setGlobalStatsOn, shardResultFromRaw, termStatsFromRaw, type RawTermStats, type ShardResult, type TermStats } from './sharding.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawRetrievalPipeline extends RawHandle {
  add(doc: number, text: number, n: number, embedding: number, len: number): number;
  remove(doc: number): boolean;
  has(doc: number): boolean;
  search(text: number, n: number, embedding: number, len: number, k: number, w: number, fusion: number, exhaustive: boolean): { ids: Uint32Array; scores: Float64Array } | null;
  stats(): RetrievalPipelineStats;
  options(): Required<Omit<RetrievalPipelineOptions, 'seed'>> & { seed: number };
  serialize(): Uint8Array;
  termStats(text: number, n: number, ofText: boolean): RawTermStats;
  setGlobalStats(documents: number, tokens: number, terms: number, termsBytes: number, df: number, count: number, clear: boolean): number;
  hasGlobalStats(): boolean;
  searchShard(text: number, n: number, embedding: number, len: number, k: number, exhaustive: boolean): Float64Array | null;
}

/** @internal */
interface PipelineEngine {
  RawRetrievalPipeline: {
    create(dim: number, m: number, efc: number, efs: number, budget: number, seed: number, metric: number, k1: number, b: number): RawRetrievalPipeline | null;
    deserialize(bytes: number, n: number): RawRetrievalPipeline | null;
    limits(): { maxDocId: number; maxTopK: number };
  };
}

export interface RetrievalPipelineOptions {
  /** Dimension of document and query embeddings. Default 384. */
  embeddingDim?: number;
  hnswM?: number;
  hnswEfConstruction?: number;
  hnswEfSearch?: number;
  /** Result-cache budget in tokens (query terms + results per entry). Default 100000. */
  tokenBudget?: number;
  /** Seeds the HNSW level generator: same seed and insertion order, same index. */
  seed?: number;
  /** Dense distance. Default 'cosine'. */
  metric?: HNSWMetric;
  /** BM25 parameters. Defaults 1.2 and 0.75. */
  k1?: number;
  b?: number;
}

export interface PipelineSearchOptions {
  /** Enables the dense signal; without it the search is BM25 only. */
  queryEmbedding?: Float32Array | readonly number[];
  /** Default 10. */
  topK?: number;
  /** Weight of the dense signal in [0, 1]; BM25 gets 1 − w. Default 0.5. */
  fusionWeight?: number;
  /** 'weighted' (default) or 'rrf' (reciprocal rank fusion, k = 60). */
  fusion?: 'weighted' | 'rrf';
}

export interface ShardSearchOptions extends PipelineSearchOptions {
  /** Exact dense list (a beam over every node, as searchExhaustive) instead of HNSW's. */
  exhaustive?: boolean;
}

export interface RetrievalPipelineStats {
  documents: number;
  /** Documents that have an embedding. */
  denseDocuments: number;
  searches: number;
  cacheHits: number;
  cacheMisses: number;
  cacheEntries: number;
  cacheTokens: number;
  bytes: number;
}

const METRICS: readonly HNSWMetric[] = ['l2', 'cosine', 'ip'];
const OPTIONS = ['embeddingDim', 'hnswM', 'hnswEfConstruction', 'hnswEfSearch', 'tokenBudget', 'seed', 'metric', 'k1', 'b'] as const;
const SEARCH_OPTIONS = ['queryEmbedding', 'topK', 'fusionWeight', 'fusion'] as const;
const SHARD_OPTIONS = ['queryEmbedding', 'topK', 'fusionWeight', 'fusion', 'exhaustive'] as const;
const pipelineLimits = () => limits('RetrievalPipeline', (m) => (m as unknown as PipelineEngine).RawRetrievalPipeline.limits());
const checkDocId = (value: unknown) => v.integer(value, 'docId', 0, pipelineLimits().maxDocId);

function createRaw(options: unknown): RawRetrievalPipeline {
  const o = v.options(options, 'RetrievalPipeline options', OPTIONS);
  const metric = o.metric ?? 'cosine';
  if (!METRICS.includes(metric as HNSWMetric)) v.fail(`metric must be 'l2', 'cosine' or 'ip', got ${v.show(metric)}`);
  const l = hnswLimits();
  const raw = engine<PipelineEngine>().RawRetrievalPipeline.create(
    v.integer(o.embeddingDim ?? 384, 'embeddingDim', 1, l.maxDim),
    v.integer(o.hnswM ?? 16, 'hnswM', l.minM, l.maxM),
    v.integer(o.hnswEfConstruction ?? 200, 'hnswEfConstruction', 1, l.maxEf),
    v.integer(o.hnswEfSearch ?? 50, 'hnswEfSearch', 1, l.maxEf),
    v.integer(o.tokenBudget ?? 100000, 'tokenBudget', 0, Number.MAX_SAFE_INTEGER),
    v.integer(o.seed ?? 100, 'seed', 0, Number.MAX_SAFE_INTEGER),
    METRICS.indexOf(metric as HNSWMetric),
    v.finite(o.k1 ?? 1.2, 'k1'),
    v.finite(o.b ?? 0.75, 'b'),
  );
  return checked(raw);
}

/**
 * Hybrid retrieval: an HNSW index over document embeddings and a BM25 index over their text,
 * fused per query, with a result cache that every add/remove clears and that keeps hot queries
 * (counted by a Count-Min sketch) preferentially.
 *
 * Weighted fusion: score = w·dense + (1 − w)·bm25, where bm25 = BM25 / best BM25 of the
 * candidates (a single or all-equal list scores 1) and dense maps the distance into [0, 1]
 * (cosine 1 − d/2, l2 1/(1 + d), ip logistic of the dot product). RRF: w/(60 + dense rank) +
 * (1 − w)/(60 + BM25 rank). Without `queryEmbedding` the search is BM25 only.
 * @example
 * const rag = new RetrievalPipeline({ embeddingDim: 384 });
 * rag.addDocument(1, 'Paged attention stores the KV cache in blocks', embed(text1));
 * rag.addDocument(2, 'BM25 ranks documents by term frequency');     // BM25 only
 * rag.search('kv cache blocks', { queryEmbedding: embed(q), topK: 5 }); // [[1, 0.93], ...]
 * @see llmds::RetrievalPipeline
 */
export class RetrievalPipeline extends Owned<RawRetrievalPipeline> {
  constructor(options?: RetrievalPipelineOptions) {
    super(adoptOr(options, () => createRaw(options)));
  }

  /** Restores a pipeline from serialize() bytes (`corrupt_data` / `version_mismatch` otherwise). */
  static deserialize(bytes: Uint8Array | ArrayBuffer): RetrievalPipeline {
    return new RetrievalPipeline(
      deserializeRaw(bytes, (p, n) => engine<PipelineEngine>().RawRetrievalPipeline.deserialize(p, n)) as never,
    );
  }

  /** Number of documents. */
  get size(): number {
    return this.raw.stats().documents;
  }

  /**
   * Indexes the text (BM25) and, when given, the embedding (HNSW); replaces a document with the
   * same id. Atomic: if anything is rejected, neither index changes. Ids are in [0, 2^31).
   */
  addDocument(docId: number, text: string, embedding?: Float32Array | readonly number[]): void {
    const raw = this.raw;
    const id = checkDocId(docId);
    const t = v.text(text, 'text');
    if (embedding === undefined) {
      withHeap(engine(), t, (p, n) => check(raw.add(id, p, n, 0, 0)));
      return;
    }
    const e = v.vector(embedding, 'embedding');
    withHeapAll(engine(), [t, e], ([p, ep], [n, len]) => check(raw.add(id, p!, n!, ep!, len!)));
  }

  /** Removes the document from both indexes; false when it was not there. */
  removeDocument(docId: number): boolean {
    const raw = this.raw;
    return raw.remove(checkDocId(docId));
  }

  hasDocument(docId: number): boolean {
    const raw = this.raw;
    return raw.has(checkDocId(docId));
  }

  /** Fused top-k, best first (ties by ascending docId). Cached until the next add/remove. */
  search(query: string, options?: PipelineSearchOptions): Array<[docId: number, score: number]> {
    return this.#search(query, options, false);
  }

  /**
   * The same fusion over every document (no candidate cut-off, no cache): the exact reference
   * that search() approximates. O(documents) per query.
   */
  searchExhaustive(query: string, options?: PipelineSearchOptions): Array<[docId: number, score: number]> {
    return this.#search(query, options, true);
  }

  #search(query: string, options: PipelineSearchOptions | undefined, exhaustive: boolean): Array<[number, number]> {
    const raw = this.raw;
    const text = v.text(query, 'query');
    const o = v.options(options, 'search options', SEARCH_OPTIONS);
    const k = v.integer(o.topK ?? 10, 'topK', 1, pipelineLimits().maxTopK);
    const w = v.finite(o.fusionWeight ?? 0.5, 'fusionWeight');
    if (w < 0 || w > 1) v.fail(`fusionWeight must be a number in [0, 1], got ${w}`);
    const fusion = o.fusion ?? 'weighted';
    if (fusion !== 'weighted' && fusion !== 'rrf') v.fail(`fusion must be 'weighted' or 'rrf', got ${v.show(fusion)}`);
    const f = fusion === 'rrf' ? 1 : 0;
    const inputs = o.queryEmbedding === undefined ? [text] : [text, v.vector(o.queryEmbedding, 'queryEmbedding')];
    const hits = checked(
      withHeapAll(engine(), inputs, ([p, ep], [n, len]) => raw.search(p!, n!, ep ?? 0, len ?? 0, k, w, f, exhaustive)),
    );
    const out: Array<[number, number]> = new Array(hits.ids.length);
    for (let i = 0; i < hits.ids.length; i++) out[i] = [hits.ids[i]!, hits.scores[i]!];
    return out;
  }

  /**
   * This pipeline's own BM25 statistics (all terms, or `text`'s only): see
   * InvertedIndex.termStats and {@link mergeTermStats}.
   */
  termStats(text?: string): TermStats {
    const raw = this.raw;
    const t = text === undefined ? '' : v.text(text, 'text');
    return termStatsFromRaw(withHeap(engine(), t, (p, n) => raw.termStats(p, n, text !== undefined)));
  }

  /**
   * Scores BM25 with corpus-wide statistics (see InvertedIndex.setGlobalStats; `null` clears
   * them). Clears the result cache: every BM25 score may change.
   */
  setGlobalStats(stats: TermStats | null): void {
    setGlobalStatsOn(this.raw, stats);
  }

  /** Whether global statistics are set. */
  hasGlobalStats(): boolean {
    return this.raw.hasGlobalStats();
  }

  /**
   * This shard's raw candidates for a query, for {@link mergeShardResults}: the BM25 top
   * max(3·topK, 50) with raw scores and, with `queryEmbedding`, as many nearest documents
   * (exact with `exhaustive`) plus the distance of every BM25 candidate. A plain JSON-safe
   * object. No cache, no counters; fusionWeight and fusion are only carried along (the merge's
   * defaults).
   * @example
   * // in each shard (a Durable Object, a Worker, a process):
   * const part = pipeline.searchShard(q, { queryEmbedding, topK: 10 });   // → JSON → coordinator
   * // in the coordinator:
   * const top = mergeShardResults(parts);   // = one pipeline's search(q, { queryEmbedding, topK: 10 })
   */
  searchShard(query: string, options?: ShardSearchOptions): ShardResult {
    const raw = this.raw;
    const text = v.text(query, 'query');
    const o = v.options(options, 'searchShard options', SHARD_OPTIONS);
    const k = v.integer(o.topK ?? 10, 'topK', 1, pipelineLimits().maxTopK);
    const w = v.finite(o.fusionWeight ?? 0.5, 'fusionWeight');
    if (w < 0 || w > 1) v.fail(`fusionWeight must be a number in [0, 1], got ${w}`);
    const fusion = o.fusion ?? 'weighted';
    if (fusion !== 'weighted' && fusion !== 'rrf') v.fail(`fusion must be 'weighted' or 'rrf', got ${v.show(fusion)}`);
    const exhaustive = v.boolean(o.exhaustive ?? false, 'exhaustive');
    const inputs = o.queryEmbedding === undefined ? [text] : [text, v.vector(o.queryEmbedding, 'queryEmbedding')];
    const hits = checked(withHeapAll(engine(), inputs, ([p, ep], [n, len]) => raw.searchShard(p!, n!, ep ?? 0, len ?? 0, k, exhaustive)));
    return shardResultFromRaw(hits, w, fusion);
  }

  /** The options the pipeline runs with (after deserialize: the stored ones). */
  options(): Required<RetrievalPipelineOptions> {
    return this.raw.options();
  }

  stats(): RetrievalPipelineStats {
    return this.raw.stats();
  }

  /** Versioned, CRC-checked bytes of both indexes and the options (not the cache). */
  serialize(): Uint8Array {
    return this.raw.serialize();
  }
}
