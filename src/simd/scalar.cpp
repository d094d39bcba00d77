// SPDX-License-Identifier: MIT
// Scalar reference kernels: the obvious sequential loops (double accumulation, so they are the
// more accurate side of the SIMD-vs-scalar comparison in tests/cpp/simd_test.cpp). Not used on
// any hot path and not part of the cross-platform determinism contract.
#include <cmath>
#include <cstring>

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

void attn_scores(const float* q, const float* k, std::size_t rows, std::size_t dim, float scale,
                 float* scores) noexcept {
  for (std::size_t r = 0; r < rows; ++r) scores[r] = dot(q, k + r * dim, dim) * scale;
}

float softmax_exp(float* x, std::size_t n, float max) noexcept {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  return static_cast<float>(sum);
}

void attn_accumulate(float* acc, const float* p, const float* v, std::size_t rows, std::size_t dim) noexcept {
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t d = 0; d < dim; ++d) acc[d] += p[r] * v[r * dim + d];
  }
}

void scale(float* x, float s, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) x[i] *= s;
}

void widen_f16(const uint16_t* in, float* out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = f16_to_f32(in[i]);
}

int32_t dot_i8(const int8_t* a, const int8_t* b, std::size_t n) noexcept {
  int32_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<int32_t>(a[i]) * b[i];
  return s;
}

uint32_t hamming(const unsigned char* a, const unsigned char* b, std::size_t bytes) noexcept {
  uint32_t s = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    for (unsigned x = static_cast<unsigned>(a[i] ^ b[i]); x != 0; x >>= 1) s += x & 1u;
  }
  return s;
}

}  // namespace scalar

// ---- binary16 conversions (scalar on every backend: used on writes, not on the hot path) --
namespace {
uint32_t bits_of(float f) noexcept {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) noexcept {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

uint16_t f32_to_f16(float x) noexcept {
  // F. Giesen's float_to_half_fast3_rtne.
  uint32_t u = bits_of(x);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  uint32_t h;
  if (u >= 0x7f800000u) {
    h = u > 0x7f800000u ? 0x7e00u : 0x7c00u;  // NaN (quiet) or Inf
  } else if (u >= 0x477ff000u) {  // 65520 and up round to Inf
    h = 0x7c00u;
  } else if (u < 0x38800000u) {  // below 2^-14: a subnormal half (or zero); the FPU rounds (RNE)
    const float denorm_magic = float_of(((127u - 15u) + (23u - 10u) + 1u) << 23);  // 0.5
    h = bits_of(float_of(u) + denorm_magic) - bits_of(denorm_magic);
  } else {
    const uint32_t mant_odd = (u >> 13) & 1u;
    u += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu;  // rebias, round half up ...
    u += mant_odd;                                           // ... or to even on a tie
    h = u >> 13;
  }
  return static_cast<uint16_t>(h | sign);
}

float f16_to_f32(uint16_t h) noexcept {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  float mag;
  if (e == 0) {
    mag = std::ldexp(static_cast<float>(m), -24);  // zero or subnormal: m * 2^-24, exact
  } else if (e == 31) {
    mag = float_of(0x7f800000u | (m << 13));
  } else {
    mag = float_of(((e + 112u) << 23) | (m << 13));
  }
  return float_of(bits_of(mag) | sign);
}

}  // namespace simd
}  // namespace llmds
