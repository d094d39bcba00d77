// SPDX-License-Identifier: MIT
#include "router_bench.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "llmds/block_hash.hpp"
#include "llmds/kv_router.hpp"
#include "llmds/serialize.hpp"

namespace llmds_bench {
namespace {

using Clock = std::chrono::steady_clock;
double us_since(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

void die(const char* what, const llmds::Status& st) {
  std::fprintf(stderr, "router bench: %s: %s\n", what, st.message().c_str());
  std::exit(1);
}

std::vector<int32_t> random_tokens(Mulberry32& next, std::size_t n) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(next() * 100000);
  return t;
}

constexpr std::size_t kPromptTokens = 12000;

RouterRow route_row(uint32_t workers, uint64_t blocks_per_worker, bool quick) {
  // Fill with round robin (fresh prompts, disjoint: the most bytes per pair), then switch the
  // snapshot's policy byte to cache_aware and reseal it: deserialize is timed on the way.
  llmds::KVRouterOptions o;
  o.policy = llmds::KVRouterOptions::round_robin;
  o.capacity_blocks = blocks_per_worker;
  auto router = llmds::KVRouter::create(o).value();
  for (uint32_t w = 0; w < workers; ++w) {
    char name[64];
    std::snprintf(name, sizeof name, "http://worker-%02u.internal:8000", w);
    if (auto st = router.add_worker(name); !st.ok()) die("add_worker", st);
  }
  Mulberry32 next{7};
  const std::size_t blocks_per_prompt = kPromptTokens / o.block_size;
  const std::size_t fills = static_cast<std::size_t>(workers * blocks_per_worker / blocks_per_prompt);
  std::vector<std::vector<int32_t>> kept;  // some fill prompts, for shared-prefix queries
  double record_us = 0;
  for (std::size_t i = 0; i < fills; ++i) {
    auto t = random_tokens(next, kPromptTokens);
    auto h = llmds::block_hashes(t.data(), t.size(), o.block_size).value();
    auto t0 = Clock::now();
    auto d = router.route(h.data(), h.size(), "fill");
    record_us += us_since(t0);
    if (!d.ok()) die("route", d.status());
    if (i + 4 * workers >= fills) kept.push_back(std::move(t));  // the last rounds: still indexed
  }
  auto bytes = router.serialize();
  bytes[llmds::kEnvelopeHeaderBytes + 4] = llmds::KVRouterOptions::cache_aware;
  const std::size_t body = bytes.size() - llmds::kEnvelopeTrailerBytes;
  const uint32_t crc = llmds::crc32(bytes.data(), body);
  for (int k = 0; k < 4; ++k) bytes[body + k] = static_cast<uint8_t>(crc >> (8 * k));
  auto t0 = Clock::now();
  auto restored = llmds::KVRouter::deserialize(bytes.data(), bytes.size());
  const double deserialize_ms = us_since(t0) / 1000;
  if (!restored.ok()) die("deserialize", restored.status());
  llmds::KVRouter r = std::move(restored).value();
  const auto stats = r.stats();

  // Queries: half of a recent fill prompt (held by one worker) + a fresh half.
  const std::size_t samples = quick ? 500 : 3000;
  std::vector<std::vector<int32_t>> queries;
  for (std::size_t i = 0; i < 256; ++i) {
    auto q = random_tokens(next, kPromptTokens);
    const auto& src = kept[i % kept.size()];
    std::copy(src.begin(), src.begin() + kPromptTokens / 2, q.begin());
    queries.push_back(std::move(q));
  }
  std::vector<double> route_us(samples), hash_us(samples), walk_us(samples);
  std::vector<std::vector<uint64_t>> query_hashes;
  for (const auto& q : queries) query_hashes.push_back(llmds::block_hashes(q.data(), q.size(), o.block_size).value());
  uint64_t hits = 0;
  for (std::size_t i = 0; i < samples; ++i) {
    const auto& q = queries[i % queries.size()];
    auto t1 = Clock::now();
    auto d = r.route_tokens(q.data(), q.size());
    route_us[i] = us_since(t1);
    if (!d.ok()) die("route_tokens", d.status());
    hits += d->overlap_blocks;
    auto t2 = Clock::now();
    auto h = llmds::block_hashes(q.data(), q.size(), o.block_size);
    hash_us[i] = us_since(t2);
    if (!h.ok()) die("block_hashes", h.status());
    const auto& qh = query_hashes[(i * 7 + 3) % queries.size()];
    auto t3 = Clock::now();
    auto d2 = r.route(qh.data(), qh.size());
    walk_us[i] = us_since(t3);
    if (!d2.ok()) die("route", d2.status());
  }
  if (hits != samples * (kPromptTokens / 2 / o.block_size)) {
    std::fprintf(stderr, "router bench: expected every query to hit half its blocks\n");
    std::exit(1);
  }
  return {{"workers", double(workers)},
          {"blocksPerWorker", double(blocks_per_worker)},
          {"indexedBlocks", double(stats.indexed_blocks)},
          {"bytesPerBlockWorker", double(stats.bytes) / double(stats.indexed_blocks)},
          {"routeP50Us", percentile(route_us, 50)},
          {"routeP99Us", percentile(route_us, 99)},
          {"hashOnlyP50Us", percentile(hash_us, 50)},
          {"routeHashesP50Us", percentile(walk_us, 50)},
          {"routeHashesP99Us", percentile(walk_us, 99)},
          {"recordRouteUs", record_us / double(fills)},
          {"deserializeMs", deserialize_ms},
          {"snapshotBytesPerBlock", double(bytes.size()) / double(stats.indexed_blocks)}};
}

RouterRow apply_row(uint32_t workers, uint64_t blocks_per_worker) {
  llmds::KVRouterOptions o;
  o.mode = llmds::KVRouterOptions::precise;
  auto r = llmds::KVRouter::create(o).value();
  for (uint32_t w = 0; w < workers; ++w) {
    if (auto st = r.add_worker("w" + std::to_string(w)); !st.ok()) die("add_worker", st);
  }
  Mulberry32 next{11};
  constexpr std::size_t kEventBlocks = 32;
  const std::size_t events = static_cast<std::size_t>(blocks_per_worker / kEventBlocks);
  std::vector<int32_t> t = random_tokens(next, kEventBlocks * o.block_size);
  std::vector<uint64_t> engine(kEventBlocks);
  double us = 0;
  uint64_t stored = 0, id = 1;
  for (uint32_t w = 0; w < workers; ++w) {
    const std::string name = "w" + std::to_string(w);
    uint64_t parent = 0;
    for (std::size_t e = 0; e < events; ++e) {
      for (auto& x : t) x = static_cast<int32_t>(next() * 100000);
      for (auto& h : engine) h = id++ * 0x9E3779B97F4A7C15ull;  // vLLM-like: not the router's hashes
      const bool has_parent = e % 8 != 0;  // chains of 8 events
      auto t0 = Clock::now();
      auto st = r.apply_stored(name, engine.data(), kEventBlocks, has_parent, parent, t.data(), t.size(), o.block_size);
      us += us_since(t0);
      if (!st.ok()) die("apply_stored", st);
      parent = engine.back();
      stored += kEventBlocks;
    }
  }
  const auto s = r.stats();
  return {{"workers", double(workers)},
          {"blocksPerEvent", double(kEventBlocks)},
          {"storedBlocks", double(stored)},
          {"blocksPerSec", double(stored) / (us / 1e6)},
          {"bytesPerBlockWorker", double(s.bytes) / double(s.indexed_blocks)}};
}

}  // namespace

std::map<std::string, std::vector<RouterRow>> run_router_suite(bool quick) {
  const uint64_t per_worker = quick ? 10000 : 100000;
  std::map<std::string, std::vector<RouterRow>> out;
  out["routerRoute"] = {route_row(8, per_worker, quick), route_row(64, per_worker, quick)};
  out["routerApply"] = {apply_row(8, per_worker)};
  return out;
}

}  // namespace llmds_bench
