// SPDX-License-Identifier: MIT
// embind surface of KVCache and PagedAllocator: pointers and counts in, codes and copies out.
// attach/append leave their plan in the result slot (int32: cached tokens, compute-from, the
// three list lengths, then the block table, new pages and copies), which JS copies out: a
// decode step's append stays one call and builds no JS object here.
#include <algorithm>
#include <memory>

#include "common.hpp"
#include "llmds/block_hash.hpp"
#include "llmds/kv_cache.hpp"
#include "llmds/paged_allocator.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

/// 64-bit hashes as a Uint32Array of (low, high) word pairs, which JS views as a BigUint64Array
/// (embind has no 64-bit typed arrays without WASM_BIGINT).
val hash_words(const uint64_t* hashes, std::size_t n) { return copy_out(reinterpret_cast<const uint32_t*>(hashes), 2 * n); }

val allocator_limits() {
  val o = val::object();
  o.set("maxPageSize", PagedAllocator::kMaxPageSize);
  o.set("maxPages", PagedAllocator::kMaxPages);
  return o;
}

class RawKVCache {
 public:
  explicit RawKVCache(KVCache cache) : cache_(std::move(cache)) {}

  /// layers 0: no K/V payload. dtype 0 = f32, 1 = f16.
  static std::unique_ptr<RawKVCache> create(uint32_t page_size, uint32_t max_pages, bool sharing, bool events,
                                            uint32_t layers, uint32_t kv_heads, uint32_t head_dim, uint32_t dtype) {
    KVCacheOptions o;
    o.page_size = page_size;
    o.max_pages = max_pages;
    o.enable_prefix_sharing = sharing;
    o.events = events;
    o.kv.layers = layers;
    o.kv.kv_heads = kv_heads;
    o.kv.head_dim = head_dim;
    o.kv.dtype = dtype == 1 ? KVDtype::f16 : KVDtype::f32;
    return adopt<RawKVCache>(KVCache::create(o));
  }
  static val limits() {
    val o = allocator_limits();
    o.set("maxLayers", KVPayloadOptions::kMaxLayers);
    o.set("maxKVHeads", KVPayloadOptions::kMaxKVHeads);
    o.set("maxHeadDim", KVPayloadOptions::kMaxHeadDim);
    o.set("maxQueryHeads", KVPayloadOptions::kMaxQueryHeads);
    return o;
  }

  /// The chained hashes as hash_words(), or null.
  static val block_hashes(uintptr_t tokens, uint32_t n, uint32_t page_size) {
    auto hashes = llmds::block_hashes(heap_ptr<TokenId>(tokens), n, page_size);
    if (!hashes) {
      report(hashes.status());
      return val::null();
    }
    return hash_words(hashes->data(), hashes->size());
  }

  /// prefix_n < 0: no declared prefix. 0 with the plan in the result slot, or kFailed.
  int32_t attach(uint32_t seq, uintptr_t tokens, uint32_t n, uintptr_t prefix, int32_t prefix_n) {
    const TokenId* t = heap_ptr<TokenId>(tokens);
    const Status st = prefix_n < 0 ? cache_.attach(seq, t, n, -1, &plan_)
                                   : cache_.attach(seq, t, n, heap_ptr<TokenId>(prefix),
                                                   static_cast<std::size_t>(prefix_n), &plan_);
    return plan_out(st);
  }
  int32_t append(uint32_t seq, uintptr_t tokens, uint32_t n) {
    return plan_out(cache_.append(seq, heap_ptr<TokenId>(tokens), n, &plan_));
  }
  uintptr_t result_address() const { return result_.address(); }
  void clear() { cache_.clear(); }

  /// `n` positions of K and V (n x kvHeads x headDim floats each) that JS wrote into the heap.
  int32_t write_kv(uint32_t seq, uint32_t layer, uint32_t from, uintptr_t k, uintptr_t v, uint32_t n) {
    return report(cache_.write_kv(seq, layer, from, heap_ptr<float>(k), heap_ptr<float>(v), n));
  }
  /// { k, v } as fresh Float32Arrays, or null.
  val read_kv(uint32_t seq, uint32_t layer, uint32_t from, uint32_t n) {
    const std::size_t floats = static_cast<std::size_t>(n) * cache_.payload().kv_heads * cache_.payload().head_dim;
    floats_.resize(2 * floats);
    const Status st = cache_.read_kv(seq, layer, from, n, floats_.data(), floats_.data() + floats);
    if (!st.ok()) {
      report(st);
      return val::null();
    }
    val o = val::object();
    o.set("k", copy_out(floats_.data(), floats));
    o.set("v", copy_out(floats_.data() + floats, floats));
    return o;
  }
  /// m x numHeads x headDim floats as a fresh Float32Array, or null.
  val attention(uint32_t seq, uint32_t layer, uintptr_t q, uint32_t m, uint32_t num_heads, double scale) {
    floats_.resize(static_cast<std::size_t>(m) * num_heads * cache_.payload().head_dim);
    const Status st = cache_.attention(seq, layer, heap_ptr<float>(q), m, num_heads, static_cast<float>(scale), floats_.data());
    if (!st.ok()) {
      report(st);
      return val::null();
    }
    return copy_out(floats_);
  }

  /// Oldest first: { type, hashes: Uint32Array word pairs, parent: Uint32Array(2) | null,
  /// tokens: Int32Array } (JS turns the words into BigUint64Array / bigint).
  val drain_events() {
    const std::vector<KVEvent> events = cache_.drain_events();
    val out = val::array();
    for (const KVEvent& e : events) {
      val o = val::object();
      o.set("type", e.type == KVEvent::Type::stored ? "stored" : e.type == KVEvent::Type::removed ? "removed" : "cleared");
      o.set("hashes", hash_words(e.block_hashes.data(), e.block_hashes.size()));
      o.set("parent", e.has_parent ? hash_words(&e.parent_hash, 1) : val::null());
      o.set("tokens", copy_out(e.tokens));
      out.call<void>("push", o);
    }
    return out;
  }
  val findable_hashes() const {
    const std::vector<uint64_t> hashes = cache_.findable_hashes();
    return hash_words(hashes.data(), hashes.size());
  }
  int32_t fork(uint32_t src, uint32_t dst) { return report(cache_.fork(src, dst)); }
  bool detach(uint32_t seq) { return cache_.detach(seq); }
  bool has(uint32_t seq) const { return cache_.has(seq); }
  /// null for an unknown sequence: an answer, not a failure.
  val get(uint32_t seq) const {
    auto tokens = cache_.get(seq);
    return tokens ? copy_out(tokens.value()) : val::null();
  }
  val block_table(uint32_t seq) const { return array_or_null(cache_.block_table(seq)); }
  uint32_t match_prefix(uintptr_t tokens, uint32_t n) const {
    return static_cast<uint32_t>(cache_.match_prefix(heap_ptr<TokenId>(tokens), n));
  }
  val page_states() const { return copy_out(cache_.page_states()); }
  double pending_events() const { return static_cast<double>(cache_.pending_events()); }
  val stats() const {
    const KVCacheStats s = cache_.stats();
    val o = val::object();
    o.set("sequences", s.sequences);
    o.set("totalPages", s.total_pages);
    o.set("usedPages", s.used_pages);
    o.set("freePages", s.free_pages);
    o.set("cachedPages", s.cached_pages);
    o.set("sharedPages", s.shared_pages);
    o.set("prefixHits", static_cast<double>(s.prefix_hits));
    o.set("prefixMisses", static_cast<double>(s.prefix_misses));
    o.set("hitTokens", static_cast<double>(s.hit_tokens));
    o.set("cowCopies", static_cast<double>(s.cow_copies));
    o.set("evictions", static_cast<double>(s.evictions));
    o.set("tokens", static_cast<double>(s.tokens));
    o.set("bytes", static_cast<double>(s.bytes));
    o.set("payloadBytes", static_cast<double>(s.payload_bytes));
    return o;
  }

 private:
  int32_t plan_out(const Status& st) {
    if (!st.ok()) return report(st);
    const std::size_t words = 5 + plan_.block_table.size() + plan_.new_pages.size() + plan_.copies.size();
    int32_t* out = result_.as<int32_t>(words);
    out[0] = static_cast<int32_t>(plan_.cached_tokens);
    out[1] = static_cast<int32_t>(plan_.compute_from);
    out[2] = static_cast<int32_t>(plan_.block_table.size());
    out[3] = static_cast<int32_t>(plan_.new_pages.size());
    out[4] = static_cast<int32_t>(plan_.copies.size());
    int32_t* at = std::copy(plan_.block_table.begin(), plan_.block_table.end(), out + 5);
    at = std::copy(plan_.new_pages.begin(), plan_.new_pages.end(), at);
    std::copy(plan_.copies.begin(), plan_.copies.end(), at);
    return 0;
  }

  KVCache cache_;
  KVPlan plan_;  // reused by every attach/append: no allocation once grown
  ResultSlot result_;
  std::vector<float> floats_;  // read_kv / attention output before it is copied out
};

class RawPagedAllocator {
 public:
  explicit RawPagedAllocator(PagedAllocator a) : alloc_(std::move(a)) {}

  static std::unique_ptr<RawPagedAllocator> create(uint32_t page_size, uint32_t max_pages) {
    return adopt<RawPagedAllocator>(PagedAllocator::create({page_size, max_pages}));
  }
  static val limits() { return allocator_limits(); }

  val alloc(uint32_t n) { return array_or_null(alloc_.alloc(n)); }
  int32_t free(uintptr_t ids, uint32_t n) { return report(alloc_.free(heap_ptr<PageId>(ids), n)); }
  val stats() const {
    const PagedAllocatorStats s = alloc_.stats();
    val o = val::object();
    o.set("totalPages", s.total_pages);
    o.set("allocatedPages", s.allocated_pages);
    o.set("freePages", s.free_pages);
    o.set("utilization", s.utilization);
    o.set("allocationCount", static_cast<double>(s.allocation_count));
    o.set("freeCount", static_cast<double>(s.free_count));
    return o;
  }

 private:
  PagedAllocator alloc_;
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_kv_cache) {
  using namespace llmds::wasm;
  emscripten::class_<RawKVCache>("RawKVCache")
      .class_function("create", LLMDS_GUARD(&RawKVCache::create))
      .class_function("limits", &RawKVCache::limits)
      .class_function("blockHashes", LLMDS_GUARD(&RawKVCache::block_hashes))
      .function("attach", LLMDS_GUARD(&RawKVCache::attach))
      .function("append", LLMDS_GUARD(&RawKVCache::append))
      .function("resultAddress", LLMDS_GUARD(&RawKVCache::result_address))
      .function("clear", LLMDS_GUARD(&RawKVCache::clear))
      .function("writeKV", LLMDS_GUARD(&RawKVCache::write_kv))
      .function("readKV", LLMDS_GUARD(&RawKVCache::read_kv))
      .function("attention", LLMDS_GUARD(&RawKVCache::attention))
      .function("drainEvents", LLMDS_GUARD(&RawKVCache::drain_events))
      .function("pendingEvents", LLMDS_GUARD(&RawKVCache::pending_events))
      .function("findableHashes", LLMDS_GUARD(&RawKVCache::findable_hashes))
      .function("fork", LLMDS_GUARD(&RawKVCache::fork))
      .function("detach", LLMDS_GUARD(&RawKVCache::detach))
      .function("has", LLMDS_GUARD(&RawKVCache::has))
      .function("get", LLMDS_GUARD(&RawKVCache::get))
      .function("blockTable", LLMDS_GUARD(&RawKVCache::block_table))
      .function("matchPrefix", LLMDS_GUARD(&RawKVCache::match_prefix))
      .function("pageStates", LLMDS_GUARD(&RawKVCache::page_states))
      .function("stats", LLMDS_GUARD(&RawKVCache::stats));
  emscripten::class_<RawPagedAllocator>("RawPagedAllocator")
      .class_function("create", LLMDS_GUARD(&RawPagedAllocator::create))
      .class_function("limits", &RawPagedAllocator::limits)
      .function("alloc", LLMDS_GUARD(&RawPagedAllocator::alloc))
      .function("free", LLMDS_GUARD(&RawPagedAllocator::free))
      .function("stats", LLMDS_GUARD(&RawPagedAllocator::stats));
}
