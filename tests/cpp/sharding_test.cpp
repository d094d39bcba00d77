// SPDX-License-Identifier: MIT
// Sharding: global BM25 statistics and exact merging of shard results (sharding.hpp), checked
// against one index over the whole corpus on seeded random corpora split into 1..6 shards.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llmds/inverted_index.hpp"
#include "llmds/retrieval_pipeline.hpp"
#include "llmds/sharding.hpp"
#include "test_support.hpp"

using namespace llmds;

namespace {

struct Doc {
  uint32_t id;
  std::string text;
  std::vector<float> embedding;  // empty: BM25 only
};

/// Uniform in [0, n) from raw mt19937 output (the same stream natively and in wasm).
uint32_t below(std::mt19937& rng, uint32_t n) { return static_cast<uint32_t>((static_cast<uint64_t>(rng()) * n) >> 32); }
float unit(std::mt19937& rng) { return static_cast<float>(rng()) / 4294967296.0f * 2.0f - 1.0f; }

std::string words(std::mt19937& rng, const llmds_test::Zipf& zipf, uint32_t n) {
  std::string t;
  for (uint32_t i = 0; i < n; ++i) {
    if (i) t += ' ';
    t += "w" + std::to_string(zipf(rng));
  }
  return t;
}

/// Distinct random ids, Zipf words (so terms repeat and BM25 ties happen), some empty texts,
/// some documents without an embedding.
std::vector<Doc> corpus(std::mt19937& rng, uint32_t n, uint32_t dim, uint32_t vocabulary) {
  llmds_test::Zipf zipf(vocabulary, 1.0);
  std::vector<Doc> docs;
  std::vector<uint32_t> used;
  while (docs.size() < n) {
    const uint32_t id = below(rng, 1u << 20) * 2047u % (RetrievalPipeline::kMaxDocId + 1u);
    if (std::find(used.begin(), used.end(), id) != used.end()) continue;
    used.push_back(id);
    Doc d{id, words(rng, zipf, below(rng, 14)), {}};
    if (below(rng, 8) != 0) {
      d.embedding.resize(dim);
      for (float& x : d.embedding) x = unit(rng);
    }
    docs.push_back(std::move(d));
  }
  return docs;
}

InvertedIndex index_of() {
  auto r = InvertedIndex::create();
  REQUIRE(r);
  return std::move(r.value());
}

RetrievalPipeline pipeline_of(uint32_t dim, Metric metric = Metric::cosine) {
  RetrievalPipelineOptions o;
  o.embedding_dim = dim;
  o.hnsw_m = 8;
  o.hnsw_ef_construction = 64;
  o.seed = 11;
  o.metric = metric;
  auto r = RetrievalPipeline::create(o);
  REQUIRE(r);
  return std::move(r.value());
}

/// Scores compared bit for bit: the claim is exact equality, not closeness.
void require_identical(const RankedHits& a, const RankedHits& b) {
  REQUIRE(a.ids == b.ids);
  REQUIRE(a.scores.size() == b.scores.size());
  for (std::size_t i = 0; i < a.scores.size(); ++i) {
    INFO("rank " << i << ": " << a.scores[i] << " vs " << b.scores[i]);
    REQUIRE(std::memcmp(&a.scores[i], &b.scores[i], sizeof(double)) == 0);
  }
}

/// termStats of every shard, merged, set on every shard.
template <class Shard>
TermStats exchange(std::vector<Shard>& shards) {
  std::vector<TermStats> parts;
  for (const Shard& s : shards) parts.push_back(s.term_stats());
  auto merged = merge_term_stats(parts);
  REQUIRE(merged);
  for (Shard& s : shards) REQUIRE(s.set_global_stats(*merged).ok());
  return merged.value();
}

RankedHits merged_bm25(const std::vector<InvertedIndex>& shards, const std::string& q, uint32_t k) {
  std::vector<RankedHits> lists;
  for (const InvertedIndex& s : shards) {
    auto r = s.search(q, k);
    REQUIRE(r);
    lists.push_back(std::move(r.value()));
  }
  auto m = merge_ranked(lists, k);
  REQUIRE(m);
  return m.value();
}


RankedHits merged_hybrid(const std::vector<RetrievalPipeline>& shards, const PipelineQuery& q, bool exact) {
  std::vector<ShardHits> parts;
  for (const RetrievalPipeline& s : shards) {
    auto r = s.search_shard(q, exact);
    REQUIRE(r);
    parts.push_back(std::move(r.value()));
  }
  auto m = RetrievalPipeline::merge_shard_results(parts, q);
  REQUIRE(m);
  return m.value();
}

}  // namespace

TEST_CASE("sharding: shard_of is a fixed hash, spread evenly", "[sharding]") {
  // Pinned: the JS shardOf (tests/js/sharding.test.mjs) checks the same values.
  CHECK(shard_of(0, 4) == 0);
  CHECK(shard_of(1, 4) == 0);
  CHECK(shard_of(2, 4) == 1);
  CHECK(shard_of(12345, 7) == 1);
  CHECK(shard_of(2147483647u, 5) == 1);
  CHECK(shard_of(4294967295u, 1000) == 346);
  CHECK(shard_of(17, 1) == 0);
  CHECK(shard_of(17, 0) == 0);
  for (uint32_t n : {2u, 3u, 4u, 6u}) {
    std::vector<uint32_t> count(n, 0);
    for (uint32_t id = 0; id < 60000; ++id) ++count[shard_of(id, n)];
    for (uint32_t c : count) CHECK(std::abs(static_cast<double>(c) - 60000.0 / n) < 0.03 * 60000.0 / n);
  }
}

TEST_CASE("sharding: term_stats and merge_term_stats", "[sharding]") {
  auto a = index_of();
  auto b = index_of();
  REQUIRE(a.add_document(1, "the quick brown fox").ok());
  REQUIRE(a.add_document(2, "the lazy dog").ok());
  REQUIRE(b.add_document(3, "a quick dog, a quick cat").ok());
  REQUIRE(b.add_document(4, "").ok());
  const TermStats sa = a.term_stats();
  CHECK(sa.documents == 2);
  CHECK(sa.tokens == 7);
  CHECK(sa.terms == std::vector<std::string>{"brown", "dog", "fox", "lazy", "quick", "the"});
  CHECK(sa.df == std::vector<uint64_t>{1, 1, 1, 1, 1, 2});
  const TermStats q = b.term_stats("Quick quick CAT zebra");
  CHECK(q.documents == 2);
  CHECK(q.tokens == 6);
  CHECK(q.terms == std::vector<std::string>{"cat", "quick"});
  CHECK(q.df == std::vector<uint64_t>{1, 1});

  auto m = merge_term_stats({sa, b.term_stats()});
  REQUIRE(m);
  CHECK(m->documents == 4);
  CHECK(m->tokens == 13);
  CHECK(m->terms == std::vector<std::string>{"a", "brown", "cat", "dog", "fox", "lazy", "quick", "the"});
  CHECK(m->df == std::vector<uint64_t>{1, 1, 1, 2, 1, 1, 2, 2});
  CHECK(merge_term_stats({})->documents == 0);

  TermStats bad = sa;
  std::swap(bad.terms[0], bad.terms[1]);
  CHECK(merge_term_stats({bad}).status().code() == Errc::invalid_argument);
  bad = sa;
  bad.df.pop_back();
  CHECK(merge_term_stats({bad}).status().code() == Errc::invalid_argument);
  bad = sa;
  bad.df[0] = 3;  // > documents
  CHECK(merge_term_stats({bad}).status().code() == Errc::invalid_argument);
  bad = sa;
  bad.df[0] = 0;
  CHECK(merge_term_stats({bad}).status().code() == Errc::invalid_argument);
}

TEST_CASE("sharding: set_global_stats checks that the stats include the index's own", "[sharding]") {
  auto a = index_of();
  REQUIRE(a.add_document(1, "apple banana").ok());
  REQUIRE(a.add_document(2, "apple").ok());
  TermStats g = a.term_stats();
  CHECK(a.set_global_stats(g).ok());  // a corpus of one shard
  CHECK(a.has_global_stats());
  g.documents = 1;
  g.df = {1, 1};
  CHECK(a.set_global_stats(g).code() == Errc::invalid_argument);  // fewer documents than here
  g = a.term_stats();
  g.tokens = 2;
  CHECK(a.set_global_stats(g).code() == Errc::invalid_argument);
  g = a.term_stats();
  g.documents = 3;
  g.df = {1, 1};  // apple: 1 < this index's 2
  CHECK(a.set_global_stats(g).code() == Errc::invalid_argument);
  g.df = {2, 2};  // banana: 1 here, 1 among the 1 document elsewhere: fine
  CHECK(a.set_global_stats(g).ok());
  g.terms.push_back("cherry");
  g.df.push_back(2);  // 2 documents elsewhere with cherry, but only 1 document elsewhere
  CHECK(a.set_global_stats(g).code() == Errc::invalid_argument);
  a.clear_global_stats();
  CHECK_FALSE(a.has_global_stats());
  REQUIRE(a.set_global_stats(a.term_stats()).ok());
  a.clear();
  CHECK_FALSE(a.has_global_stats());
}

TEST_CASE("sharding: BM25 over 1..6 shards with global statistics = one index, bit for bit", "[sharding]") {
  std::mt19937 rng(2024);
  for (int round = 0; round < 24; ++round) {
    const uint32_t n_docs = 1 + below(rng, 120);
    const uint32_t n_shards = 1 + round % 6;
    const auto docs = corpus(rng, n_docs, 1, 8 + below(rng, 60));
    auto single = index_of();
    std::vector<InvertedIndex> shards;
    for (uint32_t s = 0; s < n_shards; ++s) shards.push_back(index_of());
    for (const Doc& d : docs) {
      REQUIRE(single.add_document(d.id, d.text).ok());
      REQUIRE(shards[shard_of(d.id, n_shards)].add_document(d.id, d.text).ok());
    }
    const TermStats merged = exchange(shards);
    const TermStats whole = single.term_stats();
    CHECK(merged.documents == whole.documents);
    CHECK(merged.tokens == whole.tokens);
    CHECK(merged.terms == whole.terms);
    CHECK(merged.df == whole.df);
    llmds_test::Zipf zipf(70, 0.8);
    for (int qi = 0; qi < 12; ++qi) {
      const std::string q = words(rng, zipf, 1 + below(rng, 5)) + (qi % 4 == 0 ? " unknownword" : "");
      const uint32_t k = 1 + below(rng, 15);
      INFO("round " << round << " shards " << n_shards << " query \"" << q << "\" k " << k);
      auto expected = single.search(q, k);
      REQUIRE(expected);
      require_identical(merged_bm25(shards, q, k), *expected);
      auto exhaustive = single.search_exhaustive(q, k);
      require_identical(*exhaustive, *expected);
    }
  }
}

TEST_CASE("sharding: adds and removes after the exchange count on top of the global statistics", "[sharding]") {
  std::mt19937 rng(77);
  const auto docs = corpus(rng, 90, 1, 25);
  const uint32_t n = 3;
  auto single = index_of();
  std::vector<InvertedIndex> shards;
  for (uint32_t s = 0; s < n; ++s) shards.push_back(index_of());
  for (const Doc& d : docs) {
    REQUIRE(single.add_document(d.id, d.text).ok());
    REQUIRE(shards[shard_of(d.id, n)].add_document(d.id, d.text).ok());
  }
  exchange(shards);
  // One shard changes: its own view (global + its change) is exactly the new corpus's...
  const uint32_t extra = 4000001;
  const uint32_t s = shard_of(extra, n);
  REQUIRE(shards[s].add_document(extra, "w0 w1 w1 w2 w3 w5").ok());
  REQUIRE(single.add_document(extra, "w0 w1 w1 w2 w3 w5").ok());
  uint32_t removed = 0;
  for (const Doc& d : docs) {
    if (shard_of(d.id, n) == s && !d.text.empty()) removed = d.id;
  }
  REQUIRE(shards[s].remove_document(removed));
  REQUIRE(single.remove_document(removed));
  CHECK(shards[s].has_global_stats());
  const std::string q = "w0 w1 w2 w4 w7";
  RankedHits own;  // the single index's ranking of shard s's documents
  const RankedHits all = *single.search(q, 1000);
  for (std::size_t i = 0; i < all.ids.size(); ++i) {
    if (shard_of(all.ids[i], n) != s) continue;
    own.ids.push_back(all.ids[i]);
    own.scores.push_back(all.scores[i]);
  }
  REQUIRE(own.ids.size() > 5);
  require_identical(*shards[s].search(q, 1000), own);
  // ...while the other shards still score with the old statistics until the next exchange.
  auto before = merged_bm25(shards, q, 20);
  exchange(shards);
  auto after = merged_bm25(shards, q, 20);
  require_identical(after, *single.search(q, 20));
  CHECK(before.scores != after.scores);
}

TEST_CASE("sharding: hybrid over 1..6 shards = one pipeline (exact dense lists)", "[sharding]") {
  std::mt19937 rng(5);
  const uint32_t dim = 8;
  for (int round = 0; round < 18; ++round) {
    const uint32_t n_docs = 1 + below(rng, 150);
    const uint32_t n_shards = 1 + round % 6;
    const Metric metric = round % 3 == 0 ? Metric::l2 : round % 3 == 1 ? Metric::cosine : Metric::ip;
    const auto docs = corpus(rng, n_docs, dim, 10 + below(rng, 50));
    auto single = pipeline_of(dim, metric);
    std::vector<RetrievalPipeline> shards;
    for (uint32_t s = 0; s < n_shards; ++s) shards.push_back(pipeline_of(dim, metric));
    for (const Doc& d : docs) {
      const float* e = d.embedding.empty() ? nullptr : d.embedding.data();
      REQUIRE(single.add_document(d.id, d.text, e, d.embedding.size()).ok());
      REQUIRE(shards[shard_of(d.id, n_shards)].add_document(d.id, d.text, e, d.embedding.size()).ok());
    }
    exchange(shards);
    llmds_test::Zipf zipf(60, 0.8);
    for (int qi = 0; qi < 10; ++qi) {
      const std::string text = words(rng, zipf, 1 + below(rng, 4));
      std::vector<float> emb(dim);
      for (float& x : emb) x = unit(rng);
      const uint32_t k = 1 + below(rng, 30);
      const double w = below(rng, 5) / 4.0;
      const Fusion f = qi % 2 == 0 ? Fusion::weighted : Fusion::rrf;
      INFO("round " << round << " shards " << n_shards << " query \"" << text << "\" k " << k << " w " << w);
      const PipelineQuery hybrid = llmds_test::query_of(text, &emb, k, w, f);
      require_identical(merged_hybrid(shards, hybrid, true), *single.search_exhaustive(hybrid));
      const PipelineQuery bm25 = llmds_test::query_of(text, nullptr, k, w, f);
      require_identical(merged_hybrid(shards, bm25, false), *single.search(bm25));
      if (n_docs <= 40) {  // beams as wide as the corpus: HNSW is exact too
        require_identical(merged_hybrid(shards, hybrid, false), *single.search(hybrid));
      }
    }
  }
}

TEST_CASE("sharding: search_shard lists and merge_shard_results errors", "[sharding]") {
  auto a = pipeline_of(2);
  auto b = pipeline_of(2);
  const std::vector<float> e1 = {1, 0}, e2 = {0, 1}, q = {1, 0.2f};
  REQUIRE(a.add_document(1, "red apple", e1.data(), 2).ok());
  REQUIRE(a.add_document(2, "green apple").ok());  // no embedding
  REQUIRE(b.add_document(3, "red cherry", e2.data(), 2).ok());
  auto hits = a.search_shard(llmds_test::query_of("apple", &q, 5, 0.5, Fusion::weighted));
  REQUIRE(hits);
  CHECK(hits->top_k == 5);
  CHECK(hits->dense);
  CHECK(hits->bm25.ids.size() == 2);
  REQUIRE(hits->bm25_distances.size() == 2);
  CHECK(std::isinf(hits->bm25_distances[hits->bm25.ids[0] == 2 ? 0 : 1]));
  CHECK(hits->dense_ids == std::vector<uint32_t>{1});

  auto text_only = b.search_shard(llmds_test::query_of("apple", nullptr, 5, 0.5, Fusion::weighted));
  REQUIRE(text_only);
  CHECK_FALSE(text_only->dense);
  CHECK(text_only->dense_ids.empty());
  const PipelineQuery merged_q = llmds_test::query_of("", nullptr, 5, 0.5, Fusion::weighted);
  CHECK(RetrievalPipeline::merge_shard_results({*hits, *text_only}, merged_q).status().code() == Errc::invalid_argument);
  CHECK(RetrievalPipeline::merge_shard_results({*hits, *hits}, merged_q).status().code() == Errc::invalid_argument);
  CHECK(RetrievalPipeline::merge_shard_results({*hits}, llmds_test::query_of("", nullptr, 6, 0.5, Fusion::weighted)).status().code() ==
        Errc::invalid_argument);
  CHECK(RetrievalPipeline::merge_shard_results({}, merged_q)->ids.empty());
  CHECK(merge_ranked({hits->bm25, hits->bm25}, 3).status().code() == Errc::invalid_argument);
  auto three = RetrievalPipeline::merge_shard_results({*hits}, llmds_test::query_of("", nullptr, 3, 0.5, Fusion::weighted));
  REQUIRE(three);  // a smaller merged top_k than the shards searched for is fine
  CHECK(three->ids.size() == 2);
}

TEST_CASE("sharding: set_global_stats clears the pipeline's result cache", "[sharding]") {
  auto a = pipeline_of(2);
  REQUIRE(a.add_document(1, "red apple").ok());
  REQUIRE(a.add_document(2, "red red cherry pie").ok());
  const std::string text = "red apple";
  PipelineQuery q = llmds_test::query_of(text, nullptr, 5, 0.5, Fusion::weighted);
  auto local = a.search(q);
  REQUIRE(local);
  CHECK(a.stats().cache_entries == 1);
  TermStats g = a.term_stats();
  g.documents += 50;
  g.tokens += 500;
  for (uint64_t& df : g.df) df += 10;
  REQUIRE(a.set_global_stats(g).ok());
  CHECK(a.stats().cache_entries == 0);
  CHECK(a.has_global_stats());
  auto global = a.search(q);
  REQUIRE(global);
  CHECK(global->ids == local->ids);
  CHECK(global->scores != local->scores);  // doc 2 gains on doc 1 when "red" is rarer overall
  a.clear_global_stats();
  require_identical(*a.search(q), *local);
}
