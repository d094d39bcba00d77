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

namespace detail {
float f16_to_f32_scalar(uint16_t h) noexcept { return f16_to_f32(h); }
}  // namespace detail

float dot_f16(const float* q, const uint16_t* h, std::size_t n) noexcept { return detail::f16_kernel<false>(q, h, n); }
float l2sq_f16(const float* q, const uint16_t* h, std::size_t n) noexcept { return detail::f16_kernel<true>(q, h, n); }
void encode_i8(const float* v, std::size_t n, unsigned char* code) noexcept { detail::encode_i8(v, n, code); }
int32_t dot_i8(const int8_t* a, const int8_t* b, std::size_t n) noexcept { return detail::dot_i8(a, b, n); }
float i8_dot(const unsigned char* a, const unsigned char* b, std::size_t n) noexcept {
  const int32_t d = detail::dot_i8(reinterpret_cast<const int8_t*>(a + kI8Header),
                                   reinterpret_cast<const int8_t*>(b + kI8Header), n);
  return static_cast<float>(detail::i8_dot_from(detail::i8_head(a), detail::i8_head(b), d, n));
}
float i8_l2sq(const unsigned char* a, const unsigned char* b, std::size_t n) noexcept {
  const detail::I8Head ha = detail::i8_head(a), hb = detail::i8_head(b);
  const int32_t d = detail::dot_i8(reinterpret_cast<const int8_t*>(a + kI8Header),
                                   reinterpret_cast<const int8_t*>(b + kI8Header), n);
  const double l2 = detail::i8_norm2(ha, n) + detail::i8_norm2(hb, n) - 2.0 * detail::i8_dot_from(ha, hb, d, n);
  return l2 > 0.0 ? static_cast<float>(l2) : 0.0f;
}
void encode_b1(const float* v, std::size_t n, unsigned char* bits) noexcept { detail::encode_b1(v, n, bits); }
uint32_t hamming(const unsigned char* a, const unsigned char* b, std::size_t bytes) noexcept {
  return detail::hamming(a, b, bytes);
}

}  // namespace simd
}  // namespace llmds
