// SPDX-License-Identifier: MIT
// embind surface of IndexedHeap. pop/peek leave (score, id) in the result slot, whose address
// JS reads once (it never grows), so a pop is one call and no JS object is built on this side.
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
  /// false when empty; else (score, id) are in the result slot.
  bool pop() { return store(heap_.pop()); }
  bool peek() { return store(heap_.peek()); }
  bool erase(uint32_t id) { return heap_.erase(id); }
  bool has(uint32_t id) const { return heap_.has(id); }
  /// NaN when absent (scores are never NaN).
  double score_of(uint32_t id) const { return heap_.score_of(id).value_or(std::numeric_limits<double>::quiet_NaN()); }
  uint32_t size() const { return static_cast<uint32_t>(heap_.size()); }
  void clear() { heap_.clear(); }
  /// Stable for the object's lifetime: the slot never grows past its first two doubles.
  uintptr_t result_address() const { return result_.address(); }

 private:
  bool store(const std::optional<HeapEntry>& e) {
    if (!e) return false;
    double* out = result_.as<double>(2);
    out[0] = e->score;
    out[1] = static_cast<double>(e->id);
    return true;
  }

  IndexedHeap heap_;
  ResultSlot result_;
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
      .function("has", LLMDS_GUARD(&RawIndexedHeap::has))
      .function("scoreOf", LLMDS_GUARD(&RawIndexedHeap::score_of))
      .function("size", LLMDS_GUARD(&RawIndexedHeap::size))
      .function("clear", LLMDS_GUARD(&RawIndexedHeap::clear))
      .function("resultAddress", LLMDS_GUARD(&RawIndexedHeap::result_address));
}
