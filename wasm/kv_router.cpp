// SPDX-License-Identifier: MIT
// embind surface of KVRouter: ids and request ids as UTF-8 (address, length) pairs, 64-bit
// hashes as little-endian (low, high) u32 word pairs. route* leaves its decision in the result
// slot as f64 (overlap blocks, overlap tokens, candidate count, then per candidate its worker's
// index in workers() order, overlap blocks, load and score), which JS copies out: routing
// builds no JS object here, and JS maps indices to the worker names it cached.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "llmds/kv_router.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

inline uint64_t join_words(uint32_t low, uint32_t high) { return (static_cast<uint64_t>(high) << 32) | low; }

class RawKVRouter {
 public:
  explicit RawKVRouter(KVRouter router) : router_(std::move(router)) {}

  static std::unique_ptr<RawKVRouter> create(uint32_t block_size, uint32_t policy, double overlap_weight,
                                             uint32_t mode, double capacity_blocks, double cache_threshold,
                                             double balance_abs, double balance_rel) {
    KVRouterOptions o;
    o.block_size = block_size;
    o.policy = static_cast<KVRouterOptions::Policy>(std::min<uint32_t>(policy, 255));
    o.overlap_weight = overlap_weight;
    o.mode = static_cast<KVRouterOptions::Mode>(std::min<uint32_t>(mode, 255));
    o.capacity_blocks = static_cast<uint64_t>(capacity_blocks);  // JS checked: an integer in range
    o.sglang_cache_threshold = cache_threshold;
    o.sglang_balance_abs = balance_abs;
    o.sglang_balance_rel = balance_rel;
    return adopt<RawKVRouter>(KVRouter::create(o));
  }
  static std::unique_ptr<RawKVRouter> deserialize(uintptr_t bytes, uint32_t n) {
    return adopt<RawKVRouter>(KVRouter::deserialize(heap_ptr<uint8_t>(bytes), n));
  }
  static val limits() {
    val o = val::object();
    o.set("maxWorkers", KVRouter::kMaxWorkers);
    o.set("maxCapacityBlocks", static_cast<double>(KVRouter::kMaxCapacityBlocks));
    return o;
  }

  val options() const {
    const KVRouterOptions& o = router_.options();
    val out = val::object();
    out.set("blockSize", o.block_size);
    out.set("policy", static_cast<uint32_t>(o.policy));
    out.set("overlapWeight", o.overlap_weight);
    out.set("mode", static_cast<uint32_t>(o.mode));
    out.set("capacityBlocks", static_cast<double>(o.capacity_blocks));
    out.set("sglangCacheThreshold", o.sglang_cache_threshold);
    out.set("sglangBalanceAbs", o.sglang_balance_abs);
    out.set("sglangBalanceRel", o.sglang_balance_rel);
    return out;
  }

  int32_t add_worker(uintptr_t id, uint32_t id_n, double capacity_blocks) {
    return changed(router_.add_worker(text_at(id, id_n), static_cast<uint64_t>(capacity_blocks)));
  }
  int32_t remove_worker(uintptr_t id, uint32_t id_n) { return changed(router_.remove_worker(text_at(id, id_n))); }
  val workers() const {
    val out = val::array();
    for (const std::string& id : router_.workers()) out.call<void>("push", val(id));
    return out;
  }
  bool has_worker(uintptr_t id, uint32_t id_n) const { return router_.has_worker(text_at(id, id_n)); }

  /// `n` hashes as word pairs. 0 with the decision in the result slot, or kFailed.
  int32_t route(uintptr_t hashes, uint32_t n, uintptr_t request, uint32_t request_n) {
    return decision_out(router_.route(heap_ptr<uint64_t>(hashes), n, text_at(request, request_n)));
  }
  int32_t route_tokens(uintptr_t tokens, uint32_t n, uintptr_t request, uint32_t request_n) {
    return decision_out(router_.route_tokens(heap_ptr<int32_t>(tokens), n, text_at(request, request_n)));
  }
  int32_t route_text(uintptr_t text, uint32_t n, uintptr_t request, uint32_t request_n) {
    return decision_out(router_.route_text(text_at(text, n), text_at(request, request_n)));
  }
  uintptr_t result_address() const { return result_.address(); }

  int32_t started(uintptr_t worker, uint32_t worker_n, uintptr_t request, uint32_t request_n, uint32_t prompt_tokens) {
    return report(router_.started(text_at(worker, worker_n), text_at(request, request_n), prompt_tokens));
  }
  int32_t finished(uintptr_t request, uint32_t request_n) { return report(router_.finished(text_at(request, request_n))); }
  double worker_load(uintptr_t worker, uint32_t worker_n) const { return value_or_failed(router_.load(text_at(worker, worker_n))); }
  double worker_blocks(uintptr_t worker, uint32_t worker_n) const {
    return value_or_failed(router_.worker_blocks(text_at(worker, worker_n)));
  }

  int32_t apply_stored(uintptr_t worker, uint32_t worker_n, uintptr_t hashes, uint32_t n, bool has_parent,
                       uint32_t parent_low, uint32_t parent_high, uintptr_t tokens, uint32_t n_tokens,
                       uint32_t block_size) {
    return report(router_.apply_stored(text_at(worker, worker_n), heap_ptr<uint64_t>(hashes), n, has_parent,
                                       join_words(parent_low, parent_high), heap_ptr<int32_t>(tokens), n_tokens,
                                       block_size));
  }
  int32_t apply_removed(uintptr_t worker, uint32_t worker_n, uintptr_t hashes, uint32_t n) {
    return report(router_.apply_removed(text_at(worker, worker_n), heap_ptr<uint64_t>(hashes), n));
  }
  int32_t apply_cleared(uintptr_t worker, uint32_t worker_n) { return report(router_.apply_cleared(text_at(worker, worker_n))); }

  val serialize() const { return copy_out(router_.serialize()); }
  val stats() const {
    const KVRouterStats s = router_.stats();
    val o = val::object();
    o.set("workers", s.workers);
    o.set("indexedBlocks", static_cast<double>(s.indexed_blocks));
    o.set("uniqueBlocks", static_cast<double>(s.unique_blocks));
    o.set("bytes", static_cast<double>(s.bytes));
    o.set("routed", static_cast<double>(s.routed));
    o.set("hitBlocks", static_cast<double>(s.hit_blocks));
    return o;
  }

 private:
  /// A status from a call that may change the worker list: the sorted ids are read again.
  int32_t changed(const Status& st) {
    if (st.ok()) sorted_valid_ = false;
    return report(st);
  }

  int32_t decision_out(const Result<RouteDecision>& r) {
    if (!r) return report(r.status());
    if (!sorted_valid_) {
      sorted_ = router_.workers();
      sorted_valid_ = true;
    }
    const RouteDecision& d = *r;
    double* out = result_.as<double>(3 + 4 * d.candidates.size());
    out[0] = d.overlap_blocks;
    out[1] = d.overlap_tokens;
    out[2] = static_cast<double>(d.candidates.size());
    double* at = out + 3;
    for (const RouteCandidate& c : d.candidates) {
      at[0] = static_cast<double>(std::lower_bound(sorted_.begin(), sorted_.end(), c.worker) - sorted_.begin());
      at[1] = c.overlap_blocks;
      at[2] = c.load;
      at[3] = c.score;
      at += 4;
    }
    return 0;
  }

  KVRouter router_;
  ResultSlot result_;
  std::vector<std::string> sorted_;  // workers() as of the last change: candidate names -> indices
  bool sorted_valid_ = false;
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_kv_router) {
  using namespace llmds::wasm;
  emscripten::class_<RawKVRouter>("RawKVRouter")
      .class_function("create", LLMDS_GUARD(&RawKVRouter::create))
      .class_function("deserialize", LLMDS_GUARD(&RawKVRouter::deserialize))
      .class_function("limits", &RawKVRouter::limits)
      .function("options", LLMDS_GUARD(&RawKVRouter::options))
      .function("addWorker", LLMDS_GUARD(&RawKVRouter::add_worker))
      .function("removeWorker", LLMDS_GUARD(&RawKVRouter::remove_worker))
      .function("workers", LLMDS_GUARD(&RawKVRouter::workers))
      .function("hasWorker", LLMDS_GUARD(&RawKVRouter::has_worker))
      .function("route", LLMDS_GUARD(&RawKVRouter::route))
      .function("routeTokens", LLMDS_GUARD(&RawKVRouter::route_tokens))
      .function("routeText", LLMDS_GUARD(&RawKVRouter::route_text))
      .function("resultAddress", LLMDS_GUARD(&RawKVRouter::result_address))
      .function("started", LLMDS_GUARD(&RawKVRouter::started))
      .function("finished", LLMDS_GUARD(&RawKVRouter::finished))
      .function("load", LLMDS_GUARD(&RawKVRouter::worker_load))
      .function("workerBlocks", LLMDS_GUARD(&RawKVRouter::worker_blocks))
      .function("applyStored", LLMDS_GUARD(&RawKVRouter::apply_stored))
      .function("applyRemoved", LLMDS_GUARD(&RawKVRouter::apply_removed))
      .function("applyCleared", LLMDS_GUARD(&RawKVRouter::apply_cleared))
      .function("serialize", LLMDS_GUARD(&RawKVRouter::serialize))
      .function("stats", LLMDS_GUARD(&RawKVRouter::stats));
}
