// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <set>
#include <string>

#include "llmds/retrieval_pipeline.hpp"
#include "test_support.hpp"

using namespace llmds;

namespace {

RetrievalPipeline make(uint32_t dim = 4, uint64_t budget = 100000, Metric metric = Metric::cosine) {
  RetrievalPipelineOptions o;
  o.embedding_dim = dim;
  o.hnsw_m = 8;
  o.hnsw_ef_construction = 64;
  o.token_budget = budget;
  o.seed = 7;
  o.metric = metric;
  auto p = RetrievalPipeline::create(o);
  REQUIRE(p);
  return std::move(p.value());
}

RankedHits search(RetrievalPipeline& p, const std::string& text, const std::vector<float>* emb = nullptr,
                    double w = 0.5, Fusion f = Fusion::weighted, uint32_t k = 10) {
  auto r = p.search(llmds_test::query_of(text, emb, k, w, f));
  REQUIRE(r);
  return r.value();
}

// Four documents whose BM25 and dense rankings disagree on purpose.
void add_corpus(RetrievalPipeline& p) {
  const std::vector<float> e0 = {1, 0, 0, 0}, e1 = {0, 1, 0, 0}, e2 = {0.9f, 0.1f, 0, 0}, e3 = {0, 0, 1, 0};
  REQUIRE(p.add_document(0, "apple banana apple", e0.data(), 4).ok());
  REQUIRE(p.add_document(1, "apple apple apple apple cherry", e1.data(), 4).ok());
  REQUIRE(p.add_document(2, "banana cherry", e2.data(), 4).ok());
  REQUIRE(p.add_document(3, "durian", e3.data(), 4).ok());
}

}  // namespace

TEST_CASE("retrieval_pipeline: weighted fusion follows BM25 at w=0 and dense at w=1", "[retrieval]") {
  auto p = make();
  add_corpus(p);
  const std::vector<float> q = {1, 0, 0, 0};
  auto sparse = search(p, "apple", &q, 0.0);
  REQUIRE(sparse.ids.size() >= 2);
  CHECK(sparse.ids[0] == 1);  // most "apple"s, BM25 winner
  CHECK(sparse.scores[0] == Approx(1.0));
  auto dense = search(p, "apple", &q, 1.0);
  CHECK(dense.ids[0] == 0);  // identical direction
  CHECK(dense.ids[1] == 2);
  CHECK(dense.scores[0] == Approx(1.0));
  auto mixed = search(p, "apple", &q, 0.5);
  CHECK(mixed.ids[0] == 0);  // strong on both signals
  for (std::size_t i = 1; i < mixed.scores.size(); ++i) CHECK(mixed.scores[i - 1] >= mixed.scores[i]);
}

TEST_CASE("retrieval_pipeline: a single BM25 hit does not normalise to 0", "[retrieval]") {
  auto p = make();
  add_corpus(p);
  auto hits = search(p, "durian");
  REQUIRE(hits.ids.size() == 1);
  CHECK(hits.ids[0] == 3);
  CHECK(hits.scores[0] == Approx(1.0));  // BM25 only: best / best
  auto none = search(p, "nothing matches");
  CHECK(none.ids.empty());
}

TEST_CASE("retrieval_pipeline: reciprocal rank fusion", "[retrieval]") {
  auto p = make();
  add_corpus(p);
  const std::vector<float> q = {1, 0, 0, 0};
  auto hits = search(p, "apple", &q, 0.5, Fusion::rrf);
  REQUIRE(hits.ids.size() >= 3);
  // doc 0: dense rank 1, BM25 rank 2; doc 1: BM25 rank 1, dense rank >= 3.
  CHECK(hits.ids[0] == 0);
  CHECK(hits.scores[0] == Approx(0.5 / 61 + 0.5 / 62));
}

TEST_CASE("retrieval_pipeline: documents without an embedding are BM25 only", "[retrieval]") {
  auto p = make();
  REQUIRE(p.add_document(5, "lonely text").ok());
  CHECK(p.stats().documents == 1);
  CHECK(p.stats().dense_documents == 0);
  const std::vector<float> q = {0, 0, 0, 1};
  auto hits = search(p, "lonely", &q, 0.5);
  REQUIRE(hits.ids.size() == 1);
  CHECK(hits.ids[0] == 5);
  CHECK(hits.scores[0] == Approx(1.0));  // no dense document at all: BM25 only
  auto dense_only = search(p, "", &q, 1.0);
  CHECK(dense_only.ids.empty());
}

TEST_CASE("retrieval_pipeline: addDocument is atomic and replaces", "[retrieval]") {
  auto p = make();
  add_corpus(p);
  const std::vector<float> q = {1, 0, 0, 0};
  const auto before = search(p, "apple banana", &q);
  const std::vector<float> bad_dim = {1, 2, 3}, nan = {1, NAN, 0, 0}, zero = {0, 0, 0, 0};
  CHECK(p.add_document(0, "zebra", bad_dim.data(), 3).code() == Errc::dimension_mismatch);
  CHECK(p.add_document(0, "zebra", nan.data(), 4).code() == Errc::invalid_argument);
  CHECK(p.add_document(0, "zebra", zero.data(), 4).code() == Errc::invalid_argument);
  CHECK(p.add_document(9, "zebra", zero.data(), 4).code() == Errc::invalid_argument);
  CHECK(p.add_document(0x80000000u, "zebra").code() == Errc::invalid_argument);
  CHECK_FALSE(p.has_document(9));
  CHECK(search(p, "zebra").ids.empty());
  const auto after = search(p, "apple banana", &q);
  CHECK(after.ids == before.ids);
  CHECK(after.scores == before.scores);
  CHECK(p.stats().documents == 4);
  CHECK(p.stats().dense_documents == 4);

  // Replacing with text only drops the vector too.
  REQUIRE(p.add_document(0, "zebra").ok());
  CHECK(p.stats().dense_documents == 3);
  CHECK(search(p, "zebra").ids == std::vector<uint32_t>{0});
  CHECK(search(p, "apple banana", &q, 1.0).ids[0] == 2);
  CHECK(p.remove_document(0));
  CHECK_FALSE(p.remove_document(0));
  CHECK(p.stats().documents == 3);
}

TEST_CASE("retrieval_pipeline: the cache hits, and every add or remove clears it", "[retrieval]") {
  auto p = make();
  add_corpus(p);
  search(p, "apple");
  search(p, "apple");
  auto s = p.stats();
  CHECK(s.cache_hits == 1);
  CHECK(s.cache_misses == 1);
  CHECK(s.cache_entries == 1);
  search(p, "apple", nullptr, 0.5, Fusion::weighted, 3);  // another topK: another key
  CHECK(p.stats().cache_misses == 2);
  REQUIRE(p.add_document(7, "apple apple apple apple apple apple").ok());
  CHECK(p.stats().cache_entries == 0);
  CHECK(search(p, "apple").ids[0] == 7);  // fresh result, not the stale cached one
  CHECK(p.remove_document(7));
  CHECK(p.stats().cache_entries == 0);
  CHECK(search(p, "apple").ids[0] == 1);
}

TEST_CASE("retrieval_pipeline: hot queries are kept preferentially", "[retrieval]") {
  auto p = make(4, 12);  // a tiny budget: a few entries
  add_corpus(p);
  search(p, "cherry");  // cold: cached into free budget
  search(p, "cherry");  // hit
  for (int i = 0; i < 20; ++i) search(p, "cold query number " + std::to_string(i));
  // Cold queries never evicted the cached one.
  const auto hits_before = p.stats().cache_hits;
  search(p, "cherry");
  CHECK(p.stats().cache_hits == hits_before + 1);
  // A query seen twice is hot and may evict.
  search(p, "banana durian");
  search(p, "banana durian");
  search(p, "banana durian");
  CHECK(p.stats().cache_tokens <= 12);
}

TEST_CASE("retrieval_pipeline: bad queries", "[retrieval]") {
  auto p = make();
  add_corpus(p);
  PipelineQuery q;
  q.text = "apple";
  q.top_k = 0;
  CHECK(p.search(q).status().code() == Errc::invalid_argument);
  q.top_k = 5;
  q.fusion_weight = 1.5;
  CHECK(p.search(q).status().code() == Errc::invalid_argument);
  q.fusion_weight = NAN;
  CHECK(p.search(q).status().code() == Errc::invalid_argument);
  q.fusion_weight = 0.5;
  const std::vector<float> three = {1, 2, 3};
  q.embedding = three.data();
  q.embedding_len = 3;
  CHECK(p.search(q).status().code() == Errc::dimension_mismatch);
  CHECK(p.stats().searches == 0);
  RetrievalPipelineOptions o;
  o.embedding_dim = 0;
  CHECK(RetrievalPipeline::create(o).status().code() == Errc::invalid_argument);
}

TEST_CASE("retrieval_pipeline: candidate search agrees with exhaustive fusion", "[retrieval]") {
  const uint32_t dim = 16;
  auto p = make(dim);
  std::mt19937 rng(11);
  const char* words[] = {"kv", "cache", "page", "prefix", "token", "batch", "query", "vector", "index", "score",
                         "hnsw", "bm25", "fusion", "latency", "memory", "shard", "graph", "beam", "heap", "sketch"};
  for (uint32_t d = 0; d < 600; ++d) {
    std::string text;
    for (int i = 0; i < 8; ++i) text += std::string(words[rng() % 20]) + " ";
    std::vector<float> e(dim);
    for (auto& x : e) x = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 1000.0f;
    REQUIRE(p.add_document(d, text, e.data(), dim).ok());
  }
  std::size_t overlap = 0, total = 0;
  for (int qi = 0; qi < 30; ++qi) {
    std::vector<float> e(dim);
    for (auto& x : e) x = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 1000.0f;
    const std::string text = std::string(words[rng() % 20]) + " " + words[rng() % 20];
    PipelineQuery q;
    q.text = text;
    q.embedding = e.data();
    q.embedding_len = dim;
    auto fast = p.search(q);
    auto exact = p.search_exhaustive(q);
    REQUIRE(fast);
    REQUIRE(exact);
    std::set<uint32_t> want(exact->ids.begin(), exact->ids.end());
    for (uint32_t id : fast->ids) overlap += want.count(id);
    total += exact->ids.size();
  }
  CHECK(static_cast<double>(overlap) / static_cast<double>(total) >= 0.9);
}

TEST_CASE("retrieval_pipeline: serialize round trip and corrupt input", "[retrieval]") {
  auto p = make();
  add_corpus(p);
  REQUIRE(p.add_document(8, "text only doc apple").ok());
  const auto bytes = p.serialize();
  auto copy = RetrievalPipeline::deserialize(bytes.data(), bytes.size());
  REQUIRE(copy);
  CHECK(copy->stats().documents == 5);
  CHECK(copy->stats().dense_documents == 4);
  CHECK(copy->options().embedding_dim == 4);
  CHECK(copy->options().metric == Metric::cosine);
  const std::vector<float> q = {1, 0, 0, 0};
  const auto a = search(p, "apple", &q), b = search(copy.value(), "apple", &q);
  CHECK(a.ids == b.ids);
  CHECK(a.scores == b.scores);
  CHECK(copy->serialize() == bytes);

  for (std::size_t n = 0; n < bytes.size(); n += 1 + n / 16) {
    auto r = RetrievalPipeline::deserialize(bytes.data(), n);
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == Errc::corrupt_data);
  }
  std::mt19937 rng(5);
  for (int i = 0; i < 300; ++i) {
    auto flipped = bytes;
    flipped[rng() % flipped.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    auto r = RetrievalPipeline::deserialize(flipped.data(), flipped.size());
    REQUIRE_FALSE(r);
    CHECK((r.status().code() == Errc::corrupt_data || r.status().code() == Errc::version_mismatch));
  }
}

TEST_CASE("retrieval_pipeline: token budget 0 turns the result cache off", "[retrieval]") {
  for (const uint64_t budget : {uint64_t{0}, uint64_t{1000}}) {
    auto p = make(4, budget);
    const std::vector<float> e = {1, 0, 0, 0};
    REQUIRE(p.add_document(1, "paged attention kv cache", e.data(), 4).ok());
    REQUIRE(p.add_document(2, "bm25 inverted index", nullptr, 0).ok());
    PipelineQuery q;
    q.text = "kv cache";
    q.top_k = 2;
    auto first = p.search(q);
    auto second = p.search(q);
    REQUIRE(first.ok());
    REQUIRE(second.ok());
    CHECK(first->ids == second->ids);
    CHECK(first->scores == second->scores);
    const auto s = p.stats();
    CHECK(s.searches == 2);
    CHECK(s.cache_hits == (budget == 0 ? 0u : 1u));
    CHECK(s.cache_misses == (budget == 0 ? 0u : 1u));
    CHECK(s.cache_entries == (budget == 0 ? 0u : 1u));
    CHECK(s.cache_tokens == (budget == 0 ? 0u : s.cache_tokens));
    auto restored = RetrievalPipeline::deserialize(p.serialize().data(), p.serialize().size());
    REQUIRE(restored.ok());
    CHECK(restored->options().token_budget == budget);
  }
}
