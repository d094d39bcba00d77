// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "llmds/kv_cache.hpp"

using namespace llmds;
using Tokens = std::vector<TokenId>;

namespace {

KVCache make_cache(uint32_t page_size, uint32_t max_pages, bool sharing = true) {
  auto c = KVCache::create({page_size, max_pages, sharing});
  REQUIRE(c);
  return std::move(c.value());
}

Status attach(KVCache& c, SeqId seq, const Tokens& t) { return c.attach(seq, t.data(), t.size()); }
Status append(KVCache& c, SeqId seq, const Tokens& t) { return c.append(seq, t.data(), t.size()); }

Tokens range(TokenId from, std::size_t n) {
  Tokens t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = from + static_cast<TokenId>(i);
  return t;
}

Tokens concat(Tokens a, const Tokens& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// Everything observable about the cache, to check that a failed call changed nothing.
struct Snapshot {
  std::map<SeqId, std::pair<Tokens, std::vector<PageId>>> sequences;
  uint32_t used = 0, cached = 0, shared = 0;
  uint64_t tokens = 0, evictions = 0;
  bool operator==(const Snapshot& o) const {
    return sequences == o.sequences && used == o.used && cached == o.cached && shared == o.shared &&
           tokens == o.tokens && evictions == o.evictions;
  }
};

Snapshot snapshot(const KVCache& c, const std::vector<SeqId>& ids) {
  Snapshot s;
  for (SeqId id : ids) {
    if (c.has(id)) s.sequences[id] = {c.get(id).value(), c.block_table(id).value()};
  }
  const auto st = c.stats();
  s.used = st.used_pages;
  s.cached = st.cached_pages;
  s.shared = st.shared_pages;
  s.tokens = st.tokens;
  s.evictions = st.evictions;
  return s;
}

}  // namespace

TEST_CASE("kv_cache: seed usage example, a shared prefix and two suffixes", "[kv_cache]") {
  const Tokens prefix = {1, 2, 3};
  SECTION("default page size: the prefix is shorter than a page, so nothing can be shared") {
    auto c = make_cache(512, 10000);
    REQUIRE(c.attach(0, concat(prefix, {4, 5}).data(), 5, prefix.data(), prefix.size()).ok());
    REQUIRE(c.attach(1, concat(prefix, {6, 7}).data(), 5, prefix.data(), prefix.size()).ok());
    CHECK(c.get(0).value() == Tokens{1, 2, 3, 4, 5});
    CHECK(c.get(1).value() == Tokens{1, 2, 3, 6, 7});
    CHECK(c.stats().used_pages == 2);
    CHECK(c.stats().shared_pages == 0);
  }
  SECTION("a prefix that fills whole pages is stored once") {
    auto c = make_cache(3, 16);
    REQUIRE(c.attach(0, concat(prefix, {4, 5}).data(), 5, prefix.data(), prefix.size()).ok());
    REQUIRE(c.attach(1, concat(prefix, {6, 7}).data(), 5, prefix.data(), prefix.size()).ok());
    CHECK(c.get(0).value() == Tokens{1, 2, 3, 4, 5});
    CHECK(c.get(1).value() == Tokens{1, 2, 3, 6, 7});
    const auto st = c.stats();
    CHECK(st.used_pages == 3);
    CHECK(st.shared_pages == 1);
    CHECK(st.prefix_hits == 1);
    CHECK(st.hit_tokens == 3);
    CHECK(c.block_table(0).value()[0] == c.block_table(1).value()[0]);
    CHECK(c.match_prefix(prefix.data(), prefix.size()) == 3);
  }
}

TEST_CASE("kv_cache: two sequences sharing 2 x pageSize tokens use exactly 2 pages fewer", "[kv_cache]") {
  const uint32_t ps = 16;
  const Tokens common = range(100, 2 * ps);
  const Tokens a = concat(common, range(1000, 40));
  const Tokens b = concat(common, range(2000, 25));
  auto shared = make_cache(ps, 64, true);
  auto unshared = make_cache(ps, 64, false);
  for (KVCache* c : {&shared, &unshared}) {
    REQUIRE(attach(*c, 1, a).ok());
    REQUIRE(attach(*c, 2, b).ok());
    CHECK(c->get(1).value() == a);
    CHECK(c->get(2).value() == b);
  }
  CHECK(unshared.stats().used_pages - shared.stats().used_pages == 2);
  CHECK(shared.stats().shared_pages == 2);
  CHECK(unshared.stats().shared_pages == 0);
  CHECK(shared.page_refcount(shared.block_table(1).value()[0]) == 2);
}

TEST_CASE("kv_cache: a page with equal content but a different history is not shared", "[kv_cache]") {
  const uint32_t ps = 4;
  auto c = make_cache(ps, 32);
  const Tokens same_page = {7, 7, 7, 7};
  REQUIRE(attach(c, 1, concat({1, 2, 3, 4}, same_page)).ok());
  REQUIRE(attach(c, 2, concat({5, 6, 7, 8}, same_page)).ok());
  CHECK(c.stats().shared_pages == 0);
  CHECK(c.stats().used_pages == 4);
  CHECK(c.block_table(1).value()[1] != c.block_table(2).value()[1]);
  CHECK(c.get(2).value() == concat({5, 6, 7, 8}, same_page));
}

TEST_CASE("kv_cache: detaching everything leaves no used pages", "[kv_cache]") {
  auto c = make_cache(8, 256);
  const Tokens prefix = range(0, 200);
  for (SeqId s = 0; s < 20; ++s) REQUIRE(attach(c, s, concat(prefix, range(1000 * (s + 1), 37))).ok());
  REQUIRE(c.fork(3, 99).ok());
  REQUIRE(append(c, 99, range(5, 11)).ok());
  CHECK(c.stats().used_pages > 0);
  for (SeqId s = 0; s < 20; ++s) CHECK(c.detach(s));
  CHECK(c.detach(99));
  CHECK_FALSE(c.detach(99));  // unknown: no-op
  const auto st = c.stats();
  CHECK(st.used_pages == 0);
  CHECK(st.free_pages == st.total_pages);
  CHECK(st.sequences == 0);
  CHECK(st.tokens == 0);
  CHECK(st.shared_pages == 0);
  CHECK(st.cached_pages > 0);  // the full pages stay findable as cached prefixes
}

TEST_CASE("kv_cache: fork shares pages and copy-on-write keeps the source intact", "[kv_cache]") {
  const uint32_t ps = 4;
  auto c = make_cache(ps, 32);
  const Tokens base = range(1, 10);  // 2 full pages + a tail page holding 2 tokens
  REQUIRE(attach(c, 1, base).ok());
  REQUIRE(c.fork(1, 2).ok());
  CHECK(c.block_table(1).value() == c.block_table(2).value());
  CHECK(c.stats().used_pages == 3);
  CHECK(c.stats().shared_pages == 3);

  REQUIRE(append(c, 2, {50, 51, 52}).ok());
  CHECK(c.get(1).value() == base);
  CHECK(c.get(2).value() == concat(base, {50, 51, 52}));
  const auto st = c.stats();
  CHECK(st.cow_copies == 1);
  CHECK(st.used_pages == 5);  // 2 shared full pages + source tail + copied tail + 1 new page
  CHECK(st.shared_pages == 2);
  CHECK(c.block_table(1).value()[2] != c.block_table(2).value()[2]);

  // Appending to the source now writes its own tail without copying.
  REQUIRE(append(c, 1, {60}).ok());
  CHECK(c.stats().cow_copies == 1);
  CHECK(c.get(1).value() == concat(base, {60}));
  CHECK(c.get(2).value() == concat(base, {50, 51, 52}));
}

TEST_CASE("kv_cache: a re-attach after detach hits the cache", "[kv_cache]") {
  const uint32_t ps = 8;
  auto c = make_cache(ps, 64);
  const Tokens t = range(10, 3 * ps + 5);
  REQUIRE(attach(c, 1, t).ok());
  CHECK(c.stats().prefix_hits == 0);
  CHECK(c.stats().prefix_misses == 3);
  c.detach(1);
  CHECK(c.stats().cached_pages == 3);
  CHECK(c.match_prefix(t.data(), t.size()) == 3 * ps);
  REQUIRE(attach(c, 2, t).ok());
  const auto st = c.stats();
  CHECK(st.prefix_hits == 3);
  CHECK(st.hit_tokens == 3 * ps);
  CHECK(st.cached_pages == 0);
  CHECK(st.used_pages == 4);
  CHECK(c.get(2).value() == t);
}

TEST_CASE("kv_cache: append publishes completed pages for later reuse", "[kv_cache]") {
  const uint32_t ps = 4;
  auto c = make_cache(ps, 32);
  REQUIRE(attach(c, 1, {1, 2}).ok());
  REQUIRE(append(c, 1, {3, 4, 5, 6, 7, 8, 9}).ok());
  c.detach(1);
  const Tokens turn2 = {1, 2, 3, 4, 5, 6, 7, 8, 42};
  CHECK(c.match_prefix(turn2.data(), turn2.size()) == 8);
  REQUIRE(attach(c, 2, turn2).ok());
  CHECK(c.stats().prefix_hits == 2);
}

TEST_CASE("kv_cache: matchPrefix is token granular and changes nothing", "[kv_cache]") {
  const uint32_t ps = 4;
  auto c = make_cache(ps, 32);
  REQUIRE(attach(c, 1, {1, 2, 3, 4, 5, 6, 7, 8}).ok());
  const auto before = c.stats();
  const Tokens q1 = {1, 2, 3, 4, 5, 6, 99};
  CHECK(c.match_prefix(q1.data(), q1.size()) == 6);
  const Tokens q2 = {1, 2, 9};
  CHECK(c.match_prefix(q2.data(), q2.size()) == 2);
  const Tokens q3 = {9};
  CHECK(c.match_prefix(q3.data(), q3.size()) == 0);
  CHECK(c.match_prefix(nullptr, 0) == 0);
  const auto after = c.stats();
  CHECK(after.prefix_hits == before.prefix_hits);
  CHECK(after.used_pages == before.used_pages);
  auto off = make_cache(ps, 32, false);
  REQUIRE(attach(off, 1, {1, 2, 3, 4}).ok());
  CHECK(off.match_prefix(q1.data(), q1.size()) == 0);
}

TEST_CASE("kv_cache: cached pages are evicted least-recently-used first", "[kv_cache]") {
  const uint32_t ps = 4;
  auto c = make_cache(ps, 6);
  const Tokens a = range(100, 8), b = range(200, 8), d = range(300, 8);
  REQUIRE(attach(c, 1, a).ok());
  REQUIRE(attach(c, 2, b).ok());
  c.detach(1);  // a's pages are older
  c.detach(2);
  CHECK(c.stats().cached_pages == 4);
  REQUIRE(attach(c, 3, d).ok());  // 2 free pages: no eviction yet
  CHECK(c.stats().evictions == 0);
  REQUIRE(attach(c, 4, range(400, 4)).ok());  // needs one page: evicts a's leaf page first
  CHECK(c.stats().evictions == 1);
  CHECK(c.match_prefix(a.data(), a.size()) == 4);
  CHECK(c.match_prefix(b.data(), b.size()) == 8);
  REQUIRE(attach(c, 5, range(500, 4)).ok());  // then a's first page
  CHECK(c.match_prefix(a.data(), a.size()) == 0);
  CHECK(c.match_prefix(b.data(), b.size()) == 8);
  // Touching b by re-attaching then releasing it makes it most recent again.
  CHECK(c.stats().evictions == 2);
  CHECK(c.stats().used_pages == 4);
}

TEST_CASE("kv_cache: out of pages is capacity_exceeded and changes nothing", "[kv_cache]") {
  const uint32_t ps = 4;
  auto c = make_cache(ps, 5);
  REQUIRE(attach(c, 1, range(0, 12)).ok());  // 3 pages
  REQUIRE(c.fork(1, 2).ok());
  const std::vector<SeqId> ids = {1, 2, 3};
  const Snapshot before = snapshot(c, ids);

  auto st = attach(c, 3, range(100, 12));  // needs 3, only 2 free
  CHECK(st.code() == Errc::capacity_exceeded);
  CHECK(st.message().find("seqId 3") != std::string::npos);
  CHECK(snapshot(c, ids) == before);

  CHECK(append(c, 1, range(7, 9)).code() == Errc::capacity_exceeded);
  CHECK(snapshot(c, ids) == before);

  // Re-attaching seq 1 over itself with a longer sequence: it gives back nothing (seq 2 still
  // holds the pages), so it cannot fit and seq 1 must survive untouched.
  CHECK(attach(c, 1, range(500, 20)).code() == Errc::capacity_exceeded);
  CHECK(snapshot(c, ids) == before);

  CHECK(attach(c, 9, range(0, 4 * 6)).code() == Errc::capacity_exceeded);  // more than maxPages
  CHECK(snapshot(c, ids) == before);

  // Replacing a sequence may reuse the pages it releases.
  c.detach(2);
  REQUIRE(attach(c, 1, range(900, 20)).ok());
  CHECK(c.get(1).value() == range(900, 20));
  CHECK(c.stats().used_pages == 5);
}

TEST_CASE("kv_cache: every error code", "[kv_cache]") {
  auto c = make_cache(4, 16);
  REQUIRE(attach(c, 1, {1, 2, 3}).ok());
  const std::vector<SeqId> ids = {1, 2};
  const Snapshot before = snapshot(c, ids);

  CHECK(attach(c, 2, {1, -5}).code() == Errc::invalid_argument);
  CHECK(attach(c, 1, {1, -5}).code() == Errc::invalid_argument);
  CHECK(append(c, 1, {-1}).code() == Errc::invalid_argument);
  const Tokens t = {1, 2, 3}, not_prefix = {1, 9}, too_long = {1, 2, 3, 4};
  CHECK(c.attach(2, t.data(), t.size(), not_prefix.data(), not_prefix.size()).code() == Errc::invalid_argument);
  CHECK(c.attach(2, t.data(), t.size(), too_long.data(), too_long.size()).code() == Errc::invalid_argument);
  CHECK(c.attach(2, t.data(), t.size(), int64_t{4}).code() == Errc::invalid_argument);
  CHECK(append(c, 7, {1}).code() == Errc::not_found);
  CHECK(c.fork(7, 8).code() == Errc::not_found);
  CHECK(c.block_table(7).status().code() == Errc::not_found);
  CHECK(c.get(7).status().code() == Errc::not_found);
  CHECK(c.fork(1, 1).code() == Errc::duplicate_id);
  REQUIRE(attach(c, 2, {5}).ok());
  CHECK(c.fork(1, 2).code() == Errc::duplicate_id);
  c.detach(2);
  CHECK(snapshot(c, ids) == before);

  CHECK(KVCache::create({0, 10, true}).status().code() == Errc::invalid_argument);
  CHECK(KVCache::create({4, 0, true}).status().code() == Errc::invalid_argument);
  CHECK(attach(c, 3, {}).ok());  // an empty sequence is valid and holds no page
  CHECK(c.block_table(3).value().empty());
  CHECK(append(c, 3, {4, 5}).ok());
  CHECK(c.get(3).value() == Tokens{4, 5});
}

TEST_CASE("kv_cache: a declared prefix limits what is shared", "[kv_cache]") {
  const uint32_t ps = 4;
  auto c = make_cache(ps, 32);
  const Tokens t = range(1, 16);
  const Tokens prefix = range(1, 6);  // covers page 0 wholly, page 1 partly
  REQUIRE(c.attach(1, t.data(), t.size(), prefix.data(), prefix.size()).ok());
  REQUIRE(c.attach(2, t.data(), t.size(), prefix.data(), prefix.size()).ok());
  CHECK(c.stats().shared_pages == 1);
  REQUIRE(attach(c, 3, t).ok());  // no declared prefix: may share whatever is published
  CHECK(c.stats().shared_pages == 1);
  CHECK(c.page_refcount(c.block_table(3).value()[0]) == 3);
}

// Thousands of random operations checked against a plain reference model after every step.
TEST_CASE("kv_cache: randomized operations match a reference model", "[kv_cache][model]") {
  for (bool sharing : {true, false}) {
    const uint32_t ps = 4;
    auto c = make_cache(ps, 48, sharing);
    std::map<SeqId, Tokens> model;
    std::mt19937 rng(sharing ? 20261126u : 7u);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    auto random_tokens = [&](std::size_t n) {
      Tokens t(n);
      for (auto& x : t) x = static_cast<TokenId>(pick(3));  // tiny alphabet: lots of sharing
      return t;
    };
    std::vector<SeqId> ids;
    for (SeqId s = 0; s < 12; ++s) ids.push_back(s);
    std::size_t failures = 0;

    for (int step = 0; step < 4000; ++step) {
      const SeqId seq = pick(12);
      const Snapshot before = snapshot(c, ids);
      Status st;
      const uint32_t op = pick(10);
      if (op < 3) {
        Tokens t = model.count(seq) && pick(2) ? model[seq] : Tokens{};
        if (t.empty() && !model.empty()) t = model.begin()->second;  // reuse a known history
        t.resize(pick(30), 0);
        for (std::size_t i = t.size() / 2; i < t.size(); ++i) t[i] = static_cast<TokenId>(pick(3));
        st = attach(c, seq, t);
        if (st) model[seq] = t;
      } else if (op < 6) {
        Tokens t = random_tokens(pick(9));
        st = append(c, seq, t);
        if (st) {
          Tokens& m = model.at(seq);
          m.insert(m.end(), t.begin(), t.end());
        } else if (st.code() == Errc::not_found) {
          CHECK(model.count(seq) == 0);
        }
      } else if (op < 8) {
        const SeqId dst = pick(12);
        st = c.fork(seq, dst);
        if (st) model[dst] = model.at(seq);
      } else {
        CHECK(c.detach(seq) == (model.erase(seq) == 1));
      }
      if (!st) {
        ++failures;
        REQUIRE(snapshot(c, ids) == before);
      }

      // Observable state equals the model, and page accounting is consistent.
      std::map<PageId, uint32_t> refs;
      uint64_t tokens = 0;
      for (SeqId s : ids) {
        REQUIRE(c.has(s) == (model.count(s) == 1));
        if (!model.count(s)) continue;
        REQUIRE(c.get(s).value() == model[s]);
        const auto table = c.block_table(s).value();
        REQUIRE(table.size() == (model[s].size() + ps - 1) / ps);
        for (PageId p : table) ++refs[p];
        tokens += model[s].size();
      }
      const auto stats = c.stats();
      REQUIRE(stats.sequences == model.size());
      REQUIRE(stats.tokens == tokens);
      REQUIRE(stats.used_pages == refs.size());
      uint32_t shared = 0;
      for (const auto& [page, count] : refs) {
        REQUIRE(c.page_refcount(page) == count);
        shared += count > 1;
      }
      REQUIRE(stats.shared_pages == shared);
      REQUIRE(stats.used_pages + stats.cached_pages <= stats.total_pages);
      if (!sharing) REQUIRE(stats.cached_pages == 0);
    }
    CHECK(failures > 0);  // the pool is small enough that capacity failures were exercised
    for (SeqId s : ids) c.detach(s);
    CHECK(c.stats().used_pages == 0);
  }
}

TEST_CASE("kv_cache: page states show used, shared, cached and free pages", "[kv_cache]") {
  auto c = make_cache(2, 16);
  REQUIRE(attach(c, 1, {1, 2, 3, 4, 5}).ok());
  REQUIRE(c.fork(1, 2).ok());
  REQUIRE(attach(c, 3, {9, 9}).ok());
  c.detach(3);
  const auto states = c.page_states();
  REQUIRE(states.size() == 4);
  CHECK(std::count(states.begin(), states.end(), 2) == 3);
  CHECK(std::count(states.begin(), states.end(), KVCache::kCachedPage) == 1);
  REQUIRE(append(c, 2, {6}).ok());  // copy-on-write of the shared tail
  const auto after = c.page_states();
  CHECK(std::count(after.begin(), after.end(), 1) == 2);
}
