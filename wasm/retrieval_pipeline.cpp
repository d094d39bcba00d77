// SPDX-License-Identifier: MIT
// embind surface of RetrievalPipeline: UTF-8 text and float vectors in, codes and copies out.
#include <memory>
#include <string_view>

#include "common.hpp"
#include "llmds/retrieval_pipeline.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

class RawRetrievalPipeline {
 public:
  explicit RawRetrievalPipeline(RetrievalPipeline p) : pipeline_(std::move(p)) {}

  static std::unique_ptr<RawRetrievalPipeline> create(uint32_t dim, uint32_t m, uint32_t ef_construction,
                                                      uint32_t ef_search, double token_budget, double seed,
                                                      uint32_t metric, double k1, double b) {
    RetrievalPipelineOptions o;
    o.embedding_dim = dim;
    o.hnsw_m = m;
    o.hnsw_ef_construction = ef_construction;
    o.hnsw_ef_search = ef_search;
    o.token_budget = static_cast<uint64_t>(token_budget);
    o.seed = static_cast<uint64_t>(seed);
    o.metric = static_cast<Metric>(metric);
    o.k1 = k1;
    o.b = b;
    return adopt<RawRetrievalPipeline>(RetrievalPipeline::create(o));
  }

  static std::unique_ptr<RawRetrievalPipeline> deserialize(uintptr_t bytes, uint32_t n) {
    return adopt<RawRetrievalPipeline>(RetrievalPipeline::deserialize(heap_ptr<uint8_t>(bytes), n));
  }

  /// The pipeline's own limits; its HNSW options take RawHNSW.limits().
  static val limits() {
    val o = val::object();
    o.set("maxDocId", RetrievalPipeline::kMaxDocId);
    o.set("maxTopK", RetrievalPipeline::kMaxTopK);
    return o;
  }

  /// `embedding` 0: text only.
  int32_t add(uint32_t doc, uintptr_t text, uint32_t n, uintptr_t embedding, uint32_t len) {
    const float* e = embedding ? heap_ptr<float>(embedding) : nullptr;
    return report(pipeline_.add_document(doc, text_at(text, n), e, len));
  }
  bool remove(uint32_t doc) { return pipeline_.remove_document(doc); }
  bool has(uint32_t doc) const { return pipeline_.has_document(doc); }

  /// { ids: Uint32Array, scores: Float64Array } best first, or null.
  val search(uintptr_t text, uint32_t n, uintptr_t embedding, uint32_t len, uint32_t k, double w, uint32_t fusion,
             bool exhaustive) {
    PipelineQuery q;
    q.text = text_at(text, n);
    q.embedding = embedding ? heap_ptr<float>(embedding) : nullptr;
    q.embedding_len = len;
    q.top_k = k;
    q.fusion_weight = w;
    q.fusion = static_cast<Fusion>(fusion);
    auto hits = exhaustive ? pipeline_.search_exhaustive(q) : pipeline_.search(q);
    return ranked_or_null(hits);
  }

  val stats() const {
    const RetrievalPipelineStats s = pipeline_.stats();
    val o = val::object();
    o.set("documents", s.documents);
    o.set("denseDocuments", s.dense_documents);
    o.set("searches", static_cast<double>(s.searches));
    o.set("cacheHits", static_cast<double>(s.cache_hits));
    o.set("cacheMisses", static_cast<double>(s.cache_misses));
    o.set("cacheEntries", s.cache_entries);
    o.set("cacheTokens", static_cast<double>(s.cache_tokens));
    o.set("bytes", static_cast<double>(s.bytes));
    return o;
  }

  val options() const {
    const RetrievalPipelineOptions& p = pipeline_.options();
    val o = val::object();
    o.set("embeddingDim", p.embedding_dim);
    o.set("hnswM", p.hnsw_m);
    o.set("hnswEfConstruction", p.hnsw_ef_construction);
    o.set("hnswEfSearch", p.hnsw_ef_search);
    o.set("tokenBudget", static_cast<double>(p.token_budget));
    o.set("seed", static_cast<double>(p.seed));
    o.set("metric", std::string(metric_name(p.metric)));
    o.set("k1", p.k1);
    o.set("b", p.b);
    return o;
  }

  val serialize() const { return copy_out(pipeline_.serialize()); }

 private:
  RetrievalPipeline pipeline_;
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_retrieval_pipeline) {
  using namespace llmds::wasm;
  emscripten::class_<RawRetrievalPipeline>("RawRetrievalPipeline")
      .class_function("create", LLMDS_GUARD(&RawRetrievalPipeline::create))
      .class_function("deserialize", LLMDS_GUARD(&RawRetrievalPipeline::deserialize))
      .class_function("limits", &RawRetrievalPipeline::limits)
      .function("add", LLMDS_GUARD(&RawRetrievalPipeline::add))
      .function("remove", LLMDS_GUARD(&RawRetrievalPipeline::remove))
      .function("has", LLMDS_GUARD(&RawRetrievalPipeline::has))
      .function("search", LLMDS_GUARD(&RawRetrievalPipeline::search))
      .function("stats", LLMDS_GUARD(&RawRetrievalPipeline::stats))
      .function("options", LLMDS_GUARD(&RawRetrievalPipeline::options))
      .function("serialize", LLMDS_GUARD(&RawRetrievalPipeline::serialize));
}
