// SPDX-License-Identifier: MIT
// embind surface of CountMinSketch: items as UTF-8 bytes, counts as doubles (integers < 2^53).
#include <memory>
#include <string>
#include <string_view>

#include "common.hpp"
#include "llmds/count_min_sketch.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

class RawCountMinSketch {
 public:
  explicit RawCountMinSketch(CountMinSketch sketch) : sketch_(std::move(sketch)) {}

  static std::unique_ptr<RawCountMinSketch> create(uint32_t width, uint32_t depth, uint32_t seed) {
    return adopt<RawCountMinSketch>(CountMinSketch::create({width, depth, seed}));
  }
  static val limits() {
    val o = val::object();
    o.set("maxWidth", CountMinSketch::kMaxWidth);
    o.set("maxDepth", CountMinSketch::kMaxDepth);
    o.set("maxTotal", static_cast<double>(CountMinSketch::kMaxTotal));
    return o;
  }

  int32_t add(uintptr_t item, uint32_t n, double count) {
    // JS validated it; the check only keeps the double -> integer conversion defined.
    if (!(count >= 0 && count <= static_cast<double>(CountMinSketch::kMaxTotal))) {
      return report(invalid_argument("count must be an integer in [0, 2^53 - 1], got " + std::to_string(count)));
    }
    return report(sketch_.add(text_at(item, n), static_cast<uint64_t>(count)));
  }
  double estimate(uintptr_t item, uint32_t n) const { return static_cast<double>(sketch_.estimate(text_at(item, n))); }
  double error_bound() const { return sketch_.error_bound(); }
  double confidence() const { return sketch_.confidence(); }
  double total_count() const { return static_cast<double>(sketch_.total_count()); }
  int32_t merge(const RawCountMinSketch& other) { return report(sketch_.merge(other.sketch_)); }
  void reset() { sketch_.reset(); }
  uint32_t width() const { return sketch_.width(); }
  uint32_t depth() const { return sketch_.depth(); }
  uint32_t seed() const { return sketch_.seed(); }
  double bytes() const { return static_cast<double>(sketch_.memory_bytes()); }

 private:
  CountMinSketch sketch_;
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_count_min_sketch) {
  using namespace llmds::wasm;
  emscripten::class_<RawCountMinSketch>("RawCountMinSketch")
      .class_function("create", LLMDS_GUARD(&RawCountMinSketch::create))
      .class_function("limits", &RawCountMinSketch::limits)
      .function("add", LLMDS_GUARD(&RawCountMinSketch::add))
      .function("estimate", LLMDS_GUARD(&RawCountMinSketch::estimate))
      .function("errorBound", LLMDS_GUARD(&RawCountMinSketch::error_bound))
      .function("confidence", LLMDS_GUARD(&RawCountMinSketch::confidence))
      .function("totalCount", LLMDS_GUARD(&RawCountMinSketch::total_count))
      .function("merge", LLMDS_GUARD(&RawCountMinSketch::merge))
      .function("reset", LLMDS_GUARD(&RawCountMinSketch::reset))
      .function("width", LLMDS_GUARD(&RawCountMinSketch::width))
      .function("depth", LLMDS_GUARD(&RawCountMinSketch::depth))
      .function("seed", LLMDS_GUARD(&RawCountMinSketch::seed))
      .function("bytes", LLMDS_GUARD(&RawCountMinSketch::bytes));
}
