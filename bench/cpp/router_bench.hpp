// SPDX-License-Identifier: MIT
// The router suite of llmds_bench (bench/cpp/router_bench.cpp): KVRouter route latency for a
// 12,000-token prompt (hashing included), index bytes per (block, worker), apply_stored rate.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace llmds_bench {

using RouterRow = std::map<std::string, double>;

/// "routerRoute": one row per fleet (8 and 64 workers, 100k indexed blocks each; quick: 10k):
/// routeP50Us / routeP99Us for route_tokens of a 12,000-token prompt that shares a prefix with
/// one worker's cache (hashing included), hashOnlyP50Us, bytesPerBlockWorker, indexedBlocks.
/// "routerApply": apply_stored throughput (blocks per second, 16-token blocks, events of 32
/// blocks chained through their parent) and approximate-mode recording (route with a request
/// id) of fresh 12,000-token prompts.
std::map<std::string, std::vector<RouterRow>> run_router_suite(bool quick);

}  // namespace llmds_bench
