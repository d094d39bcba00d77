// SPDX-License-Identifier: MIT
// Internal: the one check that token ids are non-negative (the public contract: [0, 2^31)),
// shared by KVCache, block_hashes() and KVRouter so the message is the same everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "llmds/status.hpp"

namespace llmds::detail {

/// invalid_argument naming `what`[i] for the first negative id; success otherwise. The OR of
/// every id has its sign bit set iff one is negative, and that loop vectorises, so valid input
/// (the common case) costs one pass without branches.
inline Status check_token_ids(const int32_t* tokens, std::size_t n, const char* what) {
  int32_t any = 0;
  for (std::size_t i = 0; i < n; ++i) any |= tokens[i];
  if (any >= 0) return Status::success();
  for (std::size_t i = 0; i < n; ++i) {
    if (tokens[i] < 0) {
      return invalid_argument(std::string(what) + "[" + std::to_string(i) + "] must be a token id in [0, 2^31), got " +
                              std::to_string(tokens[i]));
    }
  }
  return Status::success();
}

}  // namespace llmds::detail
