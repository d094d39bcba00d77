// SPDX-License-Identifier: MIT
#include "llmds/kv_router.hpp"

#include "common/token_ids.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/growth.hpp"
#include "llmds/block_hash.hpp"
#include "llmds/serialize.hpp"

namespace llmds {
namespace {

constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr char kMagic[] = "LLMDSKVR";
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kChunkShift = 12;  // storage grows 4096 items at a time
constexpr uint32_t kChunkItems = 1u << kChunkShift;
constexpr uint16_t kIdentity = 0x8000;  // Entry::refs: the engine hash equals the router hash
constexpr uint16_t kRefMask = 0x7FFF;   // Entry::refs: engine hashes mapped onto this block
constexpr uint64_t kMaxItems = KVRouter::kMaxCapacityBlocks;  // also the (block, worker) pair limit
// A table slot holds a record index (low 26 bits), its distance from its home slot (4 bits, 15
// meaning "15 or more") and 2 bits of its hash. A probe then reads a record from (cold) memory
// only when the slot's entry has the key's home and hash bits, and deleting (backward shift)
// reads a record only for entries 15 or more slots from home: without them an unsuccessful
// lookup at 7/8 load reads ~9 records, and a deletion most of its cluster. (Measured against
// 6 hash bits and against 6 distance bits: 4 + 2 keeps the walk as fast as the former and
// recording (evictions) within 5% of the latter.)
// Hence at most 2^26 − 2 distinct blocks.
constexpr uint32_t kRecBits = 26;
constexpr uint32_t kRecMask = (1u << kRecBits) - 1;
constexpr uint64_t kMaxRecords = kRecMask - 1;
constexpr uint32_t kDistBits = 4;
constexpr std::size_t kDistMax = (1u << kDistBits) - 1;
inline uint32_t tag_of(uint64_t hash) noexcept { return static_cast<uint32_t>(hash & ((1u << (6 - kDistBits)) - 1)); }
inline uint32_t slot_value(uint32_t rec, std::size_t dist, uint32_t tag) noexcept {
  return tag << (kRecBits + kDistBits) | static_cast<uint32_t>(std::min(dist, kDistMax)) << kRecBits | rec;
}
inline std::size_t slot_dist(uint32_t v) noexcept { return (v >> kRecBits) & kDistMax; }

std::string u(uint64_t v) { return std::to_string(v); }
std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

/// Items in fixed chunks: growing never copies the items (no transient double memory, little
/// slack). Growth is two-step (prepare allocates, adopt installs without allocating).
template <class T>
class Chunked {
 public:
  explicit Chunked(uint32_t width = 1) noexcept : width_(width) {}
  T* item(uint32_t i) noexcept { return chunks_[i >> kChunkShift].get() + std::size_t(i & (kChunkItems - 1)) * width_; }
  const T* item(uint32_t i) const noexcept {
    return chunks_[i >> kChunkShift].get() + std::size_t(i & (kChunkItems - 1)) * width_;
  }
  uint64_t capacity() const noexcept { return uint64_t(chunks_.size()) << kChunkShift; }
  uint32_t width() const noexcept { return width_; }
  std::size_t bytes() const noexcept {
    return chunks_.size() * std::size_t(kChunkItems) * width_ * sizeof(T) + chunks_.capacity() * sizeof(chunks_[0]);
  }
  struct Growth {
    std::vector<std::unique_ptr<T[]>> fresh;
    std::vector<std::unique_ptr<T[]>> table;
  };
  /// Room for `items` items in all: allocates, changes nothing.
  Growth prepare(uint64_t items) const {
    Growth g;
    if (items <= capacity()) return g;
    const std::size_t want = static_cast<std::size_t>((items + kChunkItems - 1) >> kChunkShift);
    g.fresh.reserve(want - chunks_.size());
    while (chunks_.size() + g.fresh.size() < want) g.fresh.emplace_back(new T[std::size_t(kChunkItems) * width_]());
    if (want > chunks_.capacity()) g.table.reserve(std::max(want, 2 * chunks_.capacity()));
    return g;
  }
  void adopt(Growth& g) noexcept {
    if (g.fresh.empty()) return;
    if (g.table.capacity() > chunks_.capacity()) {
      for (auto& c : chunks_) g.table.push_back(std::move(c));
      chunks_.swap(g.table);
    }
    for (auto& c : g.fresh) chunks_.push_back(std::move(c));
    g.fresh.clear();
  }

 private:
  uint32_t width_;
  std::vector<std::unique_ptr<T[]>> chunks_;
};

/// Open-addressing map u64 -> u64 (linear probing, backward-shift deletion). Key 0 marks an
/// empty slot, so a key of 0 is kept aside.
class U64Map {
 public:
  struct Slot {
    uint64_t key;
    uint64_t value;
  };
  const uint64_t* find(uint64_t key) const noexcept {
    if (key == 0) return has_zero_ ? &zero_value_ : nullptr;
    if (size_ == 0) return nullptr;
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == 0) return nullptr;
      if (slots_[i].key == key) return &slots_[i].value;
    }
  }
  std::size_t size() const noexcept { return size_ + (has_zero_ ? 1 : 0); }
  std::size_t bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }
  /// A larger table when `n` keys would not fit (empty otherwise). Changes nothing.
  std::vector<Slot> table_for(std::size_t n) const {
    std::size_t cap = slots_.size();
    if (n * 8 <= cap * 7) return {};
    if (cap < 16) cap = 16;
    while (n * 8 > cap * 7) cap *= 2;
    return std::vector<Slot>(cap, Slot{0, 0});
  }
  void adopt(std::vector<Slot>&& table) noexcept {
    if (table.empty()) return;
    slots_.swap(table);
    mask_ = slots_.size() - 1;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(slots_.size()));
    for (const Slot& s : table) {
      if (s.key != 0) place(s);
    }
  }
  /// `key` must be absent and the table must have room (table_for / adopt).
  void insert(uint64_t key, uint64_t value) noexcept {
    if (key == 0) {
      has_zero_ = true;
      zero_value_ = value;
      return;
    }
    place({key, value});
    ++size_;
  }
  bool erase(uint64_t key) noexcept {
    if (key == 0) {
      const bool had = has_zero_;
      has_zero_ = false;
      return had;
    }
    if (size_ == 0) return false;
    std::size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].key == 0) return false;
      if (slots_[i].key == key) break;
    }
    for (std::size_t j = i;;) {
      j = (j + 1) & mask_;
      if (slots_[j].key == 0) break;
      const std::size_t k = home(slots_[j].key);
      // Move slot j back to i unless its home lies cyclically in (i, j].
      if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i].key = 0;
    --size_;
    return true;
  }
  void clear() noexcept {
    for (Slot& s : slots_) s.key = 0;
    size_ = 0;
    has_zero_ = false;
  }
  /// Entries in ascending key order.
  std::vector<Slot> sorted() const {
    std::vector<Slot> out;
    out.reserve(size());
    if (has_zero_) out.push_back({0, zero_value_});
    for (const Slot& s : slots_) {
      if (s.key != 0) out.push_back(s);
    }
    std::sort(out.begin(), out.end(), [](const Slot& a, const Slot& b) { return a.key < b.key; });
    return out;
  }

 private:
  std::size_t home(uint64_t key) const noexcept {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void place(const Slot& s) noexcept {
    std::size_t i = home(s.key);
    while (slots_[i].key != 0) i = (i + 1) & mask_;
    slots_[i] = s;
  }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  unsigned shift_ = 64;
  bool has_zero_ = false;
  uint64_t zero_value_ = 0;
};

/// One (block, worker) pair: on the worker's LRU list and on the block's holder list.
struct Entry {
  uint32_t rec;
  uint32_t prev;         // worker LRU, towards the most recent (free entries: unused)
  uint32_t next;         // worker LRU, towards the least recent (free entries: next free)
  uint32_t next_in_rec;  // the block's other holders
  uint16_t worker;
  uint16_t refs;         // precise mode: kIdentity | number of engine hashes mapped here
};
static_assert(sizeof(Entry) == 20, "Entry is 20 bytes");

struct Worker {
  std::string id;
  uint64_t capacity = 0;
  uint64_t blocks = 0;
  uint32_t head = kNone;  // most recently used entry
  uint32_t tail = kNone;  // least recently used entry
  uint64_t load = 0;
  uint32_t inflight = 0;
  bool live = false;
  U64Map engine;  // precise mode: engine hash -> router hash, where they differ
};

struct InFlight {
  uint32_t slot;
  uint64_t blocks;
};

Status check_options(const KVRouterOptions& o) {
  if (o.block_size == 0) return invalid_argument("KVRouter: blockSize must be >= 1, got 0");
  if (o.policy > KVRouterOptions::round_robin) return invalid_argument("KVRouter: unknown policy " + u(o.policy));
  if (o.mode > KVRouterOptions::precise) return invalid_argument("KVRouter: unknown mode " + u(o.mode));
  if (!std::isfinite(o.overlap_weight) || o.overlap_weight < 0) {
    return invalid_argument("KVRouter: overlapWeight must be a finite number >= 0");
  }
  if (o.capacity_blocks == 0 || o.capacity_blocks > kMaxItems) {
    return invalid_argument("KVRouter: capacityBlocks must be in [1, 2^32 - 16], got " + u(o.capacity_blocks));
  }
  if (!(o.sglang_cache_threshold >= 0 && o.sglang_cache_threshold <= 1)) {
    return invalid_argument("KVRouter: sglangCacheThreshold must be in [0, 1]");
  }
  if (!std::isfinite(o.sglang_balance_abs) || o.sglang_balance_abs < 0) {
    return invalid_argument("KVRouter: sglangBalanceAbs must be a finite number >= 0");
  }
  if (!std::isfinite(o.sglang_balance_rel) || o.sglang_balance_rel < 1) {
    return invalid_argument("KVRouter: sglangBalanceRel must be a finite number >= 1");
  }
  return Status::success();
}

}  // namespace

struct KVRouter::Impl {
  KVRouterOptions o;
  uint32_t stride = 1;              // u64 words of worker bits per record
  std::vector<Worker> slots;        // by worker slot = bit position
  std::vector<uint32_t> order;      // live slots, sorted by id
  std::vector<uint64_t> live_mask;  // `stride` words

  // Block records: rows = [hash, bits[stride]]; heads = first holder entry (free: next free).
  Chunked<uint64_t> rows{2};
  Chunked<uint32_t> heads{1};
  uint32_t rec_used = 0, rec_free = kNone, rec_free_count = 0, rec_live = 0;
  std::vector<uint32_t> table;  // open addressing: record index or kNone
  std::size_t mask = 0;
  unsigned shift = 64;

  Chunked<Entry> entries{1};
  uint32_t ent_used = 0, ent_free = kNone, ent_free_count = 0;
  uint64_t ent_live = 0;

  std::unordered_map<std::string, InFlight> requests;  // never iterated into a result
  uint32_t rr = 0;
  uint64_t routed = 0, hit_blocks = 0;

  explicit Impl(const KVRouterOptions& options) : o(options), live_mask(1, 0) {}

  // ---- lookups -----------------------------------------------------------------------------
  uint32_t slot_of(std::string_view id) const noexcept {
    auto it = std::lower_bound(order.begin(), order.end(), id,
                               [&](uint32_t s, std::string_view key) { return std::string_view(slots[s].id) < key; });
    return it != order.end() && slots[*it].id == id ? *it : kNone;
  }
  std::size_t home(uint64_t hash) const noexcept {
    return static_cast<std::size_t>((hash * 0x9E3779B97F4A7C15ull) >> shift);
  }
  uint64_t rec_hash(uint32_t rec) const noexcept { return rows.item(rec)[0]; }
  uint32_t find_rec(uint64_t hash) const noexcept {
    if (rec_live == 0) return kNone;
    const std::size_t h0 = home(hash);
    const uint32_t probe = slot_value(0, 0, tag_of(hash));
    for (std::size_t d = 0;; ++d) {
      const uint32_t v = table[(h0 + d) & mask];
      if (v == kNone) return kNone;
      if ((v & ~kRecMask) == (probe | slot_value(0, d, 0)) && rec_hash(v & kRecMask) == hash) return v & kRecMask;
    }
  }
  Entry& ent(uint32_t e) noexcept { return *entries.item(e); }
  const Entry& ent(uint32_t e) const noexcept { return *entries.item(e); }
  uint32_t find_entry(uint32_t rec, uint32_t slot) const noexcept {
    for (uint32_t e = *heads.item(rec); e != kNone; e = ent(e).next_in_rec) {
      if (ent(e).worker == slot) return e;
    }
    return kNone;
  }
  /// The entry of `slot` for router hash `hash`, or kNone.
  uint32_t held(uint32_t slot, uint64_t hash) const noexcept {
    const uint32_t rec = find_rec(hash);
    return rec == kNone ? kNone : find_entry(rec, slot);
  }

  // ---- room (allocate first) ---------------------------------------------------------------
  struct Room {
    Chunked<uint64_t>::Growth rows;
    Chunked<uint32_t>::Growth heads;
    Chunked<Entry>::Growth entries;
    std::vector<uint32_t> table;
  };
  /// Room for `new_recs` more records and `new_entries` more entries. Changes nothing.
  Status prepare(uint64_t new_recs, uint64_t new_entries, Room& room) const {
    const uint64_t recs = rec_used + (new_recs > rec_free_count ? new_recs - rec_free_count : 0);
    const uint64_t ents = ent_used + (new_entries > ent_free_count ? new_entries - ent_free_count : 0);
    if (recs > kMaxRecords || ents > kMaxItems) {
      return capacity_exceeded("KVRouter: index is full (2^26 - 2 distinct blocks, 2^32 - 16 pairs)");
    }
    room.rows = rows.prepare(recs);
    room.heads = heads.prepare(recs);
    room.entries = entries.prepare(ents);
    const uint64_t live = rec_live + new_recs;
    std::size_t cap = table.size();
    if (live * 8 > uint64_t(cap) * 7) {
      if (cap < 16) cap = 16;
      while (live * 8 > uint64_t(cap) * 7) cap *= 2;
      room.table.assign(cap, kNone);
    }
    return Status::success();
  }
  void adopt(Room& room) noexcept {
    rows.adopt(room.rows);
    heads.adopt(room.heads);
    entries.adopt(room.entries);
    if (!room.table.empty()) {
      table.swap(room.table);
      mask = table.size() - 1;
      shift = 64 - static_cast<unsigned>(__builtin_ctzll(table.size()));
      for (uint32_t v : room.table) {
        if (v != kNone) place(v & kRecMask);
      }
    }
  }
  void place(uint32_t rec) noexcept {
    const uint64_t hash = rec_hash(rec);
    const std::size_t h0 = home(hash);
    std::size_t d = 0;
    while (table[(h0 + d) & mask] != kNone) ++d;
    table[(h0 + d) & mask] = slot_value(rec, d, tag_of(hash));
  }

  // ---- records and entries (never allocate: room was made) -----------------------------------
  uint32_t new_rec(uint64_t hash) noexcept {
    uint32_t r;
    if (rec_free != kNone) {
      r = rec_free;
      rec_free = *heads.item(r);
      --rec_free_count;
    } else {
      r = rec_used++;
    }
    uint64_t* row = rows.item(r);
    row[0] = hash;
    for (uint32_t w = 0; w < stride; ++w) row[1 + w] = 0;
    *heads.item(r) = kNone;
    ++rec_live;
    place(r);
    return r;
  }
  void free_rec(uint32_t rec) noexcept {
    std::size_t i = home(rec_hash(rec));
    while ((table[i] & kRecMask) != rec) i = (i + 1) & mask;
    for (std::size_t j = i;;) {
      j = (j + 1) & mask;
      const uint32_t v = table[j];
      if (v == kNone) break;
      // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
      std::size_t dist = slot_dist(v);
      if (dist == kDistMax) dist = (j - home(rec_hash(v & kRecMask))) & mask;  // 7 or more: read it
      const std::size_t gap = (j - i) & mask;
      if (dist >= gap) {
        table[i] = slot_value(v & kRecMask, dist - gap, v >> (kRecBits + kDistBits));
        i = j;
      }
    }
    table[i] = kNone;
    *heads.item(rec) = rec_free;
    rec_free = rec;
    ++rec_free_count;
    --rec_live;
  }
  void lru_unlink(Worker& w, uint32_t e) noexcept {
    Entry& x = ent(e);
    if (x.prev != kNone) ent(x.prev).next = x.next; else w.head = x.next;
    if (x.next != kNone) ent(x.next).prev = x.prev; else w.tail = x.prev;
  }
  void lru_push_front(Worker& w, uint32_t e) noexcept {
    Entry& x = ent(e);
    x.prev = kNone;
    x.next = w.head;
    if (w.head != kNone) ent(w.head).prev = e; else w.tail = e;
    w.head = e;
  }
  void lru_push_back(Worker& w, uint32_t e) noexcept {
    Entry& x = ent(e);
    x.next = kNone;
    x.prev = w.tail;
    if (w.tail != kNone) ent(w.tail).next = e; else w.head = e;
    w.tail = e;
  }
  void touch(uint32_t e) noexcept {
    Worker& w = slots[ent(e).worker];
    if (w.head == e) return;
    lru_unlink(w, e);
    lru_push_front(w, e);
  }
  uint32_t add_entry(uint32_t rec, uint32_t slot, uint16_t refs, bool front) noexcept {
    uint32_t e;
    if (ent_free != kNone) {
      e = ent_free;
      ent_free = ent(e).next;
      --ent_free_count;
    } else {
      e = ent_used++;
    }
    Entry& x = ent(e);
    x.rec = rec;
    x.worker = static_cast<uint16_t>(slot);
    x.refs = refs;
    x.next_in_rec = *heads.item(rec);
    *heads.item(rec) = e;
    rows.item(rec)[1 + slot / 64] |= uint64_t{1} << (slot % 64);
    Worker& w = slots[slot];
    if (front) lru_push_front(w, e); else lru_push_back(w, e);
    ++w.blocks;
    ++ent_live;
    return e;
  }
  void drop_entry(uint32_t e) noexcept {
    Entry& x = ent(e);
    const uint32_t rec = x.rec, slot = x.worker;
    Worker& w = slots[slot];
    lru_unlink(w, e);
    uint32_t* link = heads.item(rec);
    while (*link != e) link = &ent(*link).next_in_rec;
    *link = x.next_in_rec;
    rows.item(rec)[1 + slot / 64] &= ~(uint64_t{1} << (slot % 64));
    if (*heads.item(rec) == kNone) free_rec(rec);
    x.next = ent_free;
    ent_free = e;
    ++ent_free_count;
    --w.blocks;
    --ent_live;
  }
  void drop_all(uint32_t slot) noexcept {
    Worker& w = slots[slot];
    while (w.head != kNone) drop_entry(w.head);
    w.engine.clear();
  }

  // ---- routing -------------------------------------------------------------------------------
  /// Per slot: leading blocks of the prompt it holds.
  /// `ensure(j)` makes h[0..j] available (route_tokens hashes lazily: the walk usually stops
  /// long before the end of the prompt, and the blocks after that need no hash).
  template <class Ensure>
  std::vector<uint32_t> overlaps(const uint64_t* h, std::size_t n, Ensure& ensure) const {
    std::vector<uint32_t> ov(slots.size(), 0);
    std::vector<uint64_t> active(live_mask);
    uint32_t i = 0;
    const std::size_t limit = std::min<std::size_t>(n, 0xFFFFFFFFu);
    // The walk's lookups miss the cache on a large index; their addresses are known ahead, so
    // fetch table slots kSlotAhead blocks ahead and records kRowAhead blocks ahead (a hint only:
    // a no-op where unsupported, e.g. wasm).
    constexpr std::size_t kSlotAhead = 16, kRowAhead = 8;
    const bool fetch = rec_live != 0;
    auto fetch_slot = [&](std::size_t j) { __builtin_prefetch(&table[home(h[j])]); };
    auto fetch_row = [&](std::size_t j) {
      const uint32_t v = table[home(h[j])];
      if (v != kNone) __builtin_prefetch(rows.item(v & kRecMask));
    };
    if (limit > 0) ensure(std::min<std::size_t>(kSlotAhead, limit) - 1);
    if (fetch) {
      for (std::size_t j = 0; j < kSlotAhead && j < limit; ++j) fetch_slot(j);
      for (std::size_t j = 0; j < kRowAhead && j < limit; ++j) fetch_row(j);
    }
    for (; i < limit; ++i) {
      ensure(std::min<std::size_t>(i + kSlotAhead, limit - 1));
      if (fetch) {
        if (i + kSlotAhead < limit) fetch_slot(i + kSlotAhead);
        if (i + kRowAhead < limit) fetch_row(i + kRowAhead);
      }
      const uint32_t rec = find_rec(h[i]);
      if (rec == kNone) break;
      const uint64_t* bits = rows.item(rec) + 1;
      uint64_t any = 0;
      for (uint32_t w = 0; w < stride; ++w) {
        const uint64_t keep = active[w] & bits[w];
        for (uint64_t gone = active[w] & ~keep; gone != 0; gone &= gone - 1) {
          ov[w * 64 + static_cast<uint32_t>(__builtin_ctzll(gone))] = i;
        }
        active[w] = keep;
        any |= keep;
      }
      if (any == 0) break;
    }
    for (uint32_t w = 0; w < stride; ++w) {
      for (uint64_t left = active[w]; left != 0; left &= left - 1) {
        ov[w * 64 + static_cast<uint32_t>(__builtin_ctzll(left))] = i;
      }
    }
    return ov;
  }

  /// Approximate mode: records h[0, min(n, capacity)) as held by `slot`. Allocates first.
  void record(uint32_t slot, const uint64_t* h, std::size_t n, Room& room, uint64_t& missing) const {
    const std::size_t count = static_cast<std::size_t>(std::min<uint64_t>(n, slots[slot].capacity));
    missing = 0;
    uint64_t new_recs = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const uint32_t rec = find_rec(h[i]);
      if (rec == kNone) ++new_recs;
      if (rec == kNone || find_entry(rec, slot) == kNone) ++missing;
    }
    Status st = prepare(new_recs, missing, room);
    (void)st;  // capacity_exceeded only beyond 2^32 blocks: the recording is then skipped
    if (!st.ok()) missing = kNone;
  }
  void commit_record(uint32_t slot, const uint64_t* h, std::size_t n, Room& room, uint64_t missing) noexcept {
    if (missing == kNone) return;
    adopt(room);
    Worker& w = slots[slot];
    const std::size_t count = static_cast<std::size_t>(std::min<uint64_t>(n, w.capacity));
    // 1. the prompt's blocks the worker holds become the most recent, so that 2. eviction from
    // the least recent end never takes one of them (they number at most capacity − missing);
    for (std::size_t i = 0; i < count; ++i) {
      const uint32_t e = held(slot, h[i]);
      if (e != kNone) touch(e);
    }
    while (w.blocks + missing > w.capacity && w.tail != kNone) drop_entry(w.tail);
    // 3. then leaf first, root last: the prompt's head ends up most recent.
    for (std::size_t i = count; i-- > 0;) {
      uint32_t rec = find_rec(h[i]);
      if (rec == kNone) rec = new_rec(h[i]);
      const uint32_t e = find_entry(rec, slot);
      if (e == kNone) add_entry(rec, slot, kIdentity, true); else touch(e);
    }
  }

  template <class Ensure>
  Result<RouteDecision> route(const uint64_t* h, std::size_t n, std::string_view request_id, uint32_t unit,
                              Ensure&& ensure) {
    if (order.empty()) return not_found("KVRouter.route: no workers");
    const std::vector<uint32_t> ov = overlaps(h, n, ensure);
    struct Cand {
      double score;
      double load;
      uint32_t rank;
      uint32_t slot;
    };
    std::vector<Cand> cands(order.size());
    const double blocks = static_cast<double>(n);
    double min_load = 0, max_load = 0;
    uint32_t best_ov = 0;
    for (uint32_t r = 0; r < order.size(); ++r) {
      const uint32_t s = order[r];
      const double load = static_cast<double>(slots[s].load);
      cands[r] = {0, load, r, s};
      if (r == 0 || load < min_load) min_load = load;
      if (r == 0 || load > max_load) max_load = load;
      best_ov = std::max(best_ov, ov[s]);
    }
    const uint32_t turn = rr % static_cast<uint32_t>(order.size());
    bool by_cache = false;
    if (o.policy == KVRouterOptions::sglang) {
      const bool imbalanced = max_load - min_load > o.sglang_balance_abs && max_load > o.sglang_balance_rel * min_load;
      by_cache = !imbalanced && n > 0 && static_cast<double>(best_ov) / blocks >= o.sglang_cache_threshold;
    }
    for (Cand& c : cands) {
      const double hit = static_cast<double>(ov[c.slot]);
      switch (o.policy) {
        case KVRouterOptions::cache_aware: c.score = o.overlap_weight * (blocks - hit) + c.load; break;
        case KVRouterOptions::sglang: c.score = by_cache ? 1.0 - hit / blocks : c.load; break;
        case KVRouterOptions::least_loaded: c.score = c.load; break;
        case KVRouterOptions::round_robin:
          c.score = static_cast<double>((c.rank + order.size() - turn) % order.size());
          break;
      }
    }
    std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
      if (a.score != b.score) return a.score < b.score;
      if (a.load != b.load) return a.load < b.load;
      return a.rank < b.rank;
    });
    RouteDecision d;
    d.candidates.resize(cands.size());
    for (std::size_t i = 0; i < cands.size(); ++i) {
      RouteCandidate& c = d.candidates[i];
      c.worker = slots[cands[i].slot].id;
      c.overlap_blocks = ov[cands[i].slot];
      c.load = cands[i].load;
      c.score = cands[i].score;
    }
    const uint32_t chosen = cands[0].slot;
    d.worker = slots[chosen].id;
    d.overlap_blocks = ov[chosen];
    d.overlap_tokens = static_cast<uint32_t>(std::min<uint64_t>(uint64_t(ov[chosen]) * unit, 0xFFFFFFFFu));
    // Allocations done (the decision, room for the recording): commit without allocating.
    Room room;
    uint64_t missing = kNone;
    const bool rec = o.mode == KVRouterOptions::approximate && !request_id.empty();
    if (rec && n > 0) ensure(n - 1);
    if (rec) record(chosen, h, n, room, missing);
    if (rec) commit_record(chosen, h, n, room, missing);
    ++routed;
    hit_blocks += ov[chosen];
    if (o.policy == KVRouterOptions::round_robin) rr = (turn + 1) % static_cast<uint32_t>(order.size());
    return d;
  }

  // ---- precise mode -----------------------------------------------------------------------------
  /// The router hash of the block `slot` calls `engine`, if it holds it.
  bool resolve(uint32_t slot, uint64_t engine, uint64_t& router) const noexcept {
    if (const uint64_t* r = slots[slot].engine.find(engine)) {
      router = *r;
      return true;
    }
    const uint32_t e = held(slot, engine);
    if (e != kNone && (ent(e).refs & kIdentity)) {
      router = engine;
      return true;
    }
    return false;
  }

  Status check_precise(const char* what, std::string_view worker, uint32_t& slot) const {
    if (o.mode != KVRouterOptions::precise) {
      return invalid_argument(std::string("KVRouter.") + what + ": needs mode 'precise' (this router is approximate)");
    }
    slot = slot_of(worker);
    if (slot == kNone) return not_found(std::string("KVRouter.") + what + ": unknown worker " + quoted(worker));
    return Status::success();
  }

  Status apply_stored(std::string_view worker, const uint64_t* eh, std::size_t n, bool has_parent,
                      uint64_t parent_hash, const int32_t* tokens, std::size_t n_tokens, uint32_t block_size) {
    uint32_t slot = kNone;
    Status st = check_precise("applyStored", worker, slot);
    if (!st.ok()) return st;
    if (block_size != o.block_size) {
      return invalid_argument("KVRouter.applyStored: block_size " + u(block_size) + " differs from the router's " +
                              u(o.block_size));
    }
    if (n > kMaxItems || n_tokens != n * block_size) {
      return invalid_argument("KVRouter.applyStored: " + u(n_tokens) + " token ids for " + u(n) + " blocks of " +
                              u(block_size));
    }
    for (std::size_t i = 0; i < n_tokens; ++i) {
      if (tokens[i] < 0) {
        return invalid_argument("KVRouter.applyStored: tokens[" + u(i) + "] must be a token id in [0, 2^31), got " +
                                std::to_string(tokens[i]));
      }
    }
    uint64_t parent = 0;
    if (has_parent && !resolve(slot, parent_hash, parent)) {
      return not_found("KVRouter.applyStored: parent block " + u(parent_hash) + " is not held by worker " +
                       quoted(worker));
    }
    std::vector<uint64_t> router(n);
    for (std::size_t i = 0; i < n; ++i) {
      const uint64_t h = page_content_hash(tokens + i * block_size, block_size);
      router[i] = (i == 0 && !has_parent) ? h : chain_block_hash(i == 0 ? parent : router[i - 1], h);
    }
    {
      std::vector<uint64_t> sorted(eh, eh + n);
      std::sort(sorted.begin(), sorted.end());
      if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
        return invalid_argument("KVRouter.applyStored: an engine block hash appears twice in one event");
      }
      sorted = router;
      std::sort(sorted.begin(), sorted.end());
      if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
        return invalid_argument("KVRouter.applyStored: two blocks of one event have the same router hash");
      }
    }
    const Worker& w = slots[slot];
    uint64_t new_recs = 0, new_entries = 0, new_maps = 0;
    for (std::size_t i = 0; i < n; ++i) {
      uint64_t known = 0;
      if (resolve(slot, eh[i], known)) {
        if (known != router[i]) {
          return invalid_argument("KVRouter.applyStored: worker " + quoted(worker) + " already uses block hash " +
                                  u(eh[i]) + " for a different block (the hashes do not chain)");
        }
        continue;
      }
      const uint32_t rec = find_rec(router[i]);
      const uint32_t e = rec == kNone ? kNone : find_entry(rec, slot);
      if (rec == kNone) ++new_recs;
      if (e == kNone) ++new_entries;
      if (eh[i] != router[i]) {
        ++new_maps;
        if (e != kNone && (ent(e).refs & kRefMask) == kRefMask) {
          return capacity_exceeded("KVRouter.applyStored: too many engine hashes name one block");
        }
      }
    }
    Room room;
    st = prepare(new_recs, new_entries, room);
    if (!st.ok()) return st;
    std::vector<U64Map::Slot> map_table = w.engine.table_for(w.engine.size() + new_maps);
    // Commit: nothing below allocates.
    adopt(room);
    slots[slot].engine.adopt(std::move(map_table));
    U64Map& map = slots[slot].engine;
    for (std::size_t i = 0; i < n; ++i) {
      uint32_t rec = find_rec(router[i]);
      if (rec == kNone) rec = new_rec(router[i]);
      uint32_t e = find_entry(rec, slot);
      if (e == kNone) e = add_entry(rec, slot, 0, true);  // precise mode: no LRU refresh
      Entry& x = ent(e);
      if (eh[i] == router[i]) {
        x.refs |= kIdentity;
      } else if (map.find(eh[i]) == nullptr) {
        map.insert(eh[i], router[i]);
        ++x.refs;
      }
    }
    return Status::success();
  }

  void remove_engine(uint32_t slot, uint64_t engine) noexcept {
    U64Map& map = slots[slot].engine;
    if (const uint64_t* r = map.find(engine)) {
      const uint64_t router = *r;
      map.erase(engine);
      const uint32_t e = held(slot, router);
      if (e == kNone) return;  // unreachable: a mapped hash always names a held block
      --ent(e).refs;
      if (ent(e).refs == 0) drop_entry(e);
      return;
    }
    const uint32_t e = held(slot, engine);
    if (e != kNone && (ent(e).refs & kIdentity)) {
      ent(e).refs = static_cast<uint16_t>(ent(e).refs & kRefMask);
      if (ent(e).refs == 0) drop_entry(e);
    }
  }

  std::size_t bytes() const noexcept {
    std::size_t b = sizeof(Impl) + rows.bytes() + heads.bytes() + entries.bytes() + table.capacity() * sizeof(uint32_t) +
                    slots.capacity() * sizeof(Worker) + order.capacity() * sizeof(uint32_t) +
                    live_mask.capacity() * sizeof(uint64_t);
    for (const Worker& w : slots) {
      if (w.id.capacity() > 15) b += w.id.capacity() + 1;
      b += w.engine.bytes();
    }
    b += requests.bucket_count() * sizeof(void*);
    for (const auto& kv : requests) {
      b += sizeof(kv) + 2 * sizeof(void*) + (kv.first.capacity() > 15 ? kv.first.capacity() + 1 : 0);
    }
    return b;
  }
};

// ---- public API ------------------------------------------------------------------------------
Result<KVRouter> KVRouter::create(const KVRouterOptions& options) {
  Status st = check_options(options);
  if (!st.ok()) return st;
  return KVRouter(std::make_unique<Impl>(options));
}
KVRouter::KVRouter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KVRouter::KVRouter(KVRouter&&) noexcept = default;
KVRouter& KVRouter::operator=(KVRouter&&) noexcept = default;
KVRouter::~KVRouter() = default;

const KVRouterOptions& KVRouter::options() const noexcept { return impl_->o; }

Status KVRouter::add_worker(std::string_view id, uint64_t capacity_blocks) {
  Impl& x = *impl_;
  if (id.empty()) return invalid_argument("KVRouter.addWorker: the worker id must not be empty");
  if (x.slot_of(id) != kNone) return duplicate_id("KVRouter.addWorker: worker " + quoted(id) + " already exists");
  if (x.order.size() >= kMaxWorkers) {
    return capacity_exceeded("KVRouter.addWorker: at most " + u(kMaxWorkers) + " workers");
  }
  if (capacity_blocks > kMaxItems) return invalid_argument("KVRouter.addWorker: capacityBlocks must be < 2^32 - 16");
  const uint64_t capacity = capacity_blocks == 0 ? x.o.capacity_blocks : capacity_blocks;
  // The slot: the first free one, or a new one (which may need wider records).
  uint32_t slot = 0;
  while (slot < x.slots.size() && x.slots[slot].live) ++slot;
  const bool widen = slot >= x.stride * 64;
  // Allocate everything first.
  std::string name(id);
  std::vector<Worker> grown_slots = detail::grown_copy(x.slots, std::size_t(slot) + 1);
  std::vector<uint32_t> grown_order = detail::grown_copy(x.order, x.order.size() + 1);
  Chunked<uint64_t> rows(widen ? x.stride * 2 + 1 : 1);
  std::vector<uint64_t> mask;
  Chunked<uint64_t>::Growth row_room;
  if (widen) {
    row_room = rows.prepare(x.rows.capacity());
    mask.assign(x.stride * 2, 0);
  }
  if (slot == x.slots.size()) {
    // A new slot: construct it in the grown copy (or in place when there is room).
    if (!grown_slots.empty()) {
      grown_slots.emplace_back();
    }
  }
  // Commit.
  detail::adopt_grown(x.slots, grown_slots);
  detail::adopt_grown(x.order, grown_order);
  if (slot == x.slots.size()) x.slots.emplace_back();  // has room: cannot allocate
  if (widen) {
    rows.adopt(row_room);
    const uint32_t old = x.stride, now = old * 2;
    for (uint32_t r = 0; r < x.rec_used; ++r) {
      const uint64_t* from = x.rows.item(r);
      uint64_t* to = rows.item(r);
      to[0] = from[0];
      for (uint32_t w = 0; w < now; ++w) to[1 + w] = w < old ? from[1 + w] : 0;
    }
    for (uint32_t w = 0; w < old; ++w) mask[w] = x.live_mask[w];
    x.rows = std::move(rows);
    x.live_mask.swap(mask);
    x.stride = now;
  }
  Worker& w = x.slots[slot];
  w.id.swap(name);
  w.capacity = capacity;
  w.blocks = w.load = 0;
  w.inflight = 0;
  w.head = w.tail = kNone;
  w.live = true;
  w.engine.clear();
  x.live_mask[slot / 64] |= uint64_t{1} << (slot % 64);
  auto it = std::lower_bound(x.order.begin(), x.order.end(), id,
                             [&](uint32_t s, std::string_view key) { return std::string_view(x.slots[s].id) < key; });
  x.order.insert(it, slot);  // has room: cannot allocate
  return Status::success();
}

Status KVRouter::remove_worker(std::string_view id) {
  Impl& x = *impl_;
  const uint32_t slot = x.slot_of(id);
  if (slot == kNone) return not_found("KVRouter.removeWorker: unknown worker " + quoted(id));
  x.drop_all(slot);
  for (auto it = x.requests.begin(); it != x.requests.end();) {
    if (it->second.slot == slot) it = x.requests.erase(it); else ++it;
  }
  Worker& w = x.slots[slot];
  w.live = false;
  w.load = 0;
  w.inflight = 0;
  x.live_mask[slot / 64] &= ~(uint64_t{1} << (slot % 64));
  x.order.erase(std::find(x.order.begin(), x.order.end(), slot));
  return Status::success();
}

std::vector<std::string> KVRouter::workers() const {
  std::vector<std::string> out;
  out.reserve(impl_->order.size());
  for (uint32_t s : impl_->order) out.push_back(impl_->slots[s].id);
  return out;
}

bool KVRouter::has_worker(std::string_view id) const noexcept { return impl_->slot_of(id) != kNone; }

Result<RouteDecision> KVRouter::route(const uint64_t* block_hashes, std::size_t n, std::string_view request_id) {
  return impl_->route(block_hashes, n, request_id, impl_->o.block_size, [](std::size_t) {});
}

Result<RouteDecision> KVRouter::route_tokens(const int32_t* tokens, std::size_t n, std::string_view request_id) {
  if (impl_->order.empty()) return not_found("KVRouter.route: no workers");
  // The same validation and hashes as block_hashes(), computed only as far as the walk goes
  // (and all of them when the route is recorded).
  if (Status st = detail::check_token_ids(tokens, n, "blockHashes: tokens"); !st) return st;
  const uint32_t bs = impl_->o.block_size;
  std::vector<uint64_t> hashes(n / bs);
  std::size_t done = 0;
  uint64_t chain = 0;
  auto ensure = [&](std::size_t j) noexcept {
    for (; done <= j; ++done) {
      const uint64_t h = page_content_hash(tokens + done * bs, bs);
      chain = done == 0 ? h : chain_block_hash(chain, h);
      hashes[done] = chain;
    }
  };
  return impl_->route(hashes.data(), hashes.size(), request_id, bs, ensure);
}

Result<RouteDecision> KVRouter::route_text(std::string_view text, std::string_view request_id) {
  if (impl_->order.empty()) return not_found("KVRouter.route: no workers");
  const std::vector<uint64_t> hashes = text_block_hashes(text);
  return impl_->route(hashes.data(), hashes.size(), request_id, kTextBlockBytes, [](std::size_t) {});
}

Status KVRouter::started(std::string_view worker, std::string_view request_id, uint32_t prompt_tokens) {
  Impl& x = *impl_;
  if (request_id.empty()) return invalid_argument("KVRouter.started: the request id must not be empty");
  const uint32_t slot = x.slot_of(worker);
  if (slot == kNone) return not_found("KVRouter.started: unknown worker " + quoted(worker));
  std::string key(request_id);
  if (x.requests.count(key) != 0) {
    return duplicate_id("KVRouter.started: request " + quoted(request_id) + " is already in flight");
  }
  const uint64_t blocks = (uint64_t(prompt_tokens) + x.o.block_size - 1) / x.o.block_size;
  x.requests.emplace(std::move(key), InFlight{slot, blocks});  // strong guarantee (single node)
  x.slots[slot].load += blocks;
  ++x.slots[slot].inflight;
  return Status::success();
}

Status KVRouter::finished(std::string_view request_id) {
  Impl& x = *impl_;
  auto it = x.requests.find(std::string(request_id));
  if (it == x.requests.end()) return not_found("KVRouter.finished: request " + quoted(request_id) + " is not in flight");
  Worker& w = x.slots[it->second.slot];
  w.load -= it->second.blocks;
  --w.inflight;
  x.requests.erase(it);
  return Status::success();
}

Result<uint64_t> KVRouter::load(std::string_view worker) const {
  const uint32_t slot = impl_->slot_of(worker);
  if (slot == kNone) return not_found("KVRouter.load: unknown worker " + quoted(worker));
  return impl_->slots[slot].load;
}

Result<uint64_t> KVRouter::worker_blocks(std::string_view worker) const {
  const uint32_t slot = impl_->slot_of(worker);
  if (slot == kNone) return not_found("KVRouter.workerBlocks: unknown worker " + quoted(worker));
  return impl_->slots[slot].blocks;
}

Status KVRouter::apply_stored(std::string_view worker, const uint64_t* block_hashes, std::size_t n, bool has_parent,
                              uint64_t parent_hash, const int32_t* tokens, std::size_t n_tokens, uint32_t block_size) {
  return impl_->apply_stored(worker, block_hashes, n, has_parent, parent_hash, tokens, n_tokens, block_size);
}

Status KVRouter::apply_removed(std::string_view worker, const uint64_t* block_hashes, std::size_t n) {
  uint32_t slot = kNone;
  Status st = impl_->check_precise("applyRemoved", worker, slot);
  if (!st.ok()) return st;
  for (std::size_t i = 0; i < n; ++i) impl_->remove_engine(slot, block_hashes[i]);
  return Status::success();
}

Status KVRouter::apply_cleared(std::string_view worker) {
  uint32_t slot = kNone;
  Status st = impl_->check_precise("applyCleared", worker, slot);
  if (!st.ok()) return st;
  impl_->drop_all(slot);
  return Status::success();
}

KVRouterStats KVRouter::stats() const noexcept {
  const Impl& x = *impl_;
  KVRouterStats s;
  s.workers = static_cast<uint32_t>(x.order.size());
  s.indexed_blocks = x.ent_live;
  s.unique_blocks = x.rec_live;
  s.bytes = x.bytes();
  s.routed = x.routed;
  s.hit_blocks = x.hit_blocks;
  return s;
}

// ---- serialization ----------------------------------------------------------------------------
// Payload (format version 1, little-endian):
//   u32 block_size, u8 policy, u8 mode, u16 reserved (0), f64 overlap_weight, u64 capacity_blocks,
//   f64 sglang_cache_threshold, f64 sglang_balance_abs, f64 sglang_balance_rel,
//   u64 routed, u64 hit_blocks, u32 round-robin turn, u64 (block, worker) pairs P, u64 distinct
//   blocks U (so that a reader sizes its index once), u32 worker count W, then W workers in id
//   order: string id (u32 length + bytes), u64 capacity, u64 block count B, B blocks from the
//   most to the least recently used: u64 router hash (+ u8 identity flag in precise mode);
//   precise mode: u64 map count M, M pairs (u64 engine hash, u64 router hash) by engine hash.
std::vector<uint8_t> KVRouter::serialize() const {
  const Impl& x = *impl_;
  const bool precise = x.o.mode == KVRouterOptions::precise;
  ByteWriter w;
  w.reserve(kEnvelopeHeaderBytes + 96 + x.order.size() * 32 + x.ent_live * (precise ? 9 : 8) + kEnvelopeTrailerBytes);
  begin_envelope(w, kMagic, kFormatVersion);
  w.put_u32(x.o.block_size);
  w.put_u8(x.o.policy);
  w.put_u8(x.o.mode);
  w.put_u16(0);
  w.put_f64(x.o.overlap_weight);
  w.put_u64(x.o.capacity_blocks);
  w.put_f64(x.o.sglang_cache_threshold);
  w.put_f64(x.o.sglang_balance_abs);
  w.put_f64(x.o.sglang_balance_rel);
  w.put_u64(x.routed);
  w.put_u64(x.hit_blocks);
  w.put_u32(x.order.empty() ? 0 : x.rr % static_cast<uint32_t>(x.order.size()));
  w.put_u64(x.ent_live);
  w.put_u64(x.rec_live);
  w.put_u32(static_cast<uint32_t>(x.order.size()));
  for (uint32_t s : x.order) {
    const Worker& wk = x.slots[s];
    w.put_string(wk.id);
    w.put_u64(wk.capacity);
    w.put_u64(wk.blocks);
    for (uint32_t e = wk.head; e != kNone; e = x.ent(e).next) {
      w.put_u64(x.rec_hash(x.ent(e).rec));
      if (precise) w.put_u8((x.ent(e).refs & kIdentity) ? 1 : 0);
    }
    if (precise) {
      const auto pairs = wk.engine.sorted();
      w.put_u64(pairs.size());
      for (const auto& p : pairs) {
        w.put_u64(p.key);
        w.put_u64(p.value);
      }
    }
  }
  return finish_envelope(std::move(w));
}

Result<KVRouter> KVRouter::deserialize(const uint8_t* data, std::size_t size) {
  auto env = open_envelope(data, size, kMagic, kFormatVersion, "KVRouter");
  if (!env.ok()) return env.status();
  ByteReader r(env->data, env->size);
  auto bad = [](const std::string& what) { return corrupt_data("KVRouter.deserialize: " + what); };
  KVRouterOptions o;
  uint8_t policy = 0, mode = 0;
  uint16_t reserved = 0;
  uint64_t routed = 0, hit_blocks = 0;
  uint32_t turn = 0, count = 0;
  uint64_t pairs_total = 0, unique_total = 0;
  if (!r.get_u32(o.block_size) || !r.get_u8(policy) || !r.get_u8(mode) || !r.get_u16(reserved) ||
      !r.get_f64(o.overlap_weight) || !r.get_u64(o.capacity_blocks) || !r.get_f64(o.sglang_cache_threshold) ||
      !r.get_f64(o.sglang_balance_abs) || !r.get_f64(o.sglang_balance_rel) || !r.get_u64(routed) ||
      !r.get_u64(hit_blocks) || !r.get_u32(turn) || !r.get_u64(pairs_total) || !r.get_u64(unique_total) ||
      !r.get_u32(count)) {
    return bad("header truncated");
  }
  if (reserved != 0 || policy > KVRouterOptions::round_robin || mode > KVRouterOptions::precise) {
    return bad("invalid policy, mode or flag bytes");
  }
  o.policy = static_cast<KVRouterOptions::Policy>(policy);
  o.mode = static_cast<KVRouterOptions::Mode>(mode);
  auto created = create(o);
  if (!created.ok()) return bad("invalid options: " + created.status().message());
  KVRouter router = std::move(created).value();
  Impl& x = *router.impl_;
  const bool precise = o.mode == KVRouterOptions::precise;
  if (count > kMaxWorkers || !r.fits(count, 4 + 8 + 8)) return bad("worker count " + u(count) + " out of range");
  if (turn != 0 && turn >= count) return bad("round-robin turn " + u(turn) + " out of range");
  if (unique_total > pairs_total || !r.fits(pairs_total, precise ? 9 : 8)) {
    return bad("block counts " + u(pairs_total) + " / " + u(unique_total) + " out of range");
  }
  {
    Impl::Room room;
    Status st = x.prepare(unique_total, pairs_total, room);
    if (!st.ok()) return bad(st.message());
    x.adopt(room);
  }
  std::string prev, id;
  for (uint32_t k = 0; k < count; ++k) {
    uint64_t capacity = 0, blocks = 0;
    if (!r.get_string(id) || !r.get_u64(capacity) || !r.get_u64(blocks)) return bad("worker truncated");
    if (id.empty() || (k > 0 && !(prev < id))) return bad("worker ids empty or not in increasing order");
    if (capacity == 0 || capacity > kMaxItems) return bad("worker capacity " + u(capacity) + " out of range");
    if (!precise && blocks > capacity) return bad("worker " + quoted(id) + " holds more blocks than its capacity");
    if (!r.fits(blocks, precise ? 9 : 8)) return bad("block list truncated");
    Status st = router.add_worker(id, capacity);
    if (!st.ok()) return bad(st.message());
    const uint32_t slot = x.slot_of(id);
    Impl::Room room;
    st = x.prepare(blocks, blocks, room);
    if (!st.ok()) return bad(st.message());
    x.adopt(room);
    for (uint64_t b = 0; b < blocks; ++b) {
      uint64_t hash = 0;
      uint8_t flag = 1;
      if (!r.get_u64(hash) || (precise && !r.get_u8(flag))) return bad("block list truncated");
      if (flag > 1) return bad("invalid identity flag");
      uint32_t rec = x.find_rec(hash);
      if (rec == kNone) rec = x.new_rec(hash);
      else if (x.find_entry(rec, slot) != kNone) return bad("worker " + quoted(id) + " holds block " + u(hash) + " twice");
      x.add_entry(rec, slot, flag ? kIdentity : 0, false);
    }
    if (precise) {
      uint64_t pairs = 0;
      if (!r.get_u64(pairs) || !r.fits(pairs, 16)) return bad("engine hash map truncated");
      U64Map& map = x.slots[slot].engine;
      map.adopt(map.table_for(static_cast<std::size_t>(pairs)));
      uint64_t last = 0;
      for (uint64_t p = 0; p < pairs; ++p) {
        uint64_t engine = 0, hash = 0;
        if (!r.get_u64(engine) || !r.get_u64(hash)) return bad("engine hash map truncated");
        if (p > 0 && engine <= last) return bad("engine hashes not in increasing order");
        last = engine;
        if (engine == hash) return bad("engine hash map entry maps a hash to itself");
        const uint32_t e = x.held(slot, hash);
        if (e == kNone) return bad("engine hash " + u(engine) + " maps to a block the worker does not hold");
        const uint32_t same = x.held(slot, engine);
        if (same != kNone && (x.ent(same).refs & kIdentity)) return bad("engine hash " + u(engine) + " names two blocks");
        if ((x.ent(e).refs & kRefMask) == kRefMask) return bad("too many engine hashes name one block");
        ++x.ent(e).refs;
        map.insert(engine, hash);
      }
      for (uint32_t e = x.slots[slot].head; e != kNone; e = x.ent(e).next) {
        if (x.ent(e).refs == 0) return bad("worker " + quoted(id) + " holds a block no engine hash names");
      }
    }
    prev.swap(id);
  }
  if (!r.at_end()) return bad(u(r.remaining()) + " unexpected trailing bytes");
  if (x.ent_live != pairs_total || x.rec_live != unique_total) return bad("block counts do not match the blocks");
  x.routed = routed;
  x.hit_blocks = hit_blocks;
  x.rr = turn;
  return router;
}

}  // namespace llmds
