// SPDX-License-Identifier: MIT
// Uses llmds through its public headers only; exits 0 when the calls behave.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "llmds/hnsw.hpp"
#include "llmds/kv_cache.hpp"
#include "llmds/retrieval_pipeline.hpp"
#include "llmds/version.hpp"

int main() {
  auto cache = llmds::KVCache::create({4, 64, true});
  if (!cache) return 1;
  const std::vector<int32_t> tokens{1, 2, 3, 4, 5, 6, 7, 8, 9};
  if (!cache->attach(7, tokens.data(), tokens.size())) return 2;
  auto back = cache->get(7);
  if (!back || *back != tokens) return 3;

  llmds::HnswOptions o;
  o.dim = 2;
  auto index = llmds::HNSW::create(o);
  if (!index) return 4;
  const float a[2] = {0.0f, 0.0f}, b[2] = {1.0f, 1.0f};
  if (!index->add(a, 2, 10) || !index->add(b, 2, 11)) return 5;
  auto hits = index->search(b, 2, 1);
  if (!hits || hits->size() != 1 || (*hits)[0].id != 11) return 6;

  std::printf("llmds consumer: ok (%u pages used, %u vectors)\n", cache->stats().used_pages, index->size());
  return 0;
}
