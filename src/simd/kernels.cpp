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

void attn_scores(const float* q, const float* k, std::size_t rows, std::size_t dim, float scale,
                 float* scores) noexcept {
  detail::attn_scores(q, k, rows, dim, scale, scores);
}
float softmax_exp(float* x, std::size_t n, float max) noexcept { return detail::softmax_exp(x, n, max); }
void attn_accumulate(float* acc, const float* p, const float* v, std::size_t rows, std::size_t dim) noexcept {
  detail::attn_accumulate(acc, p, v, rows, dim);
}
void scale(float* x, float s, std::size_t n) noexcept { detail::scale(x, s, n); }
void widen_f16(const uint16_t* in, float* out, std::size_t n) noexcept { detail::widen_f16(in, out, n); }

}  // namespace simd
}  // namespace llmds
