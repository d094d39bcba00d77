// SPDX-License-Identifier: MIT
#include "llmds/count_min_sketch.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "text/hash.hpp"

namespace llmds {

Result<CountMinSketch> CountMinSketch::create(const CountMinSketchOptions& options) {
  if (options.width == 0 || options.width > kMaxWidth) {
    return invalid_argument("width must be an integer in [1, 16777216], got " + std::to_string(options.width));
  }
  if (options.depth == 0 || options.depth > kMaxDepth) {
    return invalid_argument("depth must be an integer in [1, 32], got " + std::to_string(options.depth));
  }
  if (uint64_t{options.width} * options.depth > kMaxCounters) {
    return invalid_argument("width * depth must be at most 33554432 counters, got " + std::to_string(options.width) +
                            " * " + std::to_string(options.depth));
  }
  return CountMinSketch(options.width, options.depth, options.seed);
}

CountMinSketch::CountMinSketch(uint32_t width, uint32_t depth, uint32_t seed)
    : width_(width), depth_(depth), seed_(seed), row_seeds_(depth), counters_(std::size_t{width} * depth, 0) {
  // Seeds spread by a bijective mixer, so rows of one sketch and sketches with neighbouring
  // seeds all use unrelated hash functions.
  for (uint32_t i = 0; i < depth; ++i) {
    row_seeds_[i] = text::fmix64((uint64_t{seed} << 32 | i) + 0x9e3779b97f4a7c15ULL * (i + 1));
  }
}

void CountMinSketch::locate(std::string_view item, std::size_t* slots) const noexcept {
  for (uint32_t i = 0; i < depth_; ++i) {
    const uint64_t h = text::hash_bytes(item.data(), item.size(), row_seeds_[i]);
    // Multiply-shift maps the high 32 bits onto [0, width) without a division or modulo bias.
    const uint64_t column = ((h >> 32) * width_) >> 32;
    slots[i] = std::size_t{i} * width_ + static_cast<std::size_t>(column);
  }
}

Status CountMinSketch::add(std::string_view item, uint64_t count) {
  if (count > kMaxTotal - total_) {
    return capacity_exceeded("add: count " + std::to_string(count) + " would take totalCount past 2^53 - 1 (now " +
                             std::to_string(total_) + ")");
  }
  if (count == 0) return Status::success();
  std::size_t slots[kMaxDepth];
  locate(item, slots);
  uint64_t current = UINT64_MAX;
  for (uint32_t i = 0; i < depth_; ++i) current = std::min(current, counters_[slots[i]]);
  // Raise every counter to at least the new estimate; counters already above it (inflated by
  // colliding items) keep their value, which is what keeps the other items' error small.
  const uint64_t target = current + count;
  for (uint32_t i = 0; i < depth_; ++i) counters_[slots[i]] = std::max(counters_[slots[i]], target);
  total_ += count;
  return Status::success();
}

uint64_t CountMinSketch::estimate(std::string_view item) const noexcept {
  std::size_t slots[kMaxDepth];
  locate(item, slots);
  uint64_t m = UINT64_MAX;
  for (uint32_t i = 0; i < depth_; ++i) m = std::min(m, counters_[slots[i]]);
  return m;
}

double CountMinSketch::error_bound() const noexcept {
  return std::exp(1.0) / static_cast<double>(width_) * static_cast<double>(total_);
}

double CountMinSketch::confidence() const noexcept { return 1.0 - std::exp(-static_cast<double>(depth_)); }

Status CountMinSketch::merge(const CountMinSketch& other) {
  if (other.width_ != width_ || other.depth_ != depth_ || other.seed_ != seed_) {
    return invalid_argument("merge: other must have the same width, depth and seed (this " + std::to_string(width_) +
                            " x " + std::to_string(depth_) + " seed " + std::to_string(seed_) + ", other " +
                            std::to_string(other.width_) + " x " + std::to_string(other.depth_) + " seed " +
                            std::to_string(other.seed_) + ")");
  }
  if (other.total_ > kMaxTotal - total_) {
    return capacity_exceeded("merge: totalCount would pass 2^53 - 1 (" + std::to_string(total_) + " + " +
                             std::to_string(other.total_) + ")");
  }
  // No counter exceeds its sketch's total, so these sums cannot overflow either.
  for (std::size_t i = 0; i < counters_.size(); ++i) counters_[i] += other.counters_[i];
  total_ += other.total_;
  return Status::success();
}

void CountMinSketch::reset() noexcept {
  std::fill(counters_.begin(), counters_.end(), 0);
  total_ = 0;
}

}  // namespace llmds
