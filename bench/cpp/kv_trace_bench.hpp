// SPDX-License-Identifier: MIT
// The kv-trace suite of llmds_bench (bench/cpp/kv_trace_bench.cpp): replays the Mooncake
// synthetic trace (bench/data/mooncake-synthetic-trace.jsonl) through KVCache as a serving
// engine's block manager.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace llmds_bench {

using KVTraceRow = std::map<std::string, double>;

/// Replays the trace at page size 512 with max_pages 5,000, 20,000 and 100,000 (`quick`: the
/// first 1,000 requests). Returns "kvTrace": one row per budget (`maxPages`, `hitRate`,
/// `idealHitRate`, `attachNsPerToken`, `bytesPerStoredToken`, `partialPageGain`, ...; `events`
/// -1, then a last row at 20,000 pages with events recorded and drained, `events` their count),
/// and "kvMemory": stats().bytes per stored token for caches of 5k, 20k and 100k full pages.
/// Exits with a message if the file cannot be read or a plan is inconsistent.
std::map<std::string, std::vector<KVTraceRow>> run_kv_trace_suite(const std::string& trace_path, bool quick);

}  // namespace llmds_bench
