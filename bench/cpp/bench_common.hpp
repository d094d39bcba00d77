// SPDX-License-Identifier: MIT
// What every native suite shares with the JS benchmarks: the same random numbers and the same
// percentile definition, so figures on both sides are computed alike.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace llmds_bench {

/// mulberry32 as bench/lib.mjs's rng(): the same doubles in [0, 1) from the same seed.
struct Mulberry32 {
  uint32_t a;
  double operator()() {
    a += 0x6D2B79F5u;
    uint32_t t = a;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return static_cast<double>(t ^ (t >> 14)) / 4294967296.0;
  }
};

/// Nearest-rank percentile of the samples, as MetricsCollector computes it in JS.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p / 100.0 * static_cast<double>(v.size()))));
  return v[std::min(rank, v.size()) - 1];
}

}  // namespace llmds_bench
