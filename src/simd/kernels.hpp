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

namespace scalar {
float dot(const float* a, const float* b, std::size_t n) noexcept;
float l2sq(const float* a, const float* b, std::size_t n) noexcept;
float cosine_distance(const float* a, const float* b, std::size_t n) noexcept;
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
