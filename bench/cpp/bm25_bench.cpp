// SPDX-License-Identifier: MIT
// BM25 suite of llmds_bench: InvertedIndex indexing rate and exact top-10 QPS on the same corpus
// (the Debian fortunes, as bench/bm25/bm25.mjs loads them) and the same seeded queries, read from
// the files bench/ratios.mjs writes, with bm25.mjs's warm-up and timing.
#include "bm25_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <vector>

#include "llmds/inverted_index.hpp"

namespace llmds_bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kTopK = 10;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "llmds_bench --suite bm25: %s\n", msg.c_str());
  std::exit(1);
}

llmds::InvertedIndex build(const std::vector<std::string>& docs) {
  auto created = llmds::InvertedIndex::create({1.2, 0.75});
  if (!created) die("create: " + created.status().message());
  llmds::InvertedIndex index = std::move(created.value());
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const auto st = index.add_document(static_cast<uint32_t>(i), docs[i]);
    if (!st) die("add_document: " + st.message());
  }
  return index;
}

std::vector<llmds::RankedHits> search_all(const llmds::InvertedIndex& index, const std::vector<std::string>& queries) {
  std::vector<llmds::RankedHits> out;
  out.reserve(queries.size());
  for (const auto& q : queries) {
    auto r = index.search(q, kTopK);
    if (!r) die("search: " + r.status().message());
    out.push_back(std::move(r.value()));
  }
  return out;
}

}  // namespace

std::vector<std::string> read_string_list(const std::string& file, const char* suite) {
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "llmds_bench --suite %s: %s: %s\n", suite, file.c_str(), why.c_str());
    std::exit(1);
  };
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot open (bench/ratios.mjs writes it)");
  auto u32 = [&] {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) fail("truncated");
    return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  };
  std::vector<std::string> out(u32());
  for (auto& s : out) {
    s.resize(u32());
    if (!in.read(s.data(), static_cast<std::streamsize>(s.size()))) fail("truncated");
  }
  return out;
}

std::map<std::string, std::vector<Bm25Row>> run_bm25_suite(const std::string& corpus_file,
                                                           const std::string& queries_file, bool quick) {
  const auto docs = read_string_list(corpus_file, "bm25");
  const auto queries = read_string_list(queries_file, "bm25");
  if (docs.empty() || queries.empty()) die("empty corpus or query list");
  std::size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();

  {  // Warm-up build and query pass, as bm25.mjs (there: JIT and wasm tier-up).
    const auto warm = build(docs);
    (void)search_all(warm, queries);
  }
  const auto t0 = Clock::now();
  const auto index = build(docs);
  const double build_seconds = seconds_since(t0);

  const int reps = quick ? 2 : 3;
  double best = 1e300;
  std::vector<llmds::RankedHits> results;
  for (int r = 0; r < reps; ++r) {
    const auto s0 = Clock::now();
    results = search_all(index, queries);
    best = std::min(best, seconds_since(s0));
  }

  // Sanity: pruned top 10 against scoring every posting (bm25.mjs: against a brute force in JS).
  double overlap = 0;
  std::size_t counted = 0, hits = 0;
  for (std::size_t q = 0; q < queries.size(); ++q) {
    auto exact = index.search_exhaustive(queries[q], kTopK);
    if (!exact) die("search_exhaustive: " + exact.status().message());
    hits += results[q].ids.size();
    if (exact->ids.empty()) continue;
    const std::set<uint32_t> got(results[q].ids.begin(), results[q].ids.end());
    std::size_t same = 0;
    for (uint32_t id : exact->ids) same += got.count(id);
    overlap += double(same) / double(exact->ids.size());
    ++counted;
  }
  const auto st = index.stats();
  Bm25Row row{{"documents", double(docs.size())},
              {"bytes", double(bytes)},
              {"queries", double(queries.size())},
              {"topK", double(kTopK)},
              {"buildSeconds", build_seconds},
              {"docsPerSec", double(docs.size()) / build_seconds},
              {"qps", double(queries.size()) / best},
              {"meanUs", best * 1e6 / double(queries.size())},
              {"hitsReturned", double(hits)},
              {"overlapAt10", counted ? overlap / double(counted) : 1.0},
              {"engineMb", double(st.bytes) / (1 << 20)},
              {"postingsBytes", double(st.compressed_bytes)},
              {"uncompressedBytes", double(st.uncompressed_bytes)}};
  return {{"bm25", {row}}};
}

}  // namespace llmds_bench
