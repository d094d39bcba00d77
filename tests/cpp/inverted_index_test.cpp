// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "llmds/inverted_index.hpp"
#include "llmds/serialize.hpp"
#include "llmds/tokenizer.hpp"

using llmds::Errc;
using llmds::InvertedIndex;
using llmds::RankedHits;

namespace {

InvertedIndex make(double k1 = 1.2, double b = 0.75) {
  auto r = InvertedIndex::create({k1, b});
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::vector<std::string> tokenize(const std::string& text) {
  std::vector<std::string> out;
  llmds::TermScanner s(text);
  while (s.next()) out.emplace_back(s.term());
  return out;
}

/// Textbook BM25 over plain maps, every document scored: the oracle.
struct ReferenceBm25 {
  double k1, b;
  std::map<uint32_t, std::map<std::string, uint32_t>> docs;  // id -> term -> tf
  std::map<uint32_t, uint32_t> lens;

  void add(uint32_t id, const std::string& text) {
    docs[id].clear();
    lens[id] = 0;
    for (const std::string& t : tokenize(text)) {
      ++docs[id][t];
      ++lens[id];
    }
  }
  void remove(uint32_t id) {
    docs.erase(id);
    lens.erase(id);
  }
  std::vector<std::pair<double, uint32_t>> rank(const std::string& query) const {
    const double n = static_cast<double>(docs.size());
    double total = 0;
    for (const auto& kv : lens) total += kv.second;
    const double avgdl = total / n;
    std::vector<std::pair<double, uint32_t>> out;
    const std::vector<std::string> q = tokenize(query);
    std::map<std::string, double> df;
    for (const std::string& t : q) {
      df[t] = 0;
      for (const auto& e : docs) df[t] += e.second.count(t) != 0 ? 1 : 0;
    }
    for (const auto& d : docs) {
      double score = 0;
      bool any = false;
      for (const std::string& t : q) {  // a repeated query term counts once per occurrence
        const auto it = d.second.find(t);
        if (it == d.second.end()) continue;
        const double idf = std::log(1 + (n - df.at(t) + 0.5) / (df.at(t) + 0.5));
        const double tf = it->second;
        score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lens.at(d.first) / avgdl));
        any = true;
      }
      if (any) out.emplace_back(score, d.first);
    }
    std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
      return x.first > y.first || (x.first == y.first && x.second < y.second);
    });
    return out;
  }
};

/// Hits agree with the oracle: same scores within tol; ids equal except among near-ties.
void check_against(const RankedHits& hits, const std::vector<std::pair<double, uint32_t>>& ref, std::size_t k,
                   double tol = 1e-6) {
  const std::size_t expected = std::min(k, ref.size());
  REQUIRE(hits.ids.size() == expected);
  REQUIRE(hits.scores.size() == expected);
  for (std::size_t i = 0; i < expected; ++i) {
    REQUIRE(hits.scores[i] == Approx(ref[i].first).margin(tol));
    const bool near_tie = (i > 0 && std::abs(ref[i - 1].first - ref[i].first) < 1e-9) ||
                          (i + 1 < ref.size() && std::abs(ref[i + 1].first - ref[i].first) < 1e-9);
    if (!near_tie) REQUIRE(hits.ids[i] == ref[i].second);
  }
}

using llmds_test::Zipf;

std::string word(std::size_t rank) { return "w" + std::to_string(rank); }

/// Query words drawn in a fixed order (operands of + are evaluated in an unspecified order, and
/// g++ and clang differ, which would give native and wasm different corpora).
std::string query_of(std::mt19937& rng, const Zipf& zipf, uint32_t common) {
  const std::string a = word(zipf(rng));
  const std::string b = word(rng() % common);
  const std::string c = word(zipf(rng));
  return a + " " + b + " " + c;
}

std::string zipf_doc(std::mt19937& rng, const Zipf& zipf) {
  const int len = 5 + static_cast<int>(rng() % 60);
  std::string doc;
  for (int i = 0; i < len; ++i) {
    doc += word(zipf(rng));  // separate statements: operand order would differ by compiler
    doc += rng() % 7 == 0 ? ", " : " ";
  }
  return doc;
}

const char* kSmallCorpus[] = {
    "The quick brown fox jumps over the lazy dog",
    "A quick brown dog outpaces a quick fox",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit",
    "The dog sleeps. The dog dreams. The dog wakes.",
    "Foxes are quick; dogs are loyal; cats are independent",
    "",
    "Brown bears and brown foxes share the brown forest",
    "Café, CAFÉ and café: one term, three spellings",
    "Быстрая коричневая лиса",
    "quick quick quick quick quick",
};

}  // namespace

TEST_CASE("inverted_index: options are validated", "[bm25]") {
  CHECK(InvertedIndex::create({-0.1, 0.75}).status().code() == Errc::invalid_argument);
  CHECK(InvertedIndex::create({NAN, 0.75}).status().code() == Errc::invalid_argument);
  CHECK(InvertedIndex::create({INFINITY, 0.75}).status().code() == Errc::invalid_argument);
  CHECK(InvertedIndex::create({1.2, -0.01}).status().code() == Errc::invalid_argument);
  CHECK(InvertedIndex::create({1.2, 1.01}).status().code() == Errc::invalid_argument);
  auto nan_b = InvertedIndex::create({1.2, NAN});
  CHECK(nan_b.status().code() == Errc::invalid_argument);
  CHECK(nan_b.status().message().find("b must be") != std::string::npos);
  CHECK(InvertedIndex::create({0.0, 0.0}).ok());
  CHECK(InvertedIndex::create({0.0, 1.0}).ok());
  auto d = InvertedIndex::create();
  REQUIRE(d.ok());
  CHECK(d->k1() == 1.2);
  CHECK(d->b() == 0.75);
  CHECK(d->search("x", 0).status().code() == Errc::invalid_argument);
}

TEST_CASE("inverted_index: scores equal a reference BM25 on a small corpus", "[bm25]") {
  for (const auto& kb : std::vector<std::pair<double, double>>{{1.2, 0.75}, {0.0, 0.5}, {2.0, 0.0}, {0.9, 1.0}}) {
    InvertedIndex idx = make(kb.first, kb.second);
    ReferenceBm25 ref{kb.first, kb.second, {}, {}};
    uint32_t id = 100;
    for (const char* text : kSmallCorpus) {
      REQUIRE(idx.add_document(id, text).ok());
      ref.add(id, text);
      id += 7;
    }
    const char* queries[] = {"quick fox", "the dog", "brown", "QUICK", "café", "лиса", "quick quick fox",
                             "nothing matches", "", "dog dog dog cat", "are the foxes quick or loyal"};
    for (const char* q : queries) {
      INFO("query: " << q << " k1 " << kb.first << " b " << kb.second);
      auto all = idx.search(q, 1000);
      REQUIRE(all.ok());
      check_against(*all, ref.rank(q), 1000);
      auto top2 = idx.search(q, 2);
      REQUIRE(top2.ok());
      check_against(*top2, ref.rank(q), 2);
      for (double s : all->scores) CHECK(s > 0);
    }
  }
}

TEST_CASE("inverted_index: ties are broken by ascending document id", "[bm25]") {
  InvertedIndex idx = make();
  REQUIRE(idx.add_document(9, "alpha beta").ok());
  REQUIRE(idx.add_document(3, "alpha beta").ok());
  REQUIRE(idx.add_document(5, "gamma").ok());
  REQUIRE(idx.add_document(1, "alpha beta").ok());
  auto hits = idx.search("alpha", 10);
  REQUIRE(hits.ok());
  CHECK(hits->ids == std::vector<uint32_t>{1, 3, 9});
  CHECK(hits->scores[0] == hits->scores[2]);
  auto top2 = idx.search("beta alpha", 2);
  CHECK(top2->ids == std::vector<uint32_t>{1, 3});
  CHECK(idx.search("alpha", 1)->ids == std::vector<uint32_t>{1});
}

TEST_CASE("inverted_index: pruned top-k equals exhaustive scoring on a Zipf corpus", "[bm25]") {
  std::mt19937 rng(2024);
  const Zipf zipf(5000, 1.05);
  InvertedIndex idx = make();
  ReferenceBm25 ref{1.2, 0.75, {}, {}};
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 3000; ++i) {
    const uint32_t id = i * 3 + (rng() % 3);
    ids.push_back(id);
    const std::string doc = zipf_doc(rng, zipf);
    REQUIRE(idx.add_document(id, doc).ok());
    if (i % 4 == 0) ref.add(id, doc);
  }
  CHECK(idx.size() == 3000);
  std::size_t compared = 0;
  for (int q = 0; q < 200; ++q) {
    std::string query;
    const int terms = 1 + static_cast<int>(rng() % 5);
    for (int t = 0; t < terms; ++t) {
      // Mix frequent terms (long lists) with rarer ones, plus unknown words.
      const std::size_t rank = rng() % 3 == 0 ? rng() % 20 : zipf(rng);
      query += (rng() % 25 == 0 ? std::string("zzunknown") : word(rank)) + " ";
    }
    const uint32_t k = q % 10 == 0 ? 1 : q % 10 == 1 ? 100 : 10;
    auto pruned = idx.search(query, k);
    auto exact = idx.search_exhaustive(query, k);
    REQUIRE(pruned.ok());
    REQUIRE(exact.ok());
    INFO("query " << q << ": " << query);
    REQUIRE(pruned->ids == exact->ids);
    REQUIRE(pruned->scores == exact->scores);  // bit-identical: same summation order
    compared += pruned->ids.size();
  }
  CHECK(compared > 1000);
  // The oracle over a quarter of the corpus, as its own index.
  InvertedIndex quarter = make();
  for (const auto& d : ref.docs) {
    std::string text;
    for (const auto& tf : d.second) {
      for (uint32_t i = 0; i < tf.second; ++i) text += tf.first + " ";
    }
    REQUIRE(quarter.add_document(d.first, text).ok());
  }
  for (int q = 0; q < 40; ++q) {
    const std::string query = query_of(rng, zipf, 10);
    check_against(*quarter.search(query, 10), ref.rank(query), 10);
  }
}

TEST_CASE("inverted_index: remove, re-add and compaction keep results exact", "[bm25]") {
  std::mt19937 rng(77);
  const Zipf zipf(3000, 1.0);
  InvertedIndex idx = make();
  ReferenceBm25 ref{1.2, 0.75, {}, {}};
  std::map<uint32_t, std::string> live;
  // Churn: adds, re-adds with new text, removals (some unknown ids), forcing per-term rebuilds
  // and several whole-index compactions.
  for (int step = 0; step < 12000; ++step) {
    const uint32_t id = rng() % 1500;
    const uint32_t op = rng() % 10;
    if (op < 6) {
      const std::string doc = zipf_doc(rng, zipf);
      REQUIRE(idx.add_document(id, doc).ok());
      live[id] = doc;
    } else {
      const bool known = live.count(id) != 0;
      CHECK(idx.remove_document(id) == known);
      live.erase(id);
    }
  }
  for (const auto& kv : live) ref.add(kv.first, kv.second);
  REQUIRE(idx.size() == live.size());
  for (const auto& kv : live) REQUIRE(idx.has_document(kv.first));

  InvertedIndex fresh = make();
  for (const auto& kv : live) REQUIRE(fresh.add_document(kv.first, kv.second).ok());
  const auto a = idx.stats(), f = fresh.stats();
  CHECK(a.documents == f.documents);
  CHECK(a.terms == f.terms);
  CHECK(a.postings == f.postings);
  CHECK(a.tokens == f.tokens);
  CHECK(a.avg_doc_length == Approx(f.avg_doc_length));
  CHECK(a.dead_postings <= a.postings + 1024 * 64);

  for (int q = 0; q < 60; ++q) {
    const std::string query = query_of(rng, zipf, 8);
    INFO(query);
    const auto expected = ref.rank(query);
    check_against(*idx.search(query, 10), expected, 10);
    check_against(*fresh.search(query, 10), expected, 10);
    auto pruned = idx.search(query, 10);
    auto exact = idx.search_exhaustive(query, 10);
    REQUIRE(pruned->ids == exact->ids);
  }
  // Document frequencies agree with the rebuilt index.
  for (int r = 0; r < 50; ++r) {
    CHECK(idx.document_frequency(word(r)).value() == fresh.document_frequency(word(r)).value());
  }
}

TEST_CASE("inverted_index: remove and re-add one document", "[bm25]") {
  InvertedIndex idx = make();
  REQUIRE(idx.add_document(1, "apple banana").ok());
  REQUIRE(idx.add_document(2, "banana cherry").ok());
  CHECK(idx.document_frequency("banana").value() == 2);
  CHECK(idx.search("apple", 10)->ids == std::vector<uint32_t>{1});

  CHECK(idx.remove_document(1));
  CHECK(!idx.remove_document(1));
  CHECK(!idx.remove_document(12345));
  CHECK(!idx.has_document(1));
  CHECK(idx.size() == 1);
  CHECK(idx.search("apple", 10)->ids.empty());
  CHECK(idx.document_frequency("apple").value() == 0);
  CHECK(idx.document_frequency("banana").value() == 1);
  CHECK(idx.stats().terms == 2);

  // Re-adding replaces: the old text no longer matches.
  REQUIRE(idx.add_document(2, "durian").ok());
  CHECK(idx.size() == 1);
  CHECK(idx.search("banana", 10)->ids.empty());
  CHECK(idx.search("durian", 10)->ids == std::vector<uint32_t>{2});
  CHECK(idx.term_frequency("cherry", 2).value() == 0);
  REQUIRE(idx.add_document(1, "apple apple").ok());
  CHECK(idx.term_frequency("APPLE", 1).value() == 2);

  // Remove everything: empty index, empty results.
  CHECK(idx.remove_document(1));
  CHECK(idx.remove_document(2));
  CHECK(idx.size() == 0);
  CHECK(idx.search("apple durian", 10)->ids.empty());
  const auto s = idx.stats();
  CHECK(s.documents == 0);
  CHECK(s.terms == 0);
  CHECK(s.postings == 0);
  CHECK(s.avg_doc_length == 0);
  REQUIRE(idx.add_document(4, "again").ok());
  CHECK(idx.search("again", 3)->ids == std::vector<uint32_t>{4});
}

TEST_CASE("inverted_index: term and document frequencies, stats", "[bm25]") {
  InvertedIndex idx = make();
  REQUIRE(idx.add_document(10, "To be, or not to be: that is the question").ok());
  REQUIRE(idx.add_document(20, "The question is TO BE").ok());
  REQUIRE(idx.add_document(30, "").ok());  // an empty document still counts
  CHECK(idx.term_frequency("to", 10).value() == 2);
  CHECK(idx.term_frequency("To", 10).value() == 2);
  CHECK(idx.term_frequency("  be! ", 20).value() == 1);
  CHECK(idx.term_frequency("missing", 10).value() == 0);
  CHECK(idx.term_frequency("to", 99).value() == 0);
  CHECK(idx.document_frequency("question").value() == 2);
  CHECK(idx.document_frequency("QUESTION").value() == 2);
  CHECK(idx.document_frequency("nope").value() == 0);
  auto two = idx.term_frequency("to be", 10);
  CHECK(two.status().code() == Errc::invalid_argument);
  CHECK(two.status().message().find("single word") != std::string::npos);
  CHECK(idx.document_frequency("").status().code() == Errc::invalid_argument);
  CHECK(idx.document_frequency("!!").status().code() == Errc::invalid_argument);

  const auto s = idx.stats();
  CHECK(s.documents == 3);
  CHECK(s.terms == 8);
  CHECK(s.tokens == 15);
  CHECK(s.postings == 8 + 5);
  CHECK(s.avg_doc_length == Approx(5.0));
  CHECK(s.compressed_bytes > 0);
  CHECK(s.compressed_bytes < s.uncompressed_bytes);
  CHECK(s.bytes > s.compressed_bytes);
  // The empty document lowers avgdl but matches nothing.
  CHECK(idx.search("to", 10)->ids.size() == 2);
}

TEST_CASE("inverted_index: postings compress well and long lists use skips", "[bm25]") {
  InvertedIndex idx = make();
  std::mt19937 rng(3);
  for (uint32_t i = 0; i < 20000; ++i) {
    std::string doc = "common ";
    if (i % 3 == 0) doc += "third ";
    if (i % 1000 == 0) doc += "rare rare ";
    doc += "u" + std::to_string(rng() % 50000);
    REQUIRE(idx.add_document(i, doc).ok());
  }
  const auto s = idx.stats();
  CHECK(s.postings >= 20000 + 6667 + 20);
  // Dense lists with tf == 1 take ~1 byte per posting instead of 8.
  CHECK(static_cast<double>(s.compressed_bytes) < 0.25 * static_cast<double>(s.uncompressed_bytes));
  auto hits = idx.search("rare common third", 5);
  REQUIRE(hits.ok());
  CHECK(hits->ids == std::vector<uint32_t>{0, 3000, 6000, 9000, 12000});
  CHECK(idx.search("rare common third", 5)->scores == idx.search_exhaustive("rare common third", 5)->scores);
}

TEST_CASE("inverted_index: serialize round trip", "[bm25]") {
  std::mt19937 rng(11);
  const Zipf zipf(2000, 1.0);
  InvertedIndex idx = make(1.5, 0.6);
  for (uint32_t i = 0; i < 600; ++i) REQUIRE(idx.add_document(i * 2 + 1, zipf_doc(rng, zipf)).ok());
  for (uint32_t i = 0; i < 600; i += 5) CHECK(idx.remove_document(i * 2 + 1));
  REQUIRE(idx.add_document(4000000000u, u8"ünïcödé wörds and w1 w2").ok());
  const std::vector<uint8_t> bytes = idx.serialize();
  REQUIRE(std::memcmp(bytes.data(), "LLMDSBM2", 8) == 0);
  auto back = InvertedIndex::deserialize(bytes.data(), bytes.size());
  REQUIRE(back.ok());
  CHECK(back->k1() == 1.5);
  CHECK(back->b() == 0.6);
  CHECK(back->size() == idx.size());
  CHECK(back->stats().postings == idx.stats().postings);
  CHECK(back->stats().terms == idx.stats().terms);
  CHECK(back->stats().dead_postings == 0);
  CHECK(back->has_document(4000000000u));
  CHECK(!back->has_document(1));
  for (int q = 0; q < 50; ++q) {
    const std::string query = query_of(rng, zipf, 10);
    auto a = idx.search(query, 10);
    auto b = back->search(query, 10);
    REQUIRE(a->ids == b->ids);
    REQUIRE(a->scores == b->scores);
  }
  CHECK(back->term_frequency(u8"WÖRDS", 4000000000u).value() == 1);
  // Canonical: serializing the loaded index gives the same bytes.
  CHECK(back->serialize() == bytes);
  // The loaded index keeps working.
  REQUIRE(back->add_document(7, "w1 w1 w1").ok());
  CHECK(back->remove_document(3));

  InvertedIndex empty = make();
  const auto eb = empty.serialize();
  auto e = InvertedIndex::deserialize(eb.data(), eb.size());
  REQUIRE(e.ok());
  CHECK(e->size() == 0);
  CHECK(e->search("anything", 3)->ids.empty());
}

TEST_CASE("inverted_index: every truncation and bit flip is rejected", "[bm25]") {
  InvertedIndex idx = make();
  REQUIRE(idx.add_document(1, "alpha beta gamma alpha").ok());
  REQUIRE(idx.add_document(2, u8"beta délta").ok());
  REQUIRE(idx.add_document(3, "").ok());
  for (uint32_t i = 10; i < 150; ++i) REQUIRE(idx.add_document(i, "w" + std::to_string(i % 13) + " alpha").ok());
  const std::vector<uint8_t> bytes = idx.serialize();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = InvertedIndex::deserialize(n == 0 ? nullptr : bytes.data(), n);
    REQUIRE(!r.ok());
    REQUIRE(r.status().code() == Errc::corrupt_data);
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  CHECK(InvertedIndex::deserialize(longer.data(), longer.size()).status().code() == Errc::corrupt_data);
  // Every single-bit flip.
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> flipped = bytes;
      flipped[i] ^= static_cast<uint8_t>(1u << bit);
      auto r = InvertedIndex::deserialize(flipped.data(), flipped.size());
      REQUIRE(!r.ok());
      const Errc code = r.status().code();
      REQUIRE((code == Errc::corrupt_data || code == Errc::version_mismatch));
    }
  }
  // Random multi-byte corruption.
  std::mt19937 rng(99);
  for (int round = 0; round < 500; ++round) {
    std::vector<uint8_t> bad = bytes;
    const int flips = 2 + static_cast<int>(rng() % 6);
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    if (bad == bytes) continue;
    REQUIRE(!InvertedIndex::deserialize(bad.data(), bad.size()).ok());
  }
}

TEST_CASE("inverted_index: payloads with a valid checksum are still validated", "[bm25]") {
  InvertedIndex idx = make();
  REQUIRE(idx.add_document(1, "alpha beta gamma alpha").ok());
  REQUIRE(idx.add_document(2, "beta delta").ok());
  REQUIRE(idx.add_document(5, "").ok());
  const std::vector<uint8_t> bytes = idx.serialize();
  // Re-seal altered payloads so only the parser stands between them and the index.
  auto reseal = [](std::vector<uint8_t> b) {
    const std::size_t body = b.size() - 4;
    const uint32_t crc = llmds::crc32(b.data(), body);
    for (int i = 0; i < 4; ++i) b[body + i] = static_cast<uint8_t>(crc >> (8 * i));
    return b;
  };
  {
    std::vector<uint8_t> v = bytes;
    v[8] = 2;  // another format version, intact checksum
    CHECK(InvertedIndex::deserialize(reseal(v).data(), v.size()).status().code() == Errc::version_mismatch);
  }
  std::mt19937 rng(5);
  std::size_t accepted = 0;
  for (int round = 0; round < 4000; ++round) {
    std::vector<uint8_t> v = bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      const std::size_t at = llmds::kEnvelopeHeaderBytes + rng() % (v.size() - llmds::kEnvelopeHeaderBytes - 4);
      v[at] = static_cast<uint8_t>(rng() % 4 == 0 ? rng() : v[at] ^ (1u << (rng() % 8)));
    }
    v = reseal(v);
    auto r = InvertedIndex::deserialize(v.data(), v.size());
    if (r.ok()) {
      // Whatever the parser accepts must be a working, self-consistent index.
      ++accepted;
      auto hits = r->search("alpha beta gamma delta", 10);
      REQUIRE(hits.ok());
      const auto again = r->serialize();
      auto twice = InvertedIndex::deserialize(again.data(), again.size());
      REQUIRE(twice.ok());
      REQUIRE(twice->search("alpha beta gamma delta", 10)->ids == hits->ids);
    } else {
      REQUIRE((r.status().code() == Errc::corrupt_data || r.status().code() == Errc::version_mismatch));
    }
  }
  // Some flips are harmless (e.g. a document id or k1 changes) and yield a valid index.
  CHECK(accepted < 4000);
}

TEST_CASE("inverted_index: serialized bytes are the same on every platform", "[bm25]") {
  // Golden: the same operations must give byte-identical output natively and in wasm.
  InvertedIndex idx = make();
  for (uint32_t i = 0; i < 40; ++i) {
    REQUIRE(idx.add_document(i * 7, "doc " + std::to_string(i % 9) + u8" Straße ΟΔΟΣ word" + std::to_string(i % 4)).ok());
  }
  CHECK(idx.remove_document(14));
  const std::vector<uint8_t> bytes = idx.serialize();
  CHECK(bytes.size() == 646u);
  CHECK(llmds::crc32(bytes.data(), bytes.size()) == 0x2144df1cu);
  auto hits = idx.search("word1 straße 3", 3);
  REQUIRE(hits.ok());
  CHECK(hits->ids == std::vector<uint32_t>{147, 21, 84});
}
