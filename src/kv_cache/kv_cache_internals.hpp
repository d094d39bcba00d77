// SPDX-License-Identifier: MIT
/// @file kv_cache_internals.hpp
/// @brief Private hooks into KVCache for tests and benchmarks (not installed, not public API).
#pragma once

#include <cstddef>
#include <cstdint>

#include "llmds/kv_cache.hpp"

namespace llmds {

struct KVCacheInternals {
  /// KVCache::attention() computed with the scalar reference kernels (simd::scalar): the same
  /// page walk and online softmax, plain loops, double dot products, std::exp.
  static Status attention_scalar(const KVCache& cache, SeqId seq, uint32_t layer, const float* q, std::size_t m,
                                 uint32_t num_heads, float scale, float* out);
};

}  // namespace llmds
