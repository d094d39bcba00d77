// SPDX-License-Identifier: MIT
// The HNSW suite of llmds_bench (bench/cpp/hnsw_bench.cpp): the native half of bench/hnsw/hnsw.mjs.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace llmds_bench {

using HnswRow = std::map<std::string, double>;

/// Builds an index per data set listed in `manifest` (written by bench/hnsw/hnsw.mjs; one line per
/// set: `name metric base.f32 query.f32 gt.i32 k ef1,ef2,...`) with M=16, efConstruction=200 and
/// the JS API's default seed, then measures build rate, and QPS and recall@k per efSearch.
/// Returns {"hnswBuild": one row per set, "hnswSearch": one row per set and ef}; rows carry
/// `set`, the line number in the manifest (0-based). Exits with a message on unreadable input.
std::map<std::string, std::vector<HnswRow>> run_hnsw_suite(const std::string& manifest, bool quick);

/// HNSW::compact() (no input files): builds an index of 40,000 clustered 64-d vectors (10,000
/// with --quick; cosine, M 16, efConstruction 100), removes a seeded random half, and measures
/// bytes, tombstones, QPS and recall@10 (against brute force over the live vectors, 500 queries,
/// efSearch 50) before compact(), the time compact() takes (wall and CPU), and the same figures
/// after. Returns {"hnswCompact": rows "phase" 0 (before) and 1 (after); the after row carries
/// compactSeconds, compactCpuSeconds and bytesRatio}.
std::map<std::string, std::vector<HnswRow>> run_hnsw_compact_suite(bool quick);

}  // namespace llmds_bench
