// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "simd/kernels.hpp"

// The reference below must not be contracted into FMAs either (matters only for FMA targets).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace {

// Values in [-1, 1) with 24 significant bits: identical on every platform (no std distributions).
float draw(std::mt19937& g) { return static_cast<float>(g() >> 8) * (1.0f / 8388608.0f) - 1.0f; }

// The accumulation order documented in kernels.hpp, spelled out with scalars. The SIMD kernels
// must match it bit for bit on every backend: that is what makes HNSW graphs platform-independent.
enum class Op { dot, l2 };
float ordered_reference(const float* a, const float* b, std::size_t n, Op op) {
  auto term = [&](std::size_t i) {
    if (op == Op::dot) return a[i] * b[i];
    const float d = a[i] - b[i];
    return d * d;
  };
  float acc0[4] = {0, 0, 0, 0}, acc1[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 4; ++l) {
      const float t0 = term(i + l);
      const float t1 = term(i + 4 + l);
      acc0[l] = acc0[l] + t0;
      acc1[l] = acc1[l] + t1;
    }
  }
  if (i + 4 <= n) {
    for (int l = 0; l < 4; ++l) {
      const float t0 = term(i + l);
      acc0[l] = acc0[l] + t0;
    }
    i += 4;
  }
  float lanes[4];
  for (int l = 0; l < 4; ++l) lanes[l] = acc0[l] + acc1[l];
  float s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; ++i) {
    const float t = term(i);
    s = s + t;
  }
  return s;
}

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

}  // namespace

TEST_CASE("simd: backend name matches the build", "[simd]") {
  const std::string backend = llmds::simd::simd_backend();
#if defined(__EMSCRIPTEN__) && defined(__wasm_simd128__)
  CHECK(backend == "wasm-simd128");
#elif defined(__EMSCRIPTEN__)
  // The CMake wasm runners compile this file without -msimd128 even when they link the SIMD
  // core, so only the library knows which of the two it is.
  CHECK((backend == "wasm-simd128" || backend == "portable"));
#elif defined(__AVX2__)
  CHECK(backend == "x86-avx2");
#elif defined(__SSE2__)
  CHECK(backend == "x86-sse2");
#else
  CHECK(!backend.empty());
#endif
}

TEST_CASE("simd: kernels agree with the scalar reference on odd sizes and unaligned pointers", "[simd]") {
  std::mt19937 g(12345);
  std::vector<float> abuf(80), bbuf(80);
  for (std::size_t n = 1; n <= 67; ++n) {
    for (std::size_t off = 0; off < 4; ++off) {
      for (auto& v : abuf) v = draw(g);
      for (auto& v : bbuf) v = draw(g);
      const float* a = abuf.data() + off;        // off = 1..3: not 16-byte aligned
      const float* b = bbuf.data() + (3 - off);  // different misalignment than a
      double mag = 0;
      for (std::size_t i = 0; i < n; ++i) mag += std::fabs(a[i]) * std::fabs(b[i]) + (a[i] - b[i]) * (a[i] - b[i]);
      const double tol = 1e-5 * (1.0 + mag);
      INFO("n = " << n << ", offset = " << off);
      CHECK(std::fabs(llmds::simd::dot(a, b, n) - llmds::simd::scalar::dot(a, b, n)) <= tol);
      CHECK(std::fabs(llmds::simd::l2sq(a, b, n) - llmds::simd::scalar::l2sq(a, b, n)) <= tol);
      CHECK(std::fabs(llmds::simd::cosine_distance(a, b, n) - llmds::simd::scalar::cosine_distance(a, b, n)) <= 1e-5);
    }
  }
}

TEST_CASE("simd: kernels follow the documented accumulation order bit for bit", "[simd]") {
  std::mt19937 g(777);
  std::vector<float> abuf(140), bbuf(140);
  for (std::size_t n = 0; n <= 131; ++n) {
    for (auto& v : abuf) v = draw(g) * 1000.0f;
    for (auto& v : bbuf) v = draw(g) * 0.001f;
    const float* a = abuf.data() + (n % 4);
    const float* b = bbuf.data() + 1;
    INFO("n = " << n);
    CHECK(bits(llmds::simd::dot(a, b, n)) == bits(ordered_reference(a, b, n, Op::dot)));
    CHECK(bits(llmds::simd::l2sq(a, b, n)) == bits(ordered_reference(a, b, n, Op::l2)));
  }
}

TEST_CASE("simd: golden kernel results are identical on every backend", "[simd]") {
  // A fingerprint of the exact bits of many kernel results. The same constant is checked by the
  // native suite and by both wasm builds (SIMD and portable).
  std::mt19937 g(2024);
  std::vector<float> a(97), b(97);
  uint32_t h = 2166136261u;
  auto mix = [&](float f) {
    h ^= bits(f);
    h *= 16777619u;
  };
  for (int round = 0; round < 50; ++round) {
    for (auto& v : a) v = draw(g);
    for (auto& v : b) v = draw(g);
    for (std::size_t n : {1u, 3u, 4u, 7u, 8u, 9u, 15u, 16u, 33u, 64u, 97u}) {
      mix(llmds::simd::dot(a.data(), b.data(), n));
      mix(llmds::simd::l2sq(a.data(), b.data(), n));
      mix(llmds::simd::cosine_distance(a.data(), b.data(), n));
    }
  }
  CHECK(h == 0x3e540874u);
}

TEST_CASE("simd: exact small cases and zero vectors", "[simd]") {
  const float a[5] = {1, 2, 3, 4, 5};
  const float b[5] = {5, 4, 3, 2, 1};
  const float z[5] = {0, 0, 0, 0, 0};
  CHECK(llmds::simd::dot(a, b, 5) == 35.0f);
  CHECK(llmds::simd::l2sq(a, b, 5) == 40.0f);
  CHECK(llmds::simd::dot(a, b, 0) == 0.0f);
  CHECK(llmds::simd::l2sq(a, a, 5) == 0.0f);
  CHECK(llmds::simd::cosine_distance(a, a, 5) == Approx(0.0f).margin(1e-6));
  CHECK(llmds::simd::cosine_distance(a, z, 5) == 1.0f);
  CHECK(llmds::simd::scalar::cosine_distance(z, a, 5) == 1.0f);
  const float c[2] = {1, 0}, d[2] = {-1, 0};
  CHECK(llmds::simd::cosine_distance(c, d, 2) == Approx(2.0f));
}
