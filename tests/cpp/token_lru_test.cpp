// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>
#include <list>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "llmds/token_lru.hpp"

using llmds::Errc;
using Lru = llmds::TokenLRU<std::string, int>;

namespace {

Lru make(uint64_t budget) {
  auto r = Lru::create(budget);
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::vector<std::string> keys_lru_first(const Lru& c) {
  std::vector<std::string> out;
  c.for_each([&out](const std::string& k, int, uint64_t) { out.push_back(k); });
  return out;
}

}  // namespace

TEST_CASE("token_lru: evicts least recently used entries to stay within the budget", "[token_lru]") {
  Lru c = make(100);
  CHECK(c.put("a", 1, 40));
  CHECK(c.put("b", 2, 40));
  CHECK(c.total_tokens() == 80);
  REQUIRE(c.get("a"));  // a becomes most recent
  std::vector<Lru::Item> evicted;
  CHECK(c.put("c", 3, 30, &evicted));
  REQUIRE(evicted.size() == 1);
  CHECK(evicted[0].first == "b");
  CHECK(evicted[0].second == 2);
  CHECK(c.total_tokens() == 70);
  CHECK(c.size() == 2);
  CHECK_FALSE(c.has("b"));
  CHECK(keys_lru_first(c) == std::vector<std::string>{"a", "c"});
}

TEST_CASE("token_lru: an item larger than the budget is refused and evicts nothing", "[token_lru]") {
  Lru c = make(100);
  REQUIRE(c.put("a", 1, 60));
  REQUIRE(c.put("b", 2, 40));
  CHECK_FALSE(c.put("huge", 9, 101));
  CHECK_FALSE(c.put("a", 99, 101));  // the existing "a" stays as it was
  CHECK(c.size() == 2);
  CHECK(c.total_tokens() == 100);
  CHECK(*c.peek("a") == 1);
  CHECK(c.tokens_of("a") == 60);
  CHECK(keys_lru_first(c) == std::vector<std::string>{"a", "b"});
  CHECK(c.put("exact", 5, 100));  // exactly the budget fits, evicting everything else
  CHECK(c.size() == 1);
}

TEST_CASE("token_lru: replacing a key updates value, tokens and recency", "[token_lru]") {
  Lru c = make(100);
  REQUIRE(c.put("a", 1, 10));
  REQUIRE(c.put("b", 2, 10));
  REQUIRE(c.put("a", 3, 50));
  CHECK(c.total_tokens() == 60);
  CHECK(c.size() == 2);
  CHECK(*c.peek("a") == 3);
  CHECK(keys_lru_first(c) == std::vector<std::string>{"b", "a"});
  // Growing an entry evicts others, never the entry itself.
  std::vector<Lru::Item> evicted;
  REQUIRE(c.put("a", 4, 95, &evicted));
  CHECK(evicted.size() == 1);
  CHECK(c.size() == 1);
  CHECK(c.total_tokens() == 95);
}

TEST_CASE("token_lru: get refreshes recency, peek and contains do not", "[token_lru]") {
  Lru c = make(1000);
  for (int i = 0; i < 5; ++i) REQUIRE(c.put("k" + std::to_string(i), i, 1));
  CHECK(c.peek("k0"));
  CHECK(c.has("k1"));
  CHECK(keys_lru_first(c).front() == "k0");
  REQUIRE(c.get("k1"));
  CHECK(*c.get("k0") == 0);
  CHECK(keys_lru_first(c) == std::vector<std::string>{"k2", "k3", "k4", "k1", "k0"});
  CHECK(c.get("missing") == nullptr);
  CHECK(c.peek("missing") == nullptr);
}

TEST_CASE("token_lru: evict_until_budget returns pairs least recently used first", "[token_lru]") {
  Lru c = make(1000);
  for (int i = 0; i < 6; ++i) REQUIRE(c.put("k" + std::to_string(i), i, 100));
  REQUIRE(c.get("k0"));
  auto out = c.evict_until_budget(250);
  REQUIRE(out.size() == 4);
  CHECK(out[0].first == "k1");
  CHECK(out[1].first == "k2");
  CHECK(out[2].first == "k3");
  CHECK(out[3].first == "k4");
  CHECK(out[3].second == 4);
  CHECK(c.total_tokens() == 200);
  CHECK(c.evict_until_budget(200).empty());
  CHECK(c.evict_until_budget(0).size() == 2);
  CHECK(c.empty());
  CHECK(c.total_tokens() == 0);
}

TEST_CASE("token_lru: erase, clear and zero-token entries", "[token_lru]") {
  Lru c = make(10);
  REQUIRE(c.put("z", 0, 0));
  REQUIRE(c.put("a", 1, 10));
  CHECK(c.size() == 2);  // a zero-cost entry never needs evicting to fit
  CHECK(c.erase("z"));
  CHECK_FALSE(c.erase("z"));
  CHECK(c.total_tokens() == 10);
  c.clear();
  CHECK(c.size() == 0);
  CHECK(c.total_tokens() == 0);
  CHECK(c.token_budget() == 10);
  CHECK(Lru::create(0).status().code() == Errc::invalid_argument);
}

TEST_CASE("token_lru: move-only values and integer keys", "[token_lru]") {
  auto made = llmds::TokenLRU<uint64_t, std::unique_ptr<int>>::create(3);
  REQUIRE(made.ok());
  auto c = std::move(made).value();
  for (uint64_t k = 0; k < 5; ++k) REQUIRE(c.put(k, std::make_unique<int>(static_cast<int>(k)), 1));
  CHECK(c.size() == 3);
  CHECK(**c.get(4) == 4);
  auto out = c.evict_until_budget(1);
  REQUIRE(out.size() == 2);
  CHECK(*out[0].second == 2);
  CHECK(*out[1].second == 3);
}

TEST_CASE("token_lru: randomized operations match a list model", "[token_lru]") {
  using Model = std::list<std::pair<int, uint64_t>>;  // (key, tokens), front = LRU
  auto made = llmds::TokenLRU<int, int>::create(500);
  REQUIRE(made.ok());
  auto c = std::move(made).value();
  Model model;
  uint64_t total = 0;
  auto find = [&model](int k) {
    for (auto it = model.begin(); it != model.end(); ++it) {
      if (it->first == k) return it;
    }
    return model.end();
  };
  std::mt19937 rng(5150);
  for (int step = 0; step < 5000; ++step) {
    const int key = static_cast<int>(rng() % 40);
    const uint32_t op = rng() % 10;
    if (op < 5) {
      const uint64_t tokens = rng() % 120;
      const bool ok = c.put(key, key * 10, tokens);
      REQUIRE(ok == (tokens <= 500));
      if (ok) {
        auto it = find(key);
        if (it != model.end()) {
          total -= it->second;
          model.erase(it);
        }
        model.emplace_back(key, tokens);
        total += tokens;
        while (total > 500) {
          total -= model.front().second;
          model.pop_front();
        }
      }
    } else if (op < 8) {
      auto it = find(key);
      int* v = c.get(key);
      REQUIRE((v != nullptr) == (it != model.end()));
      if (v) {
        REQUIRE(*v == key * 10);
        model.splice(model.end(), model, it);
      }
    } else if (op < 9) {
      auto it = find(key);
      REQUIRE(c.erase(key) == (it != model.end()));
      if (it != model.end()) {
        total -= it->second;
        model.erase(it);
      }
    } else {
      const uint64_t target = rng() % 600;
      auto out = c.evict_until_budget(target);
      std::size_t i = 0;
      while (total > target) {
        REQUIRE(i < out.size());
        REQUIRE(out[i].first == model.front().first);
        total -= model.front().second;
        model.pop_front();
        ++i;
      }
      REQUIRE(i == out.size());
    }
    REQUIRE(c.total_tokens() == total);
    REQUIRE(c.size() == model.size());
  }
}
