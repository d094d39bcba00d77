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

struct KVCacheOptions {
  uint32_t page_size = 512;
  uint32_t max_pages = 10000;
  bool enable_prefix_sharing = true;
  bool events = false;  ///< record KV events for drain_events()
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
                                    ///< (copy-on-write of a shared tail page by append)
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
                              ///< events): token storage grows in small blocks that never move
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
  struct Impl;
  explicit KVCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmds
