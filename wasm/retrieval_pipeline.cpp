// SPDX-License-Identifier: MIT
// embind surface of RetrievalPipeline: UTF-8 text and float vectors in, codes and copies out.
#include <memory>
#include <string_view>

#include "common.hpp"
#include "sharding.hpp"
#include "llmds/retrieval_pipeline.hpp"
#include "llmds/serialize.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

// Metadata and `where` reach the engine as bytes JS encodes (retrieval-pipeline.mts encode*),
// little-endian: a value is u8 type (0 string, 1 number, 2 boolean) then u32 length + UTF-8,
// f64 or u8; metadata is u32 count, then per field u32 key length, key, value; where is
// u32 count, then per condition u32 field length, field, u8 operator, u32 value count, values.
// JS validated the shapes and types; whatever the bytes hold, the core checks the values.

bool read_value(ByteReader& r, MetadataValue& v) {
  uint8_t type = 0;
  if (!r.get_u8(type)) return false;
  if (type == 0) {
    v.type = MetadataValue::Type::string;
    return r.get_string(v.string);
  }
  if (type == 1) {
    double x = 0;
    if (!r.get_f64(x)) return false;
    v = MetadataValue::num(x);
    return true;
  }
  uint8_t b = 0;
  if (type != 2 || !r.get_u8(b)) return false;
  v = MetadataValue::flag(b != 0);
  return true;
}

Status decode_metadata(uintptr_t at, uint32_t n, Metadata& out) {
  ByteReader r(heap_ptr<uint8_t>(at), n);
  uint32_t count = 0;
  if (!r.get_u32(count) || !r.fits(count, 5)) return invalid_argument("metadata: malformed encoding");
  out.resize(count);
  for (auto& [key, value] : out) {
    if (!r.get_string(key) || !read_value(r, value)) return invalid_argument("metadata: malformed encoding");
  }
  if (!r.at_end()) return invalid_argument("metadata: malformed encoding");
  return Status::success();
}

Status decode_where(uintptr_t at, uint32_t n, Where& out) {
  ByteReader r(heap_ptr<uint8_t>(at), n);
  uint32_t count = 0;
  if (!r.get_u32(count) || !r.fits(count, 9)) return invalid_argument("where: malformed encoding");
  out.resize(count);
  for (WhereCondition& c : out) {
    uint8_t op = 0;
    uint32_t values = 0;
    if (!r.get_string(c.field) || !r.get_u8(op) || !r.get_u32(values) || !r.fits(values, 2)) {
      return invalid_argument("where: malformed encoding");
    }
    c.op = static_cast<WhereOp>(op);
    c.values.resize(values);
    for (MetadataValue& v : c.values) {
      if (!read_value(r, v)) return invalid_argument("where: malformed encoding");
    }
  }
  if (!r.at_end()) return invalid_argument("where: malformed encoding");
  return Status::success();
}

void write_value(ByteWriter& w, const MetadataValue& v) {
  w.put_u8(static_cast<uint8_t>(v.type));
  switch (v.type) {
    case MetadataValue::Type::string: w.put_string(v.string); break;
    case MetadataValue::Type::number: w.put_f64(v.number); break;
    case MetadataValue::Type::boolean: w.put_u8(v.boolean ? 1 : 0); break;
  }
}

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
    o.set("maxMetadataFields", RetrievalPipeline::kMaxMetadataFields);
    return o;
  }

  /// `embedding` 0: text only; `meta` 0: no metadata.
  int32_t add(uint32_t doc, uintptr_t text, uint32_t n, uintptr_t embedding, uint32_t len, uintptr_t meta,
              uint32_t meta_len) {
    const float* e = embedding ? heap_ptr<float>(embedding) : nullptr;
    if (meta == 0) return report(pipeline_.add_document(doc, text_at(text, n), e, len));
    Metadata m;
    if (Status st = decode_metadata(meta, meta_len, m); !st) return report(st);
    return report(pipeline_.add_document(doc, text_at(text, n), e, len, &m));
  }

  /// The document's metadata, encoded as add() takes it (JS decodes it: strings may hold NUL),
  /// or undefined when it has none.
  val metadata(uint32_t doc) const {
    const Metadata* m = pipeline_.metadata(doc);
    if (m == nullptr) return val::undefined();
    ByteWriter w;
    w.put_u32(static_cast<uint32_t>(m->size()));
    for (const auto& [key, value] : *m) {
      w.put_string(key);
      write_value(w, value);
    }
    return copy_out(w.bytes());
  }

  /// Every document id in insertion order (what a JS predicate filter is evaluated over).
  val ids() const { return copy_out(pipeline_.document_ids()); }
  bool remove(uint32_t doc) { return pipeline_.remove_document(doc); }
  bool has(uint32_t doc) const { return pipeline_.has_document(doc); }

  /// { ids: Uint32Array, scores: Float64Array } best first, or null.
  /// `filtered`: only the `n_allowed` ids at `allowed`; `where` 0: no conditions.
  val search(uintptr_t text, uint32_t n, uintptr_t embedding, uint32_t len, uint32_t k, double w, uint32_t fusion,
             bool exhaustive, bool filtered, uintptr_t allowed, uint32_t n_allowed, uintptr_t where,
             uint32_t where_len) {
    PipelineQuery q;
    Where conditions;
    if (where != 0) {
      if (Status st = decode_where(where, where_len, conditions); !st) {
        report(st);
        return val::null();
      }
      q.where = &conditions;
    }
    if (filtered) q.filter = IdFilter::ids(heap_ptr<uint32_t>(allowed), n_allowed);
    q.text = text_at(text, n);
    q.embedding = embedding ? heap_ptr<float>(embedding) : nullptr;
    q.embedding_len = len;
    q.top_k = k;
    q.fusion_weight = w;
    q.fusion = static_cast<Fusion>(fusion);
    auto hits = exhaustive ? pipeline_.search_exhaustive(q) : pipeline_.search(q);
    return ranked_or_null(hits);
  }

  /// search_shard() as one Float64Array (one copy, little binding code): topK, metric, dense
  /// (0/1), nb, nd, then nb BM25 ids, nb scores, nb distances (only when dense; +Infinity: no
  /// embedding), nd dense ids, nd distances. Or null.
  val search_shard(uintptr_t text, uint32_t n, uintptr_t embedding, uint32_t len, uint32_t k, bool exhaustive) const {
    PipelineQuery q;
    q.text = text_at(text, n);
    q.embedding = embedding ? heap_ptr<float>(embedding) : nullptr;
    q.embedding_len = len;
    q.top_k = k;
    auto hits = pipeline_.search_shard(q, exhaustive);
    if (!hits) {
      report(hits.status());
      return val::null();
    }
    const ShardHits& h = *hits;
    const std::size_t nb = h.bm25.ids.size(), nd = h.dense_ids.size();
    std::vector<double> out(5 + nb * (h.dense ? 3 : 2) + 2 * nd);
    out[0] = h.top_k;
    out[1] = static_cast<double>(h.metric);
    out[2] = h.dense ? 1.0 : 0.0;
    out[3] = static_cast<double>(nb);
    out[4] = static_cast<double>(nd);
    double* at = out.data() + 5;
    for (std::size_t i = 0; i < nb; ++i) at[i] = h.bm25.ids[i];
    at += nb;
    for (std::size_t i = 0; i < nb; ++i) at[i] = h.bm25.scores[i];
    at += nb;
    for (std::size_t i = 0; i < h.bm25_distances.size(); ++i) at[i] = h.bm25_distances[i];
    at += h.bm25_distances.size();
    for (std::size_t i = 0; i < nd; ++i) at[i] = h.dense_ids[i];
    at += nd;
    for (std::size_t i = 0; i < nd; ++i) at[i] = h.dense_distances[i];
    return copy_out(out);
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
    o.set("metadataDocuments", s.metadata_documents);
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

  // Sharding (wasm/sharding.hpp carries TermStats across).
  val term_stats(uintptr_t text, uint32_t n, bool of_text) const { return term_stats_of(pipeline_, text, n, of_text); }
  int32_t set_global_stats(double documents, double tokens, uintptr_t terms, uint32_t terms_bytes, uintptr_t df,
                           uint32_t count, bool clear) {
    return set_global_stats_on(pipeline_, documents, tokens, terms, terms_bytes, df, count, clear);
  }
  bool has_global_stats() const { return pipeline_.has_global_stats(); }

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
      .function("metadata", LLMDS_GUARD(&RawRetrievalPipeline::metadata))
      .function("ids", LLMDS_GUARD(&RawRetrievalPipeline::ids))
      .function("search", LLMDS_GUARD(&RawRetrievalPipeline::search))
      .function("stats", LLMDS_GUARD(&RawRetrievalPipeline::stats))
      .function("options", LLMDS_GUARD(&RawRetrievalPipeline::options))
      .function("serialize", LLMDS_GUARD(&RawRetrievalPipeline::serialize))
      .function("termStats", LLMDS_GUARD(&RawRetrievalPipeline::term_stats))
      .function("setGlobalStats", LLMDS_GUARD(&RawRetrievalPipeline::set_global_stats))
      .function("hasGlobalStats", LLMDS_GUARD(&RawRetrievalPipeline::has_global_stats))
      .function("searchShard", LLMDS_GUARD(&RawRetrievalPipeline::search_shard));
}
