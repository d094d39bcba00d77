// SPDX-License-Identifier: MIT
/// @file block_hash.hpp
/// @brief The 64-bit chained block hash of NVIDIA Dynamo's KV router, so that KV events and
/// routers agree across llmds, Dynamo and any engine that hashes the same way.
///
/// For pages of `page_size` tokens: h_i = XXH3_64(tokens of page i as little-endian u32,
/// seed 1337); s_0 = h_0; s_i = XXH3_64(LE64(s_{i-1}) || LE64(h_i), seed 1337). Only full pages
/// have a hash. This is Dynamo's `compute_block_hash_for_seq` (the per-page "local" hash) and
/// `compute_next_sequence_hash` (the chain), lib/kv-router.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "llmds/status.hpp"

namespace llmds {

/// Dynamo's XXH3 seed for block and chain hashes.
inline constexpr uint64_t kBlockHashSeed = 1337;

/// h_i: XXH3-64 of `n` token ids as little-endian u32.
uint64_t page_content_hash(const int32_t* tokens, std::size_t n) noexcept;

/// s_i from s_{i-1} (`parent`) and h_i (`content`).
uint64_t chain_block_hash(uint64_t parent, uint64_t content) noexcept;

/// s_0 … s_{k-1} for the k = n / page_size full pages of `tokens` (a partial tail page has no
/// hash). invalid_argument when page_size is 0 or a token id is negative.
Result<std::vector<uint64_t>> block_hashes(const int32_t* tokens, std::size_t n, uint32_t page_size);

/// Bytes per text block (text_block_hashes).
inline constexpr uint32_t kTextBlockBytes = 128;

/// Block hashes of raw text, for gateways without a tokenizer (KVRouter::route_text): the text's
/// bytes (UTF-8, as given; never re-encoded) cut into kTextBlockBytes-byte chunks, a partial last
/// chunk being no block; h_i = XXH3_64(chunk i, seed 1337), chained exactly like block_hashes()
/// (s_0 = h_0, s_i = chain_block_hash(s_{i-1}, h_i)). Every runtime must hash text this way.
std::vector<uint64_t> text_block_hashes(std::string_view text);

}  // namespace llmds
