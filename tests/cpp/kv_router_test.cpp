// SPDX-License-Identifier: MIT
// KVRouter: prefix overlap, the four policies, approximate-mode LRU per worker, precise mode
// from KV events (llmds KVCache and vLLM-style engine hashes), serialization, bad input.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "llmds/block_hash.hpp"
#include "llmds/kv_cache.hpp"
#include "llmds/kv_router.hpp"

using namespace llmds;

namespace {

using Hashes = std::vector<uint64_t>;

KVRouter make(KVRouterOptions o = {}, std::vector<std::string> workers = {"a", "b", "c"}) {
  auto r = KVRouter::create(o);
  REQUIRE(r.ok());
  KVRouter router = std::move(r).value();
  for (const auto& w : workers) REQUIRE(router.add_worker(w).ok());
  return router;
}

/// Records `h` on `worker` (approximate mode): every other worker is made very busy for the
/// one route() call that records it.
void place(KVRouter& router, const std::string& worker, const Hashes& h) {
  for (const auto& w : router.workers()) {
    if (w != worker) REQUIRE(router.started(w, "busy-" + w, 4000000000u).ok());
  }
  auto d = router.route(h.data(), h.size(), "place");
  REQUIRE(d.ok());
  REQUIRE(d->worker == worker);
  for (const auto& w : router.workers()) {
    if (w != worker) REQUIRE(router.finished("busy-" + w).ok());
  }
}

uint32_t overlap_of(const RouteDecision& d, const std::string& worker) {
  for (const auto& c : d.candidates) {
    if (c.worker == worker) return c.overlap_blocks;
  }
  FAIL("no candidate " << worker);
  return 0;
}

RouteDecision route(KVRouter& router, const Hashes& h, std::string_view rid = {}) {
  auto d = router.route(h.data(), h.size(), rid);
  REQUIRE(d.ok());
  return std::move(d).value();
}

std::vector<int32_t> tokens(int32_t start, std::size_t n) {
  std::vector<int32_t> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = start + static_cast<int32_t>(i);
  return t;
}

}  // namespace

TEST_CASE("KVRouter: options are validated", "[kv_router]") {
  KVRouterOptions o;
  o.block_size = 0;
  CHECK(KVRouter::create(o).status().code() == Errc::invalid_argument);
  o = {};
  o.overlap_weight = -1;
  CHECK(KVRouter::create(o).status().code() == Errc::invalid_argument);
  o = {};
  o.capacity_blocks = 0;
  CHECK(KVRouter::create(o).status().code() == Errc::invalid_argument);
  o = {};
  o.sglang_cache_threshold = 1.5;
  CHECK(KVRouter::create(o).status().code() == Errc::invalid_argument);
  o = {};
  o.sglang_balance_rel = 0.5;
  CHECK(KVRouter::create(o).status().code() == Errc::invalid_argument);
  CHECK(KVRouter::create().ok());
}

TEST_CASE("KVRouter: workers are added, listed sorted, removed", "[kv_router]") {
  KVRouter r = make({}, {"http://b:8000", "http://a:8000", "zeta"});
  CHECK(r.workers() == std::vector<std::string>{"http://a:8000", "http://b:8000", "zeta"});
  CHECK(r.add_worker("zeta").code() == Errc::duplicate_id);
  CHECK(r.add_worker("").code() == Errc::invalid_argument);
  CHECK(r.remove_worker("nope").code() == Errc::not_found);
  REQUIRE(r.remove_worker("http://b:8000").ok());
  CHECK(r.workers() == std::vector<std::string>{"http://a:8000", "zeta"});
  CHECK(r.stats().workers == 2);
  REQUIRE(r.add_worker("b2").ok());  // reuses the freed slot
  CHECK(r.workers() == std::vector<std::string>{"b2", "http://a:8000", "zeta"});
  KVRouter empty = make({}, {});
  const Hashes h{1, 2};
  CHECK(empty.route(h.data(), h.size()).status().code() == Errc::not_found);
  CHECK(empty.route_text("hello").status().code() == Errc::not_found);
}

TEST_CASE("KVRouter: overlap is the leading run of held blocks", "[kv_router]") {
  KVRouter r = make();
  place(r, "a", {1, 2, 3, 4});
  place(r, "b", {1, 2, 9});
  place(r, "c", {5});
  CHECK(r.stats().indexed_blocks == 8);
  CHECK(r.stats().unique_blocks == 6);
  auto d = route(r, {1, 2, 3, 4, 6});
  CHECK(overlap_of(d, "a") == 4);
  CHECK(overlap_of(d, "b") == 2);
  CHECK(overlap_of(d, "c") == 0);
  CHECK(d.worker == "a");
  CHECK(d.overlap_blocks == 4);
  CHECK(d.overlap_tokens == 4 * 16);
  // b holds 9, but drops out at its first miss (7).
  d = route(r, {1, 7, 9});
  CHECK(overlap_of(d, "b") == 1);
  CHECK(overlap_of(d, "a") == 1);
  // Nobody holds the first block: overlap 0 everywhere, although a holds 2, 3.
  d = route(r, {8, 2, 3});
  for (const auto& c : d.candidates) CHECK(c.overlap_blocks == 0);
  d = route(r, {});
  CHECK(d.overlap_blocks == 0);
  CHECK(d.worker == "a");  // all costs 0, loads 0: by id
}

TEST_CASE("KVRouter: cache_aware cost, overlap weight, ties by load then id", "[kv_router]") {
  KVRouter r = make();
  place(r, "a", {1, 2, 3, 4});
  place(r, "b", {1, 2});
  const uint64_t routed = r.stats().routed;
  auto d = route(r, {1, 2, 3, 4});
  CHECK(d.worker == "a");
  REQUIRE(d.candidates.size() == 3);
  CHECK(d.candidates[0].worker == "a");
  CHECK(d.candidates[0].score == 0);
  CHECK(d.candidates[1].worker == "b");
  CHECK(d.candidates[1].score == 2);
  CHECK(d.candidates[2].score == 4);
  CHECK(r.stats().routed == routed + 1);
  // 5 blocks decoding on a (80 tokens): a costs 5, b 2 + 0.
  REQUIRE(r.started("a", "r1", 80).ok());
  CHECK(r.load("a").value() == 5);
  d = route(r, {1, 2, 3, 4});
  CHECK(d.worker == "b");
  CHECK(d.candidates[0].score == 2);
  CHECK(d.candidates[1].worker == "c");  // c: 4 + 0, a: 0 + 5
  CHECK(d.candidates[2].worker == "a");
  CHECK(d.candidates[2].load == 5);
  // 1 more block on b (1 token rounds up to a block): b = c = 3 < a = 5... b 2+1=3, c 4.
  REQUIRE(r.started("b", "r2", 1).ok());
  d = route(r, {1, 2, 3, 4});
  CHECK(d.worker == "b");
  CHECK(d.candidates[0].score == 3);
  // Tie on score: a = 0 + 5 and c = 4 + 1 -> the lower load wins (c).
  REQUIRE(r.started("c", "r3", 16).ok());
  REQUIRE(r.finished("r2").ok());
  REQUIRE(r.started("b", "r4", 16 * 3).ok());  // b = 2 + 3 = 5
  d = route(r, {1, 2, 3, 4});
  CHECK(d.candidates[0].score == 5);
  CHECK(d.candidates[1].score == 5);
  CHECK(d.candidates[2].score == 5);
  CHECK(d.worker == "c");             // load 1
  CHECK(d.candidates[1].worker == "b");  // load 3
  CHECK(d.candidates[2].worker == "a");  // load 5
  // Same score, same load: by id.
  REQUIRE(r.finished("r1").ok());
  REQUIRE(r.finished("r3").ok());
  REQUIRE(r.finished("r4").ok());
  d = route(r, {7, 8});
  CHECK(d.worker == "a");
  CHECK(d.candidates[1].worker == "b");
  CHECK(d.candidates[2].worker == "c");

  KVRouterOptions o;
  o.overlap_weight = 2;
  KVRouter w = make(o);
  place(w, "a", {1, 2, 3, 4});
  REQUIRE(w.started("a", "x", 16 * 7).ok());  // a: 2 × 0 + 7 = 7; b: 2 × 4 + 0 = 8
  d = route(w, {1, 2, 3, 4});
  CHECK(d.worker == "a");
  CHECK(d.candidates[1].score == 8);
}

TEST_CASE("KVRouter: started / finished bookkeeping", "[kv_router]") {
  KVRouter r = make();
  CHECK(r.started("zz", "x", 10).code() == Errc::not_found);
  CHECK(r.started("a", "", 10).code() == Errc::invalid_argument);
  REQUIRE(r.started("a", "x", 33).ok());
  CHECK(r.load("a").value() == 3);
  CHECK(r.started("b", "x", 10).code() == Errc::duplicate_id);
  CHECK(r.finished("y").code() == Errc::not_found);
  REQUIRE(r.finished("x").ok());
  CHECK(r.load("a").value() == 0);
  CHECK(r.finished("x").code() == Errc::not_found);
  CHECK(r.load("zz").status().code() == Errc::not_found);
  // remove_worker drops its in-flight requests.
  REQUIRE(r.started("b", "q", 16).ok());
  REQUIRE(r.remove_worker("b").ok());
  CHECK(r.finished("q").code() == Errc::not_found);
  REQUIRE(r.add_worker("b").ok());
  CHECK(r.load("b").value() == 0);
}

TEST_CASE("KVRouter: least_loaded and round_robin", "[kv_router]") {
  KVRouterOptions o;
  o.policy = KVRouterOptions::least_loaded;
  KVRouter r = make(o);
  place(r, "a", {1, 2, 3});
  REQUIRE(r.started("a", "1", 16).ok());
  REQUIRE(r.started("b", "2", 32).ok());
  auto d = route(r, {1, 2, 3});
  CHECK(d.worker == "c");  // the cache on a does not matter
  CHECK(d.candidates[0].score == 0);
  CHECK(d.candidates[1].worker == "a");
  CHECK(d.candidates[1].score == 1);
  REQUIRE(r.started("c", "3", 16).ok());
  d = route(r, {1, 2, 3});
  CHECK(d.worker == "a");  // a = c = 1: by id

  o.policy = KVRouterOptions::round_robin;
  KVRouter rr = make(o);
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i) seen.push_back(route(rr, {1}).worker);
  CHECK(seen == std::vector<std::string>{"a", "b", "c", "a", "b"});
  auto d2 = route(rr, {1});
  CHECK(d2.worker == "c");
  CHECK(d2.candidates[0].score == 0);
  CHECK(d2.candidates[1].worker == "a");
  CHECK(d2.candidates[2].worker == "b");
}

TEST_CASE("KVRouter: sglang cache threshold with load-balance override", "[kv_router]") {
  KVRouterOptions o;
  o.policy = KVRouterOptions::sglang;
  o.sglang_cache_threshold = 0.5;
  o.sglang_balance_abs = 10;
  o.sglang_balance_rel = 1.5;
  KVRouter r = make(o);
  place(r, "b", {1, 2, 3, 4});
  // Balanced, match 4/4 >= 0.5: b.
  auto d = route(r, {1, 2, 3, 4});
  CHECK(d.worker == "b");
  CHECK(d.candidates[0].score == 0);
  // Match 2/5 < 0.5: the least loaded (all 0: by id).
  d = route(r, {1, 2, 7, 8, 9});
  CHECK(d.worker == "a");
  // b is busier, but within the thresholds (12 − 0 > 10 but not imbalanced when min > 0...).
  REQUIRE(r.started("a", "ra", 16 * 8).ok());
  REQUIRE(r.started("c", "rc", 16 * 8).ok());
  REQUIRE(r.started("b", "rb", 16 * 12).ok());  // max − min = 4 <= 10: balanced
  d = route(r, {1, 2, 3, 4});
  CHECK(d.worker == "b");
  REQUIRE(r.finished("rb").ok());
  REQUIRE(r.started("b", "rb", 16 * 20).ok());  // 20 − 8 = 12 > 10 and 20 > 1.5 × 8: imbalanced
  d = route(r, {1, 2, 3, 4});
  CHECK(d.worker == "a");
  CHECK(d.candidates[0].score == 8);  // balance mode: score = load
  REQUIRE(r.finished("rb").ok());
  REQUIRE(r.started("b", "rb", 16 * 19).ok());  // 19 − 8 = 11 > 10 but 19 > 12: still imbalanced
  CHECK(route(r, {1, 2, 3, 4}).worker == "a");
  REQUIRE(r.finished("ra").ok());
  REQUIRE(r.finished("rc").ok());
  REQUIRE(r.finished("rb").ok());
  REQUIRE(r.started("a", "ra", 16 * 100).ok());
  REQUIRE(r.started("b", "rb", 16 * 110).ok());
  REQUIRE(r.started("c", "rc", 16 * 100).ok());  // 110 − 100 > 10 but 110 < 150: balanced
  CHECK(route(r, {1, 2, 3, 4}).worker == "b");
}

TEST_CASE("KVRouter: approximate mode records routed prompts, LRU per worker within capacity", "[kv_router]") {
  KVRouterOptions o;
  o.capacity_blocks = 4;
  KVRouter r = make(o, {"a", "b"});
  REQUIRE(r.add_worker("big", 100).ok());
  // Without a request id nothing is recorded.
  route(r, {1, 2, 3});
  CHECK(r.stats().indexed_blocks == 0);
  place(r, "a", {1, 2, 3});
  CHECK(r.worker_blocks("a").value() == 3);
  // Two new blocks, one free: a's least recent block goes, and that is 3, the leaf of the first
  // prompt (recorded leaf first, root last), so {1, 2} stays a usable prefix.
  place(r, "a", {4, 5});
  CHECK(r.worker_blocks("a").value() == 4);
  auto d = route(r, {1, 2, 3});
  CHECK(overlap_of(d, "a") == 2);
  CHECK(overlap_of(route(r, {4, 5}), "a") == 2);
  // Re-routing {1, 2} refreshes it: the next eviction takes 5, then 4.
  place(r, "a", {1, 2});
  place(r, "a", {6});
  CHECK(overlap_of(route(r, {4, 5}), "a") == 1);
  CHECK(overlap_of(route(r, {1, 2}), "a") == 2);
  // A prompt longer than the capacity: its first 4 blocks are kept.
  place(r, "b", {10, 11, 12, 13, 14, 15});
  CHECK(r.worker_blocks("b").value() == 4);
  CHECK(overlap_of(route(r, {10, 11, 12, 13, 14, 15}), "b") == 4);
  // Per-worker capacity.
  place(r, "big", {10, 11, 12, 13, 14, 15});
  CHECK(r.worker_blocks("big").value() == 6);
  CHECK(r.stats().indexed_blocks == 14);
  // remove_worker drops its entries; shared blocks stay with the others.
  REQUIRE(r.remove_worker("b").ok());
  CHECK(r.stats().indexed_blocks == 10);
  CHECK(overlap_of(route(r, {10, 11, 12, 13, 14, 15}), "big") == 6);
  REQUIRE(r.add_worker("b").ok());
  CHECK(overlap_of(route(r, {10, 11}), "b") == 0);
  // Precise-mode calls are rejected.
  const auto t = tokens(0, 4);
  const uint64_t h = 1;
  const auto before = r.serialize();
  CHECK(r.apply_stored("a", &h, 1, false, 0, t.data(), 4, 4).code() == Errc::invalid_argument);
  CHECK(r.apply_removed("a", &h, 1).code() == Errc::invalid_argument);
  CHECK(r.apply_cleared("a").code() == Errc::invalid_argument);
  CHECK(r.serialize() == before);
}

TEST_CASE("KVRouter: many workers (wider bitsets) keep their blocks", "[kv_router]") {
  KVRouter r = make({}, {});
  for (int i = 0; i < 150; ++i) REQUIRE(r.add_worker("w" + std::to_string(1000 + i)).ok());
  place(r, "w1130", {1, 2, 3});
  place(r, "w1001", {1, 2});
  REQUIRE(r.add_worker("w9999").ok());
  auto d = route(r, {1, 2, 3});
  CHECK(d.worker == "w1130");
  CHECK(overlap_of(d, "w1001") == 2);
  CHECK(overlap_of(d, "w9999") == 0);
  CHECK(d.candidates.size() == 151);
  for (int i = 0; i < 150; ++i) REQUIRE(r.remove_worker("w" + std::to_string(1000 + i)).ok());
  CHECK(r.stats().indexed_blocks == 0);
  CHECK(r.stats().unique_blocks == 0);
}

TEST_CASE("KVRouter: route_tokens and route_text hash like block_hashes / text_block_hashes", "[kv_router]") {
  KVRouterOptions o;
  o.block_size = 4;
  KVRouter r = make(o, {"a", "b"});
  const auto t = tokens(100, 18);  // 4 full blocks
  auto h = block_hashes(t.data(), t.size(), 4).value();
  place(r, "b", h);
  auto d = r.route_tokens(t.data(), 10);  // 2 full blocks
  REQUIRE(d.ok());
  CHECK(d->worker == "b");
  CHECK(d->overlap_blocks == 2);
  CHECK(d->overlap_tokens == 8);
  std::vector<int32_t> bad = t;
  bad[3] = -1;
  CHECK(r.route_tokens(bad.data(), bad.size()).status().code() == Errc::invalid_argument);
  const std::string text(400, 'x');
  place(r, "a", text_block_hashes(text));
  d = r.route_text(text.substr(0, 300));
  REQUIRE(d.ok());
  CHECK(d->worker == "a");
  CHECK(d->overlap_blocks == 2);
  CHECK(d->overlap_tokens == 256);
}

TEST_CASE("KVRouter: precise mode mirrors an llmds KVCache from its events", "[kv_router]") {
  KVRouterOptions o;
  o.block_size = 4;
  o.mode = KVRouterOptions::precise;
  KVRouter r = make(o, {"gpu0", "gpu1"});
  KVCacheOptions ko;
  ko.page_size = 4;
  ko.max_pages = 6;
  ko.events = true;
  KVCache kv = KVCache::create(ko).value();
  auto feed = [&](const std::string& worker) {
    for (const KVEvent& e : kv.drain_events()) {
      Status st;
      if (e.type == KVEvent::Type::stored) {
        st = r.apply_stored(worker, e.block_hashes.data(), e.block_hashes.size(), e.has_parent, e.parent_hash,
                            e.tokens.data(), e.tokens.size(), 4);
      } else if (e.type == KVEvent::Type::removed) {
        st = r.apply_removed(worker, e.block_hashes.data(), e.block_hashes.size());
      } else {
        st = r.apply_cleared(worker);
      }
      REQUIRE(st.ok());
    }
  };
  const auto a = tokens(0, 17);
  REQUIRE(kv.attach(1, a.data(), 8).ok());
  feed("gpu1");
  REQUIRE(kv.attach(2, a.data(), 17).ok());  // extends the prefix: a stored event with a parent
  feed("gpu1");
  CHECK(r.worker_blocks("gpu1").value() == 4);
  auto d = r.route_tokens(a.data(), a.size(), "ignored in precise mode");
  REQUIRE(d.ok());
  CHECK(d->worker == "gpu1");
  CHECK(d->overlap_blocks == 4);
  CHECK(r.stats().indexed_blocks == 4);  // route() recorded nothing
  // Mirror: the router holds exactly the cache's findable pages.
  auto mirrored = [&] {
    std::vector<uint64_t> held;
    for (uint64_t hh : kv.findable_hashes()) {
      auto dd = r.route(&hh, 1);
      if (overlap_of(dd.value(), "gpu1") == 1) held.push_back(hh);
    }
    return held.size() == kv.findable_hashes().size() && r.worker_blocks("gpu1").value() == held.size();
  };
  CHECK(mirrored());
  // Evictions: detach and fill the cache with other tokens.
  kv.detach(1);
  kv.detach(2);
  const auto b = tokens(500, 16);
  REQUIRE(kv.attach(3, b.data(), b.size()).ok());
  feed("gpu1");
  CHECK(mirrored());
  CHECK(r.worker_blocks("gpu1").value() == kv.findable_hashes().size());
  kv.clear();
  feed("gpu1");
  CHECK(r.worker_blocks("gpu1").value() == 0);
  CHECK(r.stats().indexed_blocks == 0);
}

TEST_CASE("KVRouter: precise mode with vLLM-style engine hashes", "[kv_router]") {
  KVRouterOptions o;
  o.block_size = 4;
  o.mode = KVRouterOptions::precise;
  KVRouter r = make(o, {"v0", "v1"});
  const auto t = tokens(7, 16);
  const Hashes router = block_hashes(t.data(), t.size(), 4).value();
  // The engine's own hashes: unrelated numbers.
  const Hashes engine{0xE1, 0xE2, 0xE3, 0xE4};
  REQUIRE(r.apply_stored("v0", engine.data(), 2, false, 0, t.data(), 8, 4).ok());
  // The rest, chained through the engine's hash of the parent.
  REQUIRE(r.apply_stored("v0", engine.data() + 2, 2, true, 0xE2, t.data() + 8, 8, 4).ok());
  auto d = route(r, router);
  CHECK(d.worker == "v0");
  CHECK(d.overlap_blocks == 4);
  // Re-storing a known block is a no-op.
  const auto snap = r.serialize();
  REQUIRE(r.apply_stored("v0", engine.data(), 1, false, 0, t.data(), 4, 4).ok());
  CHECK(r.serialize() == snap);
  // Bad events change nothing.
  CHECK(r.apply_stored("v0", engine.data(), 2, false, 0, t.data(), 8, 8).code() == Errc::invalid_argument);  // size
  CHECK(r.apply_stored("v0", engine.data(), 2, false, 0, t.data(), 7, 4).code() == Errc::invalid_argument);  // count
  const Hashes fresh{0xF1, 0xF2};
  CHECK(r.apply_stored("v0", fresh.data(), 1, true, 0x999, t.data(), 4, 4).code() == Errc::not_found);  // parent
  CHECK(r.apply_stored("v1", fresh.data(), 1, true, 0xE1, t.data(), 4, 4).code() == Errc::not_found);   // other worker's
  CHECK(r.apply_stored("nope", fresh.data(), 1, false, 0, t.data(), 4, 4).code() == Errc::not_found);
  // 0xE1 already names block 0: it cannot name block 1 of another chain.
  const auto u = tokens(1000, 8);
  const Hashes reuse{0xF1, 0xE1};
  CHECK(r.apply_stored("v0", reuse.data(), 2, false, 0, u.data(), 8, 4).code() == Errc::invalid_argument);
  const Hashes twice{0xF1, 0xF1};
  CHECK(r.apply_stored("v0", twice.data(), 2, false, 0, u.data(), 8, 4).code() == Errc::invalid_argument);
  std::vector<int32_t> neg = u;
  neg[5] = -3;
  CHECK(r.apply_stored("v0", fresh.data(), 2, false, 0, neg.data(), 8, 4).code() == Errc::invalid_argument);
  CHECK(r.serialize() == snap);
  // Removal by engine hash: removing block 2 leaves a prefix of 2 (block 3 is held but after a miss).
  const uint64_t e3 = 0xE3;
  REQUIRE(r.apply_removed("v0", &e3, 1).ok());
  CHECK(route(r, router).overlap_blocks == 2);
  CHECK(r.worker_blocks("v0").value() == 3);
  const uint64_t unknown = 0x12345;
  REQUIRE(r.apply_removed("v0", &unknown, 1).ok());  // ignored
  CHECK(r.apply_removed("nope", &unknown, 1).code() == Errc::not_found);
  // Two engine hashes for one block (another LoRA, same tokens): held until both are removed.
  const Hashes lora{0xAA};
  REQUIRE(r.apply_stored("v0", lora.data(), 1, false, 0, t.data(), 4, 4).ok());
  CHECK(r.worker_blocks("v0").value() == 3);
  const uint64_t e1 = 0xE1;
  REQUIRE(r.apply_removed("v0", &e1, 1).ok());
  CHECK(route(r, router).overlap_blocks == 2);  // block 0 is still named by 0xAA
  REQUIRE(r.apply_removed("v0", lora.data(), 1).ok());
  CHECK(route(r, router).overlap_blocks == 0);
  // An engine hash that is freed may name another block.
  REQUIRE(r.apply_stored("v0", &e1, 1, false, 0, u.data(), 4, 4).ok());
  REQUIRE(r.apply_cleared("v0").ok());
  CHECK(r.worker_blocks("v0").value() == 0);
  CHECK(r.stats().indexed_blocks == 0);
}

TEST_CASE("KVRouter: serialize round trip", "[kv_router]") {
  for (auto mode : {KVRouterOptions::approximate, KVRouterOptions::precise}) {
    KVRouterOptions o;
    o.block_size = 4;
    o.mode = mode;
    o.policy = KVRouterOptions::round_robin;
    o.capacity_blocks = 50;
    KVRouter r = make(o, {"x", "y", "z"});
    REQUIRE(r.add_worker("small", 3).ok());
    const auto t = tokens(3, 40);
    if (mode == KVRouterOptions::approximate) {
      for (int i = 0; i < 7; ++i) {
        const auto h = block_hashes(t.data() + i, 8 + 4 * static_cast<std::size_t>(i), 4).value();
        REQUIRE(r.route(h.data(), h.size(), "req").ok());
      }
    } else {
      const Hashes engine{5, 6, 7};
      REQUIRE(r.apply_stored("y", engine.data(), 3, false, 0, t.data(), 12, 4).ok());
      const auto same = block_hashes(t.data(), 8, 4).value();
      REQUIRE(r.apply_stored("z", same.data(), 2, false, 0, t.data(), 8, 4).ok());
      const Hashes lora{0};  // key 0 in the engine map
      REQUIRE(r.apply_stored("z", lora.data(), 1, false, 0, t.data(), 4, 4).ok());
      (void)r.route(same.data(), same.size());
    }
    REQUIRE(r.started("x", "inflight", 100).ok());
    const auto bytes = r.serialize();
    auto back = KVRouter::deserialize(bytes.data(), bytes.size());
    REQUIRE(back.ok());
    CHECK(back->serialize() == bytes);
    CHECK(back->workers() == r.workers());
    CHECK(back->stats().indexed_blocks == r.stats().indexed_blocks);
    CHECK(back->stats().routed == r.stats().routed);
    CHECK(back->load("x").value() == 0);  // loads are not saved
    REQUIRE(r.finished("inflight").ok());
    for (int i = 0; i < 6; ++i) {
      const auto h = block_hashes(t.data(), 4 * static_cast<std::size_t>(i), 4).value();
      auto d1 = r.route(h.data(), h.size());
      auto d2 = back->route(h.data(), h.size());
      REQUIRE(d1.ok());
      REQUIRE(d2.ok());
      CHECK(d1->worker == d2->worker);
      for (std::size_t k = 0; k < d1->candidates.size(); ++k) {
        CHECK(d1->candidates[k].worker == d2->candidates[k].worker);
        CHECK(d1->candidates[k].overlap_blocks == d2->candidates[k].overlap_blocks);
      }
    }
    if (mode == KVRouterOptions::precise) {
      const uint64_t e = 6;  // engine hashes survive the round trip
      REQUIRE(back->apply_removed("y", &e, 1).ok());
      CHECK(back->worker_blocks("y").value() == 2);
      const uint64_t zero = 0;
      REQUIRE(back->apply_removed("z", &zero, 1).ok());
      CHECK(back->worker_blocks("z").value() == 2);
    }
  }
}

TEST_CASE("KVRouter: deserialize rejects corrupt input", "[kv_router]") {
  KVRouterOptions o;
  o.block_size = 4;
  o.mode = KVRouterOptions::precise;
  KVRouter r = make(o, {"a", "b"});
  const auto t = tokens(3, 12);
  const Hashes engine{5, 6, 7};
  REQUIRE(r.apply_stored("a", engine.data(), 3, false, 0, t.data(), 12, 4).ok());
  const auto bytes = r.serialize();
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    auto bad = KVRouter::deserialize(bytes.data(), cut);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == Errc::corrupt_data);
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto flipped = bytes;
    flipped[i] ^= 0x20;
    auto bad = KVRouter::deserialize(flipped.data(), flipped.size());
    REQUIRE_FALSE(bad.ok());
    CHECK((bad.status().code() == Errc::corrupt_data || bad.status().code() == Errc::version_mismatch));
  }
  KVRouter other = make();  // approximate
  const auto ab = other.serialize();
  CHECK(KVRouter::deserialize(ab.data(), ab.size()).ok());
}

TEST_CASE("KVRouter: route_tokens (lazy hashing) decides and records exactly as route(block_hashes)", "[kv_router]") {
  KVRouterOptions o;
  o.block_size = 4;
  o.capacity_blocks = 40;
  KVRouter lazy = make(o), eager = make(o);
  std::mt19937 rng(5);
  std::vector<std::vector<int32_t>> prompts;
  for (int p = 0; p < 6; ++p) prompts.push_back(tokens(1000 * p, 30 + 13 * static_cast<std::size_t>(p)));
  for (int step = 0; step < 200; ++step) {
    auto t = prompts[rng() % prompts.size()];
    t.resize(rng() % (t.size() + 1));
    if (rng() % 3 == 0 && !t.empty()) t[rng() % t.size()] += 7;  // diverge somewhere
    const std::string rid = rng() % 2 ? "r" : "";
    const std::string worker = std::string(1, static_cast<char>('a' + rng() % 3));
    const std::string load_id = "L" + std::to_string(step);
    const uint32_t prompt_tokens = rng() % 64;
    REQUIRE(lazy.started(worker, load_id, prompt_tokens).ok());
    REQUIRE(eager.started(worker, load_id, prompt_tokens).ok());
    auto d1 = lazy.route_tokens(t.data(), t.size(), rid);
    const auto h = block_hashes(t.data(), t.size(), 4).value();
    auto d2 = eager.route(h.data(), h.size(), rid);
    REQUIRE(d1.ok());
    REQUIRE(d2.ok());
    CHECK(d1->worker == d2->worker);
    CHECK(d1->overlap_blocks == d2->overlap_blocks);
    CHECK(d1->candidates.size() == d2->candidates.size());
    CHECK(lazy.serialize() == eager.serialize());
  }
}

TEST_CASE("KVRouter: blocks whose hashes share one home slot (long probe runs, deletions)", "[kv_router]") {
  // Hashes whose Fibonacci home is slot 0 in every table of up to 128 slots: one cluster of 60,
  // so entries sit up to 59 slots from home (past the 15 the slots can record).
  Hashes same;
  for (uint64_t h = 1; same.size() < 60; ++h) {
    if (((h * 0x9E3779B97F4A7C15ull) >> 57) == 0) same.push_back(h);
  }
  KVRouterOptions o;
  o.capacity_blocks = 40;
  KVRouter r = make(o, {"a", "b"});
  const Hashes first(same.begin(), same.begin() + 40), second(same.begin() + 40, same.end());
  place(r, "a", first);
  CHECK(overlap_of(route(r, first), "a") == 40);
  place(r, "a", second);  // evicts the last 20 of `first`
  CHECK(r.worker_blocks("a").value() == 40);
  CHECK(r.stats().unique_blocks == 40);
  CHECK(overlap_of(route(r, first), "a") == 20);
  CHECK(overlap_of(route(r, second), "a") == 20);
  for (std::size_t i = 0; i < 60; ++i) {
    const uint64_t h = same[i];
    CHECK(overlap_of(route(r, {h}), "a") == (i < 20 || i >= 40 ? 1u : 0u));
  }
  place(r, "b", first);
  CHECK(r.stats().unique_blocks == 60);
  REQUIRE(r.remove_worker("a").ok());
  CHECK(r.stats().unique_blocks == 40);
  for (std::size_t i = 0; i < 60; ++i) {
    const uint64_t h = same[i];
    CHECK(overlap_of(route(r, {h}), "b") == (i < 40 ? 1u : 0u));
  }
  const auto bytes = r.serialize();
  auto back = KVRouter::deserialize(bytes.data(), bytes.size());
  REQUIRE(back.ok());
  CHECK(back->serialize() == bytes);
  CHECK(overlap_of(route(back.value(), first), "b") == 40);
}
