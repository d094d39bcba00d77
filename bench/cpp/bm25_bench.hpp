// SPDX-License-Identifier: MIT
// The BM25 suite of llmds_bench (bench/cpp/bm25_bench.cpp): the native half of bench/bm25/bm25.mjs
// (llmds InvertedIndex only; the JS libraries it is compared with there have no native build).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace llmds_bench {

using Bm25Row = std::map<std::string, double>;

/// Reads a list of UTF-8 strings: `u32 count`, then per string `u32 bytes` and the bytes
/// (little-endian; bench/ratios.mjs writes the fortunes corpus and the queries this way).
/// Exits with a message on unreadable input.
std::vector<std::string> read_string_list(const std::string& file, const char* suite);

/// Indexes the documents of `corpus_file` (doc id = position) with k1 1.2, b 0.75, then runs the
/// queries of `queries_file` for the top 10, as bm25.mjs does: one untimed warm-up build and
/// query pass, a timed build (`docsPerSec`), the best of 3 (quick: 2) query passes (`qps`,
/// `meanUs`). Returns {"bm25": one row}, with `overlapAt10` against search_exhaustive (1 when
/// pruning is exact) and the index's byte counts.
std::map<std::string, std::vector<Bm25Row>> run_bm25_suite(const std::string& corpus_file,
                                                           const std::string& queries_file, bool quick);

}  // namespace llmds_bench
