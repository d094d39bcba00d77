// SPDX-License-Identifier: MIT
#include "llmds/retrieval_pipeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

#include "llmds/count_min_sketch.hpp"
#include "llmds/serialize.hpp"
#include "llmds/token_lru.hpp"
#include "llmds/tokenizer.hpp"
#include "../text/hash.hpp"

namespace llmds {
namespace {

constexpr double kRrfK = 60.0;
constexpr double kHotQueryCount = 2.0;

/// Maps a distance to a similarity in [0, 1] (see the header): higher is better.
double dense_similarity(Metric metric, float distance) noexcept {
  const double d = distance;
  switch (metric) {
    case Metric::cosine: return std::clamp(1.0 - d / 2.0, 0.0, 1.0);
    case Metric::l2: return 1.0 / (1.0 + std::max(0.0, d));
    case Metric::ip: return 1.0 / (1.0 + std::exp(-(1.0 - d)));
  }
  return 0.0;
}

void put_where(std::string& key, const Where& where);

/// Cache key: every input that changes the result, as bytes.
std::string cache_key(const PipelineQuery& q) {
  std::string key;
  key.reserve(q.text.size() + q.embedding_len * sizeof(float) + 24);
  auto put = [&key](const void* p, std::size_t n) { key.append(static_cast<const char*>(p), n); };
  const uint32_t text_len = static_cast<uint32_t>(q.text.size());
  put(&text_len, sizeof text_len);
  put(q.text.data(), q.text.size());
  const uint32_t emb_len = q.embedding ? static_cast<uint32_t>(q.embedding_len) : UINT32_MAX;
  put(&emb_len, sizeof emb_len);
  if (q.embedding) put(q.embedding, q.embedding_len * sizeof(float));
  put(&q.top_k, sizeof q.top_k);
  put(&q.fusion_weight, sizeof q.fusion_weight);
  const uint8_t fusion = static_cast<uint8_t>(q.fusion);
  put(&fusion, 1);
  if (q.where != nullptr && !q.where->empty()) put_where(key, *q.where);  // (a filtered query is never cached)
  return key;
}

/// The sketch counts an 8-byte digest of the cache key: hashing a long key (an embedding is
/// kilobytes) once instead of once per sketch row. A digest collision only merges two
/// queries' counts, which the sketch over-estimates anyway; the cache itself keys exactly.
std::string sketch_item(const std::string& key) {
  const uint64_t h = text::hash_bytes(key.data(), key.size(), 0x6C6C6D6473ull);
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

std::string describe(const MetadataValue& v) {
  switch (v.type) {
    case MetadataValue::Type::string: return "\"" + v.string.substr(0, 40) + "\"";
    case MetadataValue::Type::number: {
      std::string s = std::to_string(v.number);
      return s;
    }
    case MetadataValue::Type::boolean: return v.boolean ? "true" : "false";
  }
  return "?";
}

Status check_value(const MetadataValue& v, const std::string& what) {
  if (v.type != MetadataValue::Type::string && v.type != MetadataValue::Type::number &&
      v.type != MetadataValue::Type::boolean) {
    return invalid_argument(what + " has an unknown value type");
  }
  if (v.type == MetadataValue::Type::number && !std::isfinite(v.number)) {
    return invalid_argument(what + " must be a finite number, a string or a boolean, got " +
                            (std::isnan(v.number) ? std::string("NaN") : std::string(v.number > 0 ? "Infinity" : "-Infinity")));
  }
  return Status::success();
}

/// -1, 0, 1 for values of the same type (strings by UTF-8 bytes, i.e. code points).
int compare_values(const MetadataValue& a, const MetadataValue& b) noexcept {
  switch (a.type) {
    case MetadataValue::Type::string: {
      const int c = a.string.compare(b.string);
      return c < 0 ? -1 : c > 0;
    }
    case MetadataValue::Type::number: return a.number < b.number ? -1 : a.number > b.number;
    case MetadataValue::Type::boolean: return a.boolean == b.boolean ? 0 : (a.boolean ? 1 : -1);
  }
  return 0;
}

const MetadataValue* field_of(const Metadata& m, const std::string& key) noexcept {
  const auto it = std::lower_bound(m.begin(), m.end(), key, [](const auto& f, const std::string& k) { return f.first < k; });
  return it != m.end() && it->first == key ? &it->second : nullptr;
}

bool matches(const Metadata& m, const Where& where) noexcept {
  for (const WhereCondition& c : where) {
    const MetadataValue* v = field_of(m, c.field);
    if (v == nullptr) return false;
    bool ok = false;
    switch (c.op) {
      case WhereOp::eq:
      case WhereOp::in:
        for (const MetadataValue& x : c.values) ok = ok || *v == x;
        break;
      case WhereOp::gt: ok = v->type == c.values[0].type && compare_values(*v, c.values[0]) > 0; break;
      case WhereOp::gte: ok = v->type == c.values[0].type && compare_values(*v, c.values[0]) >= 0; break;
      case WhereOp::lt: ok = v->type == c.values[0].type && compare_values(*v, c.values[0]) < 0; break;
      case WhereOp::lte: ok = v->type == c.values[0].type && compare_values(*v, c.values[0]) <= 0; break;
    }
    if (!ok) return false;
  }
  return true;
}

void put_value(ByteWriter& w, const MetadataValue& v) {
  w.put_u8(static_cast<uint8_t>(v.type));
  switch (v.type) {
    case MetadataValue::Type::string: w.put_string(v.string); break;
    case MetadataValue::Type::number: w.put_f64(v.number); break;
    case MetadataValue::Type::boolean: w.put_u8(v.boolean ? 1 : 0); break;
  }
}

bool get_value(ByteReader& r, MetadataValue& v) {
  uint8_t type = 0;
  if (!r.get_u8(type)) return false;
  switch (type) {
    case 0: v.type = MetadataValue::Type::string; return r.get_string(v.string);
    case 1: {
      v.type = MetadataValue::Type::number;
      return r.get_f64(v.number) && std::isfinite(v.number) && !(v.number == 0.0 && std::signbit(v.number));
    }
    case 2: {
      uint8_t b = 0;
      v.type = MetadataValue::Type::boolean;
      if (!r.get_u8(b) || b > 1) return false;
      v.boolean = b != 0;
      return true;
    }
    default: return false;
  }
}

/// The part of the cache key a `where` adds: every condition, in order, as bytes.
void put_where(std::string& key, const Where& where) {
  ByteWriter w;
  w.put_u32(static_cast<uint32_t>(where.size()));
  for (const WhereCondition& c : where) {
    w.put_string(c.field);
    w.put_u8(static_cast<uint8_t>(c.op));
    w.put_u32(static_cast<uint32_t>(c.values.size()));
    for (const MetadataValue& v : c.values) put_value(w, v);
  }
  key.append(reinterpret_cast<const char*>(w.bytes().data()), w.size());
}

struct Candidate {
  double bm25 = 0.0;
  int64_t bm25_rank = 0;  // 1-based; 0 when absent
  double dense = 0.0;
  int64_t dense_rank = 0;
};

RankedHits fuse(const std::unordered_map<uint32_t, Candidate>& candidates, double best_bm25, const PipelineQuery& q,
                  bool has_dense) {
  const double w = has_dense ? q.fusion_weight : 0.0;
  // Dense similarities of real embeddings crowd into a narrow band (e.g. 0.6-0.75), which would
  // let BM25's full [0, 1] range dominate: rescale them min-max over the dense result list.
  // A single or all-equal list maps to 1, like BM25's; completed BM25-only candidates below the
  // list's minimum clamp to 0.
  double lo = 1.0, hi = 0.0;
  for (const auto& kv : candidates) {
    if (kv.second.dense_rank) {
      lo = std::min(lo, kv.second.dense);
      hi = std::max(hi, kv.second.dense);
    }
  }
  auto dense_norm = [lo, hi](double sim) { return hi > lo ? std::clamp((sim - lo) / (hi - lo), 0.0, 1.0) : (sim >= hi ? 1.0 : 0.0); };
  std::vector<std::pair<double, uint32_t>> scored;
  scored.reserve(candidates.size());
  for (const auto& [id, c] : candidates) {
    double score;
    if (q.fusion == Fusion::rrf) {
      score = (c.dense_rank ? w / (kRrfK + static_cast<double>(c.dense_rank)) : 0.0) +
              (c.bm25_rank ? (1.0 - w) / (kRrfK + static_cast<double>(c.bm25_rank)) : 0.0);
    } else {
      const double bm25 = best_bm25 > 0.0 ? c.bm25 / best_bm25 : 0.0;
      score = w * dense_norm(c.dense) + (1.0 - w) * bm25;
    }
    scored.emplace_back(score, id);
  }
  const std::size_t k = std::min<std::size_t>(q.top_k, scored.size());
  auto better = [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; };
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(k), scored.end(), better);
  RankedHits hits;
  for (std::size_t i = 0; i < k; ++i) {
    hits.ids.push_back(scored[i].second);
    hits.scores.push_back(scored[i].first);
  }
  return hits;
}

}  // namespace

struct RetrievalPipeline::Impl {
  RetrievalPipelineOptions options;
  HNSW dense;
  InvertedIndex sparse;
  TokenLRU<std::string, RankedHits> cache;
  CountMinSketch query_counts;
  uint64_t searches = 0, cache_hits = 0, cache_misses = 0;
  std::unordered_map<uint32_t, Metadata> metadata;  // documents that have some

  Impl(RetrievalPipelineOptions o, HNSW h, InvertedIndex i, TokenLRU<std::string, RankedHits> c, CountMinSketch s)
      : options(o), dense(std::move(h)), sparse(std::move(i)), cache(std::move(c)), query_counts(std::move(s)) {}

  Status check_query(const PipelineQuery& q) const {
    if (q.top_k == 0 || q.top_k > kMaxTopK) {
      return invalid_argument("topK must be an integer in [1, " + std::to_string(kMaxTopK) + "], got " +
                              std::to_string(q.top_k));
    }
    if (!(q.fusion_weight >= 0.0 && q.fusion_weight <= 1.0)) {
      return invalid_argument("fusionWeight must be a number in [0, 1], got " + std::to_string(q.fusion_weight));
    }
    if (q.where != nullptr) {
      if (Status st = check_where(*q.where); !st) return st;
    }
    if (q.embedding) return dense.check_vector(q.embedding, q.embedding_len, "queryEmbedding");
    return Status::success();
  }

  /// The query's filter and where as one filter over document ids: `storage` holds the ids
  /// when it is a list. A predicate is evaluated here once per document (both indexes then take
  /// the list), and ANDed with the where conditions when both are given.
  IdFilter effective_filter(const PipelineQuery& q, std::vector<uint32_t>& storage) const {
    const bool has_where = q.where != nullptr && !q.where->empty();
    if (!has_where && q.filter.kind() != IdFilter::Kind::predicate) return q.filter;
    storage.clear();
    if (has_where) {
      for (const auto& [id, m] : metadata) {
        if (matches(m, *q.where)) storage.push_back(id);
      }
      std::sort(storage.begin(), storage.end());  // the predicate sees ids in one order everywhere
      if (q.filter.kind() == IdFilter::Kind::ids) {
        std::vector<uint32_t> allowed(q.filter.list(), q.filter.list() + q.filter.size());
        std::sort(allowed.begin(), allowed.end());
        storage.erase(std::remove_if(storage.begin(), storage.end(),
                                     [&](uint32_t id) { return !std::binary_search(allowed.begin(), allowed.end(), id); }),
                      storage.end());
      } else if (q.filter.kind() == IdFilter::Kind::predicate) {
        std::size_t kept = 0;
        for (uint32_t id : storage) {
          if (q.filter.call(id)) storage[kept++] = id;
        }
        storage.resize(kept);
      }
    } else {
      for (uint32_t id : sparse.document_ids()) {
        if (q.filter.call(id)) storage.push_back(id);
      }
    }
    return IdFilter::ids(storage.data(), storage.size());
  }

  /// Both candidate lists (each `candidate_depth(top_k)` long) merged by doc id. `exact` makes
  /// the dense list exact too (a beam over every node) instead of HNSW's approximation.
  Result<std::unordered_map<uint32_t, Candidate>> candidates(const PipelineQuery& q, const IdFilter& filter, bool exact,
                                                            double* best_bm25) const {
    std::unordered_map<uint32_t, Candidate> out;
    const uint32_t depth = candidate_depth(q.top_k);
    auto bm25 = sparse.search(q.text, depth, filter);  // exact top-k (MaxScore is lossless)
    if (!bm25) return bm25.status();
    *best_bm25 = 0.0;
    for (std::size_t i = 0; i < bm25->ids.size(); ++i) {
      Candidate& c = out[bm25->ids[i]];
      c.bm25 = bm25->scores[i];
      c.bm25_rank = static_cast<int64_t>(i + 1);
      *best_bm25 = std::max(*best_bm25, c.bm25);
    }
    if (q.embedding && dense.size() > 0) {
      const uint32_t dense_k = std::min(depth, dense.size());
      const uint32_t ef = exact ? std::min<uint32_t>(HNSW::kMaxEf, std::max(dense_k, dense.nodes()))
                                : std::max(dense_k, options.hnsw_ef_search);
      auto nn = dense.search(q.embedding, q.embedding_len, dense_k, ef, filter,
                             exact ? FilterPlan::exact : FilterPlan::automatic);
      if (!nn) return nn.status();
      for (std::size_t i = 0; i < nn->size(); ++i) {
        Candidate& c = out[(*nn)[i].id];
        c.dense = dense_similarity(options.metric, (*nn)[i].distance);
        c.dense_rank = static_cast<int64_t>(i + 1);
      }
      complete_dense(q, out);
    }
    return out;
  }

  /// BM25 candidates the dense search did not return still get their true dense similarity
  /// (their rank stays absent for RRF), so weighted fusion does not score them as 0.
  void complete_dense(const PipelineQuery& q, std::unordered_map<uint32_t, Candidate>& out) const {
    std::vector<uint32_t> missing;
    for (const auto& [id, c] : out) {
      if (c.dense_rank == 0) missing.push_back(id);
    }
    if (missing.empty()) return;
    auto d = dense.distances(q.embedding, q.embedding_len, missing.data(), missing.size());
    if (!d) return;
    for (std::size_t i = 0; i < missing.size(); ++i) {
      if (std::isfinite((*d)[i])) out[missing[i]].dense = dense_similarity(options.metric, (*d)[i]);
    }
  }

  Result<RankedHits> run(const PipelineQuery& q, bool exact) const {
    if (Status st = check_query(q); !st) return st;
    double best_bm25 = 0.0;
    std::vector<uint32_t> allowed;
    const IdFilter filter = effective_filter(q, allowed);
    auto c = candidates(q, filter, exact, &best_bm25);
    if (!c) return c.status();
    return fuse(*c, best_bm25, q, q.embedding != nullptr && dense.size() > 0);
  }

  /// Admission that keeps hot queries preferentially: a cold query only uses free budget.
  /// `counted`: the sketch is about to count this query once more (its estimate will be one higher).
  void remember(const std::string& key, const std::string& digest, const RankedHits& hits, std::string_view text,
                bool counted) {
    const uint64_t tokens = count_terms(text) + hits.ids.size() + 1;
    const bool hot = static_cast<double>(query_counts.estimate(digest) + (counted ? 1 : 0)) >= kHotQueryCount;
    if (!hot && cache.total_tokens() + tokens > cache.token_budget()) return;
    cache.put(key, hits, tokens);
  }

  /// Every add/remove calls this: an empty cache is left alone, because clearing a hash map
  /// costs its bucket count (libstdc++ zeroes every bucket), which stays at its peak size.
  void clear_cache() {
    if (!cache.empty()) cache.clear();
  }
};

Result<RetrievalPipeline> RetrievalPipeline::create(const RetrievalPipelineOptions& o) {
  HnswOptions h;
  h.dim = o.embedding_dim;
  h.m = o.hnsw_m;
  h.ef_construction = o.hnsw_ef_construction;
  h.ef_search = o.hnsw_ef_search;
  h.seed = o.seed;
  h.metric = o.metric;
  auto dense = HNSW::create(h);
  if (!dense) return dense.status();
  auto sparse = InvertedIndex::create({o.k1, o.b});
  if (!sparse) return sparse.status();
  return assemble(o, std::move(dense.value()), std::move(sparse.value()));
}

Result<RetrievalPipeline> RetrievalPipeline::assemble(const RetrievalPipelineOptions& o, HNSW dense,
                                                      InvertedIndex sparse) {
  // A budget of 0 turns the cache off: search() then never consults it, so it only needs to exist.
  auto cache = TokenLRU<std::string, RankedHits>::create(std::max<uint64_t>(o.token_budget, 1));
  if (!cache) return cache.status();
  auto sketch = CountMinSketch::create({});
  if (!sketch) return sketch.status();
  return RetrievalPipeline(std::make_unique<Impl>(o, std::move(dense), std::move(sparse), std::move(cache.value()),
                                                  std::move(sketch.value())));
}

RetrievalPipeline::RetrievalPipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RetrievalPipeline::RetrievalPipeline(RetrievalPipeline&&) noexcept = default;
RetrievalPipeline& RetrievalPipeline::operator=(RetrievalPipeline&&) noexcept = default;
RetrievalPipeline::~RetrievalPipeline() = default;

bool MetadataValue::operator==(const MetadataValue& o) const noexcept {
  return type == o.type && compare_values(*this, o) == 0;
}

namespace {

/// invalid_argument unless `metadata` is valid; `sorted` gets it sorted by key.
Status check_metadata(const Metadata& metadata, Metadata& sorted) {
  if (metadata.size() > RetrievalPipeline::kMaxMetadataFields) {
    return invalid_argument("metadata has " + std::to_string(metadata.size()) + " fields, more than the limit of " +
                            std::to_string(RetrievalPipeline::kMaxMetadataFields));
  }
  for (const auto& [key, value] : metadata) {
    if (Status st = check_value(value, "metadata." + key); !st) return st;
  }
  sorted = metadata;
  // Insertion sort: at most kMaxMetadataFields fields, and std::sort's instantiation for these
  // pairs alone was 10 KB of wasm.
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    for (std::size_t j = i; j > 0 && sorted[j].first < sorted[j - 1].first; --j) std::swap(sorted[j], sorted[j - 1]);
  }
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].first == sorted[i - 1].first) return invalid_argument("metadata has the key \"" + sorted[i].first + "\" twice");
  }
  return Status::success();
}

}  // namespace

Status RetrievalPipeline::check_where(const Where& where) {
  for (std::size_t i = 0; i < where.size(); ++i) {
    const WhereCondition& c = where[i];
    const std::string what = "where." + c.field;
    switch (c.op) {
      case WhereOp::eq:
      case WhereOp::in:
        break;
      case WhereOp::gt:
      case WhereOp::gte:
      case WhereOp::lt:
      case WhereOp::lte:
        if (c.values.size() == 1 && c.values[0].type == MetadataValue::Type::boolean) {
          return invalid_argument(what + ": a range condition takes a number or a string, got " + describe(c.values[0]));
        }
        break;
      default: return invalid_argument(what + ": unknown operator " + std::to_string(static_cast<int>(c.op)));
    }
    if (c.op != WhereOp::in && c.values.size() != 1) {
      return invalid_argument(what + ": the condition takes one value, got " + std::to_string(c.values.size()));
    }
    for (const MetadataValue& v : c.values) {
      if (Status st = check_value(v, what); !st) return st;
    }
  }
  return Status::success();
}

const Metadata* RetrievalPipeline::metadata(uint32_t doc_id) const noexcept {
  const auto it = impl_->metadata.find(doc_id);
  return it == impl_->metadata.end() ? nullptr : &it->second;
}

std::vector<uint32_t> RetrievalPipeline::document_ids() const { return impl_->sparse.document_ids(); }

Status RetrievalPipeline::add_document(uint32_t doc_id, std::string_view text, const float* embedding, std::size_t len,
                                       const Metadata* metadata) {
  Impl& m = *impl_;
  if (doc_id > kMaxDocId) {
    return invalid_argument("docId must be an integer in [0, 2147483647], got " + std::to_string(doc_id));
  }
  Metadata sorted;
  if (metadata != nullptr) {
    if (Status st = check_metadata(*metadata, sorted); !st) return st;
  }
  // Room for the metadata entry first (it cannot fail after the indexes changed): a node for
  // this id (kept empty when there is no metadata), erased again on failure.
  const bool had_metadata = m.metadata.count(doc_id) != 0;
  auto slot = m.metadata.try_emplace(doc_id).first;
  struct Undo {
    Impl& m;
    uint32_t id;
    bool keep;
    ~Undo() {
      if (!keep) m.metadata.erase(id);
    }
  } undo{m, doc_id, had_metadata};
  // Everything the dense side could reject is checked first; the BM25 side is atomic on its own,
  // so after it succeeds the dense update cannot fail and the pair changes together or not at all.
  if (embedding) {
    if (Status st = m.dense.check_vector(embedding, len, "embedding"); !st) return st;
    // nodes(), not stats().nodes: stats() walks every node, which made building quadratic.
    if (!m.dense.has(doc_id) && m.dense.nodes() >= HNSW::kMaxNodes) {
      return capacity_exceeded("addDocument: the vector index is full");
    }
  }
  // Out of memory: the dense index allocates what the add needs before the BM25 side changes
  // (reserve() throws or changes nothing), so neither the add nor the removal below can run out
  // of memory after the BM25 side committed: both sides change together or not at all.
  if (embedding) m.dense.reserve(1);
  if (Status st = m.sparse.add_document(doc_id, text); !st) return st;
  if (m.dense.has(doc_id)) (void)m.dense.remove(doc_id);
  if (embedding) (void)m.dense.add(embedding, len, doc_id);
  // Committed: the metadata is replaced (none given: the document has none).
  if (metadata != nullptr && !sorted.empty()) {
    slot->second = std::move(sorted);
    undo.keep = true;
  } else {
    undo.keep = false;
  }
  m.clear_cache();
  return Status::success();
}

bool RetrievalPipeline::remove_document(uint32_t doc_id) {
  Impl& m = *impl_;
  if (!m.sparse.remove_document(doc_id)) return false;
  if (m.dense.has(doc_id)) (void)m.dense.remove(doc_id);
  m.metadata.erase(doc_id);
  m.clear_cache();
  return true;
}

bool RetrievalPipeline::has_document(uint32_t doc_id) const noexcept { return impl_->sparse.has_document(doc_id); }

uint32_t RetrievalPipeline::candidate_depth(uint32_t top_k) noexcept { return std::max<uint32_t>(3 * top_k, 50); }

Result<RankedHits> RetrievalPipeline::search(const PipelineQuery& q) {
  Impl& m = *impl_;
  if (Status st = m.check_query(q); !st) return st;
  // Out of memory: everything that allocates (the key, the answer, the cache entry) happens
  // before the counters, the sketch and the cache's recency change; those cannot fail.
  if (m.options.token_budget == 0 || !q.filter.is_all()) {  // no cache (or a filter): no key, no sketch
    auto hits = m.run(q, false);
    ++m.searches;
    return hits;
  }
  const std::string key = cache_key(q);
  const std::string digest = sketch_item(key);
  if (const RankedHits* cached = m.cache.peek(key)) {
    RankedHits hits = *cached;
    ++m.searches;
    (void)m.query_counts.add(digest);
    (void)m.cache.get(key);  // refreshes its recency
    ++m.cache_hits;
    return hits;
  }
  auto hits = m.run(q, false);
  // The sketch counts this query before the cache decides on it (as if added first).
  const bool counted = m.query_counts.total_count() < CountMinSketch::kMaxTotal;
  if (hits) m.remember(key, digest, *hits, q.text, counted);
  ++m.searches;
  (void)m.query_counts.add(digest);
  ++m.cache_misses;
  return hits;
}

Result<RankedHits> RetrievalPipeline::search_exhaustive(const PipelineQuery& q) const { return impl_->run(q, true); }

RetrievalPipelineStats RetrievalPipeline::stats() const noexcept {
  const Impl& m = *impl_;
  RetrievalPipelineStats s;
  s.documents = m.sparse.size();
  s.dense_documents = m.dense.size();
  s.searches = m.searches;
  s.cache_hits = m.cache_hits;
  s.cache_misses = m.cache_misses;
  s.cache_entries = static_cast<uint32_t>(m.cache.size());
  s.cache_tokens = m.cache.total_tokens();
  s.bytes = m.dense.memory_bytes() + m.sparse.stats().bytes + m.query_counts.memory_bytes() + m.cache.total_tokens() * 16;
  // Metadata: a map node per document, each field's key, value and string (an estimate).
  s.bytes += m.metadata.bucket_count() * sizeof(void*);
  for (const auto& [id, fields] : m.metadata) {
    s.bytes += sizeof(id) + sizeof(fields) + 2 * sizeof(void*);
    for (const auto& [key, value] : fields) s.bytes += sizeof(key) + sizeof(value) + key.capacity() + value.string.capacity();
  }
  s.metadata_documents = static_cast<uint32_t>(m.metadata.size());
  return s;
}

const RetrievalPipelineOptions& RetrievalPipeline::options() const noexcept { return impl_->options; }

// ---------------------------------------------------------------------------------------------
// Sharding (sharding.hpp): global BM25 statistics, raw per-shard candidates, exact merging.

TermStats RetrievalPipeline::term_stats() const { return impl_->sparse.term_stats(); }
TermStats RetrievalPipeline::term_stats(std::string_view text) const { return impl_->sparse.term_stats(text); }

Status RetrievalPipeline::set_global_stats(const TermStats& global) {
  Impl& m = *impl_;
  if (Status st = m.sparse.set_global_stats(global); !st) return st;
  m.clear_cache();  // every BM25 score may have changed
  return Status::success();
}

void RetrievalPipeline::clear_global_stats() {
  Impl& m = *impl_;
  if (!m.sparse.has_global_stats()) return;
  m.sparse.clear_global_stats();
  m.clear_cache();
}

bool RetrievalPipeline::has_global_stats() const noexcept { return impl_->sparse.has_global_stats(); }

Result<ShardHits> RetrievalPipeline::search_shard(const PipelineQuery& q, bool exact) const {
  const Impl& m = *impl_;
  if (Status st = m.check_query(q); !st) return st;
  ShardHits out;
  out.top_k = q.top_k;
  out.metric = m.options.metric;
  out.dense = q.embedding != nullptr;
  const uint32_t depth = candidate_depth(q.top_k);
  auto bm25 = m.sparse.search(q.text, depth);
  if (!bm25) return bm25.status();
  out.bm25 = std::move(bm25.value());
  if (!out.dense) return out;
  if (m.dense.size() == 0) {
    out.bm25_distances.assign(out.bm25.ids.size(), std::numeric_limits<float>::infinity());
    return out;
  }
  // The same list candidates() takes: HNSW with the pipeline's ef, or a beam over every node.
  const uint32_t dense_k = std::min(depth, m.dense.size());
  const uint32_t ef = exact ? std::min<uint32_t>(HNSW::kMaxEf, std::max(dense_k, m.dense.nodes()))
                            : std::max(dense_k, m.options.hnsw_ef_search);
  auto nn = m.dense.search(q.embedding, q.embedding_len, dense_k, ef);
  if (!nn) return nn.status();
  out.dense_ids.reserve(nn->size());
  out.dense_distances.reserve(nn->size());
  for (const Neighbor& n : *nn) {
    out.dense_ids.push_back(n.id);
    out.dense_distances.push_back(n.distance);
  }
  auto d = m.dense.distances(q.embedding, q.embedding_len, out.bm25.ids.data(), out.bm25.ids.size());
  if (!d) return d.status();
  out.bm25_distances = std::move(d.value());
  return out;
}

Result<RankedHits> RetrievalPipeline::merge_shard_results(const std::vector<ShardHits>& shards, const PipelineQuery& q) {
  if (q.top_k == 0 || q.top_k > kMaxTopK) {
    return invalid_argument("topK must be an integer in [1, " + std::to_string(kMaxTopK) + "], got " + std::to_string(q.top_k));
  }
  if (!(q.fusion_weight >= 0.0 && q.fusion_weight <= 1.0)) {
    return invalid_argument("fusionWeight must be a number in [0, 1], got " + std::to_string(q.fusion_weight));
  }
  if (shards.empty()) return RankedHits{};
  const bool dense = shards[0].dense;
  const Metric metric = shards[0].metric;
  // One message per kind of mistake, no numbers: every string built here costs download size.
  auto bad = [](const char* why) { return invalid_argument(std::string("mergeShardResults: ") + why); };
  struct Bm25 {
    double score;
    uint32_t id;
    float distance;
  };
  std::vector<Bm25> bm25;
  std::vector<std::pair<float, uint32_t>> nearest;
  std::vector<uint64_t> owners;  // (doc id << 32 | shard): shards must hold disjoint documents
  for (std::size_t s = 0; s < shards.size(); ++s) {
    const ShardHits& h = shards[s];
    if (h.dense != dense) return bad("some shards were searched with a query embedding, some without");
    if (dense && h.metric != metric) return bad("the shards use different metrics");
    if (h.top_k < q.top_k) return bad("a shard was searched for a smaller topK than the merged topK");
    if (h.bm25.ids.size() != h.bm25.scores.size() || (dense && h.bm25_distances.size() != h.bm25.ids.size()) ||
        h.dense_ids.size() != h.dense_distances.size()) {
      return bad("a shard's lists differ in length");
    }
    for (std::size_t i = 0; i < h.bm25.ids.size(); ++i) {
      bm25.push_back({h.bm25.scores[i], h.bm25.ids[i], dense ? h.bm25_distances[i] : 0.0f});
      owners.push_back(uint64_t{h.bm25.ids[i]} << 32 | s);
    }
    for (std::size_t i = 0; i < h.dense_ids.size(); ++i) {
      nearest.emplace_back(h.dense_distances[i], h.dense_ids[i]);
      owners.push_back(uint64_t{h.dense_ids[i]} << 32 | s);
    }
  }
  std::sort(owners.begin(), owners.end());
  for (std::size_t i = 1; i < owners.size(); ++i) {
    if (owners[i] >> 32 == owners[i - 1] >> 32 && owners[i] != owners[i - 1]) {
      return bad("a document is in two shards (shards must hold disjoint documents)");
    }
  }
  // The global candidate lists: the best candidate_depth(top_k) of the union, as one index's
  // exact top-k would be (each shard's lists hold its best ones, at least that many).
  const std::size_t depth = candidate_depth(q.top_k);
  auto bm25_better = [](const Bm25& a, const Bm25& b) { return a.score != b.score ? a.score > b.score : a.id < b.id; };
  const std::size_t nb = std::min(depth, bm25.size());
  std::partial_sort(bm25.begin(), bm25.begin() + static_cast<std::ptrdiff_t>(nb), bm25.end(), bm25_better);
  const std::size_t nd = std::min(depth, nearest.size());
  std::partial_sort(nearest.begin(), nearest.begin() + static_cast<std::ptrdiff_t>(nd), nearest.end());
  std::unordered_map<uint32_t, Candidate> candidates;
  double best_bm25 = 0.0;
  for (std::size_t i = 0; i < nb; ++i) {
    Candidate& c = candidates[bm25[i].id];
    c.bm25 = bm25[i].score;
    c.bm25_rank = static_cast<int64_t>(i + 1);
    best_bm25 = std::max(best_bm25, c.bm25);
  }
  for (std::size_t i = 0; i < nd; ++i) {
    Candidate& c = candidates[nearest[i].second];
    c.dense = dense_similarity(metric, nearest[i].first);
    c.dense_rank = static_cast<int64_t>(i + 1);
  }
  if (nd > 0) {  // complete_dense(): BM25 candidates outside the dense list keep their similarity
    for (std::size_t i = 0; i < nb; ++i) {
      Candidate& c = candidates[bm25[i].id];
      if (c.dense_rank == 0 && std::isfinite(bm25[i].distance)) c.dense = dense_similarity(metric, bm25[i].distance);
    }
  }
  return fuse(candidates, best_bm25, q, dense && nd > 0);
}

std::vector<uint8_t> RetrievalPipeline::serialize() const {
  const Impl& m = *impl_;
  ByteWriter w;
  // Without metadata the bytes are those of format version 1, which older releases read.
  begin_envelope(w, kMagic, m.metadata.empty() ? 1 : kFormatVersion);
  w.put_u64(m.options.token_budget);
  w.put_f64(m.options.k1);
  w.put_f64(m.options.b);
  const std::vector<uint8_t> dense = m.dense.serialize();
  const std::vector<uint8_t> sparse = m.sparse.serialize();
  w.put_u64(dense.size());
  w.put_bytes(dense.data(), dense.size());
  w.put_u64(sparse.size());
  w.put_bytes(sparse.data(), sparse.size());
  if (!m.metadata.empty()) {
    // Version 2: u32 N documents with metadata, by ascending id: u32 id, u32 field count, then
    // per field (ascending key) u32 key length, key bytes, u8 type (0 string, 1 number,
    // 2 boolean), value (u32 length + bytes, f64, u8).
    std::vector<uint32_t> ids;
    ids.reserve(m.metadata.size());
    for (const auto& entry : m.metadata) ids.push_back(entry.first);
    std::sort(ids.begin(), ids.end());
    w.put_u32(static_cast<uint32_t>(ids.size()));
    for (uint32_t id : ids) {
      const Metadata& fields = m.metadata.at(id);
      w.put_u32(id);
      w.put_u32(static_cast<uint32_t>(fields.size()));
      for (const auto& [key, value] : fields) {
        w.put_string(key);
        put_value(w, value);
      }
    }
  }
  return finish_envelope(std::move(w));
}

Result<RetrievalPipeline> RetrievalPipeline::deserialize(const uint8_t* data, std::size_t size) {
  // Version 1 (no metadata section) and 2 both load: peek at the version, then let the
  // envelope check everything (a flipped version bit fails its checksum).
  uint32_t version = kFormatVersion;
  if (size >= 12 && data[8] == 1 && data[9] == 0 && data[10] == 0 && data[11] == 0) version = 1;
  auto payload = open_envelope(data, size, kMagic, version, "RetrievalPipeline");
  if (!payload) return payload.status();
  ByteReader r(payload->data, payload->size);
  uint64_t token_budget = 0, dense_len = 0, sparse_len = 0;
  double k1 = 0, b = 0;
  if (!r.get_u64(token_budget) || !r.get_f64(k1) || !r.get_f64(b) || !r.get_u64(dense_len) || !r.fits(dense_len, 1)) {
    return corrupt_data("RetrievalPipeline: truncated header");
  }
  const uint8_t* dense_bytes = payload->data + r.position();
  r.skip(static_cast<std::size_t>(dense_len));
  if (!r.get_u64(sparse_len) || !r.fits(sparse_len, 1)) return corrupt_data("RetrievalPipeline: truncated BM25 section");
  const uint8_t* sparse_bytes = payload->data + r.position();
  r.skip(static_cast<std::size_t>(sparse_len));
  if (!r.ok()) return corrupt_data("RetrievalPipeline: trailing or missing bytes");
  const std::size_t metadata_at = r.position();
  if (version == 1 && r.remaining() != 0) return corrupt_data("RetrievalPipeline: trailing or missing bytes");
  auto dense = HNSW::deserialize(dense_bytes, static_cast<std::size_t>(dense_len));
  if (!dense) return Status(dense.status().code(), "RetrievalPipeline: " + dense.status().message());
  auto sparse = InvertedIndex::deserialize(sparse_bytes, static_cast<std::size_t>(sparse_len));
  if (!sparse) return Status(sparse.status().code(), "RetrievalPipeline: " + sparse.status().message());
  std::unordered_map<uint32_t, Metadata> metadata;
  if (version >= 2) {
    ByteReader mr(payload->data + metadata_at, payload->size - metadata_at);
    auto bad = [](const std::string& why) { return corrupt_data("RetrievalPipeline: metadata " + why); };
    uint32_t n = 0;
    // Each document takes at least 8 + one field of 4 + 1 + 1 bytes.
    if (!mr.get_u32(n) || n == 0 || !mr.fits(n, 14)) return bad("count");
    metadata.reserve(n);
    uint32_t previous = 0;
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t id = 0, fields = 0;
      if (!mr.get_u32(id) || !mr.get_u32(fields)) return bad("truncated");
      if ((i > 0 && id <= previous) || !sparse->has_document(id)) return bad("of an unknown or repeated document " + std::to_string(id));
      if (fields == 0 || fields > kMaxMetadataFields || !mr.fits(fields, 6)) return bad("field count of document " + std::to_string(id));
      previous = id;
      Metadata& m = metadata[id];
      m.resize(fields);
      for (uint32_t f = 0; f < fields; ++f) {
        if (!mr.get_string(m[f].first) || !get_value(mr, m[f].second)) return bad("field of document " + std::to_string(id));
        if (f > 0 && !(m[f - 1].first < m[f].first)) return bad("keys of document " + std::to_string(id) + " out of order");
      }
    }
    if (!mr.ok() || !mr.at_end()) return corrupt_data("RetrievalPipeline: trailing or missing bytes");
  }
  if (sparse->k1() != k1 || sparse->b() != b) return corrupt_data("RetrievalPipeline: BM25 parameters disagree");
  RetrievalPipelineOptions o;
  o.embedding_dim = dense->dim();
  o.hnsw_m = dense->m();
  o.hnsw_ef_construction = dense->ef_construction();
  o.hnsw_ef_search = dense->ef_search();
  o.seed = dense->seed();
  o.metric = dense->metric();
  o.token_budget = token_budget;
  o.k1 = k1;
  o.b = b;
  auto pipeline = assemble(o, std::move(dense.value()), std::move(sparse.value()));
  if (pipeline) pipeline->impl_->metadata = std::move(metadata);
  return pipeline;
}

}  // namespace llmds
