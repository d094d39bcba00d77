// SPDX-License-Identifier: MIT
/// @file hnsw.hpp
/// @brief HNSW approximate nearest-neighbour index (Malkov & Yashunin, 2016/2018).
///
/// Algorithm, as in the paper (and hnswlib, its reference implementation):
/// - each node gets level floor(-ln(U) * mL), mL = 1/ln(M), U uniform in (0, 1], from a
///   std::mt19937_64 seeded with `seed` (one draw per added vector); the mapping is computed in
///   exact integer arithmetic (level_from_random()) so it is identical on every platform;
/// - M links per node on upper layers, M0 = 2M on layer 0;
/// - greedy descent through the upper layers, then a beam search of width ef on the lower ones,
///   which stops when the nearest unexpanded candidate is farther than the farthest of the ef
///   best results found so far;
/// - heuristic neighbour selection (the paper's Algorithm 4, without extendCandidates; with
///   keepPrunedConnections when `keep_pruned_connections` is set). As in hnswlib, a candidate
///   list that is already shorter than M is kept whole.
///
/// Distances (smaller is nearer, as `search` reports them):
/// - l2:     squared Euclidean distance, sum (a_i - b_i)^2 (no square root);
/// - cosine: 1 - cos(a, b), in [0, 2]; vectors are normalised to unit length on insert and
///           stored normalised, queries are normalised too; zero vectors are rejected;
/// - ip:     1 - dot(a, b) (hnswlib's convention); may be negative.
///
/// Ids: vector ids are integers in [0, 2^31 - 1] (kMaxId) so that searchBatch can return them
/// in an Int32Array with -1 padding. add() of an id that is present is duplicate_id (no
/// replace); remove() then add() works and re-inserts the vector as a new node.
///
/// Removal marks the node deleted: it is never returned by search but stays in the graph as a
/// routing node, so the graph stays navigable. If the entry point is removed, the live node with
/// the highest level (lowest insertion order on ties) becomes the entry point. Removed nodes keep
/// their memory (they are tombstones, counted by stats().tombstones) until compact() rebuilds
/// the index without them, which the `compact_threshold` option can do automatically.
///
/// Determinism: the same options (seed included) and the same sequence of add/remove calls give
/// a bit-identical graph, and therefore identical serialize() bytes, natively (x86 SSE2/AVX2), in
/// wasm SIMD and in wasm portable builds: the distance kernels perform the same float operations
/// in the same order everywhere (src/simd/kernels.hpp), ties are broken by insertion order, and
/// no hash-map iteration order reaches the graph or the bytes.
///
/// Quantization (HnswOptions::quantization, README "HNSW semantics"): the graph walk, in
/// construction and search, measures f16 / i8 / b1 codes instead of f32 vectors; with
/// rescore > 0 the f32 vectors are kept apart and the best rescore × k candidates are measured
/// again exactly. Codes are deterministic like the f32 kernels (integer sums, fixed order).
///
/// Memory: each node's vector (or code) and layer-0 links (room for 2M) share one row, in blocks of at
/// most 1 MiB (or one row, if a row is larger) that are never moved or copied once full, so
/// the index grows without doubling arrays: the slack is at most one block, and a wasm heap
/// (which never shrinks) is not left holding an old and a new copy. Upper-layer links are
/// allocated per node at their exact size. stats().bytes counts all of it.
///
/// Not thread-safe: even search() uses per-index scratch buffers (the visited set).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llmds/id_filter.hpp"
#include "llmds/status.hpp"

namespace llmds {

/// Distance used by an HNSW index.
enum class Metric : uint8_t { l2 = 0, cosine = 1, ip = 2 };

/// How an HNSW index stores the vectors its graph walk measures (README, "HNSW semantics"):
/// - none: f32 (4 bytes per dimension);
/// - f16:  IEEE binary16 (2 bytes); queries stay f32 (f32 × f16 products);
/// - i8:   int8 per dimension with a per-vector scale and offset (1 byte + 16 per vector);
///         queries are encoded the same way and measured with integer dot products;
/// - b1:   one bit per dimension (v[i] > mean(v)), measured by Hamming distance; cosine and ip
///         only. Without rescoring, b1 distances are 2 × (differing bits) / dim.
enum class Quantization : uint8_t { none = 0, f16 = 1, i8 = 2, b1 = 3 };

/// "none", "f16", "i8" or "b1".
const char* quantization_name(Quantization q) noexcept;
/// Parses "none" / "f16" / "i8" / "b1"; anything else is invalid_argument.
Result<Quantization> parse_quantization(const std::string& name);

/// "l2", "cosine" or "ip".
const char* metric_name(Metric metric) noexcept;
/// Parses "l2" / "cosine" / "ip"; anything else is invalid_argument.
Result<Metric> parse_metric(const std::string& name);

struct HnswOptions {
  uint32_t dim = 0;               ///< vector dimension, [1, 65536]; required
  uint32_t m = 16;                ///< links per node on upper layers (2M on layer 0), [2, 512]
  uint32_t ef_construction = 200; ///< beam width while building, [1, 1048576]
  uint32_t ef_search = 50;        ///< default beam width of search(), [1, 1048576]
  uint64_t seed = 100;            ///< seeds the level generator (hnswlib's default seed)
  Metric metric = Metric::l2;
  bool keep_pruned_connections = false;  ///< Algorithm 4's keepPrunedConnections
  /// Automatic compaction: when a remove() leaves more than this fraction of the nodes as
  /// tombstones, it calls compact(). In [0, 1); 0 (the default) = never. Not serialized (an
  /// index is restored with 0): a runtime policy, set again with set_compact_threshold().
  double compact_threshold = 0.0;
  /// Compressed vectors for the graph walk (construction and search); see Quantization.
  Quantization quantization = Quantization::none;
  /// With quantization: search() measures the best rescore × k candidates of the walk (its
  /// beam is at least that wide) again on exact f32 vectors and returns the k nearest of those,
  /// with exact distances. The f32 vectors are kept (and counted in stats().bytes) only when
  /// rescore > 0. kRescoreDefault picks the mode's default (HNSW::default_rescore: 0 for f16
  /// and i8, 20 for b1); in [0, 1024]; must be 0 (or the default) without quantization.
  uint32_t rescore = 0xFFFFFFFFu;
};

/// HnswOptions::rescore's "the default for the quantization mode".
constexpr uint32_t kRescoreDefault = 0xFFFFFFFFu;

struct HnswStats {
  uint32_t size = 0;         ///< live (not removed) vectors
  uint32_t levels = 0;       ///< layers reachable from the entry point (0 when empty)
  int64_t entry_point = -1;  ///< id of the entry point, -1 when empty
  uint64_t edges = 0;        ///< directed links on all layers, removed nodes included
  double avg_degree = 0.0;   ///< mean out-degree on layer 0 over all nodes
  uint64_t bytes = 0;        ///< heap memory held by the index
  uint32_t nodes = 0;        ///< graph nodes, removed ones (tombstones) included
  uint32_t tombstones = 0;   ///< removed nodes still held: nodes - size (0 after compact())
  /// The part of `bytes` that holds the exact f32 vectors kept for rescoring (quantization
  /// with rescore > 0), 0 otherwise: the memory a deployment could keep outside the index.
  uint64_t rescore_bytes = 0;
};

struct Neighbor {
  uint32_t id;
  float distance;
};

/// How a filtered search finds its results (see HNSW::search).
enum class FilterPlan : uint8_t {
  automatic = 0,  ///< exact scan when the allowed set is small enough (kExactScanFactor), else graph
  graph = 1,      ///< always the graph walk
  exact = 2,      ///< always the exact scan of the allowed ids
};

/// search_batch() output: n × k, row-major, nearest first, padded with -1 / +Infinity.
struct HnswBatchResult {
  std::vector<int32_t> ids;
  std::vector<float> distances;
};

class HNSW {
 public:
  static constexpr uint32_t kMaxDim = 65536;
  static constexpr uint32_t kMinM = 2;
  static constexpr uint32_t kMaxM = 512;
  static constexpr uint32_t kMaxEf = 1u << 20;
  static constexpr uint32_t kMaxK = 1u << 20;
  static constexpr uint32_t kMaxId = 0x7FFFFFFFu;
  static constexpr uint32_t kMaxLevel = 63;
  static constexpr uint32_t kMaxNodes = 0x7FFFFFFFu;
  /// search_batch() refuses to produce more than this many result slots (n × k).
  static constexpr uint64_t kMaxBatchResults = 1ull << 24;
  static constexpr uint32_t kMaxRescore = 1024;
  /// Format 2 adds the quantization, rescore and codes; an index without quantization is still
  /// written as format 1 (the same bytes as before), and both load.
  static constexpr uint32_t kFormatVersion = 2;
  /// rescore's default for a quantization mode (HnswOptions::rescore = kRescoreDefault).
  static uint32_t default_rescore(Quantization q) noexcept;
  static constexpr const char* kMagic = "LLMDSHNW";

  /// Validates the options (invalid_argument naming the bad one) and builds an empty index.
  static Result<HNSW> create(const HnswOptions& options);

  HNSW(HNSW&&) noexcept;
  HNSW& operator=(HNSW&&) noexcept;
  ~HNSW();

  /// Inserts `vector` (`len` must equal dim) under `id`. Errors: dimension_mismatch,
  /// invalid_argument (id out of range, NaN/Infinity, zero vector with cosine),
  /// duplicate_id (id present), capacity_exceeded.
  Status add(const float* vector, std::size_t len, uint32_t id);
  /// Inserts n = n_ids vectors (`vectors` is n × dim row-major, `len` floats in total) in order.
  /// All-or-nothing: every vector and id (including repeats inside the batch) is validated first.
  Status add_batch(const float* vectors, std::size_t len, const uint32_t* ids, std::size_t n_ids);
  /// Out of memory: add() and add_batch() give the strong guarantee (a std::bad_alloc leaves the
  /// graph, ids, vectors and random generator as they were; stats().bytes may count room
  /// reserved by the failed call, as it counts the scratch every search grows).
  ///
  /// Allocates everything the next `n` vectors added need (n add() calls or one add_batch() of
  /// n), so that those calls cannot throw std::bad_alloc; throws it itself (changing nothing
  /// but reserved capacity) when memory is short. For callers that must update several
  /// structures together: reserve here, change the others, then add.
  void reserve(std::size_t n);
  /// Marks `id` removed (not_found if it is not present). May compact() (compact_threshold);
  /// if that runs out of memory the remove still succeeds and the tombstones stay.
  Status remove(uint32_t id);
  /// Rebuilds the index without its tombstones, releasing their memory: the result is exactly
  /// the index that create() with the same options followed by add() of the live vectors in
  /// their insertion order would build (levels redrawn from the seed, graph rebuilt with
  /// efConstruction; vectors copied as stored), so recall is that of a fresh build and the
  /// operation is deterministic (and serialize() stays restorable: the level generator is the
  /// seed advanced by one draw per node). Costs as much as adding the live vectors again, and
  /// holds both versions in memory while it runs. Strong guarantee: on std::bad_alloc the index
  /// is unchanged. Without tombstones it does nothing.
  Status compact();
  bool has(uint32_t id) const noexcept;
  uint32_t size() const noexcept;
  /// Graph nodes, tombstones included (stats().nodes, in O(1): stats() walks every node).
  uint32_t nodes() const noexcept;

  /// The k nearest live vectors to `query`, nearest first (fewer when the index holds fewer).
  /// `ef` = 0 uses ef_search(); the beam width is max(ef, k).
  Result<std::vector<Neighbor>> search(const float* query, std::size_t len, uint32_t k, uint32_t ef = 0) const;
  /// One search per row of `queries` (n × dim row-major, `len` floats in total).
  Result<HnswBatchResult> search_batch(const float* queries, std::size_t len, uint32_t k, uint32_t ef = 0) const;

  /// Filtered search: the k nearest live vectors among the ids `filter` allows (fewer only when
  /// fewer are allowed), nearest first. The filter is compiled first into a mask over the graph
  /// (one lookup per listed id, or one predicate call per live node); then either
  /// - the graph walk: disallowed nodes are walked through like removed ones (they route, and
  ///   their links are followed) but never enter the results, and the beam holds `ef` allowed
  ///   results, so the walk widens by itself as the filter gets more selective; or
  /// - the exact scan: every allowed vector is measured (exact results).
  /// `automatic` scans when allowed² <= kExactScanFactor × max(ef, k) × M × live, i.e. when
  /// measuring the allowed vectors costs less than the walk is expected to (the walk's cost
  /// grows as 1/selectivity); the factor was measured (README, "HNSW semantics").
  Result<std::vector<Neighbor>> search(const float* query, std::size_t len, uint32_t k, uint32_t ef,
                                       const IdFilter& filter, FilterPlan plan = FilterPlan::automatic) const;
  /// search_batch() with one filter for every query (compiled once).
  Result<HnswBatchResult> search_batch(const float* queries, std::size_t len, uint32_t k, uint32_t ef,
                                       const IdFilter& filter, FilterPlan plan = FilterPlan::automatic) const;
  /// See search(..., filter, plan): the measured crossover between the graph walk and the scan.
  static constexpr double kExactScanFactor = 0.5;
  /// True when `automatic` would scan `allowed` of `live` vectors exactly at beam width `ef`.
  bool prefers_exact_scan(uint32_t allowed, uint32_t ef) const noexcept;

  /// The ids of the live vectors, in insertion order.
  std::vector<uint32_t> ids() const;

  /// Distances from `query` to the vectors of `ids` (as search() measures them); +Infinity for
  /// an id that is not in the index. Lets callers score candidates found elsewhere.
  Result<std::vector<float>> distances(const float* query, std::size_t len, const uint32_t* ids, std::size_t n) const;
  /// The checks add() applies to a vector (dimension, finite values, non-zero for cosine), with
  /// `what` naming it in the message; lets a caller validate before committing related changes.
  Status check_vector(const float* vector, std::size_t len, const std::string& what) const;

  Status set_ef_search(uint32_t ef);
  /// See HnswOptions::compact_threshold; invalid_argument outside [0, 1). Does not compact now.
  Status set_compact_threshold(double threshold);
  double compact_threshold() const noexcept;

  uint32_t dim() const noexcept;
  uint32_t m() const noexcept;
  uint32_t ef_construction() const noexcept;
  uint32_t ef_search() const noexcept;
  Metric metric() const noexcept;
  uint64_t seed() const noexcept;
  Quantization quantization() const noexcept;
  /// The rescore multiplier in effect (the mode's default resolved).
  uint32_t rescore() const noexcept;

  /// Walks every node (edges, degrees): not for a hot path.
  HnswStats stats() const noexcept;
  /// stats().bytes without the walk: the one memory figure, in O(1).
  std::size_t memory_bytes() const noexcept;

  /// Versioned, checksummed little-endian bytes (see serialize.hpp for the envelope, magic
  /// "LLMDSHNW"). Includes the options, the graph, the vectors and tombstones; restoring and then
  /// continuing to add gives the same graph as never having serialized.
  std::vector<uint8_t> serialize() const;
  /// Rejects truncated, altered or inconsistent input with corrupt_data, and other format
  /// versions with version_mismatch. Every count is checked against the remaining bytes before
  /// anything is allocated, and every link is checked before it can be followed.
  static Result<HNSW> deserialize(const uint8_t* data, std::size_t size);

  /// floor(-ln(U) / ln(m)) for U = ((raw >> 11) + 1) / 2^53, computed exactly with integers
  /// (U <= m^-L  <=>  (raw >> 11) + 1 <= 2^53 / m^L), so no libm difference between platforms
  /// can change a level. Capped at kMaxLevel.
  static uint32_t level_from_random(uint64_t raw, uint32_t m) noexcept;
  /// The uniform double in (0, 1] that level_from_random() implicitly uses.
  static double uniform_from_random(uint64_t raw) noexcept;

 private:
  struct Impl;
  explicit HNSW(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmds
