// SPDX-License-Identifier: MIT
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <unordered_map>
#include <vector>

#include "llmds/indexed_heap.hpp"

using llmds::Errc;
using llmds::HeapEntry;
using llmds::IndexedHeap;
using llmds::IndexedHeapOptions;

namespace {

std::vector<uint32_t> drain_ids(IndexedHeap& h) {
  std::vector<uint32_t> out;
  while (auto e = h.pop()) out.push_back(e->id);
  return out;
}

}  // namespace

TEST_CASE("indexed_heap: min-heap pops in ascending score order", "[indexed_heap]") {
  IndexedHeap h;
  REQUIRE(h.push(1, 5.0).ok());
  REQUIRE(h.push(2, 1.0).ok());
  REQUIRE(h.push(3, 3.0).ok());
  REQUIRE(h.push(4, -2.5).ok());
  REQUIRE(h.size() == 4);
  REQUIRE(h.peek()->id == 4);
  REQUIRE(h.peek()->score == -2.5);
  auto top = h.pop();
  REQUIRE(top);
  CHECK(top->score == -2.5);
  CHECK(top->id == 4);
  CHECK(drain_ids(h) == std::vector<uint32_t>{2, 3, 1});
  CHECK(h.empty());
}

TEST_CASE("indexed_heap: max-heap pops in descending score order", "[indexed_heap]") {
  IndexedHeap h(IndexedHeapOptions{true});
  CHECK(h.is_max_heap());
  for (uint32_t id = 0; id < 10; ++id) REQUIRE(h.push(id, static_cast<double>((id * 7) % 10)).ok());
  std::vector<double> scores;
  while (auto e = h.pop()) scores.push_back(e->score);
  CHECK(scores == std::vector<double>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
}

TEST_CASE("indexed_heap: equal scores come out in push order (min and max)", "[indexed_heap]") {
  for (bool max_heap : {false, true}) {
    IndexedHeap h(IndexedHeapOptions{max_heap});
    const std::vector<uint32_t> ids{50, 3, 99, 0, 7, 12, 4, 8};
    for (uint32_t id : ids) REQUIRE(h.push(id, 1.0).ok());
    CHECK(drain_ids(h) == ids);
    // Mixed with other scores, each score class still drains FIFO.
    for (uint32_t i = 0; i < 20; ++i) REQUIRE(h.push(i, static_cast<double>(i % 3)).ok());
    std::vector<uint32_t> got = drain_ids(h);
    std::vector<uint32_t> want;
    for (int cls : max_heap ? std::vector<int>{2, 1, 0} : std::vector<int>{0, 1, 2}) {
      for (uint32_t i = 0; i < 20; ++i) {
        if (static_cast<int>(i % 3) == cls) want.push_back(i);
      }
    }
    CHECK(got == want);
  }
}

TEST_CASE("indexed_heap: update to an equal score is a no-op, not an error (prototype regression)", "[indexed_heap][regression]") {
  IndexedHeap h;
  REQUIRE(h.push(1, 2.0).ok());
  REQUIRE(h.push(2, 2.0).ok());
  REQUIRE(h.push(3, 1.0).ok());
  CHECK(h.update(1, 2.0).ok());
  CHECK(h.decrease_key(2, 2.0).ok());
  CHECK(h.increase_key(3, 1.0).ok());
  CHECK(h.size() == 3);
  CHECK(drain_ids(h) == std::vector<uint32_t>{3, 1, 2});
}

TEST_CASE("indexed_heap: update moves entries both ways and keeps their FIFO rank", "[indexed_heap]") {
  IndexedHeap h;
  for (uint32_t id = 0; id < 6; ++id) REQUIRE(h.push(id, static_cast<double>(id)).ok());
  REQUIRE(h.update(5, -1.0).ok());  // to the top
  REQUIRE(h.update(0, 10.0).ok());  // to the bottom
  REQUIRE(h.update(3, 1.0).ok());   // ties with id 1, which was pushed earlier
  CHECK(h.score_of(3) == Approx(1.0));
  CHECK(drain_ids(h) == std::vector<uint32_t>{5, 1, 3, 2, 4, 0});

  // An entry pushed first keeps priority over later equal entries after an update.
  REQUIRE(h.push(10, 5.0).ok());
  REQUIRE(h.push(11, 3.0).ok());
  REQUIRE(h.update(10, 3.0).ok());
  CHECK(drain_ids(h) == std::vector<uint32_t>{10, 11});
}

TEST_CASE("indexed_heap: decrease_key / increase_key enforce their direction", "[indexed_heap]") {
  for (bool max_heap : {false, true}) {
    IndexedHeap h(IndexedHeapOptions{max_heap});
    REQUIRE(h.push(1, 5.0).ok());
    REQUIRE(h.push(2, 3.0).ok());
    auto st = h.decrease_key(1, 6.0);
    CHECK(st.code() == Errc::invalid_argument);
    CHECK(st.message().find("decreaseKey") != std::string::npos);
    CHECK(h.increase_key(2, 1.0).code() == Errc::invalid_argument);
    CHECK(h.score_of(1) == 5.0);
    CHECK(h.score_of(2) == 3.0);
    REQUIRE(h.decrease_key(1, 1.0).ok());
    REQUIRE(h.increase_key(2, 7.0).ok());
    CHECK(h.peek()->id == (max_heap ? 2u : 1u));
    CHECK(h.decrease_key(99, 0.0).code() == Errc::not_found);
    CHECK(h.increase_key(99, 0.0).code() == Errc::not_found);
  }
}

TEST_CASE("indexed_heap: erase, contains and score_of", "[indexed_heap]") {
  IndexedHeap h;
  for (uint32_t id = 0; id < 100; ++id) REQUIRE(h.push(id, static_cast<double>((id * 37) % 100)).ok());
  for (uint32_t id = 0; id < 100; id += 3) CHECK(h.erase(id));
  CHECK_FALSE(h.erase(0));
  CHECK_FALSE(h.erase(1000));
  CHECK_FALSE(h.has(0));
  CHECK(h.has(1));
  CHECK_FALSE(h.score_of(3));
  CHECK(h.size() == 66);
  double prev = -1;
  std::size_t n = 0;
  while (auto e = h.pop()) {
    CHECK(e->id % 3 != 0);
    CHECK(e->score >= prev);
    prev = e->score;
    ++n;
  }
  CHECK(n == 66);
}

TEST_CASE("indexed_heap: bad input is rejected and changes nothing", "[indexed_heap]") {
  IndexedHeap h;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto st = h.push(1, nan);
  CHECK(st.code() == Errc::invalid_argument);
  CHECK(st.message().find("NaN") != std::string::npos);
  CHECK(h.empty());
  REQUIRE(h.push(1, 1.0).ok());
  auto dup = h.push(1, 2.0);
  CHECK(dup.code() == Errc::duplicate_id);
  CHECK(dup.message().find('1') != std::string::npos);
  CHECK(h.score_of(1) == 1.0);
  CHECK(h.update(1, nan).code() == Errc::invalid_argument);
  CHECK(h.update(2, 0.0).code() == Errc::not_found);
  CHECK(h.score_of(1) == 1.0);
  // Infinities are ordinary scores.
  REQUIRE(h.push(2, inf).ok());
  REQUIRE(h.push(3, -inf).ok());
  CHECK(drain_ids(h) == std::vector<uint32_t>{3, 1, 2});
}

TEST_CASE("indexed_heap: empty pop / peek return nothing; extreme ids work", "[indexed_heap]") {
  IndexedHeap h;
  CHECK_FALSE(h.pop());
  CHECK_FALSE(h.peek());
  const uint32_t big = std::numeric_limits<uint32_t>::max();
  REQUIRE(h.push(big, 1.0).ok());
  REQUIRE(h.push(0, 2.0).ok());
  CHECK(h.has(big));
  CHECK(h.has(0));
  CHECK(h.pop()->id == big);
  CHECK(h.pop()->id == 0);
  CHECK_FALSE(h.pop());
  REQUIRE(h.push(7, 1.0).ok());
  h.clear();
  CHECK(h.empty());
  CHECK_FALSE(h.has(7));
  REQUIRE(h.push(7, 1.0).ok());
}

TEST_CASE("indexed_heap: randomized operations match a brute-force model", "[indexed_heap]") {
  for (bool max_heap : {false, true}) {
    std::mt19937 rng(12345u + (max_heap ? 1u : 0u));
    IndexedHeap h(IndexedHeapOptions{max_heap});
    struct M {
      double score;
      uint64_t seq;
    };
    std::unordered_map<uint32_t, M> model;
    uint64_t seq = 0;
    auto model_best = [&]() {
      uint32_t best_id = 0;
      const M* best = nullptr;
      for (const auto& kv : model) {
        const M& m = kv.second;
        const bool better = !best || (m.score != best->score ? (max_heap ? m.score > best->score : m.score < best->score)
                                                             : m.seq < best->seq);
        if (better) {
          best = &m;
          best_id = kv.first;
        }
      }
      return best_id;
    };
    for (int step = 0; step < 6000; ++step) {
      const uint32_t op = rng() % 10;
      const uint32_t id = rng() % 200;
      const double score = static_cast<double>(rng() % 50);  // few distinct scores: many ties
      const bool present = model.count(id) != 0;
      if (op < 4) {
        auto st = h.push(id, score);
        if (present) {
          REQUIRE(st.code() == Errc::duplicate_id);
        } else {
          REQUIRE(st.ok());
          model[id] = M{score, seq++};
        }
      } else if (op < 6) {
        auto e = h.pop();
        if (model.empty()) {
          REQUIRE_FALSE(e);
        } else {
          const uint32_t want = model_best();
          REQUIRE(e);
          REQUIRE(e->id == want);
          REQUIRE(e->score == model[want].score);
          model.erase(want);
        }
      } else if (op < 8) {
        const int kind = static_cast<int>(rng() % 3);
        llmds::Status st = kind == 0 ? h.update(id, score) : kind == 1 ? h.decrease_key(id, score) : h.increase_key(id, score);
        if (!present) {
          REQUIRE(st.code() == Errc::not_found);
        } else {
          const double old = model[id].score;
          const bool wrong_way = (kind == 1 && score > old) || (kind == 2 && score < old);
          if (wrong_way) {
            REQUIRE(st.code() == Errc::invalid_argument);
          } else {
            REQUIRE(st.ok());
            model[id].score = score;
          }
        }
      } else {
        REQUIRE(h.erase(id) == present);
        model.erase(id);
      }
      REQUIRE(h.size() == model.size());
      if (model.empty()) seq = 0;
      if (step % 97 == 0 && !model.empty()) REQUIRE(h.peek()->id == model_best());
    }
  }
}

TEST_CASE("indexed_heap: FlatIdMap matches std::unordered_map through growth and shrinking", "[indexed_heap]") {
  llmds::detail::FlatIdMap map;
  std::unordered_map<uint32_t, uint32_t> ref;
  std::mt19937 rng(99);
  constexpr uint32_t kNone = llmds::detail::FlatIdMap::kNone;
  for (int round = 0; round < 3; ++round) {
    // Grow to a few thousand keys (mixed dense and scattered), then erase almost all of them.
    for (int i = 0; i < 4000; ++i) {
      const uint32_t key = (i % 2 == 0) ? static_cast<uint32_t>(i + round * 10000) : rng();
      if (ref.count(key)) continue;
      const uint32_t value = rng() % 1000000;
      map.insert(key, value);
      ref[key] = value;
    }
    REQUIRE(map.size() == ref.size());
    std::vector<uint32_t> keys;
    for (const auto& kv : ref) keys.push_back(kv.first);
    std::sort(keys.begin(), keys.end());
    for (uint32_t k : keys) REQUIRE(map.find(k) == ref[k]);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i % 50 == 0) continue;
      REQUIRE(map.erase(keys[i]) == ref[keys[i]]);
      ref.erase(keys[i]);
      if (i % 7 == 0) REQUIRE(map.find(keys[i]) == kNone);
    }
    REQUIRE(map.size() == ref.size());
    for (const auto& kv : ref) REQUIRE(map.find(kv.first) == kv.second);
    REQUIRE(map.erase(0xDEADBEEFu) == (ref.count(0xDEADBEEFu) ? ref[0xDEADBEEFu] : kNone));
    ref.erase(0xDEADBEEFu);
  }
  CHECK(map.memory_bytes() < 64 * 1024);  // shrank after the erasures
  map.clear();
  CHECK(map.size() == 0);
  CHECK(map.find(1) == kNone);
  CHECK(map.erase(1) == kNone);
}

TEST_CASE("indexed_heap: retain_if drops entries in place and keeps the order of the rest", "[indexed_heap]") {
  for (bool max_heap : {false, true}) {
    IndexedHeap h(IndexedHeapOptions{max_heap});
    std::mt19937 rng(31);
    std::vector<std::pair<double, uint32_t>> kept;  // (score, id) in push order
    for (uint32_t id = 0; id < 500; ++id) {
      const double score = static_cast<double>(rng() % 40);  // many ties
      REQUIRE(h.push(id, score).ok());
      if (id % 3 != 0) kept.emplace_back(score, id);
    }
    const std::size_t bytes = h.memory_bytes();
    CHECK(h.retain_if([](const HeapEntry& e) { return e.id % 3 != 0; }) == 167);
    CHECK(h.memory_bytes() == bytes);  // in place: nothing allocated or freed
    CHECK(h.size() == kept.size());
    CHECK(!h.has(0));
    CHECK(h.has(1));
    // The survivors come out by score, ties in push order, and the heap keeps working.
    std::stable_sort(kept.begin(), kept.end(), [max_heap](const auto& a, const auto& b) {
      return max_heap ? a.first > b.first : a.first < b.first;
    });
    REQUIRE(h.push(0, max_heap ? -1.0 : 100.0).ok());  // a dropped id can be pushed again
    for (const auto& [score, id] : kept) {
      const auto e = h.pop();
      REQUIRE(e);
      CHECK(e->id == id);
      CHECK(e->score == score);
    }
    CHECK(h.pop()->id == 0u);
    CHECK(h.empty());
    CHECK(h.retain_if([](const HeapEntry&) { return false; }) == 0);
  }
}
