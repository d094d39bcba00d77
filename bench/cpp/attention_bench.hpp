// SPDX-License-Identifier: MIT
// The attention suite of llmds_bench (bench/cpp/attention_bench.cpp): KVCache::attention()
// decode steps (m = 1) over the paged K/V payload.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace llmds_bench {

using AttentionRow = std::map<std::string, double>;

/// Decode attention (m = 1) at contexts 512 ... 8192, 8 KV heads x head_dim 128, 32 query heads,
/// page size 16, f32 and f16 payload. Returns "attentionDecode": per row `context`, `f16`,
/// `usPerCall` (SIMD kernels), `scalarUsPerCall` (scalar reference kernels, same walk),
/// `kvBytesPerCall` (K and V bytes the call reads), `kvGBps` (kvBytesPerCall / usPerCall),
/// `copyGBps` (the memcpy probe below) and `kvOverCopy`; and "attentionCopyProbe": memcpy of a
/// buffer larger than the largest cache, GB/s of bytes copied (each read once, written once).
std::map<std::string, std::vector<AttentionRow>> run_attention_suite(bool quick);

}  // namespace llmds_bench
