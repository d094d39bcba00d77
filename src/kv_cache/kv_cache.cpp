// SPDX-License-Identifier: MIT
#include "llmds/kv_cache.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

namespace llmds {
namespace {

constexpr PageId kNoPage = -1;
constexpr uint32_t kUnlimited = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kRootKey = 0x243F6A8885A308D3ull;  // digits of pi: any fixed non-zero seed

uint64_t finalize(uint64_t h) noexcept {  // splitmix64 finaliser: spreads every input bit
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

/// Key of a full page = hash(parent's key, the page's tokens). Chaining makes the key cover the
/// whole history from position 0, so equal keys mean (barring collisions) equal histories.
uint64_t chain_key(uint64_t parent_key, const TokenId* tokens, uint32_t n) noexcept {
  uint64_t h = parent_key;
  uint32_t i = 0;
  for (; i + 2 <= n; i += 2) {  // two tokens per multiply halves the serial dependency chain
    uint64_t word;
    std::memcpy(&word, tokens + i, sizeof word);
    h = (h ^ word) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
  }
  if (i < n) h = (h ^ static_cast<uint32_t>(tokens[i])) * 0x9E3779B97F4A7C15ull;
  return finalize(h ^ n);
}

std::string seq_name(SeqId seq) { return "seqId " + std::to_string(seq); }

Status check_tokens(const TokenId* tokens, std::size_t n, const char* what) {
  for (std::size_t i = 0; i < n; ++i) {
    if (tokens[i] < 0) {
      return invalid_argument(std::string(what) + "[" + std::to_string(i) + "] must be a token id in [0, 2^31), got " +
                              std::to_string(tokens[i]));
    }
  }
  return Status::success();
}

std::size_t pages_for(std::size_t tokens, uint32_t page_size) noexcept {
  return (tokens + page_size - 1) / page_size;
}

}  // namespace

/// Out of memory: every mutating operation first allocates everything it may need (the new
/// block table, room in the page-indexed arrays and the allocator's table, the sequence's map
/// node), changing nothing, and then commits with operations that cannot allocate. A
/// std::bad_alloc therefore leaves the cache exactly as it was. The prefix registry and the
/// page-to-children links are intrusive (threaded through Page) so publishing or evicting a
/// page never allocates.
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
  /// Room allocated ahead of a commit (see prepare_growth); empty vectors mean "no growth".
  struct Growth {
    std::vector<PageId> table;  // the allocator's per-id table
    std::vector<TokenId> storage;
    std::vector<Page> pages;
    std::vector<PageId> buckets;
  };

  explicit Impl(PagedAllocator alloc, bool sharing) : allocator(std::move(alloc)), sharing(sharing) {}

  PagedAllocator allocator;
  bool sharing;
  uint32_t page_size() const noexcept { return allocator.page_size(); }

  std::vector<TokenId> storage;  // page p holds storage[p * page_size, (p + 1) * page_size)
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

  TokenId* page_tokens(PageId p) noexcept { return storage.data() + static_cast<std::size_t>(p) * page_size(); }
  const TokenId* page_tokens(PageId p) const noexcept {
    return storage.data() + static_cast<std::size_t>(p) * page_size();
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
  uint64_t parent_key(PageId parent) const noexcept { return parent == kNoPage ? kRootKey : page(parent).key; }
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
    const uint64_t key = chain_key(parent_key(parent), page_tokens(p), page_size());
    if (lookup(key) != kNoPage) return false;
    Page& pg = page(p);
    pg.registered = true;
    pg.parent = parent;
    pg.key = key;
    hash_insert(p);
    link_child(parent, p);
    ++registered_count;
    return true;
  }

  /// Evicts a cached page and, first, any cached descendants (they would be unreachable).
  void evict(PageId p) noexcept {
    while (page(p).first_child != kNoPage) evict(page(p).first_child);  // evicting unlinks it
    Page& pg = page(p);
    unlink_child(p);
    hash_erase(p);
    --registered_count;
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
    g.storage = grown_copy(storage, high * page_size());
    g.pages = grown_copy(pages, high);
    if (high > buckets.size()) g.buckets.assign(pow2_at_least(high), kNoPage);
    return g;
  }
  /// Installs the room prepared by prepare_growth(); the first step of every commit.
  void commit_growth(Growth& g) noexcept {
    allocator.adopt_table(std::move(g.table));
    if (g.storage.capacity() > storage.capacity()) storage.swap(g.storage);
    if (g.pages.capacity() > pages.capacity()) pages.swap(g.pages);
    if (!g.buckets.empty()) {  // rehash every registered page into the larger registry
      buckets.swap(g.buckets);
      for (std::size_t p = 0; p < pages.size(); ++p) {
        if (pages[p].registered) hash_insert(static_cast<PageId>(p));
      }
    }
  }

  /// Needs the room of a commit_growth() (no allocation here; page ids, storage and registry
  /// already have room for every page the operation takes).
  PageId allocate_page() noexcept {
    if (allocator.available() == 0) evict(lru_head);  // the caller checked obtainable()
    const PageId p = allocator.alloc_one();  // cannot throw: the table has room
    const std::size_t high = allocator.high_water();
    if (pages.size() < high) {  // within capacity: no allocation
      assert(pages.capacity() >= high && storage.capacity() >= high * page_size());
      storage.resize(high * page_size());
      pages.resize(high);
    }
    Page& pg = page(p);
    pg = Page();
    pg.refcount = 1;
    return p;
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
      const PageId hit = find_page(chain_key(parent_key(parent), chunk, page_size()), parent, chunk);
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

  Status attach(SeqId seq, const TokenId* tokens, std::size_t n, int64_t prefix_len) {
    if (Status st = check_tokens(tokens, n, "kvTokens"); !st) return st;
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
    }
    const std::size_t fresh = needed - matched;
    const std::size_t available = obtainable() - revived + released;
    if (fresh > available) {
      return capacity_exceeded("attach(" + seq_name(seq) + ") needs " + std::to_string(fresh) +
                               " new pages but only " + std::to_string(available) + " can be freed");
    }

    // Allocate everything else, still changing nothing observable: room for the new pages,
    // then (last, so nothing can fail after it) the map node of a new sequence.
    const std::size_t to_free = old == sequences.end() ? 0 : freed_by_release(old->second.pages, table);
    Growth growth = prepare_growth(allocator.fresh_needed(fresh, to_free));
    if (old == sequences.end()) old = sequences.emplace(seq, Sequence()).first;

    // Commit: nothing below allocates.
    commit_growth(growth);
    Sequence& s = old->second;
    for (PageId p : table) acquire(p);
    release_all(s.pages);
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
    return Status::success();
  }

  Status append(SeqId seq, const TokenId* tokens, std::size_t n) {
    auto it = sequences.find(seq);
    if (it == sequences.end()) return not_found("append: unknown " + seq_name(seq));
    if (Status st = check_tokens(tokens, n, "tokens"); !st) return st;
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
    if (needed == 0) {  // the decode step's common case: the tail page has room, nothing to allocate
      write_tail(s, tokens, n);
      return Status::success();
    }
    // Allocate first (a larger block table, room for new pages), then commit without allocating.
    std::vector<PageId> table = grown_copy(s.pages, s.pages.size() + added);
    // The copied-from shared tail keeps its refcount > 0, so it frees nothing.
    Growth growth = prepare_growth(allocator.fresh_needed(needed));
    commit_growth(growth);
    if (table.capacity() > s.pages.capacity()) s.pages.swap(table);
    if (copy_tail) {
      // Copy-on-write: the other holders keep the original page untouched.
      const PageId shared = s.pages.back();
      const PageId copy = allocate_page();
      std::memcpy(page_tokens(copy), page_tokens(shared), tail_fill * sizeof(TokenId));
      page(copy).fill = tail_fill;
      release(shared);
      s.pages.back() = copy;
      ++cow_copies;
    }
    write_tail(s, tokens, n);
    return Status::success();
  }

  Status fork(SeqId src, SeqId dst) {
    auto it = sequences.find(src);
    if (it == sequences.end()) return not_found("fork: unknown source " + seq_name(src));
    if (sequences.count(dst)) return duplicate_id("fork: destination " + seq_name(dst) + " already exists");
    // The copy and its map node are the only allocations: make them before any refcount moves.
    // (Rehashing keeps references to elements valid, so `it->second` is safe to copy from.)
    const Sequence& copy = sequences.emplace(dst, it->second).first->second;
    for (PageId p : copy.pages) acquire(p);
    total_tokens += copy.length;
    return Status::success();
  }

  bool detach(SeqId seq) noexcept {
    auto it = sequences.find(seq);
    if (it == sequences.end()) return false;
    release_all(it->second.pages);
    total_tokens -= it->second.length;
    sequences.erase(it);
    return true;
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
  return KVCache(std::make_unique<Impl>(std::move(alloc.value()), options.enable_prefix_sharing));
}

KVCache::KVCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KVCache::KVCache(KVCache&&) noexcept = default;
KVCache& KVCache::operator=(KVCache&&) noexcept = default;
KVCache::~KVCache() = default;

Status KVCache::attach(SeqId seq, const TokenId* tokens, std::size_t n, int64_t prefix_len) {
  return impl_->attach(seq, tokens, n, prefix_len);
}
Status KVCache::attach(SeqId seq, const TokenId* tokens, std::size_t n, const TokenId* prefix,
                      std::size_t prefix_n) {
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
  return impl_->attach(seq, tokens, n, static_cast<int64_t>(prefix_n));
}
Status KVCache::append(SeqId seq, const TokenId* tokens, std::size_t n) { return impl_->append(seq, tokens, n); }
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
  s.bytes = m.storage.capacity() * sizeof(TokenId) + m.pages.capacity() * sizeof(Impl::Page) +
            m.buckets.capacity() * sizeof(PageId) + seq_bytes +             m.allocator.memory_bytes();
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
