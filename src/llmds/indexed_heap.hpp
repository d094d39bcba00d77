// SPDX-License-Identifier: MIT
/// @file indexed_heap.hpp
/// @brief Addressable binary heap: O(log n) push / pop / update / erase by id, FIFO among ties.
///
/// Semantics fixed here (the JS `IndexedHeap` mirrors them):
/// - ids are uint32; scores are doubles, NaN is rejected (`invalid_argument`), +-Infinity are
///   ordinary values;
/// - min-heap by default, max-heap on request; among equal scores the entry pushed first comes
///   out first. The tie-breaker is the push order: `update` / `decrease_key` / `increase_key`
///   keep an entry's place in that order, so changing a score never moves it behind entries
///   that were pushed after it and have the same score;
/// - `update` to the score an entry already has is a valid no-op;
/// - `decrease_key` lowers a score and `increase_key` raises it, whatever the heap's direction
///   (on a max-heap `decrease_key` moves the entry towards the bottom); asking either to move
///   the wrong way is `invalid_argument`, an equal score is a no-op;
/// - `pop` / `peek` of an empty heap return an empty optional (JS: `undefined`), not an error:
///   "nothing left" is the normal end of a drain loop.
///
/// Out of memory: push and reserve allocate before they change anything (room_for / adopt),
/// so a std::bad_alloc leaves the heap exactly as it was, memory_bytes() included; the other
/// operations never allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "llmds/status.hpp"

namespace llmds {

namespace detail {

/// Open-addressing map from uint32 keys to uint32 values (linear probing, backward-shift
/// deletion, Fibonacci hashing). The serving structures do one lookup per operation; a
/// node-based std::unordered_map costs an allocation per insert, which dominates at the
/// million-submits-per-second rates the scheduler targets (especially under wasm's malloc).
class FlatIdMap {
 public:
  static constexpr uint32_t kNone = 0xFFFFFFFFu;  ///< "absent"; never a stored value
  struct Slot {
    uint32_t key;
    uint32_t value;  // kNone marks an empty slot
  };

  /// The value stored for `key`, or kNone.
  uint32_t find(uint32_t key) const noexcept {
    if (size_ == 0) return kNone;
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value == kNone) return kNone;
      if (s.key == key) return s.value;
    }
  }
  /// Inserts a key that is not present; `value` must not be kNone.
  void insert(uint32_t key, uint32_t value);
  /// Overwrites the value of a present key.
  void assign(uint32_t key, uint32_t value) noexcept {
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key && slots_[i].value != kNone) {
        slots_[i].value = value;
        return;
      }
    }
  }
  /// Removes `key`; returns its value, or kNone if it was absent.
  uint32_t erase(uint32_t key) noexcept;
  std::size_t size() const noexcept { return size_; }
  void clear() noexcept;
  void reserve(std::size_t n);
  std::size_t memory_bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }
  /// Out of memory in two steps: a larger table when `n` keys would not fit (an empty vector
  /// otherwise), changing nothing; then adopt() moves every entry into it without allocating.
  std::vector<Slot> table_for(std::size_t n) const;
  void adopt(std::vector<Slot>&& table) noexcept;

 private:
  std::size_t home(uint32_t key) const noexcept {
    return static_cast<std::size_t>((static_cast<uint64_t>(key) * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void rehash(std::size_t capacity);

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  unsigned shift_ = 64;
};

}  // namespace detail

struct IndexedHeapOptions {
  bool max_heap = false;  ///< true: largest score first
};

/// One heap entry as `pop` / `peek` report it.
struct HeapEntry {
  double score;
  uint32_t id;
};

/// Addressable binary heap of (id, score) pairs. Construction cannot fail, so unlike the
/// other llmds types it has a plain constructor rather than a `create` factory.
class IndexedHeap {
 public:
  using Id = uint32_t;

  explicit IndexedHeap(const IndexedHeapOptions& options = {}) : max_heap_(options.max_heap) {}

  /// duplicate_id if `id` is present; invalid_argument if `score` is NaN.
  Status push(Id id, double score);
  /// Removes and returns the best entry; empty optional when the heap is empty.
  std::optional<HeapEntry> pop();
  /// The best entry without removing it; empty optional when the heap is empty.
  std::optional<HeapEntry> peek() const noexcept {
    if (nodes_.empty()) return std::nullopt;
    return HeapEntry{nodes_[0].score, nodes_[0].id};
  }
  /// Sets the score of a present id (either direction; equal is a no-op). not_found, invalid_argument.
  Status update(Id id, double score);
  /// Lowers the score; invalid_argument if `score` is greater than the current one.
  Status decrease_key(Id id, double score);
  /// Raises the score; invalid_argument if `score` is less than the current one.
  Status increase_key(Id id, double score);
  /// Removes `id`; false if it was not present.
  bool erase(Id id);
  bool has(Id id) const noexcept { return index_.find(id) != detail::FlatIdMap::kNone; }
  /// The score of `id`, or an empty optional.
  std::optional<double> score_of(Id id) const noexcept;

  std::size_t size() const noexcept { return nodes_.size(); }
  bool empty() const noexcept { return nodes_.empty(); }
  bool is_max_heap() const noexcept { return max_heap_; }
  void clear() noexcept;
  void reserve(std::size_t n);
  std::size_t memory_bytes() const noexcept;

  /// An entry as stored (internal; public only so that Room can hold them).
  struct Node {
    double score;
    uint64_t seq;   // push order: the FIFO tie-breaker
    Id id;
    uint32_t slot;  // index into pos_, so a move updates an array, not the hash map
  };
  /// Room for more entries, allocated ahead (see room_for); empty vectors mean "has room".
  struct Room {
    std::vector<Node> nodes;
    std::vector<uint32_t> pos;
    std::vector<detail::FlatIdMap::Slot> slots;
  };
  /// Allocates, changing nothing, what holding `n` entries in total needs; adopt() installs it
  /// without allocating, after which pushes up to `n` entries cannot throw. Lets a caller that
  /// updates several structures allocate for all of them before changing any.
  Room room_for(std::size_t n, bool exact = false) const;
  void adopt(Room&& room) noexcept;
  /// Entries whose score is below `bound` (min-heaps; O(result)).
  std::size_t count_below(double bound) const noexcept;
  /// Keeps the entries for which keep(HeapEntry) is true and drops the others, in O(n) and
  /// without allocating (a caller that removes entries lazily purges with it). Returns how many
  /// were dropped. The survivors keep their order, FIFO ties included.
  template <typename Keep>
  std::size_t retain_if(Keep keep) noexcept {
    std::size_t kept = 0;
    for (const Node& node : nodes_) {
      if (keep(HeapEntry{node.score, node.id})) {
        nodes_[kept++] = node;
      } else {
        release_slot(node);
      }
    }
    const std::size_t dropped = nodes_.size() - kept;
    nodes_.resize(kept);  // shrinking never allocates
    rebuild();
    return dropped;
  }

 private:
  void release_slot(const Node& node) noexcept;
  void rebuild() noexcept;  // restores the heap order of nodes_ and every pos_ entry

  bool before(const Node& a, const Node& b) const noexcept {
    if (a.score != b.score) return max_heap_ ? a.score > b.score : a.score < b.score;
    return a.seq < b.seq;
  }
  Status set_score(Id id, double score, int direction, const char* op);
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void remove_at(std::size_t i) noexcept;
  std::size_t count_below(std::size_t i, double bound) const noexcept;

  bool max_heap_;
  uint64_t next_seq_ = 0;
  std::vector<Node> nodes_;
  static constexpr uint32_t kNoSlot = 0xFFFFFFFFu;
  std::vector<uint32_t> pos_;          // slot -> index in nodes_; a free slot holds the next free one
  uint32_t free_head_ = kNoSlot;       // head of the free-slot list threaded through pos_
  detail::FlatIdMap index_;           // id -> slot
};

}  // namespace llmds
