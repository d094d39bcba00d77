// SPDX-License-Identifier: MIT
// The serving suite of llmds_bench (bench/cpp/serving_bench.cpp): the native half of
// bench/serving.mjs (Scheduler, AdmissionController, IndexedHeap; not the TokenLRU vs
// lru-cache comparison, which has no native counterpart).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace llmds_bench {

using ServingRow = std::map<std::string, double>;

/// Runs the same workloads as bench/serving.mjs (same mulberry32 seeds and data, same sizes for
/// `quick`, same warm-ups, best-of-5 and sorted-sample percentiles). Returns
///  - "servingSubmit": one row per variant (`variant` 0 = default order with SLO, 1 = default
///    order without SLO, 2 = a priority_fn (FCFS; in JS a priorityFn callback)), `nsPerSubmit`;
///  - "servingGetBatch": one row, `getBatchP50Ms`... and `completeBatchP50Ms`... (10k queued);
///  - "servingAdmission": one row per case (`case` 0 = admitted, 1 = admitted with the default
///    clock, 2 = rejected by the qps limit, 3 = rejected by the token rate limit), `nsPerCall`;
///  - "servingHeap": one row per heap size, `pushNs`, `updateNs`, `popNs`.
/// Exits with a message if a structure misbehaves (wrong counts, out-of-order pops).
std::map<std::string, std::vector<ServingRow>> run_serving_suite(bool quick);

}  // namespace llmds_bench
