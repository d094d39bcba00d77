// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "llmds/block_hash.hpp"
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

// ---- KVCache as a runtime's block manager: plans, block hashes, events ----------------------
namespace {

KVCache make_events_cache(uint32_t page_size, uint32_t max_pages, bool sharing = true) {
  KVCacheOptions o;
  o.page_size = page_size;
  o.max_pages = max_pages;
  o.enable_prefix_sharing = sharing;
  o.events = true;
  auto c = KVCache::create(o);
  REQUIRE(c);
  return std::move(c.value());
}

std::vector<PageId> tail_of(const std::vector<PageId>& v, std::size_t from) {
  return std::vector<PageId>(v.begin() + static_cast<std::ptrdiff_t>(std::min(from, v.size())), v.end());
}

std::vector<uint64_t> hashes_of(const Tokens& t, uint32_t ps) { return block_hashes(t.data(), t.size(), ps).value(); }

/// A consumer of KV events: hash -> (parent hash or none, the page's tokens).
struct Mirror {
  struct Entry {
    bool has_parent = false;
    uint64_t parent = 0;
    Tokens tokens;
  };
  std::map<uint64_t, Entry> pages;
  uint32_t page_size;

  explicit Mirror(uint32_t ps) : page_size(ps) {}

  void apply(const std::vector<KVEvent>& events) {
    for (const KVEvent& e : events) {
      switch (e.type) {
        case KVEvent::Type::stored: {
          REQUIRE(!e.block_hashes.empty());
          REQUIRE(e.tokens.size() == e.block_hashes.size() * page_size);
          // The parent is announced (no gaps), and the hashes chain from it.
          if (e.has_parent) REQUIRE(pages.count(e.parent_hash) == 1);
          uint64_t parent = e.parent_hash;
          bool has_parent = e.has_parent;
          for (std::size_t i = 0; i < e.block_hashes.size(); ++i) {
            const TokenId* t = e.tokens.data() + i * page_size;
            const uint64_t h = page_content_hash(t, page_size);
            REQUIRE(e.block_hashes[i] == (has_parent ? chain_block_hash(parent, h) : h));
            REQUIRE(pages.count(e.block_hashes[i]) == 0);  // stored once until removed
            pages[e.block_hashes[i]] = Entry{has_parent, parent, Tokens(t, t + page_size)};
            parent = e.block_hashes[i];
            has_parent = true;
          }
          break;
        }
        case KVEvent::Type::removed:
          REQUIRE(!e.block_hashes.empty());
          for (uint64_t h : e.block_hashes) REQUIRE(pages.erase(h) == 1);
          break;
        case KVEvent::Type::cleared:
          pages.clear();
          break;
      }
    }
  }

  /// The mirror equals the cache's findable pages, has no gaps along a chain, and every page's
  /// hash is block_hashes() of its whole history at its position.
  void check(const KVCache& c) const {
    std::vector<uint64_t> keys;
    for (const auto& kv : pages) keys.push_back(kv.first);
    REQUIRE(keys == c.findable_hashes());
    for (const auto& [hash, entry] : pages) {
      std::vector<const Entry*> chain{&entry};
      while (chain.back()->has_parent) {
        auto it = pages.find(chain.back()->parent);
        REQUIRE(it != pages.end());  // no gaps
        chain.push_back(&it->second);
      }
      Tokens history;
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) history.insert(history.end(), (*it)->tokens.begin(), (*it)->tokens.end());
      REQUIRE(hashes_of(history, page_size).back() == hash);
      // Findable means findable: the history matches at least up to this page.
      REQUIRE(c.match_prefix(history.data(), history.size()) == history.size());
    }
  }
};

bool plan_is_clear(const KVPlan& p) {
  return p.cached_tokens == 0 && p.compute_from == 0 && p.block_table.empty() && p.new_pages.empty() &&
         p.copies.empty();
}

}  // namespace

TEST_CASE("kv_cache: attach returns a plan: cached pages, where to compute, which pages", "[kv_cache][plan]") {
  auto c = make_cache(4, 64);
  const Tokens a = range(0, 10);
  KVPlan plan;
  REQUIRE(c.attach(1, a.data(), a.size(), -1, &plan).ok());
  CHECK(plan.cached_tokens == 0);
  CHECK(plan.compute_from == 0);
  CHECK(plan.block_table == c.block_table(1).value());
  CHECK(plan.new_pages == plan.block_table);
  CHECK(plan.copies.empty());

  // A longer prompt with the same head reuses the two full pages (live in seq 1).
  const Tokens b = range(0, 14);
  REQUIRE(c.attach(2, b.data(), b.size(), -1, &plan).ok());
  const auto t1 = c.block_table(1).value(), t2 = c.block_table(2).value();
  CHECK(plan.cached_tokens == 8);
  CHECK(plan.compute_from == 8);
  CHECK(plan.block_table == t2);
  CHECK(std::vector<PageId>(t2.begin(), t2.begin() + 2) == std::vector<PageId>(t1.begin(), t1.begin() + 2));
  CHECK(plan.new_pages == tail_of(t2, 2));
  CHECK(plan.new_pages.size() == 2);

  // Cached (detached) pages count too, and a declared prefix limits what is reused.
  c.detach(2);
  REQUIRE(c.attach(3, b.data(), b.size(), -1, &plan).ok());
  CHECK(plan.cached_tokens == 12);
  CHECK(plan.new_pages == tail_of(c.block_table(3).value(), 3));
  REQUIRE(c.attach(4, b.data(), b.size(), 5, &plan).ok());
  CHECK(plan.cached_tokens == 4);
  REQUIRE(c.attach(5, b.data(), b.size(), b.data(), 9, &plan).ok());
  CHECK(plan.cached_tokens == 8);

  // Re-attach of an existing sequence: its own full pages count as cached.
  const Tokens longer = range(0, 20);
  REQUIRE(c.attach(3, longer.data(), longer.size(), -1, &plan).ok());
  CHECK(plan.cached_tokens == 12);
  CHECK(plan.compute_from == 12);
  CHECK(plan.new_pages.size() == 2);

  // Everything cached: nothing to compute.
  REQUIRE(c.attach(6, a.data(), 8, -1, &plan).ok());
  CHECK(plan.cached_tokens == 8);
  CHECK(plan.compute_from == 8);
  CHECK(plan.new_pages.empty());
  CHECK(plan.block_table.size() == 2);

  // Sharing off: nothing is ever cached.
  auto off = make_cache(4, 64, false);
  REQUIRE(off.attach(1, a.data(), a.size(), -1, &plan).ok());
  REQUIRE(off.attach(2, a.data(), a.size(), -1, &plan).ok());
  CHECK(plan.cached_tokens == 0);
  CHECK(plan.new_pages.size() == 3);
}

TEST_CASE("kv_cache: append returns a plan, with copy-on-write of a shared tail", "[kv_cache][plan]") {
  auto c = make_cache(4, 64);
  const Tokens a = range(0, 6);
  REQUIRE(attach(c, 1, a).ok());
  KVPlan plan;
  const Tokens one{100};
  REQUIRE(c.append(1, one.data(), 1, &plan).ok());  // private tail with room: write into it
  auto t = c.block_table(1).value();
  CHECK(plan.cached_tokens == 6);
  CHECK(plan.compute_from == 6);
  CHECK(plan.block_table == t);
  CHECK(plan.new_pages == std::vector<PageId>{t[1]});
  CHECK(plan.copies.empty());

  REQUIRE(c.fork(1, 2).ok());
  const Tokens more = range(200, 6);  // 7 + 6 = 13: fills the tail, one full page, one partial
  REQUIRE(c.append(2, more.data(), more.size(), &plan).ok());
  const auto t2 = c.block_table(2).value();
  CHECK(plan.compute_from == 7);
  CHECK(plan.cached_tokens == 7);
  CHECK(plan.block_table == t2);
  CHECK(plan.copies == std::vector<PageId>{t[1], t2[1]});  // src: the shared tail, dst: the copy
  CHECK(plan.new_pages == tail_of(t2, 1));
  CHECK(plan.new_pages.size() == 3);
  CHECK(c.get(1).value() == concat(a, one));  // the source is untouched

  // Appending nothing: nothing to compute.
  REQUIRE(c.append(2, more.data(), 0, &plan).ok());
  CHECK(plan.compute_from == 13);
  CHECK(plan.new_pages.empty());
  CHECK(plan.block_table == t2);

  // Page-aligned append: only fresh pages.
  auto d = make_cache(4, 64);
  REQUIRE(attach(d, 1, range(0, 8)).ok());
  REQUIRE(d.append(1, more.data(), 4, &plan).ok());
  CHECK(plan.new_pages == std::vector<PageId>{d.block_table(1).value()[2]});
}

TEST_CASE("kv_cache: a failed call leaves the plan cleared and records no event", "[kv_cache][plan][events]") {
  auto c = make_events_cache(4, 4);
  const Tokens a = range(0, 8);
  KVPlan plan;
  REQUIRE(c.attach(1, a.data(), a.size(), -1, &plan).ok());
  const std::size_t events = c.pending_events();
  CHECK(events == 1);
  const Tokens big = range(50, 20);
  CHECK(c.attach(2, big.data(), big.size(), -1, &plan).code() == Errc::capacity_exceeded);
  CHECK(plan_is_clear(plan));
  REQUIRE(c.attach(1, a.data(), a.size(), -1, &plan).ok());
  CHECK(c.append(1, big.data(), big.size(), &plan).code() == Errc::capacity_exceeded);
  CHECK(plan_is_clear(plan));
  REQUIRE(c.attach(1, a.data(), a.size(), -1, &plan).ok());
  CHECK(c.append(9, a.data(), 1, &plan).code() == Errc::not_found);
  CHECK(plan_is_clear(plan));
  REQUIRE(c.attach(1, a.data(), a.size(), -1, &plan).ok());
  const Tokens bad{1, -2};
  CHECK(c.attach(2, bad.data(), bad.size(), -1, &plan).code() == Errc::invalid_argument);
  CHECK(plan_is_clear(plan));
  REQUIRE(c.attach(1, a.data(), a.size(), -1, &plan).ok());
  CHECK(c.attach(2, a.data(), a.size(), bad.data(), bad.size(), &plan).code() == Errc::invalid_argument);
  CHECK(plan_is_clear(plan));
  CHECK(c.pending_events() == events);  // the re-attaches reused everything: no new event
}

TEST_CASE("kv_cache: page keys are Dynamo block hashes", "[kv_cache][events]") {
  auto c = make_cache(4, 64);
  const Tokens a = range(7, 18);
  REQUIRE(attach(c, 1, a).ok());
  auto want = hashes_of(a, 4);
  CHECK(want.size() == 4);
  std::sort(want.begin(), want.end());
  CHECK(c.findable_hashes() == want);
  // A second history sharing two pages adds only its own pages' hashes.
  const Tokens b = concat(range(7, 8), range(1000, 8));
  REQUIRE(attach(c, 2, b).ok());
  auto both = hashes_of(a, 4);
  const auto hb = hashes_of(b, 4);
  both.insert(both.end(), hb.begin() + 2, hb.end());
  std::sort(both.begin(), both.end());
  CHECK(c.findable_hashes() == both);
  // A declared prefix publishes only the pages inside it; sharing off publishes nothing.
  auto d = make_cache(4, 64);
  REQUIRE(d.attach(1, a.data(), a.size(), 9).ok());
  auto two = hashes_of(Tokens(a.begin(), a.begin() + 8), 4);
  std::sort(two.begin(), two.end());
  CHECK(d.findable_hashes() == two);
  auto off = make_cache(4, 64, false);
  REQUIRE(attach(off, 1, a).ok());
  CHECK(off.findable_hashes().empty());
}

TEST_CASE("kv_cache: events: stored, removed on eviction, cleared", "[kv_cache][events]") {
  auto c = make_events_cache(4, 6);
  Mirror mirror(4);
  const Tokens a = range(0, 14);  // 3 full pages + a partial one
  REQUIRE(attach(c, 1, a).ok());
  auto ev = c.drain_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == KVEvent::Type::stored);
  CHECK(ev[0].block_hashes == hashes_of(a, 4));
  CHECK(!ev[0].has_parent);
  CHECK(ev[0].tokens == Tokens(a.begin(), a.begin() + 12));
  mirror.apply(ev);
  mirror.check(c);
  CHECK(c.pending_events() == 0);
  CHECK(c.drain_events().empty());

  // append completing the tail page: one stored event whose parent is page 2.
  const Tokens two{14, 15};
  REQUIRE(append(c, 1, two).ok());
  ev = c.drain_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].has_parent);
  CHECK(ev[0].parent_hash == hashes_of(a, 4)[2]);
  CHECK(ev[0].block_hashes == std::vector<uint64_t>{hashes_of(range(0, 16), 4)[3]});
  mirror.apply(ev);
  mirror.check(c);

  // Detach keeps the pages findable (no event); a new history needing the pages evicts the
  // leaves first: one removed event, then its own stored event.
  c.detach(1);
  CHECK(c.pending_events() == 0);
  const Tokens b = range(500, 12);
  REQUIRE(attach(c, 2, b).ok());  // 3 pages: 2 free, 1 evicted
  ev = c.drain_events();
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].type == KVEvent::Type::removed);
  CHECK(ev[0].block_hashes == std::vector<uint64_t>{hashes_of(range(0, 16), 4)[3]});  // the leaf
  CHECK(ev[1].type == KVEvent::Type::stored);
  mirror.apply(ev);
  mirror.check(c);

  c.clear();
  CHECK(c.stats().sequences == 0);
  CHECK(c.stats().used_pages == 0);
  CHECK(c.stats().cached_pages == 0);
  CHECK(c.findable_hashes().empty());
  ev = c.drain_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == KVEvent::Type::cleared);
  mirror.apply(ev);
  mirror.check(c);
  // Usable after clear; nothing cached survives.
  KVPlan plan;
  REQUIRE(c.attach(3, a.data(), a.size(), -1, &plan).ok());
  CHECK(plan.cached_tokens == 0);
  CHECK(c.get(3).value() == a);

  // Events off: nothing recorded, clear() included.
  auto quiet = make_cache(4, 8);
  REQUIRE(attach(quiet, 1, a).ok());
  quiet.clear();
  CHECK(quiet.pending_events() == 0);
  CHECK(quiet.drain_events().empty());
}

TEST_CASE("kv_cache: no gaps along a prefix chain: eviction takes leaves first", "[kv_cache][events]") {
  // Two branches over a shared 2-page trunk, all cached; every eviction must remove a page
  // whose cached descendants are gone already, so what stays findable is prefix-closed.
  auto c = make_events_cache(2, 8);
  Mirror mirror(2);
  const Tokens trunk = range(0, 4);
  const Tokens x = concat(trunk, range(100, 4));
  const Tokens y = concat(trunk, range(200, 4));
  REQUIRE(attach(c, 1, x).ok());
  REQUIRE(attach(c, 2, y).ok());
  c.detach(2);
  c.detach(1);  // y's branch is now older than x's, the trunk newest
  mirror.apply(c.drain_events());
  mirror.check(c);
  CHECK(c.stats().cached_pages == 6);
  const auto hx = hashes_of(x, 2), hy = hashes_of(y, 2);
  // Take the pages one at a time: y's leaf, y's middle, x's leaf, x's middle, then the trunk.
  const std::vector<uint64_t> order{hy[3], hy[2], hx[3], hx[2], hx[1], hx[0]};
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Tokens fresh = range(1000 + 100 * static_cast<TokenId>(i), 1);  // a partial page: never published
    REQUIRE(attach(c, 10 + static_cast<SeqId>(i), fresh).ok());
    c.stats();
    auto ev = c.drain_events();
    if (i < 2) {  // two free pages first
      CHECK(ev.empty());
      continue;
    }
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].type == KVEvent::Type::removed);
    CHECK(ev[0].block_hashes == std::vector<uint64_t>{order[i - 2]});
    mirror.apply(ev);
    mirror.check(c);
  }
}

TEST_CASE("kv_cache: events replay into a mirror of the findable pages after every step", "[kv_cache][events][model]") {
  for (const auto& [max_pages, sharing] : {std::pair{24u, true}, {80u, true}, {12u, true}, {24u, false}}) {
    const uint32_t ps = 4;
    auto c = make_events_cache(ps, max_pages, sharing);
    Mirror mirror(ps);
    std::map<SeqId, Tokens> model;
    std::map<SeqId, uint32_t> limit;  // shareable pages per sequence
    std::mt19937 rng(max_pages * 7919u + sharing);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    auto random_tokens = [&](std::size_t n) {
      Tokens t(n);
      for (auto& x : t) x = static_cast<TokenId>(pick(3));
      return t;
    };
    std::vector<SeqId> ids;
    for (SeqId s = 0; s < 10; ++s) ids.push_back(s);
    std::size_t failures = 0, stored = 0, removed = 0, cows = 0, hits = 0;
    KVPlan plan;
    for (int step = 0; step < 5000; ++step) {
      const SeqId seq = pick(10);
      const Snapshot before = snapshot(c, ids);
      const auto findable_before = c.findable_hashes();
      const std::size_t pending_before = c.pending_events();
      Status st;
      const uint32_t op = pick(100);
      const bool planned = op < 65;  // attach and append fill the plan
      if (op < 35) {
        Tokens t = model.count(seq) && pick(2) ? model[seq] : Tokens{};
        if (t.empty() && !model.empty()) {
          auto it = model.begin();
          std::advance(it, pick(static_cast<uint32_t>(model.size())));
          t = it->second;
        }
        t.resize(pick(max_pages > 24 ? 40 : 26), 0);
        for (std::size_t i = t.size() / 2 + pick(4); i < t.size(); ++i) t[i] = static_cast<TokenId>(pick(3));
        if (pick(20) == 0 && !t.empty()) t[pick(static_cast<uint32_t>(t.size()))] = -1;  // a failing call
        const std::size_t could = c.match_prefix(t.data(), t.size());
        const uint32_t how = pick(3);
        const int64_t prefix_len = how == 1 ? static_cast<int64_t>(pick(static_cast<uint32_t>(t.size()) + 1)) : -1;
        if (how == 2) {
          const std::size_t pn = pick(static_cast<uint32_t>(t.size()) + 1);
          st = c.attach(seq, t.data(), t.size(), t.data(), pn, &plan);
          if (st) limit[seq] = static_cast<uint32_t>(pn / ps);
        } else {
          st = c.attach(seq, t.data(), t.size(), prefix_len, &plan);
          if (st) limit[seq] = prefix_len < 0 ? ~0u : static_cast<uint32_t>(prefix_len / ps);
        }
        if (st) {
          model[seq] = t;
          const auto table = c.block_table(seq).value();
          REQUIRE(plan.block_table == table);
          REQUIRE(plan.cached_tokens % ps == 0);
          REQUIRE(plan.compute_from == plan.cached_tokens);
          const std::size_t expect = sharing ? std::min<std::size_t>(could / ps, limit[seq]) * ps : 0;
          REQUIRE(plan.cached_tokens == expect);
          REQUIRE(plan.new_pages == tail_of(table, plan.cached_tokens / ps));
          REQUIRE(plan.copies.empty());
          hits += plan.cached_tokens > 0;
        }
      } else if (op < 65) {
        Tokens t = random_tokens(pick(11));
        const bool had = model.count(seq) == 1;
        const auto old_table = had ? c.block_table(seq).value() : std::vector<PageId>{};
        const std::size_t old_len = had ? model[seq].size() : 0;
        const bool shared_partial_tail =
            had && !t.empty() && old_len % ps != 0 && c.page_refcount(old_table.back()) > 1;
        st = c.append(seq, t.data(), t.size(), &plan);
        if (st) {
          Tokens& m = model.at(seq);
          m.insert(m.end(), t.begin(), t.end());
          const auto table = c.block_table(seq).value();
          REQUIRE(plan.block_table == table);
          REQUIRE(plan.cached_tokens == old_len);
          REQUIRE(plan.compute_from == old_len);
          REQUIRE(plan.new_pages == (t.empty() ? std::vector<PageId>{} : tail_of(table, old_len / ps)));
          if (shared_partial_tail) {
            REQUIRE(plan.copies == std::vector<PageId>{old_table.back(), table[old_table.size() - 1]});
            ++cows;
          } else {
            REQUIRE(plan.copies.empty());
          }
        } else if (st.code() == Errc::not_found) {
          REQUIRE(!had);
        }
      } else if (op < 78) {
        const SeqId dst = pick(10);
        st = c.fork(seq, dst);
        if (st) {
          model[dst] = model.at(seq);
          limit[dst] = limit[seq];
        }
      } else if (op < 99) {
        REQUIRE(c.detach(seq) == (model.erase(seq) == 1));
      } else {
        c.clear();
        model.clear();
      }
      if (!st) {
        ++failures;
        if (planned) REQUIRE(plan_is_clear(plan));
        REQUIRE(snapshot(c, ids) == before);
        REQUIRE(c.findable_hashes() == findable_before);
        REQUIRE(c.pending_events() == pending_before);
      }
      for (SeqId s : ids) {
        REQUIRE(c.has(s) == (model.count(s) == 1));
        if (model.count(s)) REQUIRE(c.get(s).value() == model[s]);
      }
      const auto events = c.drain_events();
      for (const auto& e : events) {
        stored += e.type == KVEvent::Type::stored ? e.block_hashes.size() : 0;
        removed += e.type == KVEvent::Type::removed ? e.block_hashes.size() : 0;
      }
      mirror.apply(events);
      mirror.check(c);
      if (!sharing) REQUIRE(mirror.pages.empty());
    }
    CHECK(failures > 0);
    if (sharing) {
      CHECK(stored > 100);
      CHECK(removed > 10);
      CHECK(hits > 100);
    }
    CHECK(cows > 10);
  }
}

TEST_CASE("kv_cache: token storage grows in blocks: bytes stay near the tokens stored", "[kv_cache][memory]") {
  for (uint32_t ps : {512u, 16u, 4u}) {
    auto c = make_cache(ps, 200000);
    Tokens t(ps);
    uint32_t pages = 0;
    SeqId seq = 0;
    for (uint32_t target : {1u, 3u, 10u, 37u, 100u, 513u, 2000u, 5000u, 20000u}) {
      if (ps == 512 && target > 5000) break;  // keep the test quick
      while (pages < target) {
        for (auto& x : t) x = static_cast<TokenId>(pages * 7 + (&x - t.data()));
        REQUIRE(attach(c, seq++, t).ok());
        ++pages;
      }
      const double tokens_bytes = double(pages) * ps * sizeof(TokenId);
      const double bytes = double(c.stats().bytes);
      INFO("page size " << ps << ", " << pages << " pages: " << bytes << " bytes for " << tokens_bytes);
      // Tokens plus at most one 4 KB block of slack, plus per-page and per-sequence metadata.
      CHECK(bytes <= 1.1 * tokens_bytes + 4096 + 256.0 * pages);
      if (pages >= 100 && ps == 512) CHECK(bytes <= 1.1 * tokens_bytes);
    }
  }
}
