// SPDX-License-Identifier: MIT
/// @file kernels.hpp
/// @brief Float distance kernels written once against SIMDe's wasm simd128 API, plus scalar
/// references.
///
/// One source gives native x86 SSE2/AVX2 (g++/clang++), wasm SIMD (em++ -msimd128) and a
/// portable build (em++ without -msimd128, where SIMDe falls back to scalar code).
///
/// Determinism contract: dot(), l2sq() and cosine_distance() return bit-identical results in
/// all of these builds, because the HNSW graph (and therefore its serialized bytes) must be
/// identical on every platform. That holds because every backend performs the same IEEE-754
/// single-precision operations in the same order:
///   1. two 4-lane accumulators take elements [i, i+4) and [i+4, i+8) of each 8-element block;
///   2. one more 4-element block (if any) goes into the first accumulator;
///   3. the accumulators are added lane-wise (acc0 + acc1), then reduced as
///      (lane0 + lane1) + (lane2 + lane3);
///   4. the remaining 0..3 elements are added to that sum one by one, in index order.
/// No fused multiply-add is used anywhere: no fma intrinsics, and contraction of a*b+c into an
/// FMA is switched off for the translation unit that holds the implementations (see the pragmas
/// below). The default x86-64 target and wasm have no FMA instruction at all, so this only
/// matters for -march=native / AArch64 builds, where g++ (-ffp-contract=fast by default) would
/// otherwise fuse both the scalar tail and the SIMDe vector ops. Nothing here may be built with
/// -ffast-math (it reassociates sums). x87 (32-bit x86 without SSE) is not a supported target.
///
/// The scalar references (namespace scalar) are plain sequential loops: they agree with the
/// SIMD kernels only within floating-point tolerance and exist to test them.
///
/// This is the ONLY file that includes SIMDe, and only inside the implementation section that
/// src/simd/kernels.cpp enables, so consumers (the HNSW index, the tests) include this header
/// without needing SIMDe on their include path.
#pragma once

#include <cstddef>
#include <cstdint>

namespace llmds {
namespace simd {

/// The instruction set the kernels were compiled for: "wasm-simd128", "x86-avx2", "x86-sse2",
/// "arm-neon" or "portable" (SIMDe's scalar fallback).
const char* simd_backend() noexcept;

/// Sum of a[i] * b[i].
float dot(const float* a, const float* b, std::size_t n) noexcept;
/// Squared Euclidean distance: sum of (a[i] - b[i])^2.
float l2sq(const float* a, const float* b, std::size_t n) noexcept;
/// 1 - cos(a, b) = 1 - dot / (|a| |b|); 1 when either vector is all zeros.
float cosine_distance(const float* a, const float* b, std::size_t n) noexcept;

// ---- paged attention (KVCache::attention) -------------------------------------------------
// A page holds, per layer and KV head, `rows` consecutive K rows (and V rows) of `dim` floats.
// Attention walks them in blocks with an online softmax (running max and sum per query head):
//   scores = attn_scores(q, K block) ; p = exp(scores - max) (softmax_exp) ; acc += p . V block
// Every backend performs the same f32 operations in the same order (no FMA), so the SIMD
// results are identical in wasm SIMD, native and portable builds; the scalar references below
// are plain loops (double dot products, std::exp) for tests and the benchmark.

/// scores[r] = dot(q, k + r * dim, dim) * scale for r < rows (dot() above, then one multiply).
void attn_scores(const float* q, const float* k, std::size_t rows, std::size_t dim, float scale,
                 float* scores) noexcept;
/// x[i] = exp(x[i] - max) for i < n (a Cephes-style polynomial: ~2 ulp, arguments below
/// -87.3 give ~1e-38 rather than 0); returns the sum of the results (4 lanes, then
/// (l0 + l1) + (l2 + l3)). Requires x[i] <= max (finite).
float softmax_exp(float* x, std::size_t n, float max) noexcept;
/// acc[d] += p[r] * v[r * dim + d], r = 0 .. rows-1 in order, for d < dim.
void attn_accumulate(float* acc, const float* p, const float* v, std::size_t rows, std::size_t dim) noexcept;
/// x[i] *= s.
void scale(float* x, float s, std::size_t n) noexcept;
/// Widens finite IEEE binary16 values to f32, exactly (Inf and NaN halves give unspecified
/// finite values: the K/V payload never holds them; scalar::widen_f16 keeps them).
void widen_f16(const uint16_t* in, float* out, std::size_t n) noexcept;

/// f32 -> IEEE binary16 with round-to-nearest-even (subnormals included); values whose rounded
/// magnitude exceeds 65504 (|x| >= 65520) give +-Inf, NaN gives a quiet NaN.
uint16_t f32_to_f16(float x) noexcept;
/// binary16 -> f32, exact.
float f16_to_f32(uint16_t h) noexcept;

// ---- quantized codes (HNSW quantization) ----------------------------------------------------
// Every result below is bit-identical in all builds: integer sums are exact, and the float
// operations are the same ones in the same order (f16 products follow dot()/l2sq()'s order).

/// dot(q, widen(h)) and l2sq(q, widen(h)) without widening into memory: the same f32 operations
/// in the same order as dot()/l2sq() on the widened values, so the results are identical.
/// h must hold finite halves only (no Inf / NaN).
float dot_f16(const float* q, const uint16_t* h, std::size_t n) noexcept;
float l2sq_f16(const float* q, const uint16_t* h, std::size_t n) noexcept;

/// i8 code of a vector: a 16-byte header {f32 scale, f32 offset, i32 sum q, i32 sum q^2}, then
/// n int8 q[i] in [-127, 127], with x[i] ~ offset + scale * q[i]; per vector,
/// offset = (min + max) / 2 and scale = (max - min) / 254 (the full code range for each vector).
constexpr std::size_t kI8Header = 16;
/// Writes the kI8Header + n bytes of v's code (v finite).
void encode_i8(const float* v, std::size_t n, unsigned char* code) noexcept;
/// Sum of a[i] * b[i] (exact, int32: |q| <= 127 and n <= 65536 cannot overflow). Requires
/// a[i], b[i] in [-127, 127] (what encode_i8 writes; -128 could overflow the i16 partial sums).
int32_t dot_i8(const int8_t* a, const int8_t* b, std::size_t n) noexcept;
/// dot and squared l2 distance of the two decoded vectors, from the integer dot product and the
/// headers (double arithmetic, rounded once to f32); l2 is clamped at 0.
float i8_dot(const unsigned char* a, const unsigned char* b, std::size_t n) noexcept;
float i8_l2sq(const unsigned char* a, const unsigned char* b, std::size_t n) noexcept;

/// b1 code: bit i (byte i / 8, bit i % 8) = v[i] > mean(v); the (n + 7) / 8 bytes are written,
/// unused bits of the last byte are 0. Sign bits for zero-centred data; for non-negative data
/// (pixels, counts) the per-vector mean keeps the bits informative.
void encode_b1(const float* v, std::size_t n, unsigned char* bits) noexcept;
/// Number of differing bits in `bytes` bytes (i8x16.popcnt on 16-byte blocks).
uint32_t hamming(const unsigned char* a, const unsigned char* b, std::size_t bytes) noexcept;

namespace scalar {
int32_t dot_i8(const int8_t* a, const int8_t* b, std::size_t n) noexcept;
uint32_t hamming(const unsigned char* a, const unsigned char* b, std::size_t bytes) noexcept;
float dot(const float* a, const float* b, std::size_t n) noexcept;
float l2sq(const float* a, const float* b, std::size_t n) noexcept;
float cosine_distance(const float* a, const float* b, std::size_t n) noexcept;
void attn_scores(const float* q, const float* k, std::size_t rows, std::size_t dim, float scale,
                 float* scores) noexcept;
float softmax_exp(float* x, std::size_t n, float max) noexcept;
void attn_accumulate(float* acc, const float* p, const float* v, std::size_t rows, std::size_t dim) noexcept;
void scale(float* x, float s, std::size_t n) noexcept;
void widen_f16(const uint16_t* in, float* out, std::size_t n) noexcept;
}  // namespace scalar

}  // namespace simd
}  // namespace llmds

#ifdef LLMDS_SIMD_KERNELS_IMPLEMENTATION
// ---------------------------------------------------------------------------------------------
// Implementation section: compiled only by src/simd/kernels.cpp.

// Contraction off for everything after this point in that translation unit, including SIMDe's
// inline functions (GCC fuses _mm_add_ps(_mm_mul_ps(..)) when FMA is enabled).
#if defined(__clang__)
#pragma clang fp contract(off)
// SIMDe's portable fallback asks for loop vectorization; without -msimd128 there is nothing to
// vectorize with, and clang reports that as a warning (an error under -Werror).
#pragma clang diagnostic ignored "-Wpass-failed"
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <simde/wasm/simd128.h>

#include <cmath>
#include <cstring>

namespace llmds {
namespace simd {
namespace detail {

inline float hsum(simde_v128_t v) noexcept {
  const float l0 = simde_wasm_f32x4_extract_lane(v, 0);
  const float l1 = simde_wasm_f32x4_extract_lane(v, 1);
  const float l2 = simde_wasm_f32x4_extract_lane(v, 2);
  const float l3 = simde_wasm_f32x4_extract_lane(v, 3);
  return (l0 + l1) + (l2 + l3);
}

inline float dot(const float* a, const float* b, std::size_t n) noexcept {
  simde_v128_t acc0 = simde_wasm_f32x4_splat(0.0f);
  simde_v128_t acc1 = simde_wasm_f32x4_splat(0.0f);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = simde_wasm_f32x4_add(acc0, simde_wasm_f32x4_mul(simde_wasm_v128_load(a + i), simde_wasm_v128_load(b + i)));
    acc1 = simde_wasm_f32x4_add(
        acc1, simde_wasm_f32x4_mul(simde_wasm_v128_load(a + i + 4), simde_wasm_v128_load(b + i + 4)));
  }
  if (i + 4 <= n) {
    acc0 = simde_wasm_f32x4_add(acc0, simde_wasm_f32x4_mul(simde_wasm_v128_load(a + i), simde_wasm_v128_load(b + i)));
    i += 4;
  }
  float s = hsum(simde_wasm_f32x4_add(acc0, acc1));
  for (; i < n; ++i) {
    const float p = a[i] * b[i];
    s = s + p;
  }
  return s;
}

inline float l2sq(const float* a, const float* b, std::size_t n) noexcept {
  simde_v128_t acc0 = simde_wasm_f32x4_splat(0.0f);
  simde_v128_t acc1 = simde_wasm_f32x4_splat(0.0f);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const simde_v128_t d0 = simde_wasm_f32x4_sub(simde_wasm_v128_load(a + i), simde_wasm_v128_load(b + i));
    const simde_v128_t d1 = simde_wasm_f32x4_sub(simde_wasm_v128_load(a + i + 4), simde_wasm_v128_load(b + i + 4));
    acc0 = simde_wasm_f32x4_add(acc0, simde_wasm_f32x4_mul(d0, d0));
    acc1 = simde_wasm_f32x4_add(acc1, simde_wasm_f32x4_mul(d1, d1));
  }
  if (i + 4 <= n) {
    const simde_v128_t d0 = simde_wasm_f32x4_sub(simde_wasm_v128_load(a + i), simde_wasm_v128_load(b + i));
    acc0 = simde_wasm_f32x4_add(acc0, simde_wasm_f32x4_mul(d0, d0));
    i += 4;
  }
  float s = hsum(simde_wasm_f32x4_add(acc0, acc1));
  for (; i < n; ++i) {
    const float d = a[i] - b[i];
    const float p = d * d;
    s = s + p;
  }
  return s;
}

inline float cosine_distance(const float* a, const float* b, std::size_t n) noexcept {
  simde_v128_t ab0 = simde_wasm_f32x4_splat(0.0f), ab1 = ab0;
  simde_v128_t aa0 = ab0, aa1 = ab0, bb0 = ab0, bb1 = ab0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const simde_v128_t a0 = simde_wasm_v128_load(a + i), a1 = simde_wasm_v128_load(a + i + 4);
    const simde_v128_t b0 = simde_wasm_v128_load(b + i), b1 = simde_wasm_v128_load(b + i + 4);
    ab0 = simde_wasm_f32x4_add(ab0, simde_wasm_f32x4_mul(a0, b0));
    ab1 = simde_wasm_f32x4_add(ab1, simde_wasm_f32x4_mul(a1, b1));
    aa0 = simde_wasm_f32x4_add(aa0, simde_wasm_f32x4_mul(a0, a0));
    aa1 = simde_wasm_f32x4_add(aa1, simde_wasm_f32x4_mul(a1, a1));
    bb0 = simde_wasm_f32x4_add(bb0, simde_wasm_f32x4_mul(b0, b0));
    bb1 = simde_wasm_f32x4_add(bb1, simde_wasm_f32x4_mul(b1, b1));
  }
  if (i + 4 <= n) {
    const simde_v128_t a0 = simde_wasm_v128_load(a + i), b0 = simde_wasm_v128_load(b + i);
    ab0 = simde_wasm_f32x4_add(ab0, simde_wasm_f32x4_mul(a0, b0));
    aa0 = simde_wasm_f32x4_add(aa0, simde_wasm_f32x4_mul(a0, a0));
    bb0 = simde_wasm_f32x4_add(bb0, simde_wasm_f32x4_mul(b0, b0));
    i += 4;
  }
  float ab = hsum(simde_wasm_f32x4_add(ab0, ab1));
  float aa = hsum(simde_wasm_f32x4_add(aa0, aa1));
  float bb = hsum(simde_wasm_f32x4_add(bb0, bb1));
  for (; i < n; ++i) {
    const float pab = a[i] * b[i];
    const float paa = a[i] * a[i];
    const float pbb = b[i] * b[i];
    ab = ab + pab;
    aa = aa + paa;
    bb = bb + pbb;
  }
  if (!(aa > 0.0f) || !(bb > 0.0f)) return 1.0f;
  const float denom = std::sqrt(aa) * std::sqrt(bb);
  return 1.0f - ab / denom;
}

// ---- attention kernels ------------------------------------------------------------------
/// Four rows at a time, each with exactly dot()'s operations and order (two accumulators per
/// row, the 4-element block, the lane reduction, the scalar tail): eight independent add chains
/// instead of two, and one load of q per four rows.
inline void dot4(const float* q, const float* k, std::size_t dim, float* out) noexcept {
  const float* k0 = k;
  const float* k1 = k + dim;
  const float* k2 = k + 2 * dim;
  const float* k3 = k + 3 * dim;
  simde_v128_t a00 = simde_wasm_f32x4_splat(0.0f), a01 = a00, a10 = a00, a11 = a00;
  simde_v128_t a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  std::size_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    const simde_v128_t q0 = simde_wasm_v128_load(q + i), q1 = simde_wasm_v128_load(q + i + 4);
    a00 = simde_wasm_f32x4_add(a00, simde_wasm_f32x4_mul(q0, simde_wasm_v128_load(k0 + i)));
    a01 = simde_wasm_f32x4_add(a01, simde_wasm_f32x4_mul(q1, simde_wasm_v128_load(k0 + i + 4)));
    a10 = simde_wasm_f32x4_add(a10, simde_wasm_f32x4_mul(q0, simde_wasm_v128_load(k1 + i)));
    a11 = simde_wasm_f32x4_add(a11, simde_wasm_f32x4_mul(q1, simde_wasm_v128_load(k1 + i + 4)));
    a20 = simde_wasm_f32x4_add(a20, simde_wasm_f32x4_mul(q0, simde_wasm_v128_load(k2 + i)));
    a21 = simde_wasm_f32x4_add(a21, simde_wasm_f32x4_mul(q1, simde_wasm_v128_load(k2 + i + 4)));
    a30 = simde_wasm_f32x4_add(a30, simde_wasm_f32x4_mul(q0, simde_wasm_v128_load(k3 + i)));
    a31 = simde_wasm_f32x4_add(a31, simde_wasm_f32x4_mul(q1, simde_wasm_v128_load(k3 + i + 4)));
  }
  if (i + 4 <= dim) {
    const simde_v128_t q0 = simde_wasm_v128_load(q + i);
    a00 = simde_wasm_f32x4_add(a00, simde_wasm_f32x4_mul(q0, simde_wasm_v128_load(k0 + i)));
    a10 = simde_wasm_f32x4_add(a10, simde_wasm_f32x4_mul(q0, simde_wasm_v128_load(k1 + i)));
    a20 = simde_wasm_f32x4_add(a20, simde_wasm_f32x4_mul(q0, simde_wasm_v128_load(k2 + i)));
    a30 = simde_wasm_f32x4_add(a30, simde_wasm_f32x4_mul(q0, simde_wasm_v128_load(k3 + i)));
    i += 4;
  }
  float s0 = hsum(simde_wasm_f32x4_add(a00, a01)), s1 = hsum(simde_wasm_f32x4_add(a10, a11));
  float s2 = hsum(simde_wasm_f32x4_add(a20, a21)), s3 = hsum(simde_wasm_f32x4_add(a30, a31));
  for (; i < dim; ++i) {
    const float p0 = q[i] * k0[i], p1 = q[i] * k1[i], p2 = q[i] * k2[i], p3 = q[i] * k3[i];
    s0 = s0 + p0;
    s1 = s1 + p1;
    s2 = s2 + p2;
    s3 = s3 + p3;
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

inline void attn_scores(const float* q, const float* k, std::size_t rows, std::size_t dim, float scale,
                        float* scores) noexcept {
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    dot4(q, k + r * dim, dim, scores + r);
    for (std::size_t j = r; j < r + 4; ++j) scores[j] = scores[j] * scale;
  }
  for (; r < rows; ++r) scores[r] = dot(q, k + r * dim, dim) * scale;
}

/// exp(x) for x in [-87.3, 0]: Cephes expf (range reduction by round(x / ln 2), degree-6
/// polynomial, 2^n through the exponent bits).
inline simde_v128_t exp4(simde_v128_t x) noexcept {
  x = simde_wasm_f32x4_max(x, simde_wasm_f32x4_splat(-87.33654f));
  x = simde_wasm_f32x4_min(x, simde_wasm_f32x4_splat(88.3762626647949f));
  const simde_v128_t fx = simde_wasm_f32x4_nearest(simde_wasm_f32x4_mul(x, simde_wasm_f32x4_splat(1.44269504088896341f)));
  x = simde_wasm_f32x4_sub(x, simde_wasm_f32x4_mul(fx, simde_wasm_f32x4_splat(0.693359375f)));
  x = simde_wasm_f32x4_sub(x, simde_wasm_f32x4_mul(fx, simde_wasm_f32x4_splat(-2.12194440e-4f)));
  simde_v128_t y = simde_wasm_f32x4_splat(1.9875691500e-4f);
  y = simde_wasm_f32x4_add(simde_wasm_f32x4_mul(y, x), simde_wasm_f32x4_splat(1.3981999507e-3f));
  y = simde_wasm_f32x4_add(simde_wasm_f32x4_mul(y, x), simde_wasm_f32x4_splat(8.3334519073e-3f));
  y = simde_wasm_f32x4_add(simde_wasm_f32x4_mul(y, x), simde_wasm_f32x4_splat(4.1665795894e-2f));
  y = simde_wasm_f32x4_add(simde_wasm_f32x4_mul(y, x), simde_wasm_f32x4_splat(1.6666665459e-1f));
  y = simde_wasm_f32x4_add(simde_wasm_f32x4_mul(y, x), simde_wasm_f32x4_splat(5.0000001201e-1f));
  y = simde_wasm_f32x4_add(simde_wasm_f32x4_mul(simde_wasm_f32x4_mul(y, x), x), x);
  y = simde_wasm_f32x4_add(y, simde_wasm_f32x4_splat(1.0f));
  // 2^fx: fx is an integer in [-126, 127], so (fx + 127) << 23 is a normal f32's bits.
  simde_v128_t e = simde_wasm_i32x4_add(simde_wasm_i32x4_trunc_sat_f32x4(fx), simde_wasm_i32x4_splat(127));
  e = simde_wasm_i32x4_shl(e, 23);
  return simde_wasm_f32x4_mul(y, e);
}

inline float softmax_exp(float* x, std::size_t n, float max) noexcept {
  const simde_v128_t m = simde_wasm_f32x4_splat(max);
  simde_v128_t sum = simde_wasm_f32x4_splat(0.0f);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const simde_v128_t p = exp4(simde_wasm_f32x4_sub(simde_wasm_v128_load(x + i), m));
    simde_wasm_v128_store(x + i, p);
    sum = simde_wasm_f32x4_add(sum, p);
  }
  if (i < n) {  // the tail through the same vector code, padded with max (exp(0) = 1, not summed)
    float tmp[4] = {max, max, max, max};
    for (std::size_t j = i; j < n; ++j) tmp[j - i] = x[j];
    simde_wasm_v128_store(tmp, exp4(simde_wasm_f32x4_sub(simde_wasm_v128_load(tmp), m)));
    for (std::size_t j = i; j < n; ++j) x[j] = tmp[j - i];
    float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (std::size_t j = i; j < n; ++j) part[j - i] = tmp[j - i];
    sum = simde_wasm_f32x4_add(sum, simde_wasm_v128_load(part));
  }
  return hsum(sum);
}

inline void attn_accumulate(float* acc, const float* p, const float* v, std::size_t rows, std::size_t dim) noexcept {
  std::size_t d = 0;
  for (; d + 32 <= dim; d += 32) {  // eight vectors of acc stay in registers over all rows
    simde_v128_t a[8];
    for (int j = 0; j < 8; ++j) a[j] = simde_wasm_v128_load(acc + d + 4 * j);
    for (std::size_t r = 0; r < rows; ++r) {
      const simde_v128_t w = simde_wasm_f32x4_splat(p[r]);
      const float* row = v + r * dim + d;
      for (int j = 0; j < 8; ++j) a[j] = simde_wasm_f32x4_add(a[j], simde_wasm_f32x4_mul(w, simde_wasm_v128_load(row + 4 * j)));
    }
    for (int j = 0; j < 8; ++j) simde_wasm_v128_store(acc + d + 4 * j, a[j]);
  }
  for (; d + 16 <= dim; d += 16) {  // four vectors of acc stay in registers over all rows
    simde_v128_t a0 = simde_wasm_v128_load(acc + d), a1 = simde_wasm_v128_load(acc + d + 4);
    simde_v128_t a2 = simde_wasm_v128_load(acc + d + 8), a3 = simde_wasm_v128_load(acc + d + 12);
    for (std::size_t r = 0; r < rows; ++r) {
      const simde_v128_t w = simde_wasm_f32x4_splat(p[r]);
      const float* row = v + r * dim + d;
      a0 = simde_wasm_f32x4_add(a0, simde_wasm_f32x4_mul(w, simde_wasm_v128_load(row)));
      a1 = simde_wasm_f32x4_add(a1, simde_wasm_f32x4_mul(w, simde_wasm_v128_load(row + 4)));
      a2 = simde_wasm_f32x4_add(a2, simde_wasm_f32x4_mul(w, simde_wasm_v128_load(row + 8)));
      a3 = simde_wasm_f32x4_add(a3, simde_wasm_f32x4_mul(w, simde_wasm_v128_load(row + 12)));
    }
    simde_wasm_v128_store(acc + d, a0);
    simde_wasm_v128_store(acc + d + 4, a1);
    simde_wasm_v128_store(acc + d + 8, a2);
    simde_wasm_v128_store(acc + d + 12, a3);
  }
  for (; d + 4 <= dim; d += 4) {
    simde_v128_t a0 = simde_wasm_v128_load(acc + d);
    for (std::size_t r = 0; r < rows; ++r) {
      a0 = simde_wasm_f32x4_add(a0, simde_wasm_f32x4_mul(simde_wasm_f32x4_splat(p[r]), simde_wasm_v128_load(v + r * dim + d)));
    }
    simde_wasm_v128_store(acc + d, a0);
  }
  for (; d < dim; ++d) {
    float a = acc[d];
    for (std::size_t r = 0; r < rows; ++r) {
      const float t = p[r] * v[r * dim + d];
      a = a + t;
    }
    acc[d] = a;
  }
}

inline void scale(float* x, float s, std::size_t n) noexcept {
  const simde_v128_t w = simde_wasm_f32x4_splat(s);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) simde_wasm_v128_store(x + i, simde_wasm_f32x4_mul(simde_wasm_v128_load(x + i), w));
  for (; i < n; ++i) x[i] = x[i] * s;
}

/// Four finite halves (zero-extended in 32-bit lanes) to f32, exactly (F. Giesen's
/// half_to_float with masks: exponent rebias, subnormals by one exact float subtraction) without
/// its Inf/NaN handling, which the payload never needs (write_kv rejects both): 11 vector
/// operations instead of 14, measured 1.22x faster natively and 1.05x in wasm (V8). Variants
/// measured and dropped: scaling the shifted bits by 2^112 (denormal f32 operands for subnormal
/// halves: 5-8x slower natively when they occur) and converting subnormals with
/// f32x4.convert_i32x4 (1.25x faster natively, 1.2-2x slower in wasm).
inline simde_v128_t half4_to_float(simde_v128_t h) noexcept {
  simde_v128_t o = simde_wasm_i32x4_shl(simde_wasm_v128_and(h, simde_wasm_i32x4_splat(0x7fff)), 13);
  const simde_v128_t is_subnormal = simde_wasm_i32x4_lt(o, simde_wasm_i32x4_splat(0x400 << 13));
  o = simde_wasm_i32x4_add(o, simde_wasm_i32x4_splat((127 - 15) << 23));
  const simde_v128_t fixed = simde_wasm_f32x4_sub(simde_wasm_i32x4_add(o, simde_wasm_i32x4_splat(1 << 23)),
                                                  simde_wasm_i32x4_splat(113 << 23));
  o = simde_wasm_v128_bitselect(fixed, o, is_subnormal);
  const simde_v128_t sign = simde_wasm_i32x4_shl(simde_wasm_v128_and(h, simde_wasm_i32x4_splat(0x8000)), 16);
  return simde_wasm_v128_or(o, sign);
}

inline void widen_f16(const uint16_t* in, float* out, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const simde_v128_t h = simde_wasm_v128_load(in + i);
    simde_wasm_v128_store(out + i, half4_to_float(simde_wasm_u32x4_extend_low_u16x8(h)));
    simde_wasm_v128_store(out + i + 4, half4_to_float(simde_wasm_u32x4_extend_high_u16x8(h)));
  }
  if (i < n) {
    uint32_t tmp[4];
    float res[4];
    for (; i < n; i += 4) {
      const std::size_t k = n - i < 4 ? n - i : 4;
      for (std::size_t j = 0; j < 4; ++j) tmp[j] = j < k ? in[i + j] : 0u;
      simde_wasm_v128_store(res, half4_to_float(simde_wasm_v128_load(tmp)));
      for (std::size_t j = 0; j < k; ++j) out[i + j] = res[j];
    }
  }
}

// ---- quantized codes ----------------------------------------------------------------------
// Four finite halves, each in the upper 16 bits of a 32-bit lane, to f32: an arithmetic shift
// right by 3 puts the sign in bit 31 (copied into bits 30-28, then masked off), the exponent in
// the low 5 bits of the f32 exponent field and the mantissa at its top, which reads as the value
// times 2^-112 (normal and subnormal halves alike), so one exact multiplication by 2^112
// finishes it. Exact for every finite half; stored f16 codes never hold Inf or NaN (add() and
// deserialize() reject them), which this does not handle. 4 operations per 4 values (with the
// shuffle that placed them), against 8 for half4_to_float.
inline simde_v128_t finite_half4_hi_to_float(simde_v128_t h_hi) noexcept {
  const simde_v128_t bits = simde_wasm_v128_and(simde_wasm_i32x4_shr(h_hi, 3), simde_wasm_i32x4_splat(static_cast<int32_t>(0x8FFFFFFFu)));
  return simde_wasm_f32x4_mul(bits, simde_wasm_f32x4_splat(5.192296858534828e+33f));  // 2^112
}
inline void f16_block8(const uint16_t* h, simde_v128_t& lo, simde_v128_t& hi) noexcept {
  const simde_v128_t v = simde_wasm_v128_load(h);
  const simde_v128_t z = simde_wasm_i32x4_splat(0);
  lo = finite_half4_hi_to_float(simde_wasm_i16x8_shuffle(z, v, 0, 8, 1, 9, 2, 10, 3, 11));
  hi = finite_half4_hi_to_float(simde_wasm_i16x8_shuffle(z, v, 0, 12, 1, 13, 2, 14, 3, 15));
}
inline simde_v128_t f16_block4(const uint16_t* h) noexcept {
  const uint32_t tmp[4] = {uint32_t{h[0]} << 16, uint32_t{h[1]} << 16, uint32_t{h[2]} << 16, uint32_t{h[3]} << 16};
  return finite_half4_hi_to_float(simde_wasm_v128_load(tmp));
}
float f16_to_f32_scalar(uint16_t h) noexcept;

template <bool kL2>
inline float f16_kernel(const float* q, const uint16_t* h, std::size_t n) noexcept {
  simde_v128_t acc0 = simde_wasm_f32x4_splat(0.0f);
  simde_v128_t acc1 = simde_wasm_f32x4_splat(0.0f);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    simde_v128_t b0, b1;
    f16_block8(h + i, b0, b1);
    const simde_v128_t a0 = simde_wasm_v128_load(q + i), a1 = simde_wasm_v128_load(q + i + 4);
    if (kL2) {
      const simde_v128_t d0 = simde_wasm_f32x4_sub(a0, b0), d1 = simde_wasm_f32x4_sub(a1, b1);
      acc0 = simde_wasm_f32x4_add(acc0, simde_wasm_f32x4_mul(d0, d0));
      acc1 = simde_wasm_f32x4_add(acc1, simde_wasm_f32x4_mul(d1, d1));
    } else {
      acc0 = simde_wasm_f32x4_add(acc0, simde_wasm_f32x4_mul(a0, b0));
      acc1 = simde_wasm_f32x4_add(acc1, simde_wasm_f32x4_mul(a1, b1));
    }
  }
  if (i + 4 <= n) {
    const simde_v128_t b0 = f16_block4(h + i), a0 = simde_wasm_v128_load(q + i);
    if (kL2) {
      const simde_v128_t d0 = simde_wasm_f32x4_sub(a0, b0);
      acc0 = simde_wasm_f32x4_add(acc0, simde_wasm_f32x4_mul(d0, d0));
    } else {
      acc0 = simde_wasm_f32x4_add(acc0, simde_wasm_f32x4_mul(a0, b0));
    }
    i += 4;
  }
  float s = hsum(simde_wasm_f32x4_add(acc0, acc1));
  for (; i < n; ++i) {
    const float b = f16_to_f32_scalar(h[i]);
    if (kL2) {
      const float d = q[i] - b;
      const float p = d * d;
      s = s + p;
    } else {
      const float p = q[i] * b;
      s = s + p;
    }
  }
  return s;
}

// 16 codes per step: i16x8.extmul of the low and high halves, the two products added in i16
// (|q| <= 127, so |sum| <= 2 * 127^2 = 32258 fits), then widened pairwise into the i32 sums:
// 5 operations per 16 codes. Integer, hence exact in every build.
inline int32_t dot_i8(const int8_t* a, const int8_t* b, std::size_t n) noexcept {
  simde_v128_t acc0 = simde_wasm_i32x4_splat(0), acc1 = acc0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const simde_v128_t a0 = simde_wasm_v128_load(a + i), b0 = simde_wasm_v128_load(b + i);
    const simde_v128_t a1 = simde_wasm_v128_load(a + i + 16), b1 = simde_wasm_v128_load(b + i + 16);
    const simde_v128_t p0 = simde_wasm_i16x8_add(simde_wasm_i16x8_extmul_low_i8x16(a0, b0), simde_wasm_i16x8_extmul_high_i8x16(a0, b0));
    const simde_v128_t p1 = simde_wasm_i16x8_add(simde_wasm_i16x8_extmul_low_i8x16(a1, b1), simde_wasm_i16x8_extmul_high_i8x16(a1, b1));
    acc0 = simde_wasm_i32x4_add(acc0, simde_wasm_i32x4_extadd_pairwise_i16x8(p0));
    acc1 = simde_wasm_i32x4_add(acc1, simde_wasm_i32x4_extadd_pairwise_i16x8(p1));
  }
  if (i + 16 <= n) {
    const simde_v128_t a0 = simde_wasm_v128_load(a + i), b0 = simde_wasm_v128_load(b + i);
    const simde_v128_t p0 = simde_wasm_i16x8_add(simde_wasm_i16x8_extmul_low_i8x16(a0, b0), simde_wasm_i16x8_extmul_high_i8x16(a0, b0));
    acc0 = simde_wasm_i32x4_add(acc0, simde_wasm_i32x4_extadd_pairwise_i16x8(p0));
    i += 16;
  }
  const simde_v128_t acc = simde_wasm_i32x4_add(acc0, acc1);
  int32_t s = simde_wasm_i32x4_extract_lane(acc, 0) + simde_wasm_i32x4_extract_lane(acc, 1) +
              simde_wasm_i32x4_extract_lane(acc, 2) + simde_wasm_i32x4_extract_lane(acc, 3);
  for (; i < n; ++i) s += static_cast<int32_t>(a[i]) * static_cast<int32_t>(b[i]);
  return s;
}

struct I8Head {
  float scale, offset;
  int32_t sum, sumsq;
};
inline I8Head i8_head(const unsigned char* c) noexcept {
  I8Head h;
  std::memcpy(&h, c, sizeof h);
  return h;
}
// Sum of the decoded a[i] * b[i]: sa sb D + sa ob Sa + oa sb Sb + n oa ob.
inline double i8_dot_from(const I8Head& a, const I8Head& b, int32_t d, std::size_t n) noexcept {
  const double sa = a.scale, sb = b.scale, oa = a.offset, ob = b.offset;
  return sa * sb * static_cast<double>(d) + sa * ob * static_cast<double>(a.sum) +
         oa * sb * static_cast<double>(b.sum) + static_cast<double>(n) * oa * ob;
}
// |a|^2 as i8_dot_from(a, a) computes it, so that a code's distance to itself is exactly 0.
inline double i8_norm2(const I8Head& a, std::size_t n) noexcept { return i8_dot_from(a, a, a.sumsq, n); }

inline void encode_i8(const float* v, std::size_t n, unsigned char* code) noexcept {
  float mn = v[0], mx = v[0];
  for (std::size_t i = 1; i < n; ++i) {
    mn = v[i] < mn ? v[i] : mn;
    mx = v[i] > mx ? v[i] : mx;
  }
  I8Head h;
  h.offset = mn * 0.5f + mx * 0.5f;  // halves first: (max - min) may overflow, these cannot
  const float half = mx * 0.5f - mn * 0.5f;
  h.scale = half / 127.0f;
  h.sum = 0;
  h.sumsq = 0;
  int8_t* q = reinterpret_cast<int8_t*>(code + kI8Header);
  for (std::size_t i = 0; i < n; ++i) {
    int32_t c = 0;
    if (h.scale > 0.0f) {
      const float t = std::floor((v[i] - h.offset) / h.scale + 0.5f);
      c = t > 127.0f ? 127 : (t < -127.0f ? -127 : static_cast<int32_t>(t));
    }
    q[i] = static_cast<int8_t>(c);
    h.sum += c;
    h.sumsq += c * c;
  }
  std::memcpy(code, &h, sizeof h);
}

inline void encode_b1(const float* v, std::size_t n, unsigned char* bits) noexcept {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) sum = sum + v[i] / static_cast<float>(n);  // no overflow
  for (std::size_t i = 0; i < (n + 7) / 8; ++i) bits[i] = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (v[i] > sum) bits[i >> 3] = static_cast<unsigned char>(bits[i >> 3] | (1u << (i & 7)));
  }
}

inline uint32_t hamming(const unsigned char* a, const unsigned char* b, std::size_t bytes) noexcept {
  simde_v128_t acc = simde_wasm_i16x8_splat(0);  // u16 lanes: at most 16 per block, 4096 blocks
  std::size_t i = 0;
  for (; i + 16 <= bytes; i += 16) {
    const simde_v128_t x = simde_wasm_v128_xor(simde_wasm_v128_load(a + i), simde_wasm_v128_load(b + i));
    acc = simde_wasm_i16x8_add(acc, simde_wasm_u16x8_extadd_pairwise_u8x16(simde_wasm_i8x16_popcnt(x)));
  }
  const simde_v128_t s4 = simde_wasm_u32x4_extadd_pairwise_u16x8(acc);
  uint32_t s = static_cast<uint32_t>(simde_wasm_i32x4_extract_lane(s4, 0)) +
               static_cast<uint32_t>(simde_wasm_i32x4_extract_lane(s4, 1)) +
               static_cast<uint32_t>(simde_wasm_i32x4_extract_lane(s4, 2)) +
               static_cast<uint32_t>(simde_wasm_i32x4_extract_lane(s4, 3));
  for (; i < bytes; ++i) {
    unsigned x = static_cast<unsigned>(a[i] ^ b[i]);
    for (; x != 0; x &= x - 1) ++s;
  }
  return s;
}

inline const char* backend() noexcept {
#if defined(SIMDE_WASM_SIMD128_NATIVE)
  return "wasm-simd128";
#elif defined(SIMDE_X86_AVX2_NATIVE)
  return "x86-avx2";
#elif defined(SIMDE_X86_SSE2_NATIVE)
  return "x86-sse2";
#elif defined(SIMDE_ARM_NEON_A32V7_NATIVE) || defined(SIMDE_ARM_NEON_A64V8_NATIVE)
  return "arm-neon";
#else
  return "portable";
#endif
}

}  // namespace detail
}  // namespace simd
}  // namespace llmds
#endif  // LLMDS_SIMD_KERNELS_IMPLEMENTATION
