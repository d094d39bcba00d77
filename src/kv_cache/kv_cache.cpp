// SPDX-License-Identifier: MIT
#include "llmds/kv_cache.hpp"

#include "common/token_ids.hpp"
#include "llmds/block_hash.hpp"
#include "kv_cache/kv_cache_internals.hpp"
#include "simd/kernels.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

namespace llmds {
namespace {

constexpr PageId kNoPage = -1;
constexpr uint32_t kUnlimited = std::numeric_limits<uint32_t>::max();
/// Token storage comes in blocks of about this many bytes (a power-of-two number of pages, at
/// least one): small enough that the last, partly used block wastes little, and blocks never
/// move, so the storage never holds two copies of itself while growing.
constexpr std::size_t kStorageBlockBytes = 4096;
/// K/V payload comes in blocks of at most this many bytes (a power-of-two number of pages, at
/// least one), allocated as the highest page id grows and never moved.
constexpr std::size_t kPayloadBlockBytes = std::size_t{1} << 20;
/// attention() walks each page in blocks of at most this many positions.
constexpr std::size_t kAttentionBlockRows = 64;

std::string seq_name(SeqId seq) { return "seqId " + std::to_string(seq); }



std::size_t pages_for(std::size_t tokens, uint32_t page_size) noexcept {
  return (tokens + page_size - 1) / page_size;
}

/// Whether every value is finite and (f16) does not round to Inf; names the first that is not.
Status check_values(const float* x, std::size_t n, const char* what, bool f16) {
  const float limit = f16 ? 65520.0f : std::numeric_limits<float>::infinity();
  bool bad = false;  // branch-free scan (vectorizes); the slow loop only finds the culprit
  for (std::size_t i = 0; i < n; ++i) bad |= !(std::fabs(x[i]) < limit);
  if (!bad) return Status::success();
  for (std::size_t i = 0; i < n; ++i) {
    if (!(std::fabs(x[i]) < limit)) {
      return invalid_argument(std::string(what) + "[" + std::to_string(i) + "] must be " +
                              (f16 ? "finite and below 65520 in magnitude (f16 payload)" : "finite") + ", got " +
                              std::to_string(x[i]));
    }
  }
  return Status::success();
}

/// The kernels attention() runs on: the SIMD ones, or the scalar references (tests, benchmark).
struct SimdKernels {
  static void scores(const float* q, const float* k, std::size_t rows, std::size_t dim, float scale, float* out) noexcept {
    simd::attn_scores(q, k, rows, dim, scale, out);
  }
  static float exp_sum(float* x, std::size_t n, float max) noexcept { return simd::softmax_exp(x, n, max); }
  static void accumulate(float* acc, const float* p, const float* v, std::size_t rows, std::size_t dim) noexcept {
    simd::attn_accumulate(acc, p, v, rows, dim);
  }
  static void scale(float* x, float s, std::size_t n) noexcept { simd::scale(x, s, n); }
  static void widen(const uint16_t* in, float* out, std::size_t n) noexcept { simd::widen_f16(in, out, n); }
};
struct ScalarKernels {
  static void scores(const float* q, const float* k, std::size_t rows, std::size_t dim, float scale, float* out) noexcept {
    simd::scalar::attn_scores(q, k, rows, dim, scale, out);
  }
  static float exp_sum(float* x, std::size_t n, float max) noexcept { return simd::scalar::softmax_exp(x, n, max); }
  static void accumulate(float* acc, const float* p, const float* v, std::size_t rows, std::size_t dim) noexcept {
    simd::scalar::attn_accumulate(acc, p, v, rows, dim);
  }
  static void scale(float* x, float s, std::size_t n) noexcept { simd::scalar::scale(x, s, n); }
  static void widen(const uint16_t* in, float* out, std::size_t n) noexcept { simd::scalar::widen_f16(in, out, n); }
};

}  // namespace

/// Out of memory: every mutating operation first allocates everything it may need (the new
/// block table, room in the page-indexed arrays and the allocator's table, the sequence's map
/// node), changing nothing, and then commits with operations that cannot allocate. A
/// std::bad_alloc therefore leaves the cache exactly as it was. The prefix registry and the
/// page-to-children links are intrusive (threaded through Page) so publishing or evicting a
/// page never allocates. Events are recorded into an EventRoom whose vectors were reserved for
/// the worst case before the commit, and moved into a queue that already has room.
struct KVCache::Impl {
  struct Page {
    uint32_t refcount = 0;
    uint32_t fill = 0;          // tokens written into this page
    bool registered = false;    // findable through the prefix registry (full, immutable pages only)
    PageId parent = kNoPage;    // the registered page before this one in its history
    uint64_t key = 0;
    PageId lru_prev = kNoPage;  // intrusive LRU list of cached (unreferenced, registered) pages
    PageId lru_next = kNoPage;
    PageId hash_next = kNoPage;     // next registered page in the same registry bucket
    PageId first_child = kNoPage;   // registered pages whose parent is this one, oldest first
    PageId last_child = kNoPage;
    PageId prev_sibling = kNoPage;  // neighbours in the parent's children list
    PageId next_sibling = kNoPage;
  };
  struct Sequence {
    std::vector<PageId> pages;
    std::size_t length = 0;
    uint32_t shareable_pages = kUnlimited;  // pages past this index are private to the sequence
  };
  using Block = std::unique_ptr<TokenId[]>;
  using PayloadBlock = std::unique_ptr<unsigned char[]>;
  /// Room allocated ahead of a commit (see prepare_growth); empty vectors mean "no growth".
  struct Growth {
    std::vector<PageId> table;  // the allocator's per-id table
    std::vector<Block> block_index;  // empty, with room for every block (when it must grow)
    std::vector<Block> new_blocks;
    std::vector<PayloadBlock> payload_index;  // the same for the K/V payload
    std::vector<PayloadBlock> new_payload;
    std::vector<Page> pages;
    std::vector<PageId> buckets;
  };
  /// The events one call may record, reserved before its commit: evictions first (one
  /// `removed` event), then the one contiguous run of pages it publishes (one `stored` event).
  struct EventRoom {
    KVEvent removed{KVEvent::Type::removed, {}, false, 0, {}};
    KVEvent stored;
  };

  Impl(PagedAllocator alloc, bool sharing, bool events_on, const KVPayloadOptions& payload)
      : allocator(std::move(alloc)), sharing(sharing), events_on(events_on), kv(payload) {
    // Pages per storage block: a power of two near kStorageBlockBytes, no more than max_pages needs.
    const std::size_t page_bytes = static_cast<std::size_t>(page_size()) * sizeof(TokenId);
    while ((std::size_t{2} << block_shift) * page_bytes <= kStorageBlockBytes &&
           (std::size_t{1} << block_shift) < allocator.max_pages()) {
      ++block_shift;
    }
    if (kv.layers == 0) {
      kv = KVPayloadOptions();
      return;
    }
    elem_bytes = kv.dtype == KVDtype::f16 ? 2 : 4;
    head_elems = static_cast<std::size_t>(page_size()) * kv.head_dim;
    page_payload_bytes = head_elems * kv.kv_heads * 2 * kv.layers * elem_bytes;
    while ((std::size_t{2} << payload_shift) * page_payload_bytes <= kPayloadBlockBytes &&
           (std::size_t{1} << payload_shift) < allocator.max_pages()) {
      ++payload_shift;
    }
  }

  PagedAllocator allocator;
  bool sharing;
  bool events_on;
  uint32_t block_shift = 0;  // a storage block holds 1 << block_shift pages
  uint32_t page_size() const noexcept { return allocator.page_size(); }
  std::size_t block_tokens() const noexcept { return static_cast<std::size_t>(page_size()) << block_shift; }

  std::vector<Block> blocks;  // page p's tokens: blocks[p >> block_shift], slot p & (2^block_shift - 1)
  std::vector<Page> pages;
  std::vector<PageId> buckets;   // prefix registry: chained hash by key; size a power of two >= pages
  PageId root_first = kNoPage, root_last = kNoPage;  // registered pages with no parent
  std::unordered_map<SeqId, Sequence> sequences;
  PageId lru_head = kNoPage;  // least recently used cached page: the next one evicted
  PageId lru_tail = kNoPage;
  uint32_t cached_count = 0;
  uint32_t shared_count = 0;
  uint32_t registered_count = 0;
  uint64_t total_tokens = 0;
  uint64_t prefix_hits = 0, prefix_misses = 0, hit_tokens = 0, cow_copies = 0, evictions = 0;
  /// Published pages write_kv() replaced by a private copy in a sequence: the sequence keeps a
  /// reference to them, because its later published pages hang from them in the registry (a
  /// cached page must never have live descendants: evicting it evicts them). Released with
  /// the sequence's pages, at their block-table index (tail first), so the LRU order keeps
  /// every prefix more recent than the pages after it. Kept out of Sequence so that sequences
  /// without pins pay nothing.
  struct Pin {
    std::size_t index;  // block-table index the page was copied from
    PageId page;
  };
  std::unordered_map<SeqId, std::vector<Pin>> pinned_by;
  std::vector<KVEvent> events;  // recorded, not yet drained
  EventRoom* room = nullptr;    // where the running commit records its events (null: events off)

  // K/V payload (kv.layers == 0: none). Page p's payload: payload_blocks[p >> payload_shift],
  // slot p & (2^payload_shift - 1), page_payload_bytes each, laid out [layer][K, V][kv head]
  // [position in page][dim], so one head's rows of a page are contiguous for attention.
  KVPayloadOptions kv;
  std::size_t elem_bytes = 0;          // 4 (f32) or 2 (f16)
  std::size_t head_elems = 0;          // page_size x head_dim: one (layer, K|V, head) segment
  std::size_t page_payload_bytes = 0;
  uint32_t payload_shift = 0;
  std::vector<PayloadBlock> payload_blocks;

  bool has_payload() const noexcept { return kv.layers != 0; }
  unsigned char* page_payload(PageId p) const noexcept {
    const auto i = static_cast<std::size_t>(p);
    return payload_blocks[i >> payload_shift].get() + (i & ((std::size_t{1} << payload_shift) - 1)) * page_payload_bytes;
  }
  /// Start of the (layer, K or V, head) segment of page p: page_size rows of head_dim elements.
  unsigned char* segment(PageId p, uint32_t layer, int which, uint32_t head) const noexcept {
    const std::size_t index = (static_cast<std::size_t>(layer) * 2 + static_cast<std::size_t>(which)) * kv.kv_heads + head;
    return page_payload(p) + index * head_elems * elem_bytes;
  }

  TokenId* page_tokens(PageId p) const noexcept {
    const auto i = static_cast<std::size_t>(p);
    return blocks[i >> block_shift].get() + (i & ((std::size_t{1} << block_shift) - 1)) * page_size();
  }
  Page& page(PageId p) noexcept { return pages[static_cast<std::size_t>(p)]; }
  const Page& page(PageId p) const noexcept { return pages[static_cast<std::size_t>(p)]; }

  // ---- LRU of cached pages --------------------------------------------------------------
  void lru_push_back(PageId p) noexcept {
    Page& pg = page(p);
    pg.lru_prev = lru_tail;
    pg.lru_next = kNoPage;
    if (lru_tail != kNoPage) page(lru_tail).lru_next = p; else lru_head = p;
    lru_tail = p;
    ++cached_count;
  }
  void lru_remove(PageId p) noexcept {
    Page& pg = page(p);
    if (pg.lru_prev != kNoPage) page(pg.lru_prev).lru_next = pg.lru_next; else lru_head = pg.lru_next;
    if (pg.lru_next != kNoPage) page(pg.lru_next).lru_prev = pg.lru_prev; else lru_tail = pg.lru_prev;
    pg.lru_prev = pg.lru_next = kNoPage;
    --cached_count;
  }

  // ---- reference counting -------------------------------------------------------------
  void acquire(PageId p) noexcept {
    Page& pg = page(p);
    if (pg.refcount == 0) lru_remove(p);  // a cached page comes back to life
    if (++pg.refcount == 2) ++shared_count;
  }
  void release(PageId p) noexcept {
    Page& pg = page(p);
    if (pg.refcount-- == 2) --shared_count;
    if (pg.refcount > 0) return;
    if (pg.registered) {
      lru_push_back(p);  // keep the prefix findable until its memory is needed
    } else {
      allocator.free_one(p);
    }
  }
  /// Releases tail first, so a page's prefix ends up more recently used than the page itself:
  /// LRU eviction then takes leaves before the prefixes they hang from.
  void release_all(const std::vector<PageId>& table) noexcept {
    for (auto it = table.rbegin(); it != table.rend(); ++it) release(*it);
  }
  /// Pages of `table` that release_all() would hand back to the allocator, ignoring the ones
  /// in `kept` (acquired again first).
  std::size_t freed_by_release(const std::vector<PageId>& table, const std::vector<PageId>& kept) const noexcept {
    std::size_t n = 0;
    for (PageId p : table) {
      n += page(p).refcount == 1 && !page(p).registered && std::find(kept.begin(), kept.end(), p) == kept.end();
    }
    return n;
  }

  // ---- prefix registry ----------------------------------------------------------------
  /// The page's block hash from its parent's (Dynamo's chain: s_0 = h_0, s_i = H(s_{i-1}, h_i)).
  uint64_t page_key(PageId parent, const TokenId* tokens) const noexcept {
    const uint64_t h = page_content_hash(tokens, page_size());
    return parent == kNoPage ? h : chain_block_hash(page(parent).key, h);
  }
  std::size_t bucket_of(uint64_t key) const noexcept { return static_cast<std::size_t>(key) & (buckets.size() - 1); }

  PageId lookup(uint64_t key) const noexcept {
    if (buckets.empty()) return kNoPage;
    PageId p = buckets[bucket_of(key)];
    while (p != kNoPage && page(p).key != key) p = page(p).hash_next;
    return p;
  }
  void hash_insert(PageId p) noexcept {
    PageId& head = buckets[bucket_of(page(p).key)];
    page(p).hash_next = head;
    head = p;
  }
  void hash_erase(PageId p) noexcept {
    PageId* link = &buckets[bucket_of(page(p).key)];
    while (*link != p) link = &page(*link).hash_next;
    *link = page(p).hash_next;
    page(p).hash_next = kNoPage;
  }
  PageId first_child_of(PageId parent) const noexcept {
    return parent == kNoPage ? root_first : page(parent).first_child;
  }
  void link_child(PageId parent, PageId p) noexcept {
    PageId& first = parent == kNoPage ? root_first : page(parent).first_child;
    PageId& last = parent == kNoPage ? root_last : page(parent).last_child;
    page(p).prev_sibling = last;
    page(p).next_sibling = kNoPage;
    if (last != kNoPage) page(last).next_sibling = p; else first = p;
    last = p;
  }
  void unlink_child(PageId p) noexcept {
    Page& pg = page(p);
    PageId& first = pg.parent == kNoPage ? root_first : page(pg.parent).first_child;
    PageId& last = pg.parent == kNoPage ? root_last : page(pg.parent).last_child;
    if (pg.prev_sibling != kNoPage) page(pg.prev_sibling).next_sibling = pg.next_sibling; else first = pg.next_sibling;
    if (pg.next_sibling != kNoPage) page(pg.next_sibling).prev_sibling = pg.prev_sibling; else last = pg.prev_sibling;
    pg.prev_sibling = pg.next_sibling = kNoPage;
  }

  /// The registered page continuing `parent` with exactly these tokens, if any. Verifies the
  /// parent link and every token, so a hash collision is a miss, never a wrong hit.
  PageId find_page(uint64_t key, PageId parent, const TokenId* tokens) const noexcept {
    const PageId hit = lookup(key);
    if (hit == kNoPage) return kNoPage;
    const Page& pg = page(hit);
    if (pg.parent != parent) return kNoPage;
    if (std::memcmp(page_tokens(hit), tokens, sizeof(TokenId) * page_size()) != 0) return kNoPage;
    return hit;
  }

  /// Publishes a full page as a cacheable prefix. Fails (and leaves the page private) when its
  /// parent is not published or its key is taken by another history (a collision).
  bool register_page(PageId p, PageId parent) noexcept {
    if (parent != kNoPage && !page(parent).registered) return false;
    const uint64_t key = page_key(parent, page_tokens(p));
    if (lookup(key) != kNoPage) return false;
    Page& pg = page(p);
    pg.registered = true;
    pg.parent = parent;
    pg.key = key;
    hash_insert(p);
    link_child(parent, p);
    ++registered_count;
    if (room != nullptr) {  // within the capacity reserved by prepare_events()
      KVEvent& e = room->stored;
      if (e.block_hashes.empty()) {
        e.has_parent = parent != kNoPage;
        e.parent_hash = e.has_parent ? page(parent).key : 0;
      }
      e.block_hashes.push_back(key);
      e.tokens.insert(e.tokens.end(), page_tokens(p), page_tokens(p) + page_size());
    }
    return true;
  }

  /// Evicts a cached page and, first, any cached descendants (they would be unreachable).
  void evict(PageId p) noexcept {
    while (page(p).first_child != kNoPage) evict(page(p).first_child);  // evicting unlinks it
    Page& pg = page(p);
    unlink_child(p);
    hash_erase(p);
    --registered_count;
    if (room != nullptr) room->removed.block_hashes.push_back(pg.key);
    pg.registered = false;
    pg.parent = kNoPage;
    lru_remove(p);
    allocator.free_one(p);
    ++evictions;
  }

  // ---- allocation ----------------------------------------------------------------------
  /// Pages an allocation could obtain right now (free ones, plus cached ones it may evict).
  std::size_t obtainable() const noexcept { return allocator.available() + cached_count; }

  template <class T>
  static std::vector<T> grown_copy(const std::vector<T>& v, std::size_t want) {
    std::vector<T> out;
    if (want <= v.capacity()) return out;
    out.reserve(std::max(want, 2 * v.capacity()));
    out.assign(v.begin(), v.end());
    return out;
  }
  static std::size_t pow2_at_least(std::size_t n) noexcept {
    std::size_t b = 16;
    while (b < n) b *= 2;
    return b;
  }

  /// Allocates, changing nothing, the room `fresh` never-used page ids will need.
  Growth prepare_growth(uint32_t fresh) const {
    Growth g;
    if (fresh == 0) return g;
    const std::size_t high = static_cast<std::size_t>(allocator.high_water()) + fresh;
    g.table = allocator.grown_table(fresh);
    const std::size_t want_blocks = (high + (std::size_t{1} << block_shift) - 1) >> block_shift;
    if (want_blocks > blocks.size()) {
      if (want_blocks > blocks.capacity()) g.block_index.reserve(std::max(want_blocks, 2 * blocks.capacity()));
      g.new_blocks.reserve(want_blocks - blocks.size());
      // Uninitialised: only written positions are ever read.
      while (blocks.size() + g.new_blocks.size() < want_blocks) g.new_blocks.emplace_back(new TokenId[block_tokens()]);
    }
    if (has_payload()) {
      const std::size_t want = (high + (std::size_t{1} << payload_shift) - 1) >> payload_shift;
      if (want > payload_blocks.size()) {
        if (want > payload_blocks.capacity()) g.payload_index.reserve(std::max(want, 2 * payload_blocks.capacity()));
        g.new_payload.reserve(want - payload_blocks.size());
        // Uninitialised: allocate_page() zeroes (or copies into) a page before it is used.
        const std::size_t bytes = page_payload_bytes << payload_shift;
        while (payload_blocks.size() + g.new_payload.size() < want) g.new_payload.emplace_back(new unsigned char[bytes]);
      }
    }
    g.pages = grown_copy(pages, high);
    if (high > buckets.size()) g.buckets.assign(pow2_at_least(high), kNoPage);
    return g;
  }
  /// Installs the room prepared by prepare_growth(); the first step of every commit.
  void commit_growth(Growth& g) noexcept {
    allocator.adopt_table(std::move(g.table));
    if (g.block_index.capacity() > blocks.capacity()) {  // moving unique_ptrs cannot throw
      for (Block& b : blocks) g.block_index.push_back(std::move(b));
      blocks.swap(g.block_index);
    }
    for (Block& b : g.new_blocks) blocks.push_back(std::move(b));  // within capacity
    if (g.payload_index.capacity() > payload_blocks.capacity()) {
      for (PayloadBlock& b : payload_blocks) g.payload_index.push_back(std::move(b));
      payload_blocks.swap(g.payload_index);
    }
    for (PayloadBlock& b : g.new_payload) payload_blocks.push_back(std::move(b));  // within capacity
    if (g.pages.capacity() > pages.capacity()) pages.swap(g.pages);
    if (!g.buckets.empty()) {  // rehash every registered page into the larger registry
      buckets.swap(g.buckets);
      for (std::size_t p = 0; p < pages.size(); ++p) {
        if (pages[p].registered) hash_insert(static_cast<PageId>(p));
      }
    }
  }

  /// Needs the room of a commit_growth() (no allocation here; page ids, storage and registry
  /// already have room for every page the operation takes). The page's K/V payload is zeroed
  /// unless `zero_payload` is false (the caller overwrites all of it).
  PageId allocate_page(bool zero_payload = true) noexcept {
    if (allocator.available() == 0) {  // the caller checked obtainable()
      // Pages return to the LRU tail first, so the least recently used page is a leaf.
      assert(page(lru_head).first_child == kNoPage);
      evict(lru_head);
    }
    const PageId p = allocator.alloc_one();  // cannot throw: the table has room
    const std::size_t high = allocator.high_water();
    if (pages.size() < high) {  // within capacity: no allocation
      assert(pages.capacity() >= high && (blocks.size() << block_shift) >= high);
      pages.resize(high);
    }
    Page& pg = page(p);
    pg = Page();
    pg.refcount = 1;
    if (zero_payload && has_payload()) std::memset(page_payload(p), 0, page_payload_bytes);
    return p;
  }

  /// Copy-on-write of s.pages[i] (refcount > 1): a private copy of its tokens and K/V replaces
  /// it in the sequence. Returns the (shared, copy) pair. Needs a page's room, as allocate_page().
  /// A published page is not released but pinned into `pins` (which has room for it).
  std::pair<PageId, PageId> copy_page(Sequence& s, std::size_t i, std::vector<Pin>* pins = nullptr) noexcept {
    const PageId shared = s.pages[i];
    const bool pin = page(shared).registered;
    const PageId copy = allocate_page(false);
    const uint32_t fill = page(shared).fill;
    std::memcpy(page_tokens(copy), page_tokens(shared), fill * sizeof(TokenId));
    if (has_payload()) std::memcpy(page_payload(copy), page_payload(shared), page_payload_bytes);
    page(copy).fill = fill;
    if (pin) {
      assert(pins != nullptr);
      pins->push_back(Pin{i, shared});  // within the room write_kv() reserved
    } else {
      release(shared);
    }
    s.pages[i] = copy;
    ++cow_copies;
    return {shared, copy};
  }

  /// Writes tokens into the sequence's tail: fills the last page, then adds pages, publishing
  /// every page it completes when the sequence allows sharing there. The block table has room
  /// for every page added (the caller reserved it), so nothing here allocates.
  void write_tail(Sequence& s, const TokenId* tokens, std::size_t n) noexcept {
    const uint32_t ps = page_size();
    std::size_t done = 0;
    while (done < n) {
      if (s.pages.empty() || page(s.pages.back()).fill == ps) s.pages.push_back(allocate_page());
      const PageId p = s.pages.back();
      Page& pg = page(p);
      const std::size_t take = std::min<std::size_t>(ps - pg.fill, n - done);
      std::memcpy(page_tokens(p) + pg.fill, tokens + done, take * sizeof(TokenId));
      pg.fill += static_cast<uint32_t>(take);
      done += take;
      const std::size_t index = s.pages.size() - 1;
      if (pg.fill == ps && sharing && index < s.shareable_pages) {
        register_page(p, index == 0 ? kNoPage : s.pages[index - 1]);
      }
    }
    s.length += n;
    total_tokens += n;
  }

  /// Appends to `matched` the leading full pages of `tokens` that are cached, verified token by
  /// token (no allocation when `matched` has room for `full_pages` more).
  void match_pages(const TokenId* tokens, std::size_t full_pages, std::vector<PageId>& matched) const {
    PageId parent = kNoPage;
    for (std::size_t i = 0; i < full_pages; ++i) {
      const TokenId* chunk = tokens + i * page_size();
      const PageId hit = find_page(page_key(parent, chunk), parent, chunk);
      if (hit == kNoPage) break;
      matched.push_back(hit);
      parent = hit;
    }
  }

  std::size_t common_prefix(const TokenId* a, const TokenId* b, std::size_t n) const noexcept {
    std::size_t i = 0;
    while (i < n && a[i] == b[i]) ++i;
    return i;
  }

  // ---- plans and events ------------------------------------------------------------------
  template <class T>
  static void reserve_at_least(std::vector<T>& v, std::size_t n) {
    if (v.capacity() < n) v.reserve(std::max(n, 2 * v.capacity()));
  }
  /// Clears the plan and gives it room for a table of `table_pages` pages (may throw; a
  /// failure leaves it cleared).
  static void prepare_plan(KVPlan* plan, std::size_t table_pages, bool copy) {
    if (plan == nullptr) return;
    plan->clear();
    reserve_at_least(plan->block_table, table_pages);
    reserve_at_least(plan->new_pages, table_pages);
    if (copy) reserve_at_least(plan->copies, 2);
  }
  void fill_plan(KVPlan* plan, const Sequence& s, std::size_t cached, std::size_t from) const noexcept {
    if (plan == nullptr) return;
    plan->cached_tokens = static_cast<uint32_t>(cached);
    plan->compute_from = static_cast<uint32_t>(from);
    plan->block_table.assign(s.pages.begin(), s.pages.end());  // within the reserved capacity
    if (from < s.length) plan->new_pages.assign(s.pages.begin() + static_cast<std::ptrdiff_t>(from / page_size()), s.pages.end());
  }
  /// Reserves room for the events of a call that evicts at most `evicted` pages and publishes
  /// at most `stored` pages, changing nothing observable.
  void prepare_events(EventRoom& r, std::size_t evicted, std::size_t stored) {
    if (!events_on) return;
    reserve_at_least(events, events.size() + 2);
    r.removed.block_hashes.reserve(evicted);
    r.stored.block_hashes.reserve(stored);
    r.stored.tokens.reserve(stored * page_size());
  }
  void begin_events(EventRoom& r) noexcept { room = events_on ? &r : nullptr; }
  /// Queues what the commit recorded: evictions first, then the published run (a page evicted
  /// by a call is never one it publishes, so this order replays correctly).
  void end_events(EventRoom& r) noexcept {
    room = nullptr;
    if (!r.removed.block_hashes.empty()) events.push_back(std::move(r.removed));  // room reserved
    if (!r.stored.block_hashes.empty()) events.push_back(std::move(r.stored));
  }

  Status attach(SeqId seq, const TokenId* tokens, std::size_t n, int64_t prefix_len, KVPlan* plan) {
    if (plan != nullptr) plan->clear();
    if (Status st = detail::check_token_ids(tokens, n, "kvTokens"); !st) return st;
    if (prefix_len < -1 || prefix_len > static_cast<int64_t>(n)) {
      return invalid_argument("prefixTokens must be a prefix of kvTokens: its length " + std::to_string(prefix_len) +
                              " exceeds kvTokens' length " + std::to_string(n));
    }
    const uint32_t ps = page_size();
    const std::size_t needed = pages_for(n, ps);
    if (needed > allocator.max_pages()) {
      return capacity_exceeded("attach(" + seq_name(seq) + "): " + std::to_string(n) + " tokens need " +
                               std::to_string(needed) + " pages but maxPages is " +
                               std::to_string(allocator.max_pages()));
    }
    const uint32_t shareable = prefix_len < 0 ? kUnlimited : static_cast<uint32_t>(prefix_len / ps);
    const std::size_t lookups = sharing ? std::min<std::size_t>(n / ps, shareable) : 0;
    // The new block table, with room for every page: the matched prefix first.
    std::vector<PageId> table;
    table.reserve(needed);
    match_pages(tokens, lookups, table);
    const std::size_t matched = table.size();

    // Capacity check before any change: count what the replaced sequence would give back and
    // what reviving cached hits would take away from the evictable pool.
    std::size_t revived = 0;
    for (PageId p : table) revived += page(p).refcount == 0;
    std::size_t released = 0;
    auto old = sequences.find(seq);
    if (old != sequences.end()) {
      for (PageId p : old->second.pages) {
        released += page(p).refcount == 1 && std::find(table.begin(), table.end(), p) == table.end();
      }
      if (const std::vector<Pin>* pins = pins_of(seq)) {  // published: they become cached (evictable)
        for (const Pin& pin : *pins) {
          released += page(pin.page).refcount == 1 && std::find(table.begin(), table.end(), pin.page) == table.end();
        }
      }
    }
    const std::size_t fresh = needed - matched;
    const std::size_t available = obtainable() - revived + released;
    if (fresh > available) {
      return capacity_exceeded("attach(" + seq_name(seq) + ") needs " + std::to_string(fresh) +
                               " new pages but only " + std::to_string(available) + " can be freed");
    }

    // Allocate everything else, still changing nothing observable: room for the new pages, the
    // plan and the events, then (last, so nothing can fail after it) the map node of a new
    // sequence.
    const std::size_t to_free = old == sequences.end() ? 0 : freed_by_release(old->second.pages, table);
    Growth growth = prepare_growth(allocator.fresh_needed(fresh, to_free));
    prepare_plan(plan, needed, false);
    EventRoom ev;
    const std::size_t free_now = allocator.available() + to_free;
    prepare_events(ev, fresh > free_now ? fresh - free_now : 0, lookups - matched);
    if (old == sequences.end()) old = sequences.emplace(seq, Sequence()).first;

    // Commit: nothing below allocates.
    commit_growth(growth);
    begin_events(ev);
    Sequence& s = old->second;
    for (PageId p : table) acquire(p);
    release_sequence(seq, s.pages);
    total_tokens -= s.length;
    s.pages.swap(table);  // the old table is freed on return
    s.shareable_pages = shareable;
    const std::size_t reused = matched * ps;
    s.length = reused;
    total_tokens += reused;
    write_tail(s, tokens + reused, n - reused);
    prefix_hits += matched;
    hit_tokens += reused;
    prefix_misses += lookups - matched;
    end_events(ev);
    fill_plan(plan, s, reused, reused);
    return Status::success();
  }

  /// Pages an append of `n` tokens to `s` completes at indices the sequence may publish.
  std::size_t publishable(const Sequence& s, std::size_t n) const noexcept {
    if (!sharing) return 0;
    const std::size_t from = std::min<std::size_t>(s.length / page_size(), s.shareable_pages);
    const std::size_t to = std::min<std::size_t>((s.length + n) / page_size(), s.shareable_pages);
    return to - from;
  }

  Status append(SeqId seq, const TokenId* tokens, std::size_t n, KVPlan* plan) {
    if (plan != nullptr) plan->clear();
    auto it = sequences.find(seq);
    if (it == sequences.end()) return not_found("append: unknown " + seq_name(seq));
    if (Status st = detail::check_token_ids(tokens, n, "tokens"); !st) return st;
    Sequence& s = it->second;
    const uint32_t ps = page_size();
    const uint32_t tail_fill = s.pages.empty() ? ps : page(s.pages.back()).fill;
    const bool copy_tail = n > 0 && tail_fill < ps && page(s.pages.back()).refcount > 1;
    const std::size_t into_tail = std::min<std::size_t>(ps - tail_fill, n);
    const std::size_t added = pages_for(n - into_tail, ps);
    const std::size_t needed = copy_tail + added;
    if (needed > obtainable()) {
      return capacity_exceeded("append(" + seq_name(seq) + ", " + std::to_string(n) + " tokens) needs " +
                               std::to_string(needed) + " new pages but only " + std::to_string(obtainable()) +
                               " can be freed");
    }
    const std::size_t old_length = s.length;
    EventRoom ev;
    prepare_plan(plan, s.pages.size() + added, copy_tail);
    prepare_events(ev, needed > allocator.available() ? needed - allocator.available() : 0, publishable(s, n));
    if (needed == 0) {  // the decode step's common case: the tail page has room, nothing to allocate
      begin_events(ev);
      write_tail(s, tokens, n);
      end_events(ev);
      fill_plan(plan, s, old_length, old_length);
      return Status::success();
    }
    // Allocate first (a larger block table, room for new pages), then commit without allocating.
    std::vector<PageId> table = grown_copy(s.pages, s.pages.size() + added);
    // The copied-from shared tail keeps its refcount > 0, so it frees nothing.
    Growth growth = prepare_growth(allocator.fresh_needed(needed));
    commit_growth(growth);
    begin_events(ev);
    if (table.capacity() > s.pages.capacity()) s.pages.swap(table);
    if (copy_tail) {
      // Copy-on-write: the other holders keep the original page (tokens and K/V) untouched.
      const auto pair = copy_page(s, s.pages.size() - 1);
      if (plan != nullptr) plan->copies.assign({pair.first, pair.second});  // within the reserved capacity
    }
    write_tail(s, tokens, n);
    end_events(ev);
    fill_plan(plan, s, old_length, old_length);
    return Status::success();
  }

  void clear() {
    if (events_on) reserve_at_least(events, events.size() + 1);  // the only allocation
    for (std::size_t p = 0; p < pages.size(); ++p) {
      if (allocator.is_allocated(static_cast<PageId>(p))) allocator.free_one(static_cast<PageId>(p));
      pages[p] = Page();
    }
    std::fill(buckets.begin(), buckets.end(), kNoPage);
    root_first = root_last = lru_head = lru_tail = kNoPage;
    cached_count = shared_count = registered_count = 0;
    total_tokens = 0;
    sequences.clear();
    pinned_by.clear();
    if (events_on) events.push_back(KVEvent{KVEvent::Type::cleared, {}, false, 0, {}});  // room reserved
  }

  Status fork(SeqId src, SeqId dst) {
    auto it = sequences.find(src);
    if (it == sequences.end()) return not_found("fork: unknown source " + seq_name(src));
    if (sequences.count(dst)) return duplicate_id("fork: destination " + seq_name(dst) + " already exists");
    // The copy and its map node are the only allocations: make them before any refcount moves.
    // (Rehashing keeps references to elements valid, so `it->second` is safe to copy from.)
    // The source's pins (if any) are copied first and dropped again if the sequence's node fails.
    const std::vector<Pin>* src_pins = pins_of(src);
    std::vector<Pin>* dst_pins = nullptr;
    if (src_pins != nullptr) dst_pins = &pinned_by.emplace(dst, *src_pins).first->second;
    const Sequence* copy = nullptr;
    try {
      copy = &sequences.emplace(dst, it->second).first->second;
    } catch (...) {
      if (dst_pins != nullptr) pinned_by.erase(dst);
      throw;
    }
    for (PageId p : copy->pages) acquire(p);
    if (dst_pins != nullptr) {
      for (const Pin& pin : *dst_pins) acquire(pin.page);
    }
    total_tokens += copy->length;
    return Status::success();
  }

  bool detach(SeqId seq) noexcept {
    auto it = sequences.find(seq);
    if (it == sequences.end()) return false;
    release_sequence(seq, it->second.pages);
    total_tokens -= it->second.length;
    sequences.erase(it);
    return true;
  }

  // ---- K/V payload ----------------------------------------------------------------------
  const std::vector<Pin>* pins_of(SeqId seq) const noexcept {
    if (pinned_by.empty()) return nullptr;  // the common case: no lookup at all
    auto it = pinned_by.find(seq);
    return it == pinned_by.end() ? nullptr : &it->second;
  }
  /// Releases a sequence's block table and pins, tail first: a pin right after the page that
  /// replaced it, so every prefix ends up more recently used than the pages after it. Forgets
  /// the pins. (std::sort works in place: nothing allocates.)
  void release_sequence(SeqId seq, const std::vector<PageId>& table) noexcept {
    auto it = pinned_by.empty() ? pinned_by.end() : pinned_by.find(seq);
    if (it == pinned_by.end()) {
      release_all(table);
      return;
    }
    std::vector<Pin>& pins = it->second;
    std::sort(pins.begin(), pins.end(), [](const Pin& a, const Pin& b) { return a.index > b.index; });
    std::size_t k = 0;
    for (std::size_t i = table.size(); i-- > 0;) {
      release(table[i]);
      while (k < pins.size() && pins[k].index == i) release(pins[k++].page);
    }
    while (k < pins.size()) release(pins[k++].page);  // (indices are always within the table)
    pinned_by.erase(it);
  }

  /// Checks the payload, layer and position range shared by write_kv() and read_kv().
  Status check_range(const char* op, const Sequence& s, uint32_t layer, uint32_t from, std::size_t n) const {
    if (!has_payload()) return invalid_argument(std::string(op) + ": the cache has no K/V payload (kv.layers is 0)");
    if (layer >= kv.layers) {
      return invalid_argument(std::string(op) + ": layer " + std::to_string(layer) + " out of range [0, " +
                              std::to_string(kv.layers) + ")");
    }
    if (from > s.length || n > s.length - from) {
      return invalid_argument(std::string(op) + ": positions [" + std::to_string(from) + ", " +
                              std::to_string(static_cast<uint64_t>(from) + n) + ") exceed the sequence's length " +
                              std::to_string(s.length));
    }
    return Status::success();
  }

  Status write_kv(SeqId seq, uint32_t layer, uint32_t from, const float* k, const float* v, std::size_t n) {
    auto it = sequences.find(seq);
    if (it == sequences.end()) return not_found("writeKV: unknown " + seq_name(seq));
    Sequence& s = it->second;
    if (Status st = check_range("writeKV", s, layer, from, n); !st) return st;
    if (n == 0) return Status::success();
    if (k == nullptr || v == nullptr) return invalid_argument("writeKV: k and v must not be null");
    const std::size_t row = static_cast<std::size_t>(kv.kv_heads) * kv.head_dim;
    const bool f16 = kv.dtype == KVDtype::f16;
    if (Status st = check_values(k, n * row, "k", f16); !st) return st;
    if (Status st = check_values(v, n * row, "v", f16); !st) return st;

    // Copy-on-write of every shared page in the range, allocated first and committed without
    // allocating (it may evict cached pages, recorded as one `removed` event).
    const uint32_t ps = page_size();
    const std::size_t first = from / ps, last = (from + n - 1) / ps;
    std::size_t copies = 0, pins = 0;
    for (std::size_t i = first; i <= last; ++i) {
      copies += page(s.pages[i]).refcount > 1;
      pins += page(s.pages[i]).refcount > 1 && page(s.pages[i]).registered;
    }
    if (copies > 0) {
      if (copies > obtainable()) {
        return capacity_exceeded("writeKV(" + seq_name(seq) + ") must copy " + std::to_string(copies) +
                                 " shared pages but only " + std::to_string(obtainable()) + " can be freed");
      }
      EventRoom ev;
      auto pin_it = pinned_by.find(seq);
      static const std::vector<Pin> kNone;
      const std::vector<Pin>& had = pin_it == pinned_by.end() ? kNone : pin_it->second;
      std::vector<Pin> grown = pins > 0 ? grown_copy(had, had.size() + pins) : std::vector<Pin>();
      Growth growth = prepare_growth(allocator.fresh_needed(copies));
      prepare_events(ev, copies > allocator.available() ? copies - allocator.available() : 0, 0);
      if (pins > 0 && pin_it == pinned_by.end()) pin_it = pinned_by.emplace(seq, std::vector<Pin>()).first;  // last
      std::vector<Pin>* pinned = pins > 0 ? &pin_it->second : nullptr;
      // Commit: nothing below allocates.
      commit_growth(growth);
      if (pinned != nullptr && grown.capacity() > pinned->capacity()) pinned->swap(grown);
      begin_events(ev);
      for (std::size_t i = first; i <= last; ++i) {
        if (page(s.pages[i]).refcount > 1) copy_page(s, i, pinned);
      }
      end_events(ev);
    }
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t pos = from + j;
      const PageId p = s.pages[pos / ps];
      const std::size_t at = (pos % ps) * kv.head_dim;
      for (uint32_t h = 0; h < kv.kv_heads; ++h) {
        const float* ks = k + j * row + static_cast<std::size_t>(h) * kv.head_dim;
        const float* vs = v + j * row + static_cast<std::size_t>(h) * kv.head_dim;
        if (f16) {
          uint16_t* kd = reinterpret_cast<uint16_t*>(segment(p, layer, 0, h)) + at;
          uint16_t* vd = reinterpret_cast<uint16_t*>(segment(p, layer, 1, h)) + at;
          for (uint32_t d = 0; d < kv.head_dim; ++d) {
            kd[d] = simd::f32_to_f16(ks[d]);
            vd[d] = simd::f32_to_f16(vs[d]);
          }
        } else {
          std::memcpy(reinterpret_cast<float*>(segment(p, layer, 0, h)) + at, ks, kv.head_dim * sizeof(float));
          std::memcpy(reinterpret_cast<float*>(segment(p, layer, 1, h)) + at, vs, kv.head_dim * sizeof(float));
        }
      }
    }
    return Status::success();
  }

  Status read_kv(SeqId seq, uint32_t layer, uint32_t from, std::size_t n, float* k_out, float* v_out) const {
    auto it = sequences.find(seq);
    if (it == sequences.end()) return not_found("readKV: unknown " + seq_name(seq));
    const Sequence& s = it->second;
    if (Status st = check_range("readKV", s, layer, from, n); !st) return st;
    if (n == 0) return Status::success();
    if (k_out == nullptr || v_out == nullptr) return invalid_argument("readKV: k_out and v_out must not be null");
    const std::size_t row = static_cast<std::size_t>(kv.kv_heads) * kv.head_dim;
    const uint32_t ps = page_size();
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t pos = from + j;
      const PageId p = s.pages[pos / ps];
      const std::size_t at = (pos % ps) * kv.head_dim;
      for (uint32_t h = 0; h < kv.kv_heads; ++h) {
        float* kd = k_out + j * row + static_cast<std::size_t>(h) * kv.head_dim;
        float* vd = v_out + j * row + static_cast<std::size_t>(h) * kv.head_dim;
        if (kv.dtype == KVDtype::f16) {
          simd::widen_f16(reinterpret_cast<const uint16_t*>(segment(p, layer, 0, h)) + at, kd, kv.head_dim);
          simd::widen_f16(reinterpret_cast<const uint16_t*>(segment(p, layer, 1, h)) + at, vd, kv.head_dim);
        } else {
          std::memcpy(kd, reinterpret_cast<const float*>(segment(p, layer, 0, h)) + at, kv.head_dim * sizeof(float));
          std::memcpy(vd, reinterpret_cast<const float*>(segment(p, layer, 1, h)) + at, kv.head_dim * sizeof(float));
        }
      }
    }
    return Status::success();
  }

  /// Causal grouped-query attention straight from the pages: for each query and KV head, the
  /// group's query heads walk the visible positions page by page, in blocks of at most
  /// kAttentionBlockRows rows, with an online softmax (running max `mx` and sum `l` per query
  /// head; the output row is the running accumulator, rescaled when the max grows).
  template <class Kernels>
  Status attention(SeqId seq, uint32_t layer, const float* q, std::size_t m, uint32_t num_heads, float scale,
                   float* out) const {
    auto it = sequences.find(seq);
    if (it == sequences.end()) return not_found("attention: unknown " + seq_name(seq));
    const Sequence& s = it->second;
    if (!has_payload()) return invalid_argument("attention: the cache has no K/V payload (kv.layers is 0)");
    if (layer >= kv.layers) {
      return invalid_argument("attention: layer " + std::to_string(layer) + " out of range [0, " +
                              std::to_string(kv.layers) + ")");
    }
    if (m == 0 || m > s.length) {
      return invalid_argument("attention: m (queries) must be in [1, " + std::to_string(s.length) +
                              "] (the sequence's length), got " + std::to_string(m));
    }
    if (num_heads == 0 || num_heads % kv.kv_heads != 0 || num_heads > KVPayloadOptions::kMaxQueryHeads) {
      return invalid_argument("attention: numHeads must be a positive multiple of kvHeads (" +
                              std::to_string(kv.kv_heads) + ") up to " +
                              std::to_string(KVPayloadOptions::kMaxQueryHeads) + ", got " + std::to_string(num_heads));
    }
    if (!std::isfinite(scale)) return invalid_argument("attention: scale must be finite, got " + std::to_string(scale));
    if (q == nullptr || out == nullptr) return invalid_argument("attention: q and out must not be null");
    const std::size_t hd = kv.head_dim;
    if (Status st = check_values(q, m * num_heads * hd, "q", false); !st) return st;
    if (scale == 0.0f) scale = 1.0f / std::sqrt(static_cast<float>(hd));

    const uint32_t group = num_heads / kv.kv_heads;
    const uint32_t ps = page_size();
    const std::size_t block = std::min<std::size_t>(ps, kAttentionBlockRows);
    const bool f16 = kv.dtype == KVDtype::f16;
    // Scratch: scores per group head, running max and sum per group head, widened f16 rows.
    std::vector<float> scratch(block * group + 2 * group + (f16 ? 2 * block * hd : 0));
    float* scores = scratch.data();
    float* mx = scores + block * group;
    float* l = mx + group;
    float* kw = l + group;
    float* vw = kw + block * hd;
    for (std::size_t i = 0; i < m; ++i) {
      const std::size_t end = s.length - m + i + 1;  // query i sees positions [0, end)
      for (uint32_t g = 0; g < kv.kv_heads; ++g) {
        const std::size_t h0 = static_cast<std::size_t>(g) * group;
        const float* qg = q + (i * num_heads + h0) * hd;
        float* og = out + (i * num_heads + h0) * hd;
        std::fill(og, og + group * hd, 0.0f);
        for (std::size_t pos = 0; pos < end;) {
          const PageId p = s.pages[pos / ps];
          const std::size_t slot = pos % ps;
          const std::size_t rows = std::min<std::size_t>({block, ps - slot, end - pos});
          const float* kp;
          const float* vp;
          if (f16) {
            Kernels::widen(reinterpret_cast<const uint16_t*>(segment(p, layer, 0, g)) + slot * hd, kw, rows * hd);
            Kernels::widen(reinterpret_cast<const uint16_t*>(segment(p, layer, 1, g)) + slot * hd, vw, rows * hd);
            kp = kw;
            vp = vw;
          } else {
            kp = reinterpret_cast<const float*>(segment(p, layer, 0, g)) + slot * hd;
            vp = reinterpret_cast<const float*>(segment(p, layer, 1, g)) + slot * hd;
          }
          for (uint32_t j = 0; j < group; ++j) {
            float* sc = scores + j * block;
            float* o = og + j * hd;
            Kernels::scores(qg + j * hd, kp, rows, hd, scale, sc);
            float bm = sc[0];
            for (std::size_t r = 1; r < rows; ++r) bm = sc[r] > bm ? sc[r] : bm;
            if (pos == 0) {
              mx[j] = bm;
              l[j] = 0.0f;
            } else if (bm > mx[j]) {
              float f = mx[j];  // exp(old max - new max), through the same exp as the scores
              Kernels::exp_sum(&f, 1, bm);
              Kernels::scale(o, f, hd);
              l[j] = l[j] * f;
              mx[j] = bm;
            }
            l[j] = l[j] + Kernels::exp_sum(sc, rows, mx[j]);
            Kernels::accumulate(o, sc, vp, rows, hd);
          }
          pos += rows;
        }
        for (uint32_t j = 0; j < group; ++j) Kernels::scale(og + j * hd, 1.0f / l[j], hd);
      }
    }
    return Status::success();
  }

  std::size_t match_prefix(const TokenId* tokens, std::size_t n) const {
    if (!sharing) return 0;
    const uint32_t ps = page_size();
    std::vector<PageId> matched;
    match_pages(tokens, n / ps, matched);
    const std::size_t whole = matched.size() * ps;
    // Token granular: the rest may run partway into one of the next cached pages.
    const std::size_t rest = std::min<std::size_t>(n - whole, ps);
    std::size_t best = 0;
    for (PageId child = first_child_of(matched.empty() ? kNoPage : matched.back()); child != kNoPage;
         child = page(child).next_sibling) {
      best = std::max(best, common_prefix(page_tokens(child), tokens + whole, rest));
    }
    return whole + best;
  }
};

Result<KVCache> KVCache::create(const KVCacheOptions& options) {
  auto alloc = PagedAllocator::create({options.page_size, options.max_pages});
  if (!alloc) return alloc.status();
  const KVPayloadOptions& kv = options.kv;
  if (kv.layers > 0) {
    using P = KVPayloadOptions;
    if (kv.layers > P::kMaxLayers) {
      return invalid_argument("kv.layers must be at most " + std::to_string(P::kMaxLayers) + ", got " +
                              std::to_string(kv.layers));
    }
    if (kv.kv_heads == 0 || kv.kv_heads > P::kMaxKVHeads) {
      return invalid_argument("kv.kvHeads must be in [1, " + std::to_string(P::kMaxKVHeads) + "], got " +
                              std::to_string(kv.kv_heads));
    }
    if (kv.head_dim == 0 || kv.head_dim > P::kMaxHeadDim) {
      return invalid_argument("kv.headDim must be in [1, " + std::to_string(P::kMaxHeadDim) + "], got " +
                              std::to_string(kv.head_dim));
    }
    if (kv.dtype != KVDtype::f32 && kv.dtype != KVDtype::f16) {
      return invalid_argument("kv.dtype must be f32 or f16, got " + std::to_string(static_cast<int>(kv.dtype)));
    }
    const uint64_t page_bytes = uint64_t{options.page_size} * kv.layers * 2 * kv.kv_heads * kv.head_dim *
                                (kv.dtype == KVDtype::f16 ? 2 : 4);
    if (page_bytes > P::kMaxPageBytes || page_bytes > std::numeric_limits<std::size_t>::max() / 2) {
      return invalid_argument("kv: one page's K/V (pageSize x layers x 2 x kvHeads x headDim x element bytes = " +
                              std::to_string(page_bytes) + " bytes) exceeds " + std::to_string(P::kMaxPageBytes));
    }
  }
  return KVCache(std::make_unique<Impl>(std::move(alloc.value()), options.enable_prefix_sharing, options.events, kv));
}

KVCache::KVCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KVCache::KVCache(KVCache&&) noexcept = default;
KVCache& KVCache::operator=(KVCache&&) noexcept = default;
KVCache::~KVCache() = default;

Status KVCache::attach(SeqId seq, const TokenId* tokens, std::size_t n, int64_t prefix_len, KVPlan* plan) {
  return impl_->attach(seq, tokens, n, prefix_len, plan);
}
Status KVCache::attach(SeqId seq, const TokenId* tokens, std::size_t n, const TokenId* prefix,
                      std::size_t prefix_n, KVPlan* plan) {
  if (plan != nullptr) plan->clear();
  if (prefix_n > n) {
    return invalid_argument("prefixTokens must be a prefix of kvTokens: it has " + std::to_string(prefix_n) +
                            " tokens, kvTokens only " + std::to_string(n));
  }
  for (std::size_t i = 0; i < prefix_n; ++i) {
    if (prefix[i] != tokens[i]) {
      return invalid_argument("prefixTokens must be a prefix of kvTokens: they differ at index " + std::to_string(i) +
                              " (" + std::to_string(prefix[i]) + " vs " + std::to_string(tokens[i]) + ")");
    }
  }
  return impl_->attach(seq, tokens, n, static_cast<int64_t>(prefix_n), plan);
}
Status KVCache::append(SeqId seq, const TokenId* tokens, std::size_t n, KVPlan* plan) {
  return impl_->append(seq, tokens, n, plan);
}
void KVCache::clear() { impl_->clear(); }

std::vector<KVEvent> KVCache::drain_events() {
  std::vector<KVEvent> out;
  out.swap(impl_->events);
  return out;
}
std::size_t KVCache::pending_events() const noexcept { return impl_->events.size(); }

std::vector<uint64_t> KVCache::findable_hashes() const {
  std::vector<uint64_t> out;
  out.reserve(impl_->registered_count);
  for (const auto& pg : impl_->pages) {
    if (pg.registered) out.push_back(pg.key);
  }
  std::sort(out.begin(), out.end());
  return out;
}
Status KVCache::fork(SeqId src, SeqId dst) { return impl_->fork(src, dst); }
bool KVCache::detach(SeqId seq) { return impl_->detach(seq); }
bool KVCache::has(SeqId seq) const noexcept { return impl_->sequences.count(seq) != 0; }

Result<std::vector<TokenId>> KVCache::get(SeqId seq) const {
  auto it = impl_->sequences.find(seq);
  if (it == impl_->sequences.end()) return not_found("get: unknown " + seq_name(seq));
  std::vector<TokenId> out(it->second.length);
  const uint32_t ps = impl_->page_size();
  std::size_t pos = 0;
  for (PageId p : it->second.pages) {
    const std::size_t take = std::min<std::size_t>(ps, out.size() - pos);
    std::memcpy(out.data() + pos, impl_->page_tokens(p), take * sizeof(TokenId));
    pos += take;
  }
  return out;
}

Result<std::vector<PageId>> KVCache::block_table(SeqId seq) const {
  auto it = impl_->sequences.find(seq);
  if (it == impl_->sequences.end()) return not_found("blockTable: unknown " + seq_name(seq));
  return it->second.pages;
}

std::size_t KVCache::match_prefix(const TokenId* tokens, std::size_t n) const { return impl_->match_prefix(tokens, n); }

Status KVCache::write_kv(SeqId seq, uint32_t layer, uint32_t from_pos, const float* k, const float* v,
                         std::size_t n) {
  return impl_->write_kv(seq, layer, from_pos, k, v, n);
}
Status KVCache::read_kv(SeqId seq, uint32_t layer, uint32_t from_pos, std::size_t n, float* k_out,
                        float* v_out) const {
  return impl_->read_kv(seq, layer, from_pos, n, k_out, v_out);
}
Status KVCache::attention(SeqId seq, uint32_t layer, const float* q, std::size_t m, uint32_t num_heads, float scale,
                          float* out) const {
  return impl_->attention<SimdKernels>(seq, layer, q, m, num_heads, scale, out);
}
Status KVCacheInternals::attention_scalar(const KVCache& cache, SeqId seq, uint32_t layer, const float* q,
                                          std::size_t m, uint32_t num_heads, float scale, float* out) {
  return cache.impl_->attention<ScalarKernels>(seq, layer, q, m, num_heads, scale, out);
}
const KVPayloadOptions& KVCache::payload() const noexcept { return impl_->kv; }

KVCacheStats KVCache::stats() const noexcept {
  const Impl& m = *impl_;
  KVCacheStats s;
  s.sequences = static_cast<uint32_t>(m.sequences.size());
  s.total_pages = m.allocator.max_pages();
  s.used_pages = m.allocator.stats().allocated_pages - m.cached_count;
  s.free_pages = s.total_pages - s.used_pages;
  s.cached_pages = m.cached_count;
  s.shared_pages = m.shared_count;
  s.prefix_hits = m.prefix_hits;
  s.prefix_misses = m.prefix_misses;
  s.hit_tokens = m.hit_tokens;
  s.cow_copies = m.cow_copies;
  s.evictions = m.evictions;
  s.tokens = m.total_tokens;
  std::size_t seq_bytes = 0;
  for (const auto& kv : m.sequences) seq_bytes += sizeof(kv) + kv.second.pages.capacity() * sizeof(PageId);
  for (const auto& kv : m.pinned_by) seq_bytes += sizeof(kv) + kv.second.capacity() * sizeof(Impl::Pin);
  s.bytes = m.blocks.size() * m.block_tokens() * sizeof(TokenId) + m.blocks.capacity() * sizeof(Impl::Block) +
            m.pages.capacity() * sizeof(Impl::Page) + m.buckets.capacity() * sizeof(PageId) + seq_bytes +
            m.allocator.memory_bytes();
  s.payload_bytes = static_cast<uint64_t>(m.payload_blocks.size()) * (m.page_payload_bytes << m.payload_shift);
  return s;
}

uint32_t KVCache::page_size() const noexcept { return impl_->page_size(); }
uint32_t KVCache::max_pages() const noexcept { return impl_->allocator.max_pages(); }

uint32_t KVCache::page_refcount(PageId p) const noexcept {
  if (p < 0 || static_cast<std::size_t>(p) >= impl_->pages.size()) return 0;
  return impl_->page(p).refcount;
}

std::vector<int32_t> KVCache::page_states() const {
  std::vector<int32_t> states(impl_->pages.size(), 0);
  for (std::size_t p = 0; p < states.size(); ++p) {
    const auto& pg = impl_->pages[p];
    if (pg.refcount > 0) {
      states[p] = static_cast<int32_t>(pg.refcount);
    } else if (pg.registered) {
      states[p] = kCachedPage;
    }
  }
  return states;
}

}  // namespace llmds
