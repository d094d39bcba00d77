// SPDX-License-Identifier: MIT
#include "attention_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kv_cache/kv_cache_internals.hpp"  // the scalar reference path (private hook)
#include "llmds/kv_cache.hpp"

namespace llmds_bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// Median of 5 rounds, each timing `reps` calls of fn; seconds per call.
template <class Fn>
double time_per_call(int reps, Fn fn) {
  std::vector<double> rounds;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) fn();
    rounds.push_back(seconds_since(t0) / reps);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[2];
}

float draw(uint32_t& s) {
  s = s * 1664525u + 1013904223u;
  return static_cast<float>(s >> 8) * (1.0f / 8388608.0f) - 1.0f;
}

void fail(const char* what, const llmds::Status& st) {
  std::fprintf(stderr, "attention suite: %s: %s\n", what, st.message().c_str());
  std::exit(1);
}

}  // namespace

std::map<std::string, std::vector<AttentionRow>> run_attention_suite(bool quick) {
  constexpr uint32_t kKVHeads = 8, kHeadDim = 128, kHeads = 32, kPage = 16;
  const std::vector<uint32_t> contexts = quick ? std::vector<uint32_t>{512, 2048, 8192}
                                               : std::vector<uint32_t>{512, 1024, 2048, 4096, 8192};
  const uint32_t max_ctx = contexts.back();

  // Copy probe: twice the largest f32 cache (8192 x 8 x 128 x 2 x 4 B = 64 MiB).
  const std::size_t probe_bytes = std::size_t{max_ctx} * kKVHeads * kHeadDim * 2 * 4 * 2;
  std::vector<unsigned char> src(probe_bytes, 1), dst(probe_bytes, 0);
  const double copy_s = time_per_call(quick ? 2 : 5, [&] {
    std::memcpy(dst.data(), src.data(), probe_bytes);
    src[dst[probe_bytes / 2] & 1023] ^= 1;  // keep the copy observable
  });
  const double copy_gbps = static_cast<double>(probe_bytes) / copy_s / 1e9;
  std::map<std::string, std::vector<AttentionRow>> out;
  out["attentionCopyProbe"].push_back({{"bytes", double(probe_bytes)}, {"copyGBps", copy_gbps}});
  src.clear();
  src.shrink_to_fit();
  dst.clear();
  dst.shrink_to_fit();

  for (bool f16 : {false, true}) {
    for (uint32_t ctx : contexts) {
      llmds::KVCacheOptions o;
      o.page_size = kPage;
      o.max_pages = ctx / kPage + 1;
      o.kv = {1, kKVHeads, kHeadDim, f16 ? llmds::KVDtype::f16 : llmds::KVDtype::f32};
      llmds::KVCache cache = llmds::KVCache::create(o).value();
      std::vector<int32_t> tokens(ctx);
      for (uint32_t i = 0; i < ctx; ++i) tokens[i] = static_cast<int32_t>(i);
      if (auto st = cache.attach(1, tokens.data(), ctx); !st) fail("attach", st);
      uint32_t seed = 7 + ctx;
      const std::size_t row = std::size_t{kKVHeads} * kHeadDim;
      std::vector<float> k(std::size_t{256} * row), v(k.size());
      for (uint32_t from = 0; from < ctx; from += 256) {
        for (float& x : k) x = draw(seed);
        for (float& x : v) x = draw(seed);
        if (auto st = cache.write_kv(1, 0, from, k.data(), v.data(), std::min<uint32_t>(256, ctx - from)); !st) {
          fail("write_kv", st);
        }
      }
      std::vector<float> q(std::size_t{kHeads} * kHeadDim), res(q.size());
      for (float& x : q) x = draw(seed);
      const double target = quick ? 0.02 : 0.1;  // seconds per round
      auto simd_call = [&] {
        if (auto st = cache.attention(1, 0, q.data(), 1, kHeads, 0.0f, res.data()); !st) fail("attention", st);
      };
      auto scalar_call = [&] {
        if (auto st = llmds::KVCacheInternals::attention_scalar(cache, 1, 0, q.data(), 1, kHeads, 0.0f, res.data()); !st) {
          fail("attention_scalar", st);
        }
      };
      simd_call();
      const auto t0 = Clock::now();
      simd_call();
      const int reps = std::max(1, static_cast<int>(target / std::max(1e-7, seconds_since(t0))));
      const double simd_s = time_per_call(reps, simd_call);
      const double scalar_s = time_per_call(std::max(1, reps / 8), scalar_call);
      const double kv_bytes = double(ctx) * double(row) * 2 * (f16 ? 2 : 4);
      const double gbps = kv_bytes / simd_s / 1e9;
      out["attentionDecode"].push_back({{"context", double(ctx)},
                                        {"f16", f16 ? 1.0 : 0.0},
                                        {"usPerCall", simd_s * 1e6},
                                        {"scalarUsPerCall", scalar_s * 1e6},
                                        {"scalarOverSimd", scalar_s / simd_s},
                                        {"kvBytesPerCall", kv_bytes},
                                        {"kvGBps", gbps},
                                        {"copyGBps", copy_gbps},
                                        {"kvOverCopy", gbps / copy_gbps},
                                        {"payloadBytes", double(cache.stats().payload_bytes)}});
    }
  }
  return out;
}

}  // namespace llmds_bench
