// SPDX-License-Identifier: MIT
// embind surface of RetrievalPipeline::merge_shard_results. shardOf, mergeTermStats and the
// merge of plain BM25 lists are plain JS (a hash, sums, a sort): no heap copies and no init()
// needed for them; tests/js/sharding.test.mjs pins them to the C++ functions' results.
#include <string_view>
#include <vector>

#include "common.hpp"
#include "llmds/retrieval_pipeline.hpp"
#include "llmds/sharding.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

/// Shards' search_shard() lists, flattened: `meta` holds 5 numbers per shard (topK, metric,
/// dense 0/1, BM25 hits, dense hits); the lists follow one another in the arrays, every BM25
/// hit with a distance (+Infinity: none). The fused top k, or null.
val merge_shard_results_raw(uint32_t parts, uintptr_t meta, uintptr_t bm25_ids, uintptr_t bm25_scores,
                            uintptr_t bm25_distances, uintptr_t dense_ids, uintptr_t dense_distances, uint32_t top_k,
                            double fusion_weight, uint32_t fusion) {
  const double* m = heap_ptr<double>(meta);
  const uint32_t* bi = heap_ptr<uint32_t>(bm25_ids);
  const double* bs = heap_ptr<double>(bm25_scores);
  const float* bd = heap_ptr<float>(bm25_distances);
  const uint32_t* di = heap_ptr<uint32_t>(dense_ids);
  const float* dd = heap_ptr<float>(dense_distances);
  std::vector<ShardHits> shards(parts);
  std::size_t b = 0, d = 0;
  for (uint32_t s = 0; s < parts; ++s) {
    ShardHits& h = shards[s];
    h.top_k = static_cast<uint32_t>(m[5 * s]);
    h.metric = static_cast<Metric>(static_cast<uint32_t>(m[5 * s + 1]));
    h.dense = m[5 * s + 2] != 0.0;
    const std::size_t nb = static_cast<std::size_t>(m[5 * s + 3]);
    const std::size_t nd = static_cast<std::size_t>(m[5 * s + 4]);
    h.bm25.ids.assign(bi + b, bi + b + nb);
    h.bm25.scores.assign(bs + b, bs + b + nb);
    if (h.dense) h.bm25_distances.assign(bd + b, bd + b + nb);
    h.dense_ids.assign(di + d, di + d + nd);
    h.dense_distances.assign(dd + d, dd + d + nd);
    b += nb;
    d += nd;
  }
  PipelineQuery q;
  q.top_k = top_k;
  q.fusion_weight = fusion_weight;
  q.fusion = static_cast<Fusion>(fusion);
  return ranked_or_null(RetrievalPipeline::merge_shard_results(shards, q));
}

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_sharding) {
  using namespace llmds::wasm;
  emscripten::function("mergeShardResults", LLMDS_GUARD(&merge_shard_results_raw));
}
