// SPDX-License-Identifier: MIT
// Native benchmark CLI: the same workloads as the Node benchmarks (bench/*.mjs), so every
// figure has a wasm/native ratio.
//   llmds_bench [--suite kv|all] [--quick] [--json out.json]
//   llmds_bench --suite hnsw --hnsw-manifest bench/results/hnsw-sets.txt [--quick] [--json out.json]
//     (HNSW runs only when asked for: bench/hnsw/hnsw.mjs writes the data files and the manifest)
//   llmds_bench --suite serving|bm25|retrieval [--bm25-corpus F --bm25-queries F] [--retrieval-data F]
//     (bm25 / retrieval read the files bench/ratios.mjs writes; `all` runs them when given the files)
//   llmds_bench --suite hnsw-compact
//     (HNSW::compact() after removing half of an index: bytes, time, QPS and recall; needs no
//     files; also part of `all`)
//   llmds_bench --suite kv-trace [--kv-trace bench/data/mooncake-synthetic-trace.jsonl]
//     (the Mooncake synthetic trace replayed through KVCache: hit rates, attach ns/token, bytes;
//     also part of `all` when the file is found)
//   llmds_bench --suite router
//     (KVRouter: route p50/p99 for a 12,000-token prompt with 8 and 64 workers of 100k blocks,
//     bytes per indexed block per worker, apply_stored rate; needs no files; also part of `all`)
//   llmds_bench --suite attention
//     (KVCache::attention() decode steps over f32 / f16 pages at contexts 512..8192, the scalar
//     reference's time and a memcpy bandwidth probe; needs no files; not part of `all`)
//   llmds_bench --suite retrieval-build
//     (RetrievalPipeline build rate at 5k and 50k documents; needs no files; also part of `all`
//     and of `retrieval`)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "attention_bench.hpp"  // attention suite (bench/cpp/attention_bench.cpp)
#include "bench_common.hpp"
#include "llmds/kv_cache.hpp"
#include "hnsw_bench.hpp"
#include "kv_trace_bench.hpp"  // kv-trace suite (bench/cpp/kv_trace_bench.cpp)
// bm25 / serving / retrieval suites (bench/cpp/{bm25,serving,retrieval}_bench.cpp)
#include "bm25_bench.hpp"
#include "retrieval_bench.hpp"
#include "serving_bench.hpp"
#include "router_bench.hpp"  // router suite (bench/cpp/router_bench.cpp)

namespace {

using llmds_bench::Mulberry32;
using llmds_bench::percentile;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::vector<std::vector<int32_t>> random_sequences(std::size_t n, std::size_t len, uint32_t seed,
                                                   std::size_t prefix = 0) {
  Mulberry32 next{seed};
  std::vector<std::vector<int32_t>> out(n, std::vector<int32_t>(len));
  for (auto& s : out) {
    for (std::size_t i = 0; i < len; ++i) s[i] = i < prefix ? static_cast<int32_t>(i + 1) : static_cast<int32_t>(next() * 50000);
  }
  return out;
}

using Row = std::map<std::string, double>;

std::vector<double> time_each(std::size_t n, const std::function<void(std::size_t)>& fn) {
  std::vector<double> samples(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    fn(i);
    samples[i] = ms_since(t0);
  }
  return samples;
}

void add_percentiles(Row& row, const std::string& name, const std::vector<double>& s) {
  row[name + "P50Ms"] = percentile(s, 50);
  row[name + "P95Ms"] = percentile(s, 95);
  row[name + "P99Ms"] = percentile(s, 99);
}

Row bench_kv_latency(std::size_t num, std::size_t len, uint32_t page) {
  auto seqs = random_sequences(num, len, 42);
  auto cache = llmds::KVCache::create({page, static_cast<uint32_t>(num * ((len + page - 1) / page) + 16), true}).value();
  for (std::size_t i = 0; i < num; ++i) (void)cache.attach(static_cast<uint32_t>(i), seqs[i].data(), len);
  for (std::size_t i = 0; i < num; ++i) cache.detach(static_cast<uint32_t>(i));
  Row row{{"numSequences", double(num)}, {"tokensPerSeq", double(len)}, {"pageSize", double(page)}};
  add_percentiles(row, "attach", time_each(num, [&](std::size_t i) {
    (void)cache.attach(static_cast<uint32_t>(i), seqs[i].data(), len);
  }));
  add_percentiles(row, "get", time_each(num, [&](std::size_t i) { (void)cache.get(static_cast<uint32_t>(i)); }));
  add_percentiles(row, "detach", time_each(num, [&](std::size_t i) { cache.detach(static_cast<uint32_t>(i)); }));
  row["leakedPages"] = cache.stats().used_pages;
  return row;
}

Row bench_prefix_match(std::size_t tokens, uint32_t page, int reps) {
  auto seq = random_sequences(1, tokens, 99)[0];
  auto cache = llmds::KVCache::create({page, static_cast<uint32_t>(tokens / page + 1), true}).value();
  (void)cache.attach(1, seq.data(), seq.size());
  double best = 1e300;
  std::size_t matched = 0;
  for (int r = 0; r < 5; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) matched += cache.match_prefix(seq.data(), seq.size());
    best = std::min(best, ms_since(t0) * 1e6 / (double(reps) * double(tokens)));
  }
  return {{"tokens", double(tokens)}, {"pageSize", double(page)}, {"nsPerToken", best},
          {"matchedOk", matched == tokens * reps * 5 ? 1.0 : 0.0}};
}

std::string to_json(const std::map<std::string, std::vector<Row>>& suites) {
  std::ostringstream o;
  o << "{";
  bool first_suite = true;
  for (const auto& [name, rows] : suites) {
    o << (first_suite ? "" : ",") << "\n  \"" << name << "\": [";
    first_suite = false;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      o << (r ? "," : "") << "\n    {";
      bool first = true;
      for (const auto& [k, v] : rows[r]) {
        o << (first ? "" : ", ") << "\"" << k << "\": " << v;
        first = false;
      }
      o << "}";
    }
    o << "\n  ]";
  }
  o << "\n}\n";
  return o.str();
}

void print_rows(const std::string& title, const std::vector<Row>& rows) {
  std::printf("\n%s\n", title.c_str());
  for (const auto& row : rows) {
    for (const auto& [k, v] : row) std::printf("  %s=%.6g", k.c_str(), v);
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string suite = "all", json;
  std::string hnsw_manifest;  // HNSW suite
  std::string bm25_corpus, bm25_queries, retrieval_data;  // bm25 / retrieval suites
  std::string kv_trace = "bench/data/mooncake-synthetic-trace.jsonl";  // kv-trace suite
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--suite" && i + 1 < argc) suite = argv[++i];
    else if (a == "--json" && i + 1 < argc) json = argv[++i];
    else if (a == "--kv-trace" && i + 1 < argc) kv_trace = argv[++i];        // kv-trace suite
    else if (a == "--hnsw-manifest" && i + 1 < argc) hnsw_manifest = argv[++i];  // HNSW suite
    else if (a == "--bm25-corpus" && i + 1 < argc) bm25_corpus = argv[++i];        // bm25 suite
    else if (a == "--bm25-queries" && i + 1 < argc) bm25_queries = argv[++i];      // bm25 suite
    else if (a == "--retrieval-data" && i + 1 < argc) retrieval_data = argv[++i];  // retrieval suite
    else {
      std::fprintf(stderr, "usage: llmds_bench [--suite kv|kv-trace|attention|hnsw|hnsw-compact|serving|router|bm25|retrieval|retrieval-build|all] [--quick] [--json out.json]\n"
                           "  [--kv-trace file] [--hnsw-manifest file] [--bm25-corpus file --bm25-queries file] [--retrieval-data file]\n");
      return 2;
    }
  }
  std::map<std::string, std::vector<Row>> results;
  const std::size_t n = quick ? 300 : 1000;
  if (suite == "kv" || suite == "all") {
    results["kvLatency"] = {bench_kv_latency(n, 1000, 512), bench_kv_latency(n, 1000, 16)};
    results["kvMatch"] = {bench_prefix_match(65536, 16, quick ? 20 : 100), bench_prefix_match(65536, 512, quick ? 20 : 100)};
  }
  if (suite == "attention") {
    for (auto& [name, rows] : llmds_bench::run_attention_suite(quick)) results[name] = std::move(rows);
  }
  if (suite == "kv-trace" || (suite == "all" && std::ifstream(kv_trace).good())) {
    for (auto& [name, rows] : llmds_bench::run_kv_trace_suite(kv_trace, quick)) results[name] = std::move(rows);
  } else if (suite == "all") {
    std::printf("(kv-trace suite skipped: %s not found)\n", kv_trace.c_str());
  }
  // HNSW suite: only when asked for (it needs the data files bench/hnsw/hnsw.mjs writes).
  if (suite == "hnsw") {
    if (hnsw_manifest.empty()) {
      std::fprintf(stderr, "--suite hnsw needs --hnsw-manifest (written by bench/hnsw/hnsw.mjs)\n");
      return 2;
    }
    for (auto& [name, rows] : llmds_bench::run_hnsw_suite(hnsw_manifest, quick)) results[name] = std::move(rows);
  }
  if (suite == "hnsw-compact" || suite == "all") {
    for (auto& [name, rows] : llmds_bench::run_hnsw_compact_suite(quick)) results[name] = std::move(rows);
  }
  // bm25 / serving / retrieval suites: serving needs no input; bm25 and retrieval read the
  // corpus and queries bench/ratios.mjs writes (required with their own --suite; `all` runs
  // them only when the files are given).
  if (suite == "serving" || suite == "all") {
    for (auto& [name, rows] : llmds_bench::run_serving_suite(quick)) results[name] = std::move(rows);
  }
  if (suite == "router" || suite == "all") {
    for (auto& [name, rows] : llmds_bench::run_router_suite(quick)) results[name] = std::move(rows);
  }
  if (suite == "bm25" || (suite == "all" && !bm25_corpus.empty())) {
    if (bm25_corpus.empty() || bm25_queries.empty()) {
      std::fprintf(stderr, "--suite bm25 needs --bm25-corpus and --bm25-queries (written by bench/ratios.mjs)\n");
      return 2;
    }
    for (auto& [name, rows] : llmds_bench::run_bm25_suite(bm25_corpus, bm25_queries, quick)) results[name] = std::move(rows);
  } else if (suite == "all") {
    std::printf("(bm25 suite skipped: no --bm25-corpus)\n");
  }
  if (suite == "retrieval" || suite == "retrieval-build" || suite == "all") {
    for (auto& [name, rows] : llmds_bench::run_retrieval_build_suite(quick)) results[name] = std::move(rows);
  }
  if (suite == "retrieval" && retrieval_data.empty()) {
    std::printf("(retrieval data suite skipped: no --retrieval-data)\n");
  } else if (suite == "retrieval" || (suite == "all" && !retrieval_data.empty())) {
    for (auto& [name, rows] : llmds_bench::run_retrieval_suite(retrieval_data, quick)) results[name] = std::move(rows);
  } else if (suite == "all") {
    std::printf("(retrieval suite skipped: no --retrieval-data)\n");
  }
  for (const auto& [name, rows] : results) print_rows(name, rows);
  if (!json.empty()) std::ofstream(json) << to_json(results);
  return 0;
}
