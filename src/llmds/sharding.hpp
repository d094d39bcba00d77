// SPDX-License-Identifier: MIT
/// @file sharding.hpp
/// @brief Splitting a text/hybrid corpus over shards and merging their answers exactly.
///
/// A corpus is split by document id (shard_of), each shard is an InvertedIndex or a
/// RetrievalPipeline searched where it lives, and the coordinator merges the answers. BM25
/// scores depend on corpus-wide statistics (N, the mean document length, each term's df), so a
/// shard scoring with its own would rank differently from one index over the whole corpus. The
/// shards exchange those statistics instead:
///
///   1. every shard: term_stats()                      (its own N, tokens and df per term)
///   2. coordinator: merge_term_stats(all of them)     (sums)
///   3. every shard: set_global_stats(merged)          (BM25 now uses the corpus-wide values)
///
/// after which each shard's BM25 score of each of its documents is bit-identical to the
/// single index's (same inputs, same float operations in the same order: query terms are summed
/// in byte order of the term, which does not depend on which index holds them), and
/// merge_ranked() of the shards' top k is the single index's top k, scores included. Hybrid
/// search cannot be merged from fused scores (fusion divides by the best BM25 score and
/// rescales dense similarities over the whole candidate list), so a shard returns its raw
/// candidate lists (RetrievalPipeline::search_shard) and RetrievalPipeline::merge_shard_results
/// fuses them as one pipeline would.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "llmds/ranked_hits.hpp"
#include "llmds/status.hpp"

namespace llmds {

/// Corpus statistics BM25 depends on: a shard's own (term_stats) or a merged, corpus-wide set.
struct TermStats {
  uint64_t documents = 0;           ///< N: documents
  uint64_t tokens = 0;              ///< sum of document lengths (avgdl = tokens / documents)
  std::vector<std::string> terms;   ///< normalised terms, strictly ascending (byte order)
  std::vector<uint64_t> df;         ///< df[i]: documents containing terms[i] (> 0)
};

/// The shard of `doc_id` among `shards` (>= 1): a fixed 32-bit integer hash (Chris Wellons'
/// "lowbias32": x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16)
/// modulo `shards`, the same in every runtime (the JS shardOf computes it with Math.imul).
/// `shards` 0 is treated as 1.
uint32_t shard_of(uint32_t doc_id, uint32_t shards) noexcept;

/// Sums shards' statistics (documents, tokens, df per term). invalid_argument when an input is
/// malformed (terms not strictly ascending, df and terms of different lengths, a df of 0 or
/// above its documents) or a sum overflows 2^53 (JS numbers must stay exact).
Result<TermStats> merge_term_stats(const std::vector<TermStats>& parts);

/// Checks one TermStats the way merge_term_stats does.
Status validate_term_stats(const TermStats& stats);

/// The `top_k` best of several ranked lists (each best first, as InvertedIndex::search returns
/// them), ties by ascending id: with global statistics on every shard, exactly the single
/// index's search(). invalid_argument when top_k is 0, or an id appears in two lists.
Result<RankedHits> merge_ranked(const std::vector<RankedHits>& lists, uint32_t top_k);

}  // namespace llmds
