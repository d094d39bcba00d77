// SPDX-License-Identifier: MIT
/// @file kv_cache.hpp
/// @brief Paged token cache with prefix sharing, copy-on-write, fork and LRU retention.
///
/// A sequence's tokens live in fixed-size pages; its block table lists them in order, which is
/// what a paged-attention kernel indexes. A full page is identified by its whole history: the
/// chained block hash of every token from position 0 through its last token, the hash of NVIDIA
/// Dynamo's KV router (block_hash.hpp), so the page keys are the hashes KV events carry. Two sequences whose
/// histories agree share those pages (reference counted) instead of copying them. A hash hit
/// is always verified against the stored tokens and the parent page, so a collision can never
/// hand out wrong tokens. Unreferenced pages that hold a cached prefix stay findable until an
/// allocation needs their memory, and are then evicted least-recently-used first.
///
/// As a runtime's block manager: attach() and append() fill a KVPlan telling a runtime that keeps
/// the K/V tensors which positions to compute, into which pages, and which pages to copy first;
/// with KVCacheOptions::events the cache records KV events (stored / removed / cleared, the shape
/// of vLLM's KV events) from which a router can mirror exactly the set of findable pages.
///
/// With KVCacheOptions::kv (layers > 0) the cache also owns the K/V tensors: each page holds, per
/// layer, K and V for its page_size positions (kv_heads x head_dim values each, f32 or f16).
/// Shared pages share them, a write into a shared page copies it first, reused cached prefixes
/// keep them, and attention() computes causal grouped-query attention straight from the pages.
///
/// Out of memory: every operation allocates first and then commits without allocating, so a
/// std::bad_alloc leaves the cache exactly as it was, byte counts, plan and event queue included
/// (a failed call leaves the plan cleared).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "llmds/paged_allocator.hpp"
#include "llmds/status.hpp"

namespace llmds {

using SeqId = uint32_t;
using TokenId = int32_t;

/// Element type of the K/V payload. f16 is IEEE binary16: written with round-to-nearest-even,
/// read back (and fed to attention) widened to f32 exactly.
enum class KVDtype : uint8_t { f32, f16 };

/// The K/V payload a KVCache owns (KVCacheOptions::kv). layers == 0: no payload (the default;
/// the other fields are then ignored and cost nothing).
struct KVPayloadOptions {
  uint32_t layers = 0;
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  KVDtype dtype = KVDtype::f32;

  static constexpr uint32_t kMaxLayers = 1024;
  static constexpr uint32_t kMaxKVHeads = 1024;
  static constexpr uint32_t kMaxHeadDim = 4096;
  /// One page's K and V over all layers: page_size x layers x 2 x kv_heads x head_dim x element
  /// bytes must not exceed this (1 GiB).
  static constexpr uint64_t kMaxPageBytes = uint64_t{1} << 30;
  /// attention(): num_heads at most this.
  static constexpr uint32_t kMaxQueryHeads = 65536;
};

struct KVCacheOptions {
  uint32_t page_size = 512;
  uint32_t max_pages = 10000;
  bool enable_prefix_sharing = true;
  bool events = false;  ///< record KV events for drain_events()
  KVPayloadOptions kv = {};  ///< K/V payload per page (none by default)
};

/// What a runtime that keeps the K/V tensors must do after attach() / append().
struct KVPlan {
  uint32_t cached_tokens = 0;       ///< leading tokens whose K/V already exist (attach: reused full
                                    ///< pages; append: the old length)
  uint32_t compute_from = 0;        ///< first position to compute and write (attach: cached_tokens;
                                    ///< append: the old length); a copy never lowers it
  std::vector<PageId> block_table;  ///< the sequence's pages after the call
  std::vector<PageId> new_pages;    ///< the pages holding positions >= compute_from, in order:
                                    ///< block_table[compute_from / page_size ...] (fresh pages, a
                                    ///< fresh copy, or append's own partly filled private tail)
  std::vector<PageId> copies;       ///< [src, dst, ...]: copy K/V src -> dst before writing
                                    ///< (copy-on-write of a shared tail page by append); when the
                                    ///< cache owns the K/V (KVCacheOptions::kv) it has already
                                    ///< copied them
  /// Empties the vectors, keeping their capacity (a plan reused across calls allocates nothing).
  void clear() noexcept {
    cached_tokens = compute_from = 0;
    block_table.clear();
    new_pages.clear();
    copies.clear();
  }
};

/// One KV event (KVCacheOptions::events), shaped like vLLM's BlockStored / BlockRemoved /
/// AllBlocksCleared. Replaying a cache's events, oldest first, into an empty map
/// hash -> tokens (stored inserts, removed erases, cleared empties) gives exactly the cache's
/// findable pages (findable_hashes()).
struct KVEvent {
  enum class Type : uint8_t { stored, removed, cleared };
  Type type = Type::stored;
  std::vector<uint64_t> block_hashes;  ///< stored / removed: the pages' chained block hashes
  bool has_parent = false;             ///< stored: whether parent_hash is set (false at position 0)
  uint64_t parent_hash = 0;            ///< stored: hash of the page before the first one
  std::vector<TokenId> tokens;         ///< stored: the pages' tokens, page_size each, in order
};

struct KVCacheStats {
  uint32_t sequences = 0;
  uint32_t total_pages = 0;
  uint32_t used_pages = 0;    ///< distinct pages with refcount > 0
  uint32_t free_pages = 0;    ///< total_pages - used_pages (cached pages count as free)
  uint32_t cached_pages = 0;  ///< unreferenced pages still findable as cached prefixes
  uint32_t shared_pages = 0;  ///< pages with refcount > 1
  uint64_t prefix_hits = 0;   ///< full pages reused from the cache by attach
  uint64_t prefix_misses = 0; ///< shareable full pages attach looked up and had to store
  uint64_t hit_tokens = 0;    ///< tokens attach did not have to store thanks to sharing
  uint64_t cow_copies = 0;    ///< pages copied because a write hit a shared page
  uint64_t evictions = 0;     ///< cached pages evicted so far
  uint64_t tokens = 0;        ///< tokens over all live sequences
  uint64_t bytes = 0;         ///< memory held by the cache's own structures (not the undrained
                              ///< events, not the payload): token storage grows in small blocks
                              ///< that never move
  uint64_t payload_bytes = 0; ///< K/V payload memory allocated so far (0 without a payload); it
                              ///< grows with the highest page id used, in blocks that never move
};

class KVCache {
 public:
  static Result<KVCache> create(const KVCacheOptions& options);
  KVCache(KVCache&&) noexcept;
  KVCache& operator=(KVCache&&) noexcept;
  ~KVCache();

  /// Stores `tokens` as sequence `seq`, replacing it if it exists. When `prefix_len` is given
  /// (>= 0) the caller declares tokens[0, prefix_len) as the shareable prefix: only pages lying
  /// wholly inside it are shared or published to the cache; -1 makes every full page shareable.
  ///
  /// `plan` (may be null) receives what a runtime must compute: reuse is page granular, through
  /// the block hash chain, from live or cached pages of any sequence (on a re-attach, the
  /// sequence's own published pages count); attach never copies. On failure the plan is left
  /// cleared (and nothing changed, no event recorded). With events on, the pages the call
  /// publishes make one `stored` event, preceded by one `removed` event for the cached pages it
  /// evicted to make room.
  Status attach(SeqId seq, const TokenId* tokens, std::size_t n, int64_t prefix_len, KVPlan* plan);
  Status attach(SeqId seq, const TokenId* tokens, std::size_t n, int64_t prefix_len = -1) {
    return attach(seq, tokens, n, prefix_len, nullptr);
  }
  /// The same, with the prefix given as tokens: they must be a prefix of `tokens`
  /// (invalid_argument otherwise).
  Status attach(SeqId seq, const TokenId* tokens, std::size_t n, const TokenId* prefix, std::size_t prefix_n,
                KVPlan* plan);
  Status attach(SeqId seq, const TokenId* tokens, std::size_t n, const TokenId* prefix, std::size_t prefix_n) {
    return attach(seq, tokens, n, prefix, prefix_n, nullptr);
  }
  /// Decode-step growth: fills the tail page (copying it first if shared), then new pages.
  /// `plan` (may be null) as for attach().
  Status append(SeqId seq, const TokenId* tokens, std::size_t n, KVPlan* plan);
  Status append(SeqId seq, const TokenId* tokens, std::size_t n) { return append(seq, tokens, n, nullptr); }
  /// `dst` shares every page of `src`; nothing is copied until one of them writes.
  Status fork(SeqId src, SeqId dst);
  /// Releases the sequence's pages; unknown ids are a no-op (returns false).
  bool detach(SeqId seq);
  /// Drops every sequence and cached page (keeping the memory for reuse; lifetime counters in
  /// stats() keep counting); records one `cleared` event.
  void clear();

  /// Recorded events, oldest first; empties the queue (always empty when events are off).
  std::vector<KVEvent> drain_events();
  std::size_t pending_events() const noexcept;
  /// Block hashes of every findable page (live or cached), sorted: for tests and mirrors.
  std::vector<uint64_t> findable_hashes() const;

  bool has(SeqId seq) const noexcept;
  /// The sequence's tokens, or not_found.
  Result<std::vector<TokenId>> get(SeqId seq) const;
  /// The sequence's page ids in order, or not_found.
  Result<std::vector<PageId>> block_table(SeqId seq) const;
  /// How many leading tokens of `tokens` are held by cached or live pages (token granular);
  /// changes nothing.
  std::size_t match_prefix(const TokenId* tokens, std::size_t n) const;

  // ---- K/V payload (KVCacheOptions::kv.layers > 0) -------------------------------------
  // Layout of k / v arguments: n positions x kv_heads x head_dim floats, row-major (position,
  // then head, then dim). A position never written reads as zeros: pages are zeroed when they
  // are (re)used for new tokens, so nothing of an evicted or detached sequence leaks into
  // another one. Reused prefix pages (KVPlan::cached_tokens) keep the K/V written into them.

  /// Writes K and V of `layer` for positions [from_pos, from_pos + n) of the sequence (they
  /// must lie within its length). A page with refcount > 1 is copied first (tokens and every
  /// layer's K/V; stats().cow_copies counts it; may evict cached pages, recorded as a `removed`
  /// event), so the other holders keep their K/V. A copied page that was published stays
  /// referenced by the sequence (pinned: it counts in page_refcount(), not in block_table())
  /// until the sequence is detached or re-attached, because the sequence's later published
  /// pages hang from it in the prefix registry. Errors, with nothing written: not_found
  /// (unknown seq), invalid_argument (no payload, layer out of range, range beyond the length,
  /// null k/v with n > 0, NaN or Inf in k/v, or with f16 a value that rounds to Inf:
  /// |x| >= 65520), capacity_exceeded (the copies need more pages than can be freed).
  /// Strong guarantee under std::bad_alloc.
  Status write_kv(SeqId seq, uint32_t layer, uint32_t from_pos, const float* k, const float* v, std::size_t n);
  /// Reads K and V (f16 widened) of `layer` for positions [from_pos, from_pos + n) into k_out,
  /// v_out (n x kv_heads x head_dim each). Errors as write_kv (not_found, invalid_argument).
  Status read_kv(SeqId seq, uint32_t layer, uint32_t from_pos, std::size_t n, float* k_out, float* v_out) const;
  /// Causal grouped-query attention of `layer` over the sequence's pages. `q` holds m x
  /// num_heads x head_dim floats: the queries of the sequence's last m positions (query i sits
  /// at position length - m + i and sees positions 0 .. length - m + i). Query head h reads KV
  /// head h / (num_heads / kv_heads). `scale` multiplies q.k; 0 means 1/sqrt(head_dim).
  /// Softmax in f32 with max subtraction, computed online page by page (no gather, no score
  /// buffer). Writes m x num_heads x head_dim floats to `out`. Accuracy (tested against a dense
  /// f64 reference b): |out - b| <= 1e-5 max(1, |b|) per element on f32 pages, and on f16
  /// pages against the f16-rounded K/V; against the unrounded inputs of an f16 cache add
  /// (exp(2 delta) - 1) max|v| + max(u |v| + 2^-25), u = 2^-11, delta = |scale| max_j sum_d
  /// |q_d| (u |k_jd| + 2^-25) (the storage rounding). Errors, with `out` untouched:
  /// not_found (unknown seq); invalid_argument (no payload, layer out of range, m == 0 or
  /// m > length, num_heads == 0, not a multiple of kv_heads or above kMaxQueryHeads, NaN or
  /// Inf in q or scale, null q/out).
  Status attention(SeqId seq, uint32_t layer, const float* q, std::size_t m, uint32_t num_heads, float scale,
                   float* out) const;
  /// The payload configuration (layers == 0: none).
  const KVPayloadOptions& payload() const noexcept;

  KVCacheStats stats() const noexcept;
  uint32_t page_size() const noexcept;
  uint32_t max_pages() const noexcept;
  /// Reference count of a page (0 for free or cached pages); for tests and debugging.
  uint32_t page_refcount(PageId page) const noexcept;
  /// State of every page ever handed out, by page id: its refcount (> 0: in use), 0 for a free
  /// page, kCachedPage for a cached prefix. Pages never used are free and not listed.
  std::vector<int32_t> page_states() const;
  static constexpr int32_t kCachedPage = -1;

 private:
  friend struct KVCacheInternals;  // tests and benchmarks (src/kv_cache/kv_cache_internals.hpp)
  struct Impl;
  explicit KVCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmds
