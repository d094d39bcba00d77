// SPDX-License-Identifier: MIT
// embind surface of IndexedHeap. pop/peek write (score, id) into a two-double slot whose heap
// address JS reads once, so a pop is one call and no JS object is built on the C++ side.
#include <cmath>
#include <limits>
#include <memory>

#include "common.hpp"
#include "llmds/indexed_heap.hpp"

namespace llmds::wasm {
namespace {

class RawIndexedHeap {
 public:
  explicit RawIndexedHeap(bool max_heap) : heap_(IndexedHeapOptions{max_heap}) {}

  static std::unique_ptr<RawIndexedHeap> create(bool max_heap) { return std::make_unique<RawIndexedHeap>(max_heap); }

  int32_t push(uint32_t id, double score) { return report(heap_.push(id, score)); }
  int32_t update(uint32_t id, double score) { return report(heap_.update(id, score)); }
  int32_t decrease_key(uint32_t id, double score) { return report(heap_.decrease_key(id, score)); }
  int32_t increase_key(uint32_t id, double score) { return report(heap_.increase_key(id, score)); }
  /// false when empty; else the entry is in the result slot.
  bool pop() { return store(heap_.pop()); }
  bool peek() { return store(heap_.peek()); }
  bool erase(uint32_t id) { return heap_.erase(id); }
  bool contains(uint32_t id) const { return heap_.contains(id); }
  /// NaN when absent (scores are never NaN).
  double score_of(uint32_t id) const { return heap_.score_of(id).value_or(std::numeric_limits<double>::quiet_NaN()); }
  uint32_t size() const { return static_cast<uint32_t>(heap_.size()); }
  void clear() { heap_.clear(); }
  /// Address of the (score, id) result slot: stable for the object's lifetime.
  uintptr_t result_address() const { return reinterpret_cast<uintptr_t>(result_); }

 private:
  bool store(const std::optional<HeapEntry>& e) {
    if (!e) return false;
    result_[0] = e->score;
    result_[1] = static_cast<double>(e->id);
    return true;
  }

  IndexedHeap heap_;
  double result_[2] = {0.0, 0.0};
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_indexed_heap) {
  using namespace llmds::wasm;
  emscripten::class_<RawIndexedHeap>("RawIndexedHeap")
      .class_function("create", LLMDS_GUARD(&RawIndexedHeap::create))
      .function("push", LLMDS_GUARD(&RawIndexedHeap::push))
      .function("update", LLMDS_GUARD(&RawIndexedHeap::update))
      .function("decreaseKey", LLMDS_GUARD(&RawIndexedHeap::decrease_key))
      .function("increaseKey", LLMDS_GUARD(&RawIndexedHeap::increase_key))
      .function("pop", LLMDS_GUARD(&RawIndexedHeap::pop))
      .function("peek", LLMDS_GUARD(&RawIndexedHeap::peek))
      .function("erase", LLMDS_GUARD(&RawIndexedHeap::erase))
      .function("contains", LLMDS_GUARD(&RawIndexedHeap::contains))
      .function("scoreOf", LLMDS_GUARD(&RawIndexedHeap::score_of))
      .function("size", LLMDS_GUARD(&RawIndexedHeap::size))
      .function("clear", LLMDS_GUARD(&RawIndexedHeap::clear))
      .function("resultAddress", LLMDS_GUARD(&RawIndexedHeap::result_address));
}
