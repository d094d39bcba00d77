// SPDX-License-Identifier: MIT
#include "llmds/indexed_heap.hpp"

#include <cmath>

#include "common/growth.hpp"
#include <string>

namespace llmds {

namespace detail {

namespace {
constexpr std::size_t kMinCapacity = 16;
}  // namespace

void FlatIdMap::rehash(std::size_t capacity) {
  adopt(std::vector<Slot>(capacity, Slot{0, kNone}));  // allocate first: a bad_alloc leaves the map intact
}

std::vector<FlatIdMap::Slot> FlatIdMap::table_for(std::size_t n) const {
  // Load factor <= 1/2 keeps linear-probe chains short.
  if (n * 2 <= slots_.size()) return {};
  std::size_t capacity = slots_.empty() ? kMinCapacity : slots_.size();
  while (capacity < n * 2) capacity *= 2;
  return std::vector<Slot>(capacity, Slot{0, kNone});
}

void FlatIdMap::adopt(std::vector<Slot>&& table) noexcept {
  if (table.empty()) return;
  table.swap(slots_);
  const std::size_t capacity = slots_.size();
  mask_ = capacity - 1;
  unsigned bits = 0;
  while ((std::size_t{1} << bits) < capacity) ++bits;
  shift_ = 64 - bits;
  for (const Slot& s : table) {
    if (s.value == kNone) continue;
    std::size_t i = home(s.key);
    while (slots_[i].value != kNone) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

void FlatIdMap::insert(uint32_t key, uint32_t value) {
  adopt(table_for(size_ + 1));  // the only allocation: a bad_alloc leaves the map intact
  std::size_t i = home(key);
  while (slots_[i].value != kNone) i = (i + 1) & mask_;
  slots_[i] = Slot{key, value};
  ++size_;
}

uint32_t FlatIdMap::erase(uint32_t key) noexcept {
  if (size_ == 0) return kNone;
  std::size_t i = home(key);
  for (;; i = (i + 1) & mask_) {
    if (slots_[i].value == kNone) return kNone;
    if (slots_[i].key == key) break;
  }
  const uint32_t value = slots_[i].value;
  // Backward-shift deletion: pull later members of the probe run into the hole so that no
  // tombstones accumulate (a long-running scheduler erases every id it ever inserted).
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask_; slots_[j].value != kNone; j = (j + 1) & mask_) {
    const std::size_t h = home(slots_[j].key);
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
    if (!stays) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole].value = kNone;
  --size_;
  // Shrink after a burst so memory follows the live size (hysteresis: grow at 1/2, shrink at 1/8).
  if (slots_.size() > kMinCapacity && size_ * 8 < slots_.size()) {
    try {
      rehash(slots_.size() / 2);
    } catch (...) {  // keeping the larger table is always correct
    }
  }
  return value;
}

void FlatIdMap::clear() noexcept {
  slots_.clear();
  slots_.shrink_to_fit();
  mask_ = 0;
  size_ = 0;
  shift_ = 64;
}

void FlatIdMap::reserve(std::size_t n) { adopt(table_for(n)); }

}  // namespace detail

namespace {

std::string id_text(uint32_t id) { return std::to_string(id); }

}  // namespace

IndexedHeap::Room IndexedHeap::room_for(std::size_t n, bool exact) const {
  Room room;
  if (n <= nodes_.size()) return room;
  // Every slot of pos_ is either some node's or free: pos_ needs max(its size, n) slots.
  if (exact) {
    if (n > nodes_.capacity()) {
      room.nodes.reserve(n);
      room.nodes.assign(nodes_.begin(), nodes_.end());
    }
    if (n > pos_.capacity()) {
      room.pos.reserve(n);
      room.pos.assign(pos_.begin(), pos_.end());
    }
  } else {
    room.nodes = detail::grown_copy(nodes_, n);
    room.pos = detail::grown_copy(pos_, n);
  }
  room.slots = index_.table_for(n);
  return room;
}

void IndexedHeap::adopt(Room&& room) noexcept {
  detail::adopt_grown(nodes_, room.nodes);
  detail::adopt_grown(pos_, room.pos);
  index_.adopt(std::move(room.slots));
}

std::size_t IndexedHeap::count_below(double bound) const noexcept { return count_below(0, bound); }

std::size_t IndexedHeap::count_below(std::size_t i, double bound) const noexcept {
  // A subtree whose root is not below `bound` has nothing below it (min-heap); recursion depth
  // is the heap's height, so no allocation.
  if (i >= nodes_.size() || !(nodes_[i].score < bound)) return 0;
  return 1 + count_below(2 * i + 1, bound) + count_below(2 * i + 2, bound);
}

Status IndexedHeap::push(Id id, double score) {
  if (std::isnan(score)) return invalid_argument("push: score must not be NaN (id " + id_text(id) + ")");
  if (has(id)) return duplicate_id("push: id " + id_text(id) + " is already in the heap");
  // Allocate everything first, so a failed allocation leaves the heap unchanged (capacities too).
  adopt(room_for(nodes_.size() + 1));
  uint32_t slot = free_head_;
  if (slot == kNoSlot) {
    slot = static_cast<uint32_t>(pos_.size());
  }
  index_.insert(id, slot);  // has room: cannot throw
  if (slot == pos_.size()) {
    pos_.push_back(0);
  } else {
    free_head_ = pos_[slot];
  }
  const std::size_t i = nodes_.size();
  nodes_.push_back(Node{score, next_seq_++, id, slot});
  pos_[slot] = static_cast<uint32_t>(i);
  sift_up(i);
  return Status::success();
}

std::optional<HeapEntry> IndexedHeap::pop() {
  if (nodes_.empty()) return std::nullopt;
  const HeapEntry top{nodes_[0].score, nodes_[0].id};
  remove_at(0);
  return top;
}

std::optional<double> IndexedHeap::score_of(Id id) const noexcept {
  const uint32_t slot = index_.find(id);
  if (slot == detail::FlatIdMap::kNone) return std::nullopt;
  return nodes_[pos_[slot]].score;
}

Status IndexedHeap::update(Id id, double score) { return set_score(id, score, 0, "update"); }
Status IndexedHeap::decrease_key(Id id, double score) { return set_score(id, score, -1, "decreaseKey"); }
Status IndexedHeap::increase_key(Id id, double score) { return set_score(id, score, +1, "increaseKey"); }

Status IndexedHeap::set_score(Id id, double score, int direction, const char* op) {
  if (std::isnan(score)) return invalid_argument(std::string(op) + ": score must not be NaN (id " + id_text(id) + ")");
  const uint32_t slot = index_.find(id);
  if (slot == detail::FlatIdMap::kNone) return not_found(std::string(op) + ": id " + id_text(id) + " is not in the heap");
  const std::size_t i = pos_[slot];
  const double old = nodes_[i].score;
  if ((direction < 0 && score > old) || (direction > 0 && score < old)) {
    return invalid_argument(std::string(op) + ": new score " + std::to_string(score) + " for id " + id_text(id) +
                            (direction < 0 ? " is greater than" : " is less than") + " the current score " +
                            std::to_string(old));
  }
  if (score == old) return Status::success();  // the prototype raised here; an equal update is a no-op
  nodes_[i].score = score;
  // The entry keeps its seq, so it moves only as far as the new score requires.
  sift_up(i);
  sift_down(pos_[slot]);
  return Status::success();
}

bool IndexedHeap::erase(Id id) {
  const uint32_t slot = index_.find(id);
  if (slot == detail::FlatIdMap::kNone) return false;
  remove_at(pos_[slot]);
  return true;
}

void IndexedHeap::release_slot(const Node& node) noexcept {
  index_.erase(node.id);
  pos_[node.slot] = free_head_;  // intrusive free list: a removal never allocates
  free_head_ = node.slot;
}

void IndexedHeap::rebuild() noexcept {
  for (std::size_t i = 0; i < nodes_.size(); ++i) pos_[nodes_[i].slot] = static_cast<uint32_t>(i);
  for (std::size_t i = nodes_.size() / 2; i-- > 0;) sift_down(i);
  if (nodes_.empty()) next_seq_ = 0;
}

void IndexedHeap::remove_at(std::size_t i) noexcept {
  const Node gone = nodes_[i];
  release_slot(gone);
  const std::size_t last = nodes_.size() - 1;
  if (i != last) {
    const uint32_t moved = nodes_[last].slot;
    nodes_[i] = nodes_[last];
    pos_[moved] = static_cast<uint32_t>(i);
    nodes_.pop_back();
    sift_up(i);
    sift_down(pos_[moved]);
  } else {
    nodes_.pop_back();
  }
  if (nodes_.empty()) next_seq_ = 0;  // seq only orders live entries; restarting keeps it small
}

void IndexedHeap::sift_up(std::size_t i) noexcept {
  Node moving = nodes_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!before(moving, nodes_[parent])) break;
    nodes_[i] = nodes_[parent];
    pos_[nodes_[i].slot] = static_cast<uint32_t>(i);
    i = parent;
  }
  nodes_[i] = moving;
  pos_[moving.slot] = static_cast<uint32_t>(i);
}

void IndexedHeap::sift_down(std::size_t i) noexcept {
  const std::size_t n = nodes_.size();
  if (i >= n) return;
  Node moving = nodes_[i];
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(nodes_[child + 1], nodes_[child])) ++child;
    if (!before(nodes_[child], moving)) break;
    nodes_[i] = nodes_[child];
    pos_[nodes_[i].slot] = static_cast<uint32_t>(i);
    i = child;
  }
  nodes_[i] = moving;
  pos_[moving.slot] = static_cast<uint32_t>(i);
}

void IndexedHeap::clear() noexcept {
  nodes_.clear();
  pos_.clear();
  free_head_ = kNoSlot;
  index_.clear();
  next_seq_ = 0;
}

void IndexedHeap::reserve(std::size_t n) { adopt(room_for(n, true)); }

std::size_t IndexedHeap::memory_bytes() const noexcept {
  return nodes_.capacity() * sizeof(Node) + pos_.capacity() * sizeof(uint32_t) + index_.memory_bytes();
}

}  // namespace llmds
