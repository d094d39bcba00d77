// SPDX-License-Identifier: MIT
// Helpers shared by several Catch2 files (not a test file itself: not in LLMDS_TEST_SOURCES).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "llmds/retrieval_pipeline.hpp"

namespace llmds_test {

/// A pipeline query: text, an optional embedding (kept by pointer, so `emb` must outlive it),
/// top k and the fusion.
inline llmds::PipelineQuery query_of(const std::string& text, const std::vector<float>* emb, uint32_t k, double w,
                                     llmds::Fusion f) {
  llmds::PipelineQuery q;
  q.text = text;
  if (emb) {
    q.embedding = emb->data();
    q.embedding_len = emb->size();
  }
  q.top_k = k;
  q.fusion_weight = w;
  q.fusion = f;
  return q;
}

/// Zipf(s) ranks 0..n-1 from raw mt19937 outputs, so the same stream comes out natively
/// (libstdc++) and in wasm (libc++), whose std distributions differ.
struct Zipf {
  std::vector<double> cdf;
  Zipf(std::size_t n, double s) : cdf(n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) cdf[i] = (sum += 1.0 / std::pow(static_cast<double>(i + 1), s));
    for (double& c : cdf) c /= sum;
  }
  std::size_t operator()(std::mt19937& rng) const {
    const double u = (static_cast<double>(rng()) + 0.5) / 4294967296.0;
    return std::min<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin(), cdf.size() - 1);
  }
};

/// mulberry32: tiny, and trivially reproducible in JS (tests/js/hnsw*.test.mjs build the same
/// indexes from the same numbers and check the same fingerprints).
struct Mulberry32 {
  uint32_t a;
  uint32_t next() {
    a += 0x6D2B79F5u;
    uint32_t t = a;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return t ^ (t >> 14);
  }
  // Exact float in [-0.5, 0.5): 24 random bits.
  float uniform() { return static_cast<float>(next() >> 8) * (1.0f / 16777216.0f) - 0.5f; }
};

}  // namespace llmds_test
