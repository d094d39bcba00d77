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

}  // namespace llmds_bench
