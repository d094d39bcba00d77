// SPDX-License-Identifier: MIT
// Everything public except init(), shared by every entry point (index.mts, workerd.mts).
// Add each component's exports here.
export { LlmdsError, type ErrorCode } from './errors.mjs';
export { features, type Features, type InitOptions, type WasmSource } from './init.mjs';
export { Owned, onUndisposed, type UndisposedReporter } from './owned.mjs';
export {
  KVCache,
  PagedAllocator,
  type KVCacheOptions,
  type KVCacheStats,
  type KVEvent,
  type KVPlan,
  type KVPayloadOptions,
  type AttentionOptions,
  type PagedAllocatorOptions,
  type PagedAllocatorStats,
  type TokenArray,
} from './kv-cache.mjs';
export {
  KVRouter,
  type EngineBlockHash,
  type KVRouterOptions,
  type KVRouterStats,
  type RouteCandidate,
  type RouteDecision,
  type RoutePrompt,
  type RouterEvent,
  type RoutingMode,
  type RoutingPolicy,
  type VllmKVEvent,
} from './kv-router.mjs';
export { IndexedHeap, type IndexedHeapOptions } from './indexed-heap.mjs';
export {
  Scheduler,
  type RequestState,
  type ScheduledRequest,
  type SchedulerOptions,
  type SchedulerStats,
} from './scheduler.mjs';
export { AdmissionController, type AdmissionControllerOptions, type AdmissionStats } from './admission.mjs';
export { TokenLRU, type TokenLRUKey, type TokenLRUOptions } from './token-lru.mjs';
export {
  MemoryProfiler,
  MetricsCollector,
  Timer,
  memoryProfiler,
  percentile,
  type LatencyMetrics,
  type MemorySample,
} from './metrics.mjs';
export {
  HNSW,
  type HNSWBatchResult,
  type HNSWMetric,
  type HNSWQuantization,
  type HNSWOptions,
  type HNSWSearchOptions,
  type HNSWStats,
  type VectorBatch,
  type VectorLike,
} from './hnsw.mjs';
export { Tokenizer } from './tokenizer.mjs';
export { type IdFilter } from './filter.mjs';
export {
  InvertedIndex,
  type InvertedIndexOptions,
  type InvertedIndexSearchOptions,
  type InvertedIndexStats,
  type SearchResult,
} from './inverted-index.mjs';
export { CountMinSketch, type CountMinSketchOptions, type SketchItem } from './count-min-sketch.mjs';
export {
  RetrievalPipeline,
  type AddDocumentOptions,
  type Metadata,
  type MetadataValue,
  type PipelineSearchOptions,
  type WhereCondition,
  type Where,
  type RetrievalPipelineOptions,
  type RetrievalPipelineStats,
  type ShardSearchOptions,
} from './retrieval-pipeline.mjs';
export {
  mergeShardResults,
  mergeTermStats,
  shardOf,
  type MergeShardOptions,
  type ShardResult,
  type TermStats,
} from './sharding.mjs';
