// SPDX-License-Identifier: MIT
// Filtered search (IdFilter) in HNSW, InvertedIndex and RetrievalPipeline, and the pipeline's
// metadata and `where` conditions: the result is the top k among allowed ids, never a
// post-filtered top k.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "llmds/hnsw.hpp"
#include "llmds/inverted_index.hpp"
#include "llmds/retrieval_pipeline.hpp"

using namespace llmds;

namespace {

std::vector<float> clustered(uint32_t seed, std::size_t n, uint32_t dim) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<float> centres(20 * dim);
  for (auto& c : centres) c = u(g);
  std::vector<float> v(n * dim);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = g() % 20;
    for (uint32_t j = 0; j < dim; ++j) v[i * dim + j] = centres[c * dim + j] + 0.2f * u(g);
  }
  return v;
}

HNSW make_hnsw(uint32_t dim, const std::vector<float>& data) {
  HnswOptions o;
  o.dim = dim;
  o.m = 12;
  o.ef_construction = 100;
  o.metric = Metric::l2;
  auto r = HNSW::create(o);
  REQUIRE(r.ok());
  HNSW index = std::move(r).value();
  const std::size_t n = data.size() / dim;
  std::vector<uint32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<uint32_t>(i);
  REQUIRE(index.add_batch(data.data(), data.size(), ids.data(), n).ok());
  return index;
}

// Exact top-k ids among `allowed` (by the index's own distances: ties as the index breaks them).
std::vector<uint32_t> exact_top(const HNSW& index, const float* q, uint32_t dim, const std::vector<uint32_t>& allowed,
                                uint32_t k) {
  auto d = index.distances(q, dim, allowed.data(), allowed.size());
  REQUIRE(d.ok());
  std::vector<std::pair<float, uint32_t>> all;
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    if (std::isfinite((*d)[i])) all.emplace_back((*d)[i], allowed[i]);
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<uint32_t> out;
  for (std::size_t i = 0; i < std::min<std::size_t>(k, all.size()); ++i) out.push_back(all[i].second);
  return out;
}

std::vector<uint32_t> ids_of(const std::vector<Neighbor>& hits) {
  std::vector<uint32_t> out;
  for (const auto& h : hits) out.push_back(h.id);
  return out;
}

}  // namespace

TEST_CASE("filter: HNSW returns the k nearest allowed ids, by graph walk and by exact scan", "[hnsw][filter]") {
  const uint32_t dim = 16, n = 3000, k = 10;
  const auto data = clustered(1, n, dim);
  HNSW index = make_hnsw(dim, data);
  const auto queries = clustered(2, 40, dim);
  std::mt19937 g(3);
  for (double selectivity : {0.5, 0.1, 0.01}) {
    std::vector<uint32_t> allowed;
    for (uint32_t i = 0; i < n; ++i) {
      if (std::uniform_real_distribution<double>(0, 1)(g) < selectivity) allowed.push_back(i);
    }
    const std::set<uint32_t> allowed_set(allowed.begin(), allowed.end());
    std::size_t graph_hits = 0, total = 0;
    for (std::size_t qi = 0; qi < 40; ++qi) {
      const float* q = &queries[qi * dim];
      const auto truth = exact_top(index, q, dim, allowed, k);
      auto scan = index.search(q, dim, k, 64, IdFilter::ids(allowed.data(), allowed.size()), FilterPlan::exact);
      REQUIRE(scan.ok());
      CHECK(ids_of(*scan) == truth);  // the scan is exact
      auto walk = index.search(q, dim, k, 64, IdFilter::ids(allowed.data(), allowed.size()), FilterPlan::graph);
      REQUIRE(walk.ok());
      REQUIRE(walk->size() == std::min<std::size_t>(k, allowed.size()));  // never fewer than k allowed
      for (const auto& h : *walk) {
        REQUIRE(allowed_set.count(h.id) == 1);
        graph_hits += std::count(truth.begin(), truth.end(), h.id);
      }
      for (std::size_t i = 1; i < walk->size(); ++i) REQUIRE((*walk)[i - 1].distance <= (*walk)[i].distance);
      total += truth.size();
      auto autom = index.search(q, dim, k, 64, IdFilter::ids(allowed.data(), allowed.size()));
      REQUIRE(autom.ok());
      CHECK(ids_of(*autom) == ids_of(index.prefers_exact_scan(static_cast<uint32_t>(allowed.size()), 64) ? *scan : *walk));
    }
    INFO("selectivity " << selectivity);
    CHECK(static_cast<double>(graph_hits) / static_cast<double>(total) >= 0.95);
  }
}

TEST_CASE("filter: HNSW filters by predicate, skips removed and unknown ids, batch search", "[hnsw][filter]") {
  const uint32_t dim = 8, n = 500;
  const auto data = clustered(4, n, dim);
  HNSW index = make_hnsw(dim, data);
  REQUIRE(index.remove(2).ok());
  REQUIRE(index.remove(4).ok());
  std::vector<uint32_t> calls;
  auto even = [&](uint32_t id) {
    calls.push_back(id);
    return id % 2 == 0;
  };
  const float* q = &data[10 * dim];
  auto r = index.search(q, dim, 20, 0, IdFilter::of(even));
  REQUIRE(r.ok());
  REQUIRE(r->size() == 20);
  for (const auto& h : *r) CHECK((h.id % 2 == 0 && h.id != 2 && h.id != 4));
  CHECK(calls.size() == n - 2);  // once per live vector
  CHECK(calls == index.ids());   // in insertion order
  // The same through an id list (repeats and ids not in the index are ignored).
  std::vector<uint32_t> list;
  for (uint32_t i = 0; i < n + 100; i += 2) list.push_back(i);
  list.push_back(10);
  auto l = index.search(q, dim, 20, 0, IdFilter::ids(list.data(), list.size()));
  REQUIRE(l.ok());
  CHECK(ids_of(*l) == ids_of(*r));
  // Nothing allowed, or fewer than k allowed.
  auto none = index.search(q, dim, 5, 0, IdFilter::ids(nullptr, 0));
  REQUIRE(none.ok());
  CHECK(none->empty());
  const std::vector<uint32_t> three = {7, 2, 9, 12345};
  auto few = index.search(q, dim, 5, 0, IdFilter::ids(three.data(), three.size()));
  REQUIRE(few.ok());
  CHECK(ids_of(*few).size() == 2);  // 2 is removed, 12345 unknown
  // IdFilter::all() is the unfiltered search.
  auto all = index.search(q, dim, 10, 0, IdFilter::all());
  auto plain = index.search(q, dim, 10, 0);
  CHECK(ids_of(*all) == ids_of(*plain));
  // Batch: every row equals the single filtered search.
  std::vector<float> qs(data.begin(), data.begin() + 3 * dim);
  auto b = index.search_batch(qs.data(), qs.size(), 5, 0, IdFilter::ids(list.data(), list.size()));
  REQUIRE(b.ok());
  for (std::size_t i = 0; i < 3; ++i) {
    auto one = index.search(&qs[i * dim], dim, 5, 0, IdFilter::ids(list.data(), list.size()));
    for (std::size_t j = 0; j < 5; ++j) CHECK(b->ids[i * 5 + j] == static_cast<int32_t>((*one)[j].id));
  }
  // Invalid arguments are still checked first.
  CHECK(index.search(q, dim, 0, 0, IdFilter::of(even)).status().code() == Errc::invalid_argument);
  CHECK(index.search(q, dim - 1, 5, 0, IdFilter::of(even)).status().code() == Errc::dimension_mismatch);
}

TEST_CASE("filter: the automatic plan's crossover", "[hnsw][filter]") {
  const auto data = clustered(5, 1000, 4);
  HNSW index = make_hnsw(4, data);
  // allowed² <= 0.5 × ef × M × live: at ef 64, M 12, 1000 live: allowed <= 620.
  CHECK(index.prefers_exact_scan(619, 64));
  CHECK_FALSE(index.prefers_exact_scan(621, 64));
  CHECK(index.prefers_exact_scan(1, 1));
}

TEST_CASE("filter: BM25 filtered search equals exhaustive scoring of the allowed documents", "[bm25][filter]") {
  auto r = InvertedIndex::create();
  REQUIRE(r.ok());
  InvertedIndex index = std::move(r).value();
  std::mt19937 g(9);
  const char* words[] = {"alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"};
  for (uint32_t d = 0; d < 800; ++d) {
    std::string text;
    const int len = 1 + static_cast<int>(g() % 12);
    for (int i = 0; i < len; ++i) text += std::string(words[std::min<uint32_t>(g() % 8, g() % 8)]) + " ";
    REQUIRE(index.add_document(d, text).ok());
  }
  for (uint32_t d = 0; d < 800; d += 7) REQUIRE(index.remove_document(d));
  for (double selectivity : {0.5, 0.1, 0.01}) {
    std::vector<uint32_t> allowed;
    for (uint32_t d = 0; d < 900; ++d) {
      if (std::uniform_real_distribution<double>(0, 1)(g) < selectivity) allowed.push_back(d);
    }
    const std::set<uint32_t> set(allowed.begin(), allowed.end());
    auto in = [&](uint32_t id) { return set.count(id) != 0; };
    for (const char* query : {"alpha", "theta eta", "beta gamma delta theta", "zeta zeta alpha"}) {
      auto got = index.search(query, 10, IdFilter::ids(allowed.data(), allowed.size()));
      auto ref = index.search_exhaustive(query, 10, IdFilter::of(in));
      auto all = index.search_exhaustive(query, 100000);
      REQUIRE(got.ok());
      REQUIRE(ref.ok());
      CHECK(got->ids == ref->ids);
      CHECK(got->scores == ref->scores);
      // = the unfiltered full ranking restricted to allowed documents, first 10.
      std::vector<uint32_t> expect;
      for (uint32_t id : all->ids) {
        if (set.count(id) && expect.size() < 10) expect.push_back(id);
      }
      CHECK(got->ids == expect);
    }
  }
  auto none = index.search("alpha", 5, IdFilter::ids(nullptr, 0));
  REQUIRE(none.ok());
  CHECK(none->ids.empty());
  const auto live = index.document_ids();
  CHECK(live.size() == index.size());
  CHECK(std::find(live.begin(), live.end(), 7u) == live.end());
}

namespace {

RetrievalPipeline make_pipeline(uint64_t budget = 100000) {
  RetrievalPipelineOptions o;
  o.embedding_dim = 2;
  o.hnsw_m = 4;
  o.hnsw_ef_construction = 16;
  o.token_budget = budget;
  auto r = RetrievalPipeline::create(o);
  REQUIRE(r.ok());
  return std::move(r).value();
}

Metadata meta(const std::string& lang, double year, bool draft) {
  return {{"lang", MetadataValue::text(lang)}, {"year", MetadataValue::num(year)}, {"draft", MetadataValue::flag(draft)}};
}

std::vector<uint32_t> hit_ids(RetrievalPipeline& p, const Where* where, IdFilter filter = IdFilter::all(),
                              const char* text = "apple") {
  const float e[2] = {1, 0.5f};
  PipelineQuery q;
  q.text = text;
  q.embedding = e;
  q.embedding_len = 2;
  q.top_k = 100;
  q.where = where;
  q.filter = filter;
  auto r = p.search(q);
  REQUIRE(r.ok());
  auto ids = r->ids;
  std::sort(ids.begin(), ids.end());
  return ids;
}

WhereCondition cond(const std::string& field, WhereOp op, std::vector<MetadataValue> values) {
  return {field, op, std::move(values)};
}

}  // namespace

TEST_CASE("filter: pipeline where conditions, types, missing fields, removal", "[retrieval][filter]") {
  RetrievalPipeline p = make_pipeline();
  const float e[2] = {1, 0};
  for (uint32_t d = 0; d < 6; ++d) {
    const Metadata m = meta(d % 2 ? "en" : "fr", 2018 + d, d == 3);
    REQUIRE(p.add_document(d, "apple pie " + std::to_string(d), e, 2, &m).ok());
  }
  REQUIRE(p.add_document(6, "apple without metadata", e, 2).ok());
  const Metadata partial = {{"lang", MetadataValue::text("en")}};
  REQUIRE(p.add_document(7, "apple en only", nullptr, 0, &partial).ok());

  const Where en = {cond("lang", WhereOp::eq, {MetadataValue::text("en")})};
  CHECK(hit_ids(p, &en) == std::vector<uint32_t>{1, 3, 5, 7});
  const Where recent_en = {cond("lang", WhereOp::eq, {MetadataValue::text("en")}), cond("year", WhereOp::gte, {MetadataValue::num(2020)})};
  CHECK(hit_ids(p, &recent_en) == std::vector<uint32_t>{3, 5});  // 7 has no year: no match
  const Where range = {cond("year", WhereOp::gt, {MetadataValue::num(2019)}), cond("year", WhereOp::lte, {MetadataValue::num(2022)})};
  CHECK(hit_ids(p, &range) == std::vector<uint32_t>{2, 3, 4});
  const Where in = {cond("year", WhereOp::in, {MetadataValue::num(2018), MetadataValue::num(2023), MetadataValue::text("2019")})};
  CHECK(hit_ids(p, &in) == std::vector<uint32_t>{0, 5});  // "2019" is a string: not the number
  const Where none_in = {cond("year", WhereOp::in, {})};
  CHECK(hit_ids(p, &none_in).empty());
  const Where draft = {cond("draft", WhereOp::eq, {MetadataValue::flag(true)})};
  CHECK(hit_ids(p, &draft) == std::vector<uint32_t>{3});
  const Where one_is_not_true = {cond("draft", WhereOp::eq, {MetadataValue::num(1)})};
  CHECK(hit_ids(p, &one_is_not_true).empty());
  const Where strings = {cond("lang", WhereOp::lt, {MetadataValue::text("f")})};
  CHECK(hit_ids(p, &strings) == std::vector<uint32_t>{1, 3, 5, 7});
  const Where number_vs_string = {cond("lang", WhereOp::gt, {MetadataValue::num(0)})};
  CHECK(hit_ids(p, &number_vs_string).empty());
  const Where empty;
  CHECK(hit_ids(p, &empty).size() == 8);
  // where AND filter (ids and predicate).
  const std::vector<uint32_t> list = {1, 2, 3, 6};
  CHECK(hit_ids(p, &en, IdFilter::ids(list.data(), list.size())) == std::vector<uint32_t>{1, 3});
  auto small = [](uint32_t id) { return id < 4; };
  CHECK(hit_ids(p, &en, IdFilter::of(small)) == std::vector<uint32_t>{1, 3});
  CHECK(hit_ids(p, nullptr, IdFilter::of(small)) == std::vector<uint32_t>{0, 1, 2, 3});

  // Bad conditions and metadata: invalid_argument, nothing changed.
  PipelineQuery q;
  q.text = "apple";
  for (const Where& bad : {Where{cond("year", WhereOp::gte, {MetadataValue::flag(true)})},
                           Where{cond("year", WhereOp::eq, {})},
                           Where{cond("year", WhereOp::lt, {MetadataValue::num(1), MetadataValue::num(2)})},
                           Where{cond("year", static_cast<WhereOp>(9), {MetadataValue::num(1)})},
                           Where{cond("year", WhereOp::eq, {MetadataValue::num(std::nan(""))})}}) {
    q.where = &bad;
    CHECK(p.search(q).status().code() == Errc::invalid_argument);
  }
  const auto before = p.serialize();
  const Metadata dup = {{"a", MetadataValue::num(1)}, {"a", MetadataValue::num(2)}};
  CHECK(p.add_document(1, "changed", e, 2, &dup).code() == Errc::invalid_argument);
  const Metadata inf = {{"a", MetadataValue::num(INFINITY)}};
  CHECK(p.add_document(9, "new", e, 2, &inf).code() == Errc::invalid_argument);
  Metadata many;
  for (uint32_t i = 0; i <= RetrievalPipeline::kMaxMetadataFields; ++i) many.push_back({"k" + std::to_string(i), MetadataValue::num(i)});
  CHECK(p.add_document(9, "new", e, 2, &many).code() == Errc::invalid_argument);
  const float bad_embedding[2] = {NAN, 0};
  const Metadata fine = meta("de", 1, false);
  CHECK(p.add_document(1, "changed", bad_embedding, 2, &fine).code() == Errc::invalid_argument);
  CHECK(p.serialize() == before);
  REQUIRE(p.metadata(1) != nullptr);
  CHECK(p.metadata(1)->size() == 3);

  // Replacing without metadata clears it; removal drops it.
  REQUIRE(p.add_document(1, "apple again", e, 2).ok());
  CHECK(p.metadata(1) == nullptr);
  CHECK(hit_ids(p, &en) == std::vector<uint32_t>{3, 5, 7});
  CHECK(p.remove_document(3));
  CHECK(p.metadata(3) == nullptr);
  CHECK(hit_ids(p, &en) == std::vector<uint32_t>{5, 7});
  CHECK(p.stats().metadata_documents == 5);
}

TEST_CASE("filter: pipeline filtered search is the fused top k among allowed documents", "[retrieval][filter]") {
  RetrievalPipeline p = make_pipeline();
  std::mt19937 g(11);
  const char* words[] = {"red", "green", "blue", "cyan", "teal"};
  for (uint32_t d = 0; d < 300; ++d) {
    const float e[2] = {std::uniform_real_distribution<float>(-1, 1)(g), std::uniform_real_distribution<float>(-1, 1)(g)};
    const std::string text = std::string(words[g() % 5]) + " " + words[g() % 5];
    const Metadata m = {{"shard", MetadataValue::num(d % 10)}};
    REQUIRE(p.add_document(d, text, e, 2, &m).ok());
  }
  const Where shard = {cond("shard", WhereOp::eq, {MetadataValue::num(3)})};
  std::vector<uint32_t> list;
  for (uint32_t d = 3; d < 300; d += 10) list.push_back(d);
  const float qe[2] = {0.3f, -0.2f};
  PipelineQuery q;
  q.text = "red teal";
  q.embedding = qe;
  q.embedding_len = 2;
  q.top_k = 5;
  q.where = &shard;
  auto by_where = p.search_exhaustive(q);
  REQUIRE(by_where.ok());
  REQUIRE(by_where->ids.size() == 5);
  for (uint32_t id : by_where->ids) CHECK(id % 10 == 3);
  q.where = nullptr;
  q.filter = IdFilter::ids(list.data(), list.size());
  auto by_ids = p.search_exhaustive(q);
  REQUIRE(by_ids.ok());
  CHECK(by_ids->ids == by_where->ids);
  CHECK(by_ids->scores == by_where->scores);
  // A pipeline of only the allowed documents gives the same fused result.
  RetrievalPipeline only = make_pipeline();
  std::mt19937 g2(11);
  for (uint32_t d = 0; d < 300; ++d) {
    const float e[2] = {std::uniform_real_distribution<float>(-1, 1)(g2), std::uniform_real_distribution<float>(-1, 1)(g2)};
    const std::string text = std::string(words[g2() % 5]) + " " + words[g2() % 5];
    if (d % 10 == 3) REQUIRE(only.add_document(d, text, e, 2).ok());
  }
  (void)g;
  q.filter = IdFilter::all();
  // BM25 idf differs (computed over the whole corpus), so compare the dense-only fusion.
  q.fusion_weight = 1.0;
  q.filter = IdFilter::ids(list.data(), list.size());
  auto dense_filtered = p.search_exhaustive(q);
  q.filter = IdFilter::all();
  auto dense_only = only.search_exhaustive(q);
  REQUIRE(dense_filtered.ok());
  REQUIRE(dense_only.ok());
  CHECK(dense_filtered->ids == dense_only->ids);

  // Cache: a where query is cached (keyed on it), a filtered one bypasses the cache.
  q.fusion_weight = 0.5;
  q.where = &shard;
  q.filter = IdFilter::all();
  const auto s0 = p.stats();
  auto a = p.search(q);
  auto b = p.search(q);
  REQUIRE((a.ok() && b.ok()));
  CHECK(a->ids == b->ids);
  const auto s1 = p.stats();
  CHECK(s1.cache_hits == s0.cache_hits + 1);
  const Where other = {cond("shard", WhereOp::eq, {MetadataValue::num(4)})};
  q.where = &other;
  auto c = p.search(q);
  REQUIRE(c.ok());
  for (uint32_t id : c->ids) CHECK(id % 10 == 4);  // not the cached shard-3 answer
  q.where = nullptr;
  q.filter = IdFilter::ids(list.data(), list.size());
  const auto s2 = p.stats();
  auto f1 = p.search(q);
  auto f2 = p.search(q);
  REQUIRE((f1.ok() && f2.ok()));
  const auto s3 = p.stats();
  CHECK(s3.searches == s2.searches + 2);
  CHECK(s3.cache_hits == s2.cache_hits);
  CHECK(s3.cache_misses == s2.cache_misses);
  CHECK(s3.cache_entries == s2.cache_entries);
}

TEST_CASE("filter: pipeline metadata persists; version 1 snapshots still load", "[retrieval][filter]") {
  RetrievalPipeline p = make_pipeline();
  const float e[2] = {1, 0};
  const Metadata m = {{"title", MetadataValue::text("Ünïcode ✓")}, {"n", MetadataValue::num(-0.0)}, {"ok", MetadataValue::flag(false)}};
  REQUIRE(p.add_document(5, "apple", e, 2, &m).ok());
  REQUIRE(p.add_document(2, "banana").ok());
  const auto bytes = p.serialize();
  CHECK(bytes[8] == 2);  // format version 2: it has metadata
  auto q = RetrievalPipeline::deserialize(bytes.data(), bytes.size());
  REQUIRE(q.ok());
  CHECK(q->serialize() == bytes);
  REQUIRE(q->metadata(5) != nullptr);
  CHECK(*q->metadata(5) == *p.metadata(5));
  CHECK((*q->metadata(5))[0].first == "n");  // sorted by key
  CHECK(q->metadata(2) == nullptr);
  // Every truncation and single-byte change is rejected or loads a pipeline (never crashes).
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    CHECK_FALSE(RetrievalPipeline::deserialize(bytes.data(), cut).ok());
  }
  // Without metadata the bytes are format version 1.
  RetrievalPipeline plain = make_pipeline();
  REQUIRE(plain.add_document(1, "apple", e, 2).ok());
  CHECK(plain.serialize()[8] == 1);
  // A snapshot written before metadata existed (llmds before this change).
  const uint8_t v1[] = {
0x4c, 0x4c, 0x4d, 0x44, 0x53, 0x52, 0x50, 0x4c, 0x01, 0x00, 0x00, 0x00, 0x11, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xa0, 0x86, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x33, 0x33, 0x33, 0x33,
    0x33, 0x33, 0xf3, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe8, 0x3f, 0x6c, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x4c, 0x4c, 0x4d, 0x44, 0x53, 0x48, 0x4e, 0x57, 0x01, 0x00, 0x00, 0x00,
    0x54, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
    0x08, 0x00, 0x00, 0x00, 0x32, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x23, 0xff, 0x75, 0x8e,
    0x7d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4c, 0x4c, 0x4d, 0x44, 0x53, 0x42, 0x4d, 0x32,
    0x01, 0x00, 0x00, 0x00, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x33, 0x33, 0x33, 0x33,
    0x33, 0x33, 0xf3, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe8, 0x3f, 0x03, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x6f, 0x6c, 0x64, 0x03,
    0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x05, 0x00, 0x00, 0x00, 0x61, 0x70,
    0x70, 0x6c, 0x65, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x03, 0x06, 0x00, 0x00,
    0x00, 0x62, 0x61, 0x6e, 0x61, 0x6e, 0x61, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
    0x01, 0x11, 0x9b, 0x36, 0xa5, 0xb0, 0x30, 0x96, 0xb0
  };
  auto old = RetrievalPipeline::deserialize(v1, sizeof v1);
  REQUIRE(old.ok());
  CHECK(old->stats().documents == 3);
  CHECK(old->serialize() == std::vector<uint8_t>(v1, v1 + sizeof v1));
  const Where none = {cond("x", WhereOp::eq, {MetadataValue::num(1)})};
  CHECK(hit_ids(*old, &none, IdFilter::all(), "old").empty());
  CHECK(hit_ids(*old, nullptr, IdFilter::all(), "old").size() == 3);
}
