// SPDX-License-Identifier: MIT
// embind surface of HNSW. Vectors travel through one scratch buffer owned by each index (grown
// on demand, shrunk after a large batch): JS asks for it with scratch(n), writes the vectors at
// that address, then calls add/search with lengths only; search results are written back into
// the same buffer after the input, so a query costs two embind calls and no allocation.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "common.hpp"
#include "llmds/hnsw.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

int32_t last_create_code = 0;  // why the last create/deserialize returned null

class RawHNSW {
 public:
  explicit RawHNSW(HNSW index) : index_(std::move(index)) {}

  /// nullptr (lastErrorMessage and lastCode set) when the options are invalid.
  static std::unique_ptr<RawHNSW> create(uint32_t dim, uint32_t m, uint32_t ef_construction, uint32_t ef_search,
                                         double seed, uint32_t metric) {
    HnswOptions o;
    o.dim = dim;
    o.m = m;
    o.ef_construction = ef_construction;
    o.ef_search = ef_search;
    o.seed = static_cast<uint64_t>(seed);  // JS checked: an integer in [0, 2^53)
    o.metric = static_cast<Metric>(metric);
    return adopt(HNSW::create(o));
  }

  /// Reads `n` bytes at `bytes` (JS-allocated); nullptr with lastCode corrupt_data/version_mismatch.
  static std::unique_ptr<RawHNSW> deserialize(uintptr_t bytes, uint32_t n) {
    return adopt(HNSW::deserialize(heap_ptr<uint8_t>(bytes), n));
  }

  static int32_t last_code() { return last_create_code; }

  /// Address of at least `words` 4-byte slots, valid until the next scratch() call.
  uintptr_t scratch(uint32_t words) {
    const std::size_t want = std::max<std::size_t>(words, 64);
    if (want > scratch_.size() || (scratch_.size() > kKeepWords && want < scratch_.size() / 4)) {
      std::vector<uint32_t>(want).swap(scratch_);
    }
    return reinterpret_cast<uintptr_t>(scratch_.data());
  }

  /// The vector is the first `len` floats of the scratch buffer.
  int32_t add(uint32_t len, uint32_t id) { return report(index_.add(floats(), len, id)); }

  /// `len` floats of vectors, then `n` uint32 ids, in the scratch buffer.
  int32_t add_batch(uint32_t len, uint32_t n) { return report(index_.add_batch(floats(), len, words() + len, n)); }

  int32_t remove(uint32_t id) { return report(index_.remove(id)); }
  bool has(uint32_t id) const { return index_.has(id); }
  uint32_t size() const { return index_.size(); }

  /// Query = first `len` floats of scratch. Writes k ids (int32) then k distances (float32)
  /// after it; returns the number found, or -(error code).
  int32_t search(uint32_t len, uint32_t k, uint32_t ef) {
    auto r = index_.search(floats(), len, k, ef);
    if (!r) return -report(r.status());
    int32_t* ids = reinterpret_cast<int32_t*>(words() + len);
    float* dists = reinterpret_cast<float*>(words() + len + k);
    for (std::size_t i = 0; i < r->size(); ++i) {
      ids[i] = static_cast<int32_t>((*r)[i].id);
      dists[i] = (*r)[i].distance;
    }
    return static_cast<int32_t>(r->size());
  }

  /// Queries = first `len` floats of scratch (n × dim). Writes n × k ids then n × k distances
  /// after them; returns 0 or -(error code).
  int32_t search_batch(uint32_t len, uint32_t k, uint32_t ef) {
    auto r = index_.search_batch(floats(), len, k, ef);
    if (!r) return -report(r.status());
    std::memcpy(words() + len, r->ids.data(), r->ids.size() * 4);
    std::memcpy(words() + len + r->ids.size(), r->distances.data(), r->distances.size() * 4);
    return 0;
  }

  val serialize() const { return copy_out(index_.serialize()); }

  uint32_t dim() const { return index_.dim(); }
  uint32_t m() const { return index_.m(); }
  uint32_t ef_construction() const { return index_.ef_construction(); }
  uint32_t ef_search() const { return index_.ef_search(); }
  int32_t set_ef_search(uint32_t ef) { return report(index_.set_ef_search(ef)); }
  uint32_t metric() const { return static_cast<uint32_t>(index_.metric()); }
  double seed() const { return static_cast<double>(index_.seed()); }

  val stats() const {
    const HnswStats s = index_.stats();
    val o = val::object();
    o.set("size", s.size);
    o.set("levels", s.levels);
    o.set("entryPoint", static_cast<double>(s.entry_point));
    o.set("edges", static_cast<double>(s.edges));
    o.set("avgDegree", s.avg_degree);
    o.set("bytes", static_cast<double>(s.bytes));
    return o;
  }

 private:
  static constexpr std::size_t kKeepWords = 1u << 18;  // 1 MiB stays allocated between calls

  static std::unique_ptr<RawHNSW> adopt(Result<HNSW> r) {
    if (!r) {
      last_create_code = report(r.status());
      return nullptr;
    }
    last_create_code = 0;
    return std::make_unique<RawHNSW>(std::move(r.value()));
  }

  uint32_t* words() { return scratch_.data(); }
  const float* floats() const { return reinterpret_cast<const float*>(scratch_.data()); }

  HNSW index_;
  std::vector<uint32_t> scratch_;
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_hnsw) {
  using namespace llmds::wasm;
  emscripten::class_<RawHNSW>("RawHNSW")
      .class_function("create", LLMDS_GUARD(&RawHNSW::create))
      .class_function("deserialize", LLMDS_GUARD(&RawHNSW::deserialize))
      .class_function("lastCode", LLMDS_GUARD(&RawHNSW::last_code))
      .function("scratch", LLMDS_GUARD(&RawHNSW::scratch))
      .function("add", LLMDS_GUARD(&RawHNSW::add))
      .function("addBatch", LLMDS_GUARD(&RawHNSW::add_batch))
      .function("remove", LLMDS_GUARD(&RawHNSW::remove))
      .function("has", LLMDS_GUARD(&RawHNSW::has))
      .function("size", LLMDS_GUARD(&RawHNSW::size))
      .function("search", LLMDS_GUARD(&RawHNSW::search))
      .function("searchBatch", LLMDS_GUARD(&RawHNSW::search_batch))
      .function("serialize", LLMDS_GUARD(&RawHNSW::serialize))
      .function("dim", LLMDS_GUARD(&RawHNSW::dim))
      .function("m", LLMDS_GUARD(&RawHNSW::m))
      .function("efConstruction", LLMDS_GUARD(&RawHNSW::ef_construction))
      .function("efSearch", LLMDS_GUARD(&RawHNSW::ef_search))
      .function("setEfSearch", LLMDS_GUARD(&RawHNSW::set_ef_search))
      .function("metric", LLMDS_GUARD(&RawHNSW::metric))
      .function("seed", LLMDS_GUARD(&RawHNSW::seed))
      .function("stats", LLMDS_GUARD(&RawHNSW::stats));
}
