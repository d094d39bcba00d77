// SPDX-License-Identifier: MIT
// The retrieval suite of llmds_bench (bench/cpp/retrieval_bench.cpp): the native half of
// bench/retrieval.mjs (RetrievalPipeline, hybrid BM25 + HNSW search).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace llmds_bench {

using RetrievalRow = std::map<std::string, double>;

/// Reads the corpus and queries bench/ratios.mjs writes from retrieval.mjs's hybridCorpus()
/// (little-endian): `u32 docs, u32 dim, u32 queries, u32 topK, u32 seed`, then per document
/// `u32 id, u32 text bytes, text, f32[dim]`, then per query `u32 text bytes, text, f32[dim]`.
/// Builds a RetrievalPipeline (embedding_dim, seed; other options at their defaults, as the JS
/// API's) and measures as retrieval.mjs: build rate, then QPS on cache misses (every query text
/// gets a suffix " zz<n>" that matches nothing), on cache hits, BM25 only (misses), each the best
/// of 3 passes after 20 warm-up queries; and top-k overlap with search_exhaustive for weighted
/// and RRF fusion. Returns {"retrieval": one row}. Exits with a message on unreadable input.
std::map<std::string, std::vector<RetrievalRow>> run_retrieval_suite(const std::string& data_file, bool quick);

/// Build-rate scaling (no input files): builds a RetrievalPipeline of 5,000 and one of 50,000
/// documents (the corpus of bench/retrieval.mjs's hybridCorpus() at 64-d, generated here with the
/// same seeded generator; M 8, efConstruction 40) and measures docs/s for each, as the
/// build-scaling row of bench/retrieval.mjs does through the JS API. A build
/// whose per-document cost grows with the index shows up as `ratio` (docs/s at 50k / docs/s at
/// 5k) far below 1; with per-add work O(log n) it stays near 1 (>= 0.7 is the bar).
/// Returns {"retrievalBuild": one row per size, the last one carrying `ratio`}.
std::map<std::string, std::vector<RetrievalRow>> run_retrieval_build_suite(bool quick);

}  // namespace llmds_bench
