// SPDX-License-Identifier: MIT
// Scalar reference kernels: the obvious sequential loops (double accumulation, so they are the
// more accurate side of the SIMD-vs-scalar comparison in tests/cpp/simd_test.cpp). Not used on
// any hot path and not part of the cross-platform determinism contract.
#include <cmath>

#include "simd/kernels.hpp"

namespace llmds {
namespace simd {
namespace scalar {

float dot(const float* a, const float* b, std::size_t n) noexcept {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(s);
}

float l2sq(const float* a, const float* b, std::size_t n) noexcept {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += d * d;
  }
  return static_cast<float>(s);
}

float cosine_distance(const float* a, const float* b, std::size_t n) noexcept {
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * static_cast<double>(b[i]);
    aa += static_cast<double>(a[i]) * static_cast<double>(a[i]);
    bb += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  if (!(aa > 0.0) || !(bb > 0.0)) return 1.0f;
  return static_cast<float>(1.0 - ab / (std::sqrt(aa) * std::sqrt(bb)));
}

}  // namespace scalar
}  // namespace simd
}  // namespace llmds
