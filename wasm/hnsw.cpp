// SPDX-License-Identifier: MIT
// embind surface of HNSW. A query is one call: JS writes it into its heap arena, search()
// leaves ids and distances in the result slot, and JS copies them out (no allocation, no JS
// object built on this side).
#include <memory>
#include <vector>

#include "common.hpp"
#include "llmds/hnsw.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

class RawHNSW {
 public:
  explicit RawHNSW(HNSW index) : index_(std::move(index)) {}

  static std::unique_ptr<RawHNSW> create(uint32_t dim, uint32_t m, uint32_t ef_construction, uint32_t ef_search,
                                         double seed, uint32_t metric, double compact_threshold,
                                         uint32_t quantization, double rescore) {
    HnswOptions o;
    o.dim = dim;
    o.m = m;
    o.ef_construction = ef_construction;
    o.ef_search = ef_search;
    o.seed = static_cast<uint64_t>(seed);  // JS checked: an integer in [0, 2^53)
    o.metric = static_cast<Metric>(metric);
    o.compact_threshold = compact_threshold;
    o.quantization = static_cast<Quantization>(quantization);
    // JS checked: -1 (the mode's default) or an integer in [0, maxRescore].
    o.rescore = rescore < 0 ? kRescoreDefault : static_cast<uint32_t>(rescore);
    return adopt<RawHNSW>(HNSW::create(o));
  }

  static std::unique_ptr<RawHNSW> deserialize(uintptr_t bytes, uint32_t n) {
    return adopt<RawHNSW>(HNSW::deserialize(heap_ptr<uint8_t>(bytes), n));
  }

  static val limits() {
    val o = val::object();
    o.set("maxDim", HNSW::kMaxDim);
    o.set("minM", HNSW::kMinM);
    o.set("maxM", HNSW::kMaxM);
    o.set("maxEf", HNSW::kMaxEf);
    o.set("maxK", HNSW::kMaxK);
    o.set("maxId", HNSW::kMaxId);
    o.set("maxBatchResults", static_cast<double>(HNSW::kMaxBatchResults));
    o.set("maxRescore", HNSW::kMaxRescore);
    return o;
  }

  int32_t add(uintptr_t vector, uint32_t len, uint32_t id) {
    return report(index_.add(heap_ptr<float>(vector), len, id));
  }
  int32_t add_batch(uintptr_t vectors, uint32_t len, uintptr_t ids, uint32_t n) {
    return report(index_.add_batch(heap_ptr<float>(vectors), len, heap_ptr<uint32_t>(ids), n));
  }
  /// Allocates all that the next `n` insertions need (an allocation failure reaches JS as
  /// out_of_memory with nothing changed), so a batch sent in chunks cannot fail half-way.
  void reserve(uint32_t n) { index_.reserve(n); }
  int32_t remove(uint32_t id) { return report(index_.remove(id)); }
  int32_t compact() { return report(index_.compact()); }
  double compact_threshold() const { return index_.compact_threshold(); }
  int32_t set_compact_threshold(double t) { return report(index_.set_compact_threshold(t)); }
  bool has(uint32_t id) const { return index_.has(id); }
  uint32_t size() const { return index_.size(); }

  /// Writes the ids (int32) then the distances (float32) of the hits into the result slot, k
  /// of each; returns the number found, or kFailed.
  int32_t search(uintptr_t query, uint32_t len, uint32_t k, uint32_t ef) {
    return hits_out(index_.search(heap_ptr<float>(query), len, k, ef), k);
  }

  /// search() among the ids of `allowed` (n of them; JS evaluated a predicate into this list).
  int32_t search_filtered(uintptr_t query, uint32_t len, uint32_t k, uint32_t ef, uintptr_t allowed, uint32_t n) {
    return hits_out(index_.search(heap_ptr<float>(query), len, k, ef, IdFilter::ids(heap_ptr<uint32_t>(allowed), n)), k);
  }

  /// The live ids in insertion order (what a JS predicate filter is evaluated over).
  val ids() const { return copy_out(index_.ids()); }

  /// `{ ids: Int32Array, distances: Float32Array }` (n × k each), or null. `filtered`: only
  /// the `n` ids at `allowed`.
  val search_batch(uintptr_t queries, uint32_t len, uint32_t k, uint32_t ef, bool filtered, uintptr_t allowed,
                   uint32_t n) const {
    const IdFilter filter = filtered ? IdFilter::ids(heap_ptr<uint32_t>(allowed), n) : IdFilter::all();
    auto r = index_.search_batch(heap_ptr<float>(queries), len, k, ef, filter);
    if (!r) {
      report(r.status());
      return val::null();
    }
    val o = val::object();
    o.set("ids", copy_out(r->ids));
    o.set("distances", copy_out(r->distances));
    return o;
  }

  uintptr_t result_address() const { return result_.address(); }

  val serialize() const { return copy_out(index_.serialize()); }

  uint32_t dim() const { return index_.dim(); }
  uint32_t m() const { return index_.m(); }
  uint32_t ef_construction() const { return index_.ef_construction(); }
  uint32_t ef_search() const { return index_.ef_search(); }
  int32_t set_ef_search(uint32_t ef) { return report(index_.set_ef_search(ef)); }
  uint32_t metric() const { return static_cast<uint32_t>(index_.metric()); }
  double seed() const { return static_cast<double>(index_.seed()); }
  uint32_t quantization() const { return static_cast<uint32_t>(index_.quantization()); }
  uint32_t rescore() const { return index_.rescore(); }

  val stats() const {
    const HnswStats s = index_.stats();
    val o = val::object();
    o.set("size", s.size);
    o.set("levels", s.levels);
    o.set("entryPoint", static_cast<double>(s.entry_point));
    o.set("nodes", s.nodes);
    o.set("tombstones", s.tombstones);
    o.set("edges", static_cast<double>(s.edges));
    o.set("avgDegree", s.avg_degree);
    o.set("bytes", static_cast<double>(s.bytes));
    o.set("rescoreBytes", static_cast<double>(s.rescore_bytes));
    return o;
  }

 private:
  /// The hits' ids (int32) then distances (float32) into the result slot, k of each; the number
  /// found, or kFailed.
  template <class Hits>
  int32_t hits_out(const Result<Hits>& r, uint32_t k) {
    if (!r) return report(r.status());
    uint32_t* out = result_.as<uint32_t>(2 * static_cast<std::size_t>(k));
    float* dists = reinterpret_cast<float*>(out + k);
    for (std::size_t i = 0; i < r->size(); ++i) {
      out[i] = (*r)[i].id;
      dists[i] = (*r)[i].distance;
    }
    return static_cast<int32_t>(r->size());
  }

  HNSW index_;
  ResultSlot result_;
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_hnsw) {
  using namespace llmds::wasm;
  emscripten::class_<RawHNSW>("RawHNSW")
      .class_function("create", LLMDS_GUARD(&RawHNSW::create))
      .class_function("deserialize", LLMDS_GUARD(&RawHNSW::deserialize))
      .class_function("limits", &RawHNSW::limits)
      .function("add", LLMDS_GUARD(&RawHNSW::add))
      .function("addBatch", LLMDS_GUARD(&RawHNSW::add_batch))
      .function("reserve", LLMDS_GUARD(&RawHNSW::reserve))
      .function("remove", LLMDS_GUARD(&RawHNSW::remove))
      .function("compact", LLMDS_GUARD(&RawHNSW::compact))
      .function("compactThreshold", LLMDS_GUARD(&RawHNSW::compact_threshold))
      .function("setCompactThreshold", LLMDS_GUARD(&RawHNSW::set_compact_threshold))
      .function("has", LLMDS_GUARD(&RawHNSW::has))
      .function("size", LLMDS_GUARD(&RawHNSW::size))
      .function("search", LLMDS_GUARD(&RawHNSW::search))
      .function("searchFiltered", LLMDS_GUARD(&RawHNSW::search_filtered))
      .function("ids", LLMDS_GUARD(&RawHNSW::ids))
      .function("searchBatch", LLMDS_GUARD(&RawHNSW::search_batch))
      .function("resultAddress", LLMDS_GUARD(&RawHNSW::result_address))
      .function("serialize", LLMDS_GUARD(&RawHNSW::serialize))
      .function("dim", LLMDS_GUARD(&RawHNSW::dim))
      .function("m", LLMDS_GUARD(&RawHNSW::m))
      .function("efConstruction", LLMDS_GUARD(&RawHNSW::ef_construction))
      .function("efSearch", LLMDS_GUARD(&RawHNSW::ef_search))
      .function("setEfSearch", LLMDS_GUARD(&RawHNSW::set_ef_search))
      .function("metric", LLMDS_GUARD(&RawHNSW::metric))
      .function("seed", LLMDS_GUARD(&RawHNSW::seed))
      .function("quantization", LLMDS_GUARD(&RawHNSW::quantization))
      .function("rescore", LLMDS_GUARD(&RawHNSW::rescore))
      .function("stats", LLMDS_GUARD(&RawHNSW::stats));
}
