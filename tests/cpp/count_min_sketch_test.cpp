// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmds/count_min_sketch.hpp"
#include "text/hash.hpp"

using llmds::CountMinSketch;
using llmds::CountMinSketchOptions;
using llmds::Errc;

namespace {

CountMinSketch make(uint32_t width = 2048, uint32_t depth = 4, uint32_t seed = 0) {
  auto r = CountMinSketch::create({width, depth, seed});
  REQUIRE(r.ok());
  return std::move(r).value();
}

using llmds_test::Zipf;

}  // namespace

TEST_CASE("count_min_sketch: options are validated", "[cms]") {
  auto d = CountMinSketch::create();
  REQUIRE(d.ok());
  CHECK(d->width() == 2048);
  CHECK(d->depth() == 4);
  CHECK(d->total_count() == 0);
  CHECK(CountMinSketch::create({0, 4, 0}).status().code() == Errc::invalid_argument);
  CHECK(CountMinSketch::create({2048, 0, 0}).status().code() == Errc::invalid_argument);
  CHECK(CountMinSketch::create({2048, 33, 0}).status().code() == Errc::invalid_argument);
  CHECK(CountMinSketch::create({(1u << 24) + 1, 1, 0}).status().code() == Errc::invalid_argument);
  auto too_big = CountMinSketch::create({1u << 24, 4, 0});
  CHECK(too_big.status().code() == Errc::invalid_argument);
  CHECK(too_big.status().message().find("width * depth") != std::string::npos);
  CHECK(CountMinSketch::create({1, 1, 0}).ok());
}

TEST_CASE("count_min_sketch: counts, isHot, reset and the error bound", "[cms]") {
  CountMinSketch s = make();
  CHECK(s.estimate("never") == 0);
  REQUIRE(s.add("apple").ok());
  REQUIRE(s.add("apple", 4).ok());
  REQUIRE(s.add("pear", 2).ok());
  REQUIRE(s.add("fig", 0).ok());  // a no-op
  CHECK(s.estimate("apple") == 5);
  CHECK(s.estimate("pear") == 2);
  CHECK(s.estimate("fig") == 0);
  CHECK(s.estimate("") == 0);
  REQUIRE(s.add("").ok());
  CHECK(s.estimate("") == 1);
  CHECK(s.total_count() == 8);
  CHECK(s.is_hot("apple", 5));
  CHECK(!s.is_hot("apple", 5.5));
  CHECK(s.is_hot("anything", 0));
  CHECK(s.error_bound() == Approx(std::exp(1.0) / 2048 * 8));
  CHECK(s.confidence() == Approx(1 - std::exp(-4.0)));
  // UTF-8 items are bytes: distinct spellings are distinct items.
  REQUIRE(s.add(u8"café", 3).ok());
  CHECK(s.estimate(u8"café") == 3);
  CHECK(s.estimate("cafe") == 0);
  s.reset();
  CHECK(s.total_count() == 0);
  CHECK(s.estimate("apple") == 0);
  CHECK(s.error_bound() == 0);
}

TEST_CASE("count_min_sketch: totals stay below 2^53", "[cms]") {
  CountMinSketch s = make(64, 2);
  REQUIRE(s.add("a", CountMinSketch::kMaxTotal - 1).ok());
  auto st = s.add("b", 2);
  CHECK(st.code() == Errc::capacity_exceeded);
  CHECK(s.total_count() == CountMinSketch::kMaxTotal - 1);
  CHECK(s.estimate("b") <= CountMinSketch::kMaxTotal - 1);
  REQUIRE(s.add("b", 1).ok());
  CHECK(s.total_count() == CountMinSketch::kMaxTotal);
  CountMinSketch other = make(64, 2);
  REQUIRE(other.add("c").ok());
  CHECK(s.merge(other).code() == Errc::capacity_exceeded);
  CHECK(other.total_count() == 1);
}

TEST_CASE("count_min_sketch: Zipf stream never under-estimates and meets the error bound", "[cms]") {
  const std::size_t n_items = 20000;
  const Zipf zipf(n_items, 1.1);
  std::mt19937 rng(42);
  CountMinSketch conservative = make();
  std::vector<uint64_t> truth(n_items, 0);
  for (int e = 0; e < 200000; ++e) {
    const std::size_t item = zipf(rng);
    const uint64_t count = 1 + (rng() % 4 == 0 ? rng() % 3 : 0);
    ++truth[item];
    truth[item] += count - 1;
    REQUIRE(conservative.add("item-" + std::to_string(item), count).ok());
  }
  uint64_t total = 0;
  for (uint64_t t : truth) total += t;
  CHECK(conservative.total_count() == total);
  const double bound = conservative.error_bound();
  std::size_t within = 0, seen = 0;
  for (std::size_t i = 0; i < n_items; ++i) {
    const uint64_t est = conservative.estimate("item-" + std::to_string(i));
    REQUIRE(est >= truth[i]);
    if (truth[i] > 0) ++seen;
    if (static_cast<double>(est - truth[i]) <= bound) ++within;
  }
  const double fraction = static_cast<double>(within) / n_items;
  INFO("within bound: " << fraction << " of " << n_items << " items (" << seen << " seen), bound " << bound);
  CHECK(fraction >= conservative.confidence());
  // The heavy hitters are estimated almost exactly.
  for (std::size_t i = 0; i < 10; ++i) {
    const uint64_t est = conservative.estimate("item-" + std::to_string(i));
    CHECK(static_cast<double>(est - truth[i]) <= bound);
  }
}

TEST_CASE("count_min_sketch: the error bound holds for a narrow sketch under heavy collisions", "[cms]") {
  // width 64: every counter is shared by ~150 items, so the bound is actually exercised.
  const std::size_t n_items = 10000;
  const Zipf zipf(n_items, 0.8);
  std::mt19937 rng(7);
  CountMinSketch s = make(64, 5, 3);
  std::vector<uint64_t> truth(n_items, 0);
  for (int e = 0; e < 100000; ++e) {
    const std::size_t item = zipf(rng);
    ++truth[item];
    REQUIRE(s.add(std::to_string(item)).ok());
  }
  std::size_t within = 0;
  for (std::size_t i = 0; i < n_items; ++i) {
    const uint64_t est = s.estimate(std::to_string(i));
    REQUIRE(est >= truth[i]);
    if (static_cast<double>(est - truth[i]) <= s.error_bound()) ++within;
  }
  CHECK(static_cast<double>(within) / n_items >= s.confidence());
}

TEST_CASE("count_min_sketch: merge sums compatible sketches only", "[cms]") {
  CountMinSketch a = make(512, 4, 9);
  CountMinSketch b = make(512, 4, 9);
  std::unordered_map<std::string, uint64_t> truth;
  std::mt19937 rng(5);
  for (int i = 0; i < 5000; ++i) {
    const std::string item = "k" + std::to_string(rng() % 700);
    ++truth[item];
    REQUIRE(((i & 1) != 0 ? a : b).add(item).ok());
  }
  REQUIRE(a.merge(b).ok());
  CHECK(a.total_count() == 5000);
  for (const auto& kv : truth) REQUIRE(a.estimate(kv.first) >= kv.second);
  CHECK(b.total_count() == 2500);  // other untouched

  CHECK(a.merge(make(256, 4, 9)).code() == Errc::invalid_argument);
  CHECK(a.merge(make(512, 3, 9)).code() == Errc::invalid_argument);
  auto seed = a.merge(make(512, 4, 10));
  CHECK(seed.code() == Errc::invalid_argument);
  CHECK(seed.message().find("seed") != std::string::npos);
  CHECK(a.total_count() == 5000);

  // Merging into itself doubles every counter.
  const uint64_t before = a.estimate("k1");
  REQUIRE(a.merge(a).ok());
  CHECK(a.estimate("k1") == 2 * before);
  CHECK(a.total_count() == 10000);
}

TEST_CASE("count_min_sketch: hashing is fixed across platforms and seeds change it", "[cms]") {
  // Golden values: natively and in wasm the same options must place items identically.
  struct Golden {
    const char* text;
    uint64_t seed;
    uint64_t hash;
  };
  const Golden golden[] = {
      {"", 0ULL, 0x6393d51c06c618dcULL},
      {"", 42ULL, 0xc98eb905c7a0d1ccULL},
      {"hello", 0ULL, 0x6b91dd15c72ad0e9ULL},
      {"hello", 42ULL, 0xd320621cfc773eadULL},
      {"12345678", 0ULL, 0x08043ac62d6eefa8ULL},
      {"12345678", 42ULL, 0xd98074b69e9bfc37ULL},
      {"hello, world!", 0ULL, 0x399b1995b1433fccULL},
      {"hello, world!", 42ULL, 0x9f1b2ed4a075570dULL},
      {"the quick brown fox jumps over", 0ULL, 0x149321fafc52544aULL},
      {"the quick brown fox jumps over", 42ULL, 0x1981141872bb7434ULL},
  };
  for (const Golden& g : golden) {
    CHECK(llmds::text::hash_bytes(g.text, std::string(g.text).size(), g.seed) == g.hash);
  }
  // A 16 x 2 sketch collides a lot: its estimates depend on every row's hash and seed.
  CountMinSketch s = make(16, 2, 0);
  CountMinSketch t = make(16, 2, 1);
  for (int i = 0; i < 26; ++i) {
    const std::string item(1, static_cast<char>('a' + i));
    REQUIRE(s.add(item, static_cast<uint64_t>(i + 1)).ok());
    REQUIRE(t.add(item, static_cast<uint64_t>(i + 1)).ok());
  }
  std::vector<uint64_t> est, est_t;
  for (int i = 0; i < 26; ++i) {
    est.push_back(s.estimate(std::string(1, static_cast<char>('a' + i))));
    est_t.push_back(t.estimate(std::string(1, static_cast<char>('a' + i))));
  }
  CHECK(est == std::vector<uint64_t>{22, 2, 8, 10, 5, 43, 10, 8, 15, 10, 11, 24, 13, 14, 15, 16, 26, 18, 24, 33, 22, 22, 24, 40, 43, 48});
  CHECK(est != est_t);
}
