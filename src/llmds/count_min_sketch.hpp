// SPDX-License-Identifier: MIT
/// @file count_min_sketch.hpp
/// @brief Count-Min sketch with conservative update: frequency estimates that never under-count.
///
/// `depth` rows of `width` counters. Row i hashes an item's UTF-8 bytes with its own seeded
/// 64-bit hash (the seeds derive from options.seed, so the same options give the same sketch
/// natively and in wasm). estimate(x) is the minimum of x's counters, which is >= the true count
/// of x; with probability at least 1 - e^-depth it is also <= true count + error_bound(), where
/// error_bound() = (e / width) * total_count() (the classic epsilon * N bound with
/// epsilon = e / width; defaults 2048 x 4 give epsilon ~ 0.13 % with probability ~ 98.2 %).
///
/// Conservative update: add(x, c) raises each of x's counters to max(counter, m + c), where m is
/// the current estimate of x, instead of adding c to all of them. Every counter still bounds the
/// true count of every item hashed to it (so estimates stay over-estimates), and the error is
/// usually far smaller than with plain updates. The bound above holds for both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "llmds/status.hpp"

namespace llmds {

struct CountMinSketchOptions {
  uint32_t width = 2048;  ///< counters per row, in [1, 2^24]
  uint32_t depth = 4;     ///< rows (independent hash functions), in [1, 32]
  uint32_t seed = 0;      ///< row hash seeds derive from it; merge() needs equal seeds
};

class CountMinSketch {
 public:
  static constexpr uint32_t kMaxWidth = 1u << 24;
  static constexpr uint32_t kMaxDepth = 32;
  static constexpr uint64_t kMaxCounters = 1u << 25;  ///< width * depth (256 MiB of counters)
  /// Counts and the total stay integers a JS number represents exactly.
  static constexpr uint64_t kMaxTotal = (uint64_t{1} << 53) - 1;

  static Result<CountMinSketch> create(const CountMinSketchOptions& options = {});

  /// Counts `count` more occurrences of `item` (count 0 is a no-op); capacity_exceeded if the
  /// total would pass kMaxTotal.
  Status add(std::string_view item, uint64_t count = 1);
  /// Never below the true count of `item`.
  uint64_t estimate(std::string_view item) const noexcept;
  bool is_hot(std::string_view item, double threshold) const noexcept {
    return static_cast<double>(estimate(item)) >= threshold;
  }
  /// (e / width) * total_count(): with probability >= confidence(), estimate - truth <= this.
  double error_bound() const noexcept;
  /// 1 - e^-depth.
  double confidence() const noexcept;
  uint64_t total_count() const noexcept { return total_; }

  /// Adds other's counters into this one (counter-wise sums; the result still never
  /// under-estimates, also for conservatively updated sketches, since each summand bounds its
  /// own stream). invalid_argument unless width, depth and seed are equal; capacity_exceeded if
  /// the total would pass kMaxTotal. Merging a sketch into itself doubles it.
  Status merge(const CountMinSketch& other);
  void reset() noexcept;

  uint32_t width() const noexcept { return width_; }
  uint32_t depth() const noexcept { return depth_; }
  uint32_t seed() const noexcept { return seed_; }
  std::size_t memory_bytes() const noexcept { return sizeof(*this) + counters_.capacity() * sizeof(uint64_t); }

 private:
  CountMinSketch(uint32_t width, uint32_t depth, uint32_t seed);
  /// Fills slots[row] with the counter index of `item` in each row.
  void locate(std::string_view item, std::size_t* slots) const noexcept;

  uint32_t width_;
  uint32_t depth_;
  uint32_t seed_;
  uint64_t total_ = 0;
  std::vector<uint64_t> row_seeds_;
  std::vector<uint64_t> counters_;  // row-major, depth_ x width_
};

}  // namespace llmds
