// SPDX-License-Identifier: MIT
#include "llmds/block_hash.hpp"

#include "common/token_ids.hpp"

#include <cstring>
#include <string>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "block hashes read token ids as little-endian bytes: add a byte swap for big-endian hosts"
#endif

#define XXH_INLINE_ALL  // header-only: the same code natively and in wasm, no library to link
#include <xxhash.h>

namespace llmds {
namespace {

void put_le64(unsigned char* out, uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}

}  // namespace

uint64_t page_content_hash(const int32_t* tokens, std::size_t n) noexcept {
  // Little-endian hosts (x86, ARM, wasm) already hold the tokens as the bytes Dynamo hashes.
  return XXH3_64bits_withSeed(tokens, n * sizeof(int32_t), kBlockHashSeed);
}

uint64_t chain_block_hash(uint64_t parent, uint64_t content) noexcept {
  unsigned char bytes[16];
  put_le64(bytes, parent);
  put_le64(bytes + 8, content);
  return XXH3_64bits_withSeed(bytes, sizeof bytes, kBlockHashSeed);
}

Result<std::vector<uint64_t>> block_hashes(const int32_t* tokens, std::size_t n, uint32_t page_size) {
  if (page_size == 0) return invalid_argument("blockHashes: pageSize must be >= 1, got 0");
  if (Status st = detail::check_token_ids(tokens, n, "blockHashes: tokens"); !st) return st;
  std::vector<uint64_t> out(n / page_size);
  uint64_t chain = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const uint64_t h = page_content_hash(tokens + i * page_size, page_size);
    chain = i == 0 ? h : chain_block_hash(chain, h);
    out[i] = chain;
  }
  return out;
}

std::vector<uint64_t> text_block_hashes(std::string_view text) {
  std::vector<uint64_t> out(text.size() / kTextBlockBytes);
  uint64_t chain = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const uint64_t h = XXH3_64bits_withSeed(text.data() + i * kTextBlockBytes, kTextBlockBytes, kBlockHashSeed);
    chain = i == 0 ? h : chain_block_hash(chain, h);
    out[i] = chain;
  }
  return out;
}

}  // namespace llmds
