// SPDX-License-Identifier: MIT
/// @file retrieval_pipeline.hpp
/// @brief Hybrid retrieval: HNSW (dense) + BM25 (sparse) with score fusion and a result cache.
///
/// Fusion of the two candidate lists (each `candidate_depth(top_k)` long):
/// - weighted: score = w * dense + (1 - w) * bm25, where bm25 = BM25 / (best BM25 in the list)
///   (so a single or all-equal list scores 1, never 0). dense first maps the distance to a
///   similarity by the metric (cosine 1 - d/2, l2 1/(1 + d), ip 1/(1 + e^-(1 - d))), then
///   rescales it min-max over the dense result list (best 1, worst 0; a single or all-equal list
///   scores 1), so both signals span [0, 1]. BM25 candidates missing from the dense list get
///   their exact similarity, rescaled the same way and clamped at 0; a dense candidate outside
///   the BM25 list counts BM25 as 0.
/// - rrf: score = w / (60 + dense rank) + (1 - w) / (60 + BM25 rank), ranks from 1.
/// Without a query embedding the search is BM25 only (w = 0). Results are best first, ties by
/// ascending doc id.
///
/// The result cache (a TokenLRU over `token_budget` tokens; an entry costs the query's term
/// count + its result count) is keyed by every input that changes a result and cleared by every
/// add/remove. A Count-Min sketch counts queries: a cold query is cached only into free budget,
/// a hot one (seen >= 2 times) may evict least-recently-used entries, so hot queries are kept
/// preferentially.
///
/// Filters. A query's `filter` (ids or a predicate) and `where` (conditions on the documents'
/// metadata) both restrict the result to allowed documents (ANDed when both are given): both
/// candidate lists are searched with the filter inside (HNSW and BM25 filtered searches), so
/// the result is the fused top k among allowed documents. A predicate is called once per
/// document. A query with a `filter` bypasses the result cache (an id list or a predicate makes
/// a poor key: large, or not comparable); a `where` is part of the key (metadata only changes
/// with add/remove, which clear the cache).
///
/// Metadata: a flat list of (key, value) fields per document, a value being a string, a finite
/// number or a boolean. `where` conditions (WhereCondition) are ANDed; a document without the
/// field never matches a condition on it; values compare only with values of the same type
/// (the number 1 is not the string "1" nor true); strings order by Unicode code point (UTF-8
/// bytes); range conditions take numbers or strings.
///
/// Out of memory: add_document reserves the dense index's room before the BM25 side changes, so
/// both change together or not at all; search allocates its answer and cache entry before it
/// counts anything. A std::bad_alloc leaves documents, cache, counters and serialize() as they
/// were; stats().bytes may count room reserved by the failed call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <string>
#include <utility>

#include "llmds/hnsw.hpp"
#include "llmds/id_filter.hpp"
#include "llmds/inverted_index.hpp"
#include "llmds/sharding.hpp"
#include "llmds/status.hpp"

namespace llmds {

/// A metadata value: a string, a finite number or a boolean (make one with text/num/flag).
struct MetadataValue {
  enum class Type : uint8_t { string = 0, number = 1, boolean = 2 };
  Type type = Type::number;
  double number = 0.0;
  bool boolean = false;
  std::string string;

  static MetadataValue text(std::string s) {
    MetadataValue v;
    v.type = Type::string;
    v.string = std::move(s);
    return v;
  }
  static MetadataValue num(double x) {
    MetadataValue v;
    v.number = x == 0.0 ? 0.0 : x;  // -0 is stored as 0
    return v;
  }
  static MetadataValue flag(bool b) {
    MetadataValue v;
    v.type = Type::boolean;
    v.boolean = b;
    return v;
  }
  bool operator==(const MetadataValue& o) const noexcept;
  bool operator!=(const MetadataValue& o) const noexcept { return !(*this == o); }
};

/// A document's metadata: distinct keys (stored sorted by key).
using Metadata = std::vector<std::pair<std::string, MetadataValue>>;

enum class WhereOp : uint8_t { eq = 0, in = 1, gt = 2, gte = 3, lt = 4, lte = 5 };

/// One condition on one metadata field: eq and the ranges take exactly one value (ranges: a
/// number or a string), `in` any number of values (none matches nothing).
struct WhereCondition {
  std::string field;
  WhereOp op = WhereOp::eq;
  std::vector<MetadataValue> values;
};

/// Conditions, ANDed. Empty: every document.
using Where = std::vector<WhereCondition>;

struct RetrievalPipelineOptions {
  uint32_t embedding_dim = 384;
  uint32_t hnsw_m = 16;
  uint32_t hnsw_ef_construction = 200;
  uint32_t hnsw_ef_search = 50;
  uint64_t token_budget = 100000;  ///< result-cache budget in tokens; 0 turns the cache off
  uint64_t seed = 100;
  Metric metric = Metric::cosine;
  double k1 = 1.2;
  double b = 0.75;
};

enum class Fusion : uint8_t { weighted = 0, rrf = 1 };

struct PipelineQuery {
  std::string_view text;
  const float* embedding = nullptr;  ///< optional: nullptr for BM25 only
  std::size_t embedding_len = 0;
  uint32_t top_k = 10;
  double fusion_weight = 0.5;  ///< weight of the dense signal, in [0, 1]
  Fusion fusion = Fusion::weighted;
  /// Allowed documents (see the file comment); default: all.
  IdFilter filter;
  /// Metadata conditions, or nullptr for none.
  const Where* where = nullptr;
};

struct RetrievalPipelineStats {
  uint32_t documents = 0;        ///< documents in the pipeline (all are BM25-indexed)
  uint32_t dense_documents = 0;  ///< documents with an embedding
  uint64_t searches = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  uint32_t cache_entries = 0;
  uint64_t cache_tokens = 0;
  uint64_t bytes = 0;  ///< approximate heap bytes of both indexes, cache, sketch and metadata
  uint32_t metadata_documents = 0;  ///< documents with metadata
};

/// One shard's raw candidates for a query (RetrievalPipeline::search_shard): what
/// merge_shard_results needs to fuse several shards exactly as one pipeline fuses its own.
struct ShardHits {
  uint32_t top_k = 0;                  ///< the query's top_k: lists hold candidate_depth(top_k) at most
  Metric metric = Metric::cosine;      ///< the shard's dense metric (maps distances to similarities)
  bool dense = false;                  ///< the query had an embedding
  RankedHits bm25;                     ///< BM25 top candidate_depth(top_k), raw scores, best first
  std::vector<float> bm25_distances;   ///< with `dense`: each bm25 hit's dense distance (+inf: none)
  std::vector<uint32_t> dense_ids;     ///< with `dense`: the nearest candidate_depth(top_k), nearest first
  std::vector<float> dense_distances;  ///< their distances
};

class RetrievalPipeline {
 public:
  /// Written when some document has metadata; snapshots without metadata are written as
  /// version 1 (what releases before metadata read), and both versions load.
  static constexpr uint32_t kFormatVersion = 2;
  static constexpr uint32_t kMaxMetadataFields = 256;
  static constexpr const char* kMagic = "LLMDSRPL";
  static constexpr uint32_t kMaxTopK = 1u << 16;
  static constexpr uint32_t kMaxDocId = HNSW::kMaxId;

  static Result<RetrievalPipeline> create(const RetrievalPipelineOptions& options);
  RetrievalPipeline(RetrievalPipeline&&) noexcept;
  RetrievalPipeline& operator=(RetrievalPipeline&&) noexcept;
  ~RetrievalPipeline();

  /// Indexes `text` (BM25) and, when `embedding` is given, the vector (HNSW); replaces a
  /// document with the same id. Atomic: on any error neither index changed.
  /// `metadata` (optional) replaces the document's metadata: at most kMaxMetadataFields fields,
  /// distinct keys, finite numbers (else invalid_argument, nothing changed).
  Status add_document(uint32_t doc_id, std::string_view text, const float* embedding = nullptr, std::size_t len = 0,
                      const Metadata* metadata = nullptr);
  /// Removes the document from both indexes; false when it was not there.
  bool remove_document(uint32_t doc_id);
  bool has_document(uint32_t doc_id) const noexcept;
  /// The document's metadata (sorted by key), or nullptr when it has none or is not there.
  const Metadata* metadata(uint32_t doc_id) const noexcept;
  /// The ids of the documents, in BM25 insertion order.
  std::vector<uint32_t> document_ids() const;
  /// Checks `where` as search() does (invalid_argument naming the bad condition).
  static Status check_where(const Where& where);

  /// Fused top-k (see the file comment). Not const: it updates the cache and the sketch.
  Result<RankedHits> search(const PipelineQuery& query);
  /// The same fusion with an exact dense list (a search beam over every node instead of HNSW's
  /// approximation; BM25 top-k is exact either way) and no cache: the reference search() is
  /// measured against.
  Result<RankedHits> search_exhaustive(const PipelineQuery& query) const;

  RetrievalPipelineStats stats() const noexcept;
  const RetrievalPipelineOptions& options() const noexcept;
  /// Candidates taken from each index for a top-k search.
  static uint32_t candidate_depth(uint32_t top_k) noexcept;

  /// Sharding (sharding.hpp): the BM25 side's own statistics, for merge_term_stats().
  TermStats term_stats() const;
  /// The statistics of `text`'s terms only.
  TermStats term_stats(std::string_view text) const;
  /// BM25 scores with corpus-wide statistics (InvertedIndex::set_global_stats); clears the
  /// result cache, since every BM25 score may change.
  Status set_global_stats(const TermStats& global);
  void clear_global_stats();
  bool has_global_stats() const noexcept;
  /// This shard's raw candidate lists for `q` (its fusion options are not used): the BM25 top
  /// candidate_depth(top_k) with raw scores and, with an embedding, the nearest
  /// candidate_depth(top_k) (HNSW, or exact with `exact`, as in search_exhaustive) plus the
  /// distance of every BM25 candidate. No cache, no counters.
  Result<ShardHits> search_shard(const PipelineQuery& q, bool exact = false) const;
  /// Fuses shards' search_shard() lists as one pipeline holding all their documents fuses its
  /// own (q's top_k, fusion_weight and fusion; its text and embedding are not used): the global
  /// BM25 and dense candidate lists are the best of the union, ties by ascending id. With
  /// global BM25 statistics on every shard the result equals search() of that pipeline when the
  /// dense lists are exact (search_exhaustive() with `exact` shards), except for dense distance
  /// ties at the list's end, which HNSW breaks by insertion order and this by id.
  /// invalid_argument when the shards disagree (embedding or not, metric), searched for a
  /// smaller top_k than q's, or share a document.
  static Result<RankedHits> merge_shard_results(const std::vector<ShardHits>& shards, const PipelineQuery& q);

  /// Both indexes and the options (not the cache or the sketch), magic "LLMDSRPL".
  std::vector<uint8_t> serialize() const;
  static Result<RetrievalPipeline> deserialize(const uint8_t* data, std::size_t size);

 private:
  struct Impl;
  explicit RetrievalPipeline(std::unique_ptr<Impl> impl);
  /// The cache and sketch around two built indexes: what create() and deserialize() share.
  static Result<RetrievalPipeline> assemble(const RetrievalPipelineOptions& o, HNSW dense, InvertedIndex sparse);
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmds
