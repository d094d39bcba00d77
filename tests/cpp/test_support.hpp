// SPDX-License-Identifier: MIT
// Helpers shared by several Catch2 files (not a test file itself: not in LLMDS_TEST_SOURCES).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

namespace llmds_test {

/// Zipf(s) ranks 0..n-1 from raw mt19937 outputs, so the same stream comes out natively
/// (libstdc++) and in wasm (libc++), whose std distributions differ.
struct Zipf {
  std::vector<double> cdf;
  Zipf(std::size_t n, double s) : cdf(n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) cdf[i] = (sum += 1.0 / std::pow(static_cast<double>(i + 1), s));
    for (double& c : cdf) c /= sum;
  }
  std::size_t operator()(std::mt19937& rng) const {
    const double u = (static_cast<double>(rng()) + 0.5) / 4294967296.0;
    return std::min<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin(), cdf.size() - 1);
  }
};

}  // namespace llmds_test
