// SPDX-License-Identifier: MIT
// Private: one portable 64-bit byte hash shared by the term dictionary and the Count-Min sketch.
// It must give the same value natively and in wasm (a serialized sketch and the cross-platform
// tests depend on it), so it only uses 64-bit integer arithmetic and little-endian loads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace llmds {
namespace text {

inline uint64_t rotl64(uint64_t x, int r) noexcept { return (x << r) | (x >> (64 - r)); }

/// MurmurHash3's 64-bit finalizer: full avalanche, a bijection.
inline uint64_t fmix64(uint64_t k) noexcept {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

inline uint64_t load_le64(const unsigned char* p) noexcept {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// One-lane MurmurHash3-style hash of `n` bytes: 8-byte blocks mixed into the state, the tail
/// zero-padded, the length folded in, then fmix64. Different seeds give unrelated functions.
inline uint64_t hash_bytes(const void* data, std::size_t n, uint64_t seed) noexcept {
  constexpr uint64_t c1 = 0x87c37b91114253d5ULL;
  constexpr uint64_t c2 = 0x4cf5ad432745937fULL;
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = fmix64(seed ^ 0x9e3779b97f4a7c15ULL);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t k = load_le64(p + i);
    k *= c1;
    k = rotl64(k, 31);
    k *= c2;
    h ^= k;
    h = rotl64(h, 27) * 5 + 0x52dce729;
  }
  uint64_t k = 0;
  for (std::size_t j = n; j > i; --j) k = (k << 8) | p[j - 1];
  k *= c1;
  k = rotl64(k, 31);
  k *= c2;
  h ^= k;
  h ^= static_cast<uint64_t>(n);
  return fmix64(h);
}

}  // namespace text
}  // namespace llmds
