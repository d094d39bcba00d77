// SPDX-License-Identifier: MIT
/// @file ranked_hits.hpp
/// @brief The result of a ranked search (BM25, hybrid): ids and scores, best first.
#pragma once

#include <cstdint>
#include <vector>

namespace llmds {

/// Struct of arrays, best first: ids[i] scored scores[i].
struct RankedHits {
  std::vector<uint32_t> ids;
  std::vector<double> scores;
};

}  // namespace llmds
