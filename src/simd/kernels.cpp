// SPDX-License-Identifier: MIT
// Out-of-line SIMD kernels. They are deliberately not inlined into callers: keeping every
// distance computation in this one translation unit is what guarantees the pragmas that forbid
// FMA contraction (kernels.hpp) cover all of them, whatever flags the callers are built with.
#define LLMDS_SIMD_KERNELS_IMPLEMENTATION
#include "simd/kernels.hpp"

namespace llmds {
namespace simd {

const char* simd_backend() noexcept { return detail::backend(); }

float dot(const float* a, const float* b, std::size_t n) noexcept { return detail::dot(a, b, n); }

float l2sq(const float* a, const float* b, std::size_t n) noexcept { return detail::l2sq(a, b, n); }

float cosine_distance(const float* a, const float* b, std::size_t n) noexcept {
  return detail::cosine_distance(a, b, n);
}

}  // namespace simd
}  // namespace llmds
