// SPDX-License-Identifier: MIT
// Out-of-memory in the middle of an operation (the SQLite malloc-test pattern): every mutating
// operation of every class runs with allocation 1, 2, 3, ... failing until it completes. After
// each failure the object must be exactly as before (the strong guarantee the wasm bindings
// rely on when they turn std::bad_alloc into an out_of_memory error); after the run that
// completes, object and result must equal those of a run without injected failures.
//
// A snapshot is a text rendering of everything observable: stats() (every field), contents
// (sequences, block tables, page states, queue order, search results) and serialize() bytes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "alloc_fault.hpp"
#include "llmds/admission.hpp"
#include "llmds/count_min_sketch.hpp"
#include "llmds/hnsw.hpp"
#include "llmds/indexed_heap.hpp"
#include "llmds/inverted_index.hpp"
#include "llmds/kv_cache.hpp"
#include "llmds/kv_router.hpp"
#include "llmds/block_hash.hpp"
#include "llmds/paged_allocator.hpp"
#include "llmds/retrieval_pipeline.hpp"
#include "llmds/scheduler.hpp"
#include "llmds/token_lru.hpp"
#include "llmds/tokenizer.hpp"

using namespace llmds;
using llmds_test::disarm_alloc_faults;
using llmds_test::FailAfter;

namespace {

uint64_t g_injected = 0;  // failures injected over the whole file (reported by the last test)

// ---- describing values -------------------------------------------------------------------
std::string describe(const Status& s) { return std::string(errc_name(s.code())) + ":" + s.message(); }
std::string describe(bool b) { return b ? "true" : "false"; }
std::string describe(const RouteDecision& d);
template <class T>
std::string describe(const Result<T>& r);
template <class T>
std::string join(const std::vector<T>& v) {
  std::ostringstream o;
  o.precision(17);
  for (const T& x : v) o << +x << ',';
  return o.str();
}
std::string hex(const std::vector<uint8_t>& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

/// Where two snapshots first differ, with some context, instead of both (serialize() bytes
/// make them long).
std::string difference(const std::string& want, const std::string& got) {
  std::size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  const std::size_t from = i < 60 ? 0 : i - 60;
  const std::size_t line = static_cast<std::size_t>(std::count(want.begin(), want.begin() + i, '\n')) + 1;
  return "snapshot line " + std::to_string(line) + ", offset " + std::to_string(i) + ":\n  expected ..." +
         want.substr(from, 120) + "\n  got      ..." + got.substr(from, 120);
}

/// Runs `op` on a fresh `make()` object with allocation n = 1, 2, ... failing, until it
/// completes; checks the strong guarantee after every failure and the outcome at the end.
/// Returns the number of injected failures.
template <class Make, class Snap, class Op>
uint64_t check_all_or_nothing(const std::string& what, Make make, Snap snap, Op op) {
  auto ref = make();
  const std::string want_result = op(ref);
  const std::string want = snap(ref);
  auto obj = make();
  std::string result;
  uint64_t failures = 0;
  for (uint64_t n = 1;; ++n) {
    const std::string before = snap(obj);
    bool threw = false, fired = false;
    {
      FailAfter guard(n);
      try {
        result = op(obj);
      } catch (const std::bad_alloc&) {
        threw = true;
      }
      fired = guard.fired();
    }
    if (!threw && fired) {
      // The operation absorbed the failure (an optional allocation such as shrinking a table):
      // it must still have done its job; its memory use may differ, so start over.
      if (result != want_result) FAIL(what << ": allocation " << n << " failed, absorbed, but the result differs");
      ++failures;
      obj = make();
      continue;
    }
    if (!threw) break;
    ++failures;
    const std::string after = snap(obj);
    if (after != before) {
      FAIL(what << ": allocation " << n << " failed and left the object changed; " << difference(before, after));
    }
    REQUIRE(n < 100000);
  }
  INFO(what << " after " << failures << " injected failures");
  CHECK(result == want_result);
  const std::string got = snap(obj);
  if (got != want) FAIL_CHECK(what << ": differs from a run without failures; " << difference(want, got));
  g_injected += failures;
  return failures;
}

// ---- the hook itself ---------------------------------------------------------------------------
// Direct operator calls: a compiler may elide the allocation of a new-expression, not these.
bool throws_bad_alloc(void* (*alloc)(), void (*release)(void*)) {
  try {
    release(alloc());
    return false;
  } catch (const std::bad_alloc&) {
    return true;
  }
}

TEST_CASE("alloc fault: FailAfter fails exactly the n-th allocation, in every operator new", "[alloc_fault]") {
  REQUIRE(llmds_test::alloc_fault_enabled());
  constexpr std::align_val_t kAl{64};
  using Alloc = void* (*)();
  using Release = void (*)(void*);
  const Alloc plain = [] { return ::operator new(8); };
  const Alloc array = [] { return ::operator new[](8); };
  const Alloc aligned = [] { return ::operator new(64, std::align_val_t{64}); };
  const Alloc aligned_array = [] { return ::operator new[](64, std::align_val_t{64}); };
  const Release free_plain = [](void* p) { ::operator delete(p); };
  const Release free_array = [](void* p) { ::operator delete[](p); };
  const Release free_aligned = [](void* p) { ::operator delete(p, std::align_val_t{64}); };
  const Release free_aligned_array = [](void* p) { ::operator delete[](p, std::align_val_t{64}); };
  const std::pair<Alloc, Release> kinds[] = {
      {plain, free_plain}, {array, free_array}, {aligned, free_aligned}, {aligned_array, free_aligned_array}};
  for (const auto& [alloc, release] : kinds) {
    bool first = true, second = true, third = true, fired = false;
    {
      FailAfter guard(2);
      first = throws_bad_alloc(alloc, release);
      second = throws_bad_alloc(alloc, release);
      third = throws_bad_alloc(alloc, release);  // one failure only: the guard disarmed itself
      fired = guard.fired();
    }
    CHECK_FALSE(first);
    CHECK(second);
    CHECK_FALSE(third);
    CHECK(fired);
  }
  void* p1 = nullptr;
  void* p2 = nullptr;
  void* p3 = nullptr;
  void* p4 = nullptr;
  {
    FailAfter guard(1);
    p1 = ::operator new(8, std::nothrow);
    FailAfter again(1);
    p2 = ::operator new[](8, std::nothrow);
    FailAfter aligned_guard(1);
    p3 = ::operator new(64, kAl, std::nothrow);
    FailAfter aligned_again(1);
    p4 = ::operator new[](64, kAl, std::nothrow);
  }
  CHECK(p1 == nullptr);
  CHECK(p2 == nullptr);
  CHECK(p3 == nullptr);
  CHECK(p4 == nullptr);
  void* p = ::operator new(100, kAl);  // disarmed: succeeds, aligned
  CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
  ::operator delete(p, kAl);
}

// ---- KVCache ---------------------------------------------------------------------------------
std::vector<TokenId> seq_tokens(TokenId start, std::size_t n) {
  std::vector<TokenId> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = start + static_cast<TokenId>(i);
  return t;
}

std::string snap_kv(const KVCache& kv) {
  std::ostringstream o;
  const KVCacheStats s = kv.stats();
  o << "sequences=" << s.sequences << " total=" << s.total_pages << " used=" << s.used_pages
    << " free=" << s.free_pages << " cached=" << s.cached_pages << " shared=" << s.shared_pages
    << " hits=" << s.prefix_hits << " misses=" << s.prefix_misses << " hit_tokens=" << s.hit_tokens
    << " cow=" << s.cow_copies << " evictions=" << s.evictions << " tokens=" << s.tokens << " bytes=" << s.bytes
    << " payload_bytes=" << s.payload_bytes
    << "\nstates=" << join(kv.page_states()) << "\nfindable=" << join(kv.findable_hashes())
    << " pending_events=" << kv.pending_events() << '\n';
  for (SeqId seq = 0; seq < 16; ++seq) {
    if (!kv.has(seq)) continue;
    o << "seq " << seq << ": " << join(kv.get(seq).value()) << " pages " << join(kv.block_table(seq).value()) << '\n';
    const KVPayloadOptions& p = kv.payload();
    if (p.layers == 0) continue;
    const std::size_t len = kv.get(seq).value().size(), row = std::size_t{p.kv_heads} * p.head_dim;
    std::vector<float> k(len * row), v(len * row);
    for (uint32_t layer = 0; layer < p.layers; ++layer) {
      REQUIRE(kv.read_kv(seq, layer, 0, len, k.data(), v.data()).ok());
      o << "  layer " << layer << " k " << join(k) << " v " << join(v) << '\n';
    }
  }
  for (TokenId start : {0, 100, 200, 300, 400}) {
    const auto t = seq_tokens(start, 24);
    o << "match " << start << '=' << kv.match_prefix(t.data(), t.size()) << ' ';
  }
  return o.str();
}

std::string describe(const KVPlan& p) {
  return "plan cached=" + std::to_string(p.cached_tokens) + " from=" + std::to_string(p.compute_from) +
         " table=" + join(p.block_table) + " new=" + join(p.new_pages) + " copies=" + join(p.copies);
}
std::string describe(const std::vector<KVEvent>& events) {
  std::string out = "events:";
  for (const KVEvent& e : events) {
    out += " type=" + std::to_string(static_cast<int>(e.type)) + " hashes=" + join(e.block_hashes) +
           " parent=" + (e.has_parent ? std::to_string(e.parent_hash) : "none") + " tokens=" + join(e.tokens) + ';';
  }
  return out;
}
/// The outcome of a call made with a fault armed: the hook is disarmed first, since describing
/// the outcome allocates.
template <class Outcome>
std::string disarmed(const Outcome& outcome) {
  disarm_alloc_faults();
  return describe(outcome);
}

/// What a planned call returns: its status, its plan, and the events it recorded (drained
/// after the run, with faults disarmed).
std::string planned(KVCache& kv, const Status& st, const KVPlan& plan) {
  disarm_alloc_faults();
  return describe(st) + ' ' + describe(plan) + ' ' + describe(kv.drain_events());
}

/// page_size 4, `max_pages` pages: seq 1 = 0..9, seq 2 = 0..13 (shares seq 1's two full
/// pages), seq 3 = 100..111 detached (three cached pages), seq 4 forked from seq 2. With
/// `events`, the setup's events stay pending.
/// K/V values for the payload configurations: n positions x 2 heads x 3 dims from `start`.
std::vector<float> kv_values(float start, std::size_t n) {
  std::vector<float> x(n * 6);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = start + 0.25f * static_cast<float>(i);
  return x;
}

/// With `payload` (2 layers, 2 KV heads, head_dim 3, f32 or f16), every written position of
/// seq 1, 2 and 3 holds K/V (seq 3's stay in its cached pages) before the fork.
KVCache make_kv(uint32_t max_pages, bool sharing = true, bool events = false, int payload = 0) {
  KVCacheOptions options;
  options.page_size = 4;
  options.max_pages = max_pages;
  options.enable_prefix_sharing = sharing;
  options.events = events;
  if (payload != 0) options.kv = {2, 2, 3, payload == 2 ? KVDtype::f16 : KVDtype::f32};
  auto r = KVCache::create(options);
  REQUIRE(r.ok());
  KVCache kv = std::move(r).value();
  const auto a = seq_tokens(0, 14);
  const auto b = seq_tokens(100, 12);
  const auto k = kv_values(1.0f, 14), v = kv_values(-50.0f, 14);
  auto write = [&](SeqId seq, uint32_t from, const std::vector<float>& x, const std::vector<float>& y, std::size_t n) {
    for (uint32_t layer = 0; layer < 2 && payload != 0; ++layer) {
      REQUIRE(kv.write_kv(seq, layer, from, x.data(), y.data(), n).ok());
    }
  };
  REQUIRE(kv.attach(1, a.data(), 10).ok());
  write(1, 0, k, v, 10);
  REQUIRE(kv.attach(2, a.data(), 14).ok());  // shares seq 1's two full pages and their K/V
  write(2, 8, k, v, 6);
  REQUIRE(kv.attach(3, b.data(), 12).ok());
  write(3, 0, v, k, 12);
  REQUIRE(kv.detach(3));
  REQUIRE(kv.fork(2, 4).ok());
  return kv;
}

TEST_CASE("alloc fault: KVCache operations are all-or-nothing", "[alloc_fault][kv_cache]") {
  REQUIRE(llmds_test::alloc_fault_enabled());
  const auto a = seq_tokens(0, 40);
  const auto b = seq_tokens(100, 40);
  const auto c = seq_tokens(200, 40);
  struct Config {
    uint32_t max_pages;
    bool sharing, events;
    int payload;  // 0: none, 1: f32, 2: f16
  };
  for (const Config& cfg : {Config{64, true, false, 0}, Config{9, true, false, 0}, Config{64, false, false, 0},
                            Config{64, true, true, 0}, Config{9, true, true, 0}, Config{64, false, true, 0},
                            Config{64, true, false, 1}, Config{9, true, true, 1}, Config{64, false, false, 2},
                            Config{9, true, false, 2}}) {
    // 9 pages: none free after make_kv, so attaches evict cached prefixes.
    const uint32_t max_pages = cfg.max_pages;
    const bool sharing = cfg.sharing, events = cfg.events;
    const int payload = cfg.payload;
    auto make = [max_pages, sharing, events, payload] { return make_kv(max_pages, sharing, events, payload); };
    const std::string tag = " (max_pages " + std::to_string(max_pages) + (sharing ? "" : ", no sharing") +
                            (events ? ", events" : "") +
                            (payload == 0 ? ")" : payload == 1 ? ", f32 payload)" : ", f16 payload)");
    auto kv_op = [&](const char* what, auto op) { check_all_or_nothing(what + tag, make, snap_kv, op); };
    if (payload != 0) {
      // write_kv: a private page; pages shared with seq 1 and seq 4 (copy-on-write, evicting
      // cached pages when max_pages is 9); more copies than can be made; a bad value.
      const auto k = kv_values(7.0f, 14), v = kv_values(-9.0f, 14);
      kv_op("write_kv into a private page", [&](KVCache& kv) { return disarmed(kv.write_kv(1, 1, 8, k.data(), v.data(), 2)); });
      kv_op("write_kv into shared pages (copy on write)", [&](KVCache& kv) {
        return disarmed(kv.write_kv(2, 0, 1, k.data(), v.data(), 11));
      });
      kv_op("write_kv into one shared page", [&](KVCache& kv) { return disarmed(kv.write_kv(4, 1, 13, k.data(), v.data(), 1)); });
      kv_op("write_kv needing more copies than pages", [&](KVCache& kv) {
        return disarmed(kv.write_kv(2, 0, 0, k.data(), v.data(), 14));
      });
      std::vector<float> bad = k;
      bad.back() = std::nanf("");
      kv_op("write_kv with a NaN", [&](KVCache& kv) { return disarmed(kv.write_kv(2, 0, 0, bad.data(), v.data(), 14)); });
      // Seq 2 with a pinned page (its published page 0 replaced by a private copy).
      auto make_pinned = [make, &k, &v] {
        KVCache kv = make();
        REQUIRE(kv.write_kv(2, 0, 0, k.data(), v.data(), 1).ok());
        return kv;
      };
      auto pinned_op = [&](const char* what, auto op) {
        check_all_or_nothing(std::string(what) + tag, make_pinned, snap_kv, op);
      };
      pinned_op("fork a sequence with a pin", [&](KVCache& kv) { return disarmed(kv.fork(2, 9)); });
      pinned_op("detach a sequence with a pin", [&](KVCache& kv) {
        const bool ok = kv.detach(2);
        disarm_alloc_faults();
        return describe(ok);
      });
      pinned_op("re-attach over a sequence with a pin", [&](KVCache& kv) { return disarmed(kv.attach(2, c.data(), 6)); });
      pinned_op("write_kv adding a second pin", [&](KVCache& kv) {
        return disarmed(kv.write_kv(2, 1, 4, k.data(), v.data(), 1));
      });
      pinned_op("attach hitting a pinned page", [&](KVCache& kv) { return disarmed(kv.attach(7, a.data(), 9)); });
    }
    kv_op("attach new", [&](KVCache& kv) { auto st = kv.attach(7, c.data(), 14); disarm_alloc_faults(); return describe(st); });
    kv_op("attach new, cached prefix hit", [&](KVCache& kv) {
      return disarmed(kv.attach(7, b.data(), 18));
    });
    kv_op("attach new, live prefix hit", [&](KVCache& kv) {
      return disarmed(kv.attach(7, a.data(), 17));
    });
    kv_op("attach with prefix_len", [&](KVCache& kv) {
      return disarmed(kv.attach(7, a.data(), 21, 9));
    });
    kv_op("attach with prefix tokens", [&](KVCache& kv) {
      return disarmed(kv.attach(7, b.data(), 16, b.data(), 8));
    });
    kv_op("re-attach over a sequence", [&](KVCache& kv) {
      return disarmed(kv.attach(1, c.data(), 13));
    });
    kv_op("re-attach over a sequence, sharing its own pages", [&](KVCache& kv) {
      return disarmed(kv.attach(2, a.data(), 22));
    });
    kv_op("attach beyond capacity", [&](KVCache& kv) {
      return disarmed(kv.attach(7, c.data(), 40));
    });
    kv_op("append to a private tail", [&](KVCache& kv) {
      return disarmed(kv.append(1, c.data(), 7));
    });
    kv_op("append to a shared tail (copy on write)", [&](KVCache& kv) {
      return disarmed(kv.append(2, c.data(), 9));
    });
    kv_op("append one token", [&](KVCache& kv) {
      return disarmed(kv.append(4, c.data(), 1));
    });
    kv_op("fork", [&](KVCache& kv) {
      return disarmed(kv.fork(1, 9));
    });
    kv_op("detach", [&](KVCache& kv) {
      bool ok = kv.detach(2);
      disarm_alloc_faults();
      return describe(ok);
    });
    // With a plan (reused: it has capacity from an earlier call, or none) and its events.
    for (bool warm : {false, true}) {
      const std::string w = warm ? ", warm plan" : "";
      auto plan_op = [&](const std::string& what, auto op) {
        kv_op((what + w).c_str(), [&, op](KVCache& kv) {
          KVPlan plan;
          if (warm) {
            plan.block_table.reserve(64);
            plan.new_pages.reserve(64);
            plan.copies.reserve(2);
          }
          const Status st = op(kv, plan);
          return planned(kv, st, plan);
        });
      };
      plan_op("planned attach new", [&](KVCache& kv, KVPlan& p) { return kv.attach(7, c.data(), 14, -1, &p); });
      plan_op("planned attach, cached prefix hit", [&](KVCache& kv, KVPlan& p) { return kv.attach(7, b.data(), 18, -1, &p); });
      plan_op("planned attach with prefix tokens", [&](KVCache& kv, KVPlan& p) {
        return kv.attach(7, a.data(), 21, a.data(), 9, &p);
      });
      plan_op("planned re-attach over a sequence", [&](KVCache& kv, KVPlan& p) { return kv.attach(2, a.data(), 22, -1, &p); });
      plan_op("planned attach beyond capacity", [&](KVCache& kv, KVPlan& p) { return kv.attach(7, c.data(), 40, -1, &p); });
      plan_op("planned append to a private tail", [&](KVCache& kv, KVPlan& p) { return kv.append(1, c.data(), 7, &p); });
      plan_op("planned append completing the tail", [&](KVCache& kv, KVPlan& p) { return kv.append(1, c.data(), 2, &p); });
      plan_op("planned append to a shared tail", [&](KVCache& kv, KVPlan& p) { return kv.append(2, c.data(), 9, &p); });
      plan_op("planned append one token", [&](KVCache& kv, KVPlan& p) { return kv.append(4, c.data(), 1, &p); });
    }
    kv_op("clear", [&](KVCache& kv) {
      kv.clear();
      disarm_alloc_faults();
      return describe(kv.drain_events());
    });
    kv_op("drain_events", [&](KVCache& kv) {
      return disarmed(kv.drain_events());
    });
  }
}

// ---- KVRouter --------------------------------------------------------------------------------
std::string snap_router(const KVRouter& r) {
  std::ostringstream o;
  const KVRouterStats s = r.stats();
  o << "workers=" << s.workers << " indexed=" << s.indexed_blocks << " unique=" << s.unique_blocks
    << " bytes=" << s.bytes << " routed=" << s.routed << " hits=" << s.hit_blocks << '\n';
  for (const std::string& w : r.workers()) {
    o << w << ": load=" << r.load(w).value() << " blocks=" << r.worker_blocks(w).value() << '\n';
  }
  o << hex(r.serialize());
  return o.str();
}
std::string describe(const RouteDecision& d) {
  std::ostringstream o;
  o << d.worker << ' ' << d.overlap_blocks << ' ' << d.overlap_tokens << ':';
  for (const auto& c : d.candidates) o << c.worker << '/' << c.overlap_blocks << '/' << c.load << '/' << c.score << ',';
  return o.str();
}
template <class T>
std::string describe(const Result<T>& r) {
  return r.ok() ? describe(r.value()) : describe(r.status());
}

/// block_size 4, workers a, b, c (capacity 6) and w-long-name-for-the-heap: prompts recorded
/// (approximate) or stored from events with engine hashes that differ (precise); loads.
KVRouter make_router(KVRouterOptions::Mode mode, KVRouterOptions::Policy policy) {
  KVRouterOptions o;
  o.block_size = 4;
  o.capacity_blocks = 6;
  o.mode = mode;
  o.policy = policy;
  auto created = KVRouter::create(o);
  REQUIRE(created.ok());
  KVRouter r = std::move(created).value();
  for (const char* w : {"a", "b", "c", "w-long-name-for-the-heap"}) REQUIRE(r.add_worker(w).ok());
  const auto t = seq_tokens(0, 40);
  if (mode == KVRouterOptions::approximate) {
    for (int i = 0; i < 4; ++i) {
      const auto h = block_hashes(t.data() + i, 16, 4).value();
      REQUIRE(r.route(h.data(), h.size(), "rid").ok());
    }
  } else {
    const uint64_t engine[] = {101, 102, 103};
    REQUIRE(r.apply_stored("a", engine, 3, false, 0, t.data(), 12, 4).ok());
    const auto same = block_hashes(t.data(), 8, 4).value();
    REQUIRE(r.apply_stored("b", same.data(), 2, false, 0, t.data(), 8, 4).ok());
  }
  REQUIRE(r.started("a", "r1", 20).ok());
  REQUIRE(r.started("b", "r2", 9).ok());
  return r;
}

TEST_CASE("alloc fault: KVRouter operations are all-or-nothing", "[alloc_fault][kv_router]") {
  REQUIRE(llmds_test::alloc_fault_enabled());
  const auto t = seq_tokens(0, 60);
  const auto u = seq_tokens(500, 60);
  for (auto mode : {KVRouterOptions::approximate, KVRouterOptions::precise}) {
    for (auto policy : {KVRouterOptions::cache_aware, KVRouterOptions::round_robin}) {
      auto make = [mode, policy] { return make_router(mode, policy); };
      const std::string tag = std::string(mode == KVRouterOptions::precise ? " (precise" : " (approximate") +
                              (policy == KVRouterOptions::round_robin ? ", round robin)" : ")");
      auto op = [&](const char* what, auto f) { check_all_or_nothing(what + tag, make, snap_router, f); };
      op("add_worker", [&](KVRouter& r) { return disarmed(r.add_worker("new-worker-with-a-long-name", 3)); });
      // The 65th worker widens every block's worker bitset.
      auto make64 = [mode, policy] {
        KVRouter r = make_router(mode, policy);
        for (int i = 0; i < 60; ++i) REQUIRE(r.add_worker("x" + std::to_string(100 + i)).ok());
        return r;
      };
      check_all_or_nothing("add_worker, 65th (wider bitsets)" + tag, make64, snap_router,
                           [&](KVRouter& r) { return disarmed(r.add_worker("the-65th")); });
      op("remove_worker", [&](KVRouter& r) { return disarmed(r.remove_worker("a")); });
      op("route", [&](KVRouter& r) {
        const auto h = block_hashes(t.data() + 2, 16, 4).value();
        return disarmed(r.route(h.data(), h.size()));
      });
      op("route with a request id (records, evicts)", [&](KVRouter& r) {
        const auto h = block_hashes(u.data(), 20, 4).value();
        return disarmed(r.route(h.data(), h.size(), "req"));
      });
      op("route_tokens with a request id", [&](KVRouter& r) {
        return disarmed(r.route_tokens(t.data() + 1, 30, "req"));
      });
      op("route_text", [&](KVRouter& r) { return disarmed(r.route_text(std::string(300, 'q'), "req")); });
      op("started", [&](KVRouter& r) { return disarmed(r.started("c", "a-request-id-that-is-long", 33)); });
      op("finished", [&](KVRouter& r) { return disarmed(r.finished("r1")); });
      op("apply_stored, new blocks after a parent", [&](KVRouter& r) {
        const uint64_t engine[] = {201, 202, 203, 204};
        const uint64_t parent = mode == KVRouterOptions::precise ? 102 : 0;
        return disarmed(r.apply_stored("a", engine, 4, true, parent, t.data() + 8, 16, 4));
      });
      op("apply_stored, router hashes", [&](KVRouter& r) {
        const auto h = block_hashes(u.data(), 24, 4).value();
        return disarmed(r.apply_stored("c", h.data(), h.size(), false, 0, u.data(), 24, 4));
      });
      op("apply_removed", [&](KVRouter& r) {
        const uint64_t engine[] = {102, 999};
        return disarmed(r.apply_removed("a", engine, 2));
      });
      op("apply_cleared", [&](KVRouter& r) { return disarmed(r.apply_cleared("a")); });
      const std::vector<uint8_t> bytes = make().serialize();
      op("deserialize", [&](KVRouter& r) {
        auto back = KVRouter::deserialize(bytes.data(), bytes.size());
        if (back.ok()) r = std::move(back).value();
        return disarmed(back.status());
      });
    }
  }
}

// ---- PagedAllocator ----------------------------------------------------------------------
std::string snap_pages(const PagedAllocator& a) {
  std::ostringstream o;
  const PagedAllocatorStats s = a.stats();
  o << s.total_pages << ' ' << s.allocated_pages << ' ' << s.free_pages << ' ' << s.utilization << ' '
    << s.allocation_count << ' ' << s.free_count << ' ' << a.high_water() << ' ' << a.memory_bytes() << ":";
  for (PageId p = 0; p < 40; ++p) o << a.is_allocated(p);
  return o.str();
}

TEST_CASE("alloc fault: PagedAllocator operations are all-or-nothing", "[alloc_fault][paged_allocator]") {
  auto make = [] {
    auto r = PagedAllocator::create({16, 40});
    REQUIRE(r.ok());
    PagedAllocator a = std::move(r).value();
    auto ids = a.alloc(7);
    REQUIRE(ids.ok());
    const PageId back[] = {2, 5};
    REQUIRE(a.free(back, 2).ok());
    return a;
  };
  check_all_or_nothing("alloc", make, snap_pages, [](PagedAllocator& a) {
    auto r = a.alloc(9);
    disarm_alloc_faults();
    return r.ok() ? join(*r) : describe(r.status());
  });
  for (uint32_t taken = 0; taken < 20; ++taken) {  // every size of the table, so some calls grow it
    auto make_taken = [taken] {
      PagedAllocator a = PagedAllocator::create({16, 40}).value();
      for (uint32_t i = 0; i < taken; ++i) a.alloc_one();
      return a;
    };
    check_all_or_nothing("alloc_one after " + std::to_string(taken), make_taken, snap_pages, [](PagedAllocator& a) {
      const PageId p = a.alloc_one();
      return std::to_string(p);
    });
    check_all_or_nothing("alloc(3) after " + std::to_string(taken), make_taken, snap_pages, [](PagedAllocator& a) {
      auto r = a.alloc(3);
      disarm_alloc_faults();
      return r.ok() ? join(*r) : describe(r.status());
    });
  }
  check_all_or_nothing("free", make, snap_pages, [](PagedAllocator& a) {
    const PageId ids[] = {0, 1, 6};
    return disarmed(a.free(ids, 3));
  });
  for (const std::vector<PageId>& bad : {std::vector<PageId>{0, 1, 1}, {0, 1, 2}, {0, 1, 99}}) {
    check_all_or_nothing("free refused (" + join(bad) + ")", make, snap_pages, [bad](PagedAllocator& a) {
      return disarmed(a.free(bad.data(), bad.size()));
    });
  }
  check_all_or_nothing("free_one", make, snap_pages, [](PagedAllocator& a) {
    a.free_one(3);
    a.free_one(4);
    return std::string();
  });
}

// ---- Scheduler ---------------------------------------------------------------------------
std::string snap_sched(const Scheduler& s) {
  std::ostringstream o;
  o.precision(17);
  const SchedulerStats st = s.stats();
  o << st.queued << ' ' << st.in_flight << ' ' << st.queued_tokens << ' ' << st.batches << ' ' << st.dispatched << ' '
    << st.completed << ' ' << st.cancelled << ' ' << st.avg_batch_size << ' ' << st.slo_met << ' ' << st.slo_missed
    << " next=" << s.next_request_id() << " mem=" << s.memory_bytes() << " ready=" << s.ready_at(100.0).value_or(-1)
    << "\nstates=";
  for (RequestId id = 0; id < 40; ++id) o << static_cast<int>(s.state(id));
  // The queue order: drain a copy.
  Scheduler copy = s;
  for (int i = 0; i < 20 && copy.queued() > 0; ++i) o << " [" << join(copy.get_batch(1e9, true).value()) << ']';
  return o.str();
}

// window: max_demotion_ms; 30 puts some overdue requests past their second deadline by t = 200.
Scheduler make_sched(bool custom, uint32_t extra = 0, double window = SchedulerOptions{}.max_demotion_ms) {
  SchedulerOptions o;
  o.max_batch_size = 4;
  o.max_wait_ms = 10.0;
  o.max_batch_tokens = 1000;
  o.max_demotion_ms = window;
  if (custom) o.priority_fn = [](const ScheduledRequest& r) { return static_cast<double>(r.tokens % 7); };
  auto r = Scheduler::create(o);
  REQUIRE(r.ok());
  Scheduler s = std::move(r).value();
  for (uint32_t i = 0; i < 11; ++i) REQUIRE(s.submit(10 + 13 * i, i, i % 3 == 0 ? 5.0 + i : 0.0).ok());
  REQUIRE(s.get_batch(20.0).ok());  // four in flight (ids depend on the order)
  for (uint32_t i = 0; i < extra; ++i) REQUIRE(s.submit(5 + i, 21.0 + i, i % 2 ? 50.0 : 0.0).ok());
  return s;
}

TEST_CASE("alloc fault: Scheduler with caller priorities", "[alloc_fault][scheduler]") {
  auto make = [](uint32_t n) {
    SchedulerOptions o;
    o.max_batch_size = 3;
    o.external_priority = true;
    Scheduler s = Scheduler::create(o).value();
    for (uint32_t i = 0; i < n; ++i) REQUIRE(s.submit_with_priority(10, (i * 7) % 5, i).ok());
    return s;
  };
  for (uint32_t n = 0; n < 36; n += 5) {
    check_all_or_nothing("submit_with_priority after " + std::to_string(n), [&] { return make(n); }, snap_sched,
                         [](Scheduler& s) {
                           auto r = s.submit_with_priority(12, 2.5, 50.0, 20.0);
                           disarm_alloc_faults();
                           return r.ok() ? std::to_string(*r) : describe(r.status());
                         });
    check_all_or_nothing("get_batch after " + std::to_string(n), [&] { return make(n); }, snap_sched,
                         [](Scheduler& s) {
                           auto r = s.get_batch(500.0);
                           disarm_alloc_faults();
                           return r.ok() ? join(*r) : describe(r.status());
                         });
  }
}

TEST_CASE("alloc fault: Scheduler operations are all-or-nothing", "[alloc_fault][scheduler]") {
  for (int mode : {0, 1, 2}) {
    const bool custom = mode == 2;
    const double window = mode == 1 ? 30.0 : SchedulerOptions{}.max_demotion_ms;
    INFO("custom order " << custom << ", max_demotion_ms " << window);
    auto make = [=] { return make_sched(custom, 0, window); };
    const std::string tag = custom ? " (custom order)" : mode == 1 ? " (short demotion window)" : "";
    check_all_or_nothing("submit" + tag, make, snap_sched, [](Scheduler& s) {
      auto r = s.submit(77, 21.0, 30.0);
      disarm_alloc_faults();
      return r.ok() ? std::to_string(*r) : describe(r.status());
    });
    for (uint32_t extra = 1; extra < 40; ++extra) {  // every queue size, so some submits grow tables
      check_all_or_nothing("submit after " + std::to_string(extra) + tag, [=] { return make_sched(custom, extra, window); },
                           snap_sched, [](Scheduler& s) {
                             auto r = s.submit(9, 70.0, 30.0);
                             disarm_alloc_faults();
                             return r.ok() ? std::to_string(*r) : describe(r.status());
                           });
    }
    check_all_or_nothing("get_batch" + tag, make, snap_sched, [](Scheduler& s) {
      auto r = s.get_batch(200.0);
      disarm_alloc_faults();
      return r.ok() ? join(*r) : describe(r.status());
    });
    check_all_or_nothing("get_batch into a vector" + tag, make, snap_sched, [](Scheduler& s) {
      std::vector<RequestId> out{99};
      auto st = s.get_batch(200.0, true, out);
      disarm_alloc_faults();
      return describe(st) + join(out);
    });
    check_all_or_nothing("complete_batch" + tag, make, snap_sched, [](Scheduler& s) {
      std::vector<RequestId> ids;
      for (RequestId id = 0; id < 11; ++id) {
        if (s.state(id) == RequestState::in_flight) ids.push_back(id);
      }
      auto st = s.complete_batch(ids, 25.0);
      disarm_alloc_faults();
      return describe(st);
    });
    check_all_or_nothing("complete_batch refused" + tag, make, snap_sched, [](Scheduler& s) {
      std::vector<RequestId> ids;
      for (RequestId id = 0; id < 11; ++id) {
        if (s.state(id) == RequestState::in_flight) ids.push_back(id);
      }
      for (RequestId id = 0; id < 11; ++id) {
        if (s.state(id) == RequestState::queued) {
          ids.push_back(id);  // still queued: the whole call is refused, after marking the others
          break;
        }
      }
      return disarmed(s.complete_batch(ids, 25.0));
    });
    check_all_or_nothing("complete_batch with a repeat" + tag, make, snap_sched, [](Scheduler& s) {
      std::vector<RequestId> ids;
      for (RequestId id = 0; id < 11; ++id) {
        if (s.state(id) == RequestState::in_flight) ids.push_back(id);
      }
      ids.push_back(ids.front());
      return disarmed(s.complete_batch(ids, 25.0));
    });
    for (RequestId id : {0u, 3u, 10u, 30u}) {  // in flight or queued, depending on the order; unknown
      check_all_or_nothing("cancel " + std::to_string(id) + tag, make, snap_sched, [id](Scheduler& s) {
        const bool ok = s.cancel(id);
        return describe(ok);
      });
    }
  }
}

// ---- AdmissionController -----------------------------------------------------------------
std::string snap_admission(const AdmissionController& c) {
  std::ostringstream o;
  o.precision(17);
  AdmissionController copy = c;  // stats() advances the clock: look at a copy
  for (double t : {500.0, 900.0}) {
    const AdmissionStats s = copy.stats(t);
    o << s.current_qps << ' ' << s.target_qps << ' ' << s.current_token_rate << ' ' << s.token_rate_limit << ' '
      << s.admitted << ' ' << s.rejected << ' ' << s.rejection_rate << ' ' << s.pending_estimates << " retry "
      << copy.retry_after_ms(t, 50.0).value() << '\n';
  }
  return o.str();
}

TEST_CASE("alloc fault: AdmissionController operations are all-or-nothing", "[alloc_fault][admission]") {
  auto make_n = [](int n) {
    AdmissionOptions o;
    // Bursts large enough to admit every request: the deques grow across block boundaries.
    o.qps_target = 1000;
    o.token_rate_limit = 100000;
    o.request_burst = 100;
    o.token_burst = 10000;
    o.max_pending_estimates = 40;
    auto r = AdmissionController::create(o);
    REQUIRE(r.ok());
    AdmissionController c = std::move(r).value();
    for (int i = 0; i < n; ++i) REQUIRE(c.should_admit(2.0 * i, 1.0).ok());
    REQUIRE(c.record_request(70.0, 25.0).ok());
    return c;
  };
  auto make = [&] { return make_n(6); };
  for (int n = 0; n < 70; ++n) {  // window and pending deques of every length (block boundaries)
    auto make_this = [&] { return make_n(n); };
    check_all_or_nothing("should_admit after " + std::to_string(n), make_this, snap_admission,
                         [](AdmissionController& c) {
                           auto r = c.should_admit(150.0, 15.0);
                           disarm_alloc_faults();
                           return r.ok() ? describe(r->admitted) : describe(r.status());
                         });
    check_all_or_nothing("record_request after " + std::to_string(n), make_this, snap_admission,
                         [](AdmissionController& c) {
                           return disarmed(c.record_request(150.0, 30.0));
                         });
  }
  check_all_or_nothing("stats", make, snap_admission, [](AdmissionController& c) {
    const AdmissionStats s = c.stats(300.0);
    return std::to_string(s.admitted);
  });
}

// ---- IndexedHeap -------------------------------------------------------------------------
std::string snap_heap(const IndexedHeap& h) {
  std::ostringstream o;
  o << h.size() << ' ' << h.memory_bytes() << ':';
  IndexedHeap copy = h;
  while (auto e = copy.pop()) o << e->id << '=' << e->score << ',';
  return o.str();
}

TEST_CASE("alloc fault: IndexedHeap operations are all-or-nothing", "[alloc_fault][indexed_heap]") {
  auto make_n = [](uint32_t n) {
    IndexedHeap h;
    for (uint32_t i = 0; i < n; ++i) REQUIRE(h.push(i * 7, static_cast<double>((i * 5) % 11)).ok());
    if (n > 2) REQUIRE(h.erase(14));
    return h;
  };
  auto make = [&] { return make_n(13); };
  for (uint32_t n = 0; n < 40; ++n) {  // every size, so some pushes grow the arrays and the id map
    check_all_or_nothing("push after " + std::to_string(n), [&] { return make_n(n); }, snap_heap, [](IndexedHeap& h) {
      return disarmed(h.push(1000, 2.5));
    });
  }
  check_all_or_nothing("update", make, snap_heap, [](IndexedHeap& h) {
    return disarmed(h.update(21, -1.0));
  });
  check_all_or_nothing("decrease_key", make, snap_heap, [](IndexedHeap& h) {
    return disarmed(h.decrease_key(28, -2.0));
  });
  check_all_or_nothing("increase_key", make, snap_heap, [](IndexedHeap& h) {
    return disarmed(h.increase_key(35, 50.0));
  });
  check_all_or_nothing("decrease_key refused", make, snap_heap, [](IndexedHeap& h) {
    return disarmed(h.decrease_key(35, 50.0));
  });
  for (uint32_t id : {0u, 77u}) {
    check_all_or_nothing("erase " + std::to_string(id), make, snap_heap, [id](IndexedHeap& h) {
      const bool ok = h.erase(id);
      return describe(ok);
    });
  }
  check_all_or_nothing("pop", make, snap_heap, [](IndexedHeap& h) {
    auto e = h.pop();
    return std::to_string(e->id);
  });
  check_all_or_nothing("reserve", make, snap_heap, [](IndexedHeap& h) {
    h.reserve(500);
    return std::string();
  });
}

// ---- TokenLRU ----------------------------------------------------------------------------
using Lru = TokenLRU<std::string, std::string>;
std::string snap_lru(const Lru& l) {
  std::ostringstream o;
  o << l.size() << ' ' << l.total_tokens() << ':';
  l.for_each([&](const std::string& k, const std::string& v, uint64_t t) { o << k << '=' << v << '/' << t << ','; });
  return o.str();
}

TEST_CASE("alloc fault: TokenLRU put is all-or-nothing", "[alloc_fault][token_lru]") {
  auto make = [] {
    Lru l = Lru::create(100).value();
    for (int i = 0; i < 6; ++i) l.put("key number " + std::to_string(i), "a value long enough to allocate " + std::to_string(i), 15);
    return l;
  };
  const std::string big(64, 'v');
  check_all_or_nothing("put new key", make, snap_lru, [&](Lru& l) {
    bool ok = l.put("a brand new key, long enough to allocate", big, 10);
    disarm_alloc_faults();
    return describe(ok);
  });
  check_all_or_nothing("put new key with evictions", make, snap_lru, [&](Lru& l) {
    std::vector<Lru::Item> evicted;
    bool ok = l.put("a brand new key, long enough to allocate", big, 45, &evicted);
    disarm_alloc_faults();
    std::string out = describe(ok);
    for (auto& e : evicted) out += e.first + ';';
    return out;
  });
  check_all_or_nothing("evict_until_budget", make, snap_lru, [&](Lru& l) {
    auto out = l.evict_until_budget(40);
    disarm_alloc_faults();
    return std::to_string(out.size());
  });
  check_all_or_nothing("put existing key", make, snap_lru, [&](Lru& l) {
    std::vector<Lru::Item> evicted;
    bool ok = l.put("key number 1", big, 40, &evicted);
    disarm_alloc_faults();
    return describe(ok) + std::to_string(evicted.size());
  });
}

// ---- HNSW --------------------------------------------------------------------------------
constexpr uint32_t kDim = 8;
std::vector<float> vec(uint32_t i) {
  std::vector<float> v(kDim);
  for (uint32_t d = 0; d < kDim; ++d) v[d] = std::sin(static_cast<float>(i * 13 + d * 7)) + 0.01f * static_cast<float>(d);
  return v;
}

// HNSW: stats().bytes / memory_bytes() count reserved room and search scratch, which a failed
// call may leave grown (as any search grows the scratch): everything else must be unchanged.
std::string snap_hnsw(const HNSW& h) {
  std::ostringstream o;
  o.precision(9);
  const HnswStats s = h.stats();
  o << s.size << ' ' << s.levels << ' ' << s.entry_point << ' ' << s.edges << ' ' << s.avg_degree << ' ' << s.nodes
    << ' ' << s.tombstones << " ef=" << h.ef_search() << '\n';
  for (uint32_t q = 0; q < 3; ++q) {
    const auto v = vec(500 + q);
    const std::vector<Neighbor> hits = h.search(v.data(), v.size(), 5).value();
    for (const Neighbor& n : hits) o << n.id << '@' << n.distance << ' ';
    o << '\n';
  }
  o << hex(h.serialize());
  return o.str();
}

HNSW make_hnsw(Metric metric = Metric::l2, uint32_t count = 40, Quantization q = Quantization::none,
               uint32_t rescore = llmds::kRescoreDefault) {
  HnswOptions o;
  o.metric = metric;
  o.quantization = q;
  o.rescore = rescore;
  o.dim = kDim;
  o.m = 4;
  o.ef_construction = 16;
  o.seed = 7;
  HNSW h = HNSW::create(o).value();
  for (uint32_t i = 0; i < count; ++i) {
    const auto v = vec(i);
    REQUIRE(h.add(v.data(), v.size(), i).ok());
  }
  if (count > 3) REQUIRE(h.remove(3).ok());
  return h;
}

TEST_CASE("alloc fault: HNSW operations are all-or-nothing", "[alloc_fault][hnsw]") {
  // Quantized indexes too: codes, the f32 rows kept for rescoring and their scratch must follow
  // the same all-or-nothing rule (f16: l2; i8 with rescoring: cosine; b1 without: cosine).
  struct Variant {
    Metric metric;
    Quantization q;
    uint32_t rescore;
  };
  const Variant variants[] = {{Metric::l2, Quantization::none, 0},    {Metric::cosine, Quantization::none, 0},
                              {Metric::l2, Quantization::f16, 0},     {Metric::cosine, Quantization::i8, 2},
                              {Metric::cosine, Quantization::b1, 0}};
  for (const Variant& var : variants) {
    const Metric metric = var.metric;
    for (uint32_t count : {0u, 1u, 40u}) {
      const std::string tag = std::string(" (") + metric_name(metric) + ", " + quantization_name(var.q) + ", " +
                              std::to_string(count) + " nodes)";
      auto make = [=] { return make_hnsw(metric, count, var.q, var.rescore); };
      check_all_or_nothing("add" + tag, make, snap_hnsw, [](HNSW& h) {
        const auto v = vec(100);
        return disarmed(h.add(v.data(), v.size(), 100));
      });
      check_all_or_nothing("add_batch" + tag, make, snap_hnsw, [](HNSW& h) {
        std::vector<float> vs;
        std::vector<uint32_t> ids;
        for (uint32_t i = 200; i < 260; ++i) {
          const auto v = vec(i);
          vs.insert(vs.end(), v.begin(), v.end());
          ids.push_back(i);
        }
        return disarmed(h.add_batch(vs.data(), vs.size(), ids.data(), ids.size()));
      });
      check_all_or_nothing("reserve, then add" + tag, make, snap_hnsw, [](HNSW& h) {
        h.reserve(1);
        const auto v = vec(100);
        FailAfter none(1);  // an add after reserve() must not allocate at all
        auto st = h.add(v.data(), v.size(), 100);
        const bool allocated = none.fired();
        disarm_alloc_faults();
        return describe(st) + (allocated ? " but allocated" : "");
      });
      check_all_or_nothing("reserve, then add_batch in chunks (JS addBatch)" + tag, make, snap_hnsw, [](HNSW& h) {
        std::vector<float> vs;
        std::vector<uint32_t> ids;
        for (uint32_t i = 300; i < 360; ++i) {
          const auto v = vec(i);
          vs.insert(vs.end(), v.begin(), v.end());
          ids.push_back(i);
        }
        h.reserve(ids.size());
        FailAfter none(1);  // the chunks after reserve() must not allocate at all
        Status st;
        for (std::size_t from = 0; from < ids.size() && st.ok(); from += 20) {
          st = h.add_batch(vs.data() + from * kDim, 20 * kDim, ids.data() + from, 20);
        }
        const bool allocated = none.fired();
        disarm_alloc_faults();
        return describe(st) + (allocated ? " but allocated" : "");
      });
      if (count == 0) continue;
      check_all_or_nothing("remove the entry point" + tag, make, snap_hnsw, [](HNSW& h) {
        auto st = h.remove(static_cast<uint32_t>(h.stats().entry_point));
        disarm_alloc_faults();
        return describe(st);
      });
      check_all_or_nothing("remove" + tag, make, snap_hnsw, [](HNSW& h) {
        return disarmed(h.remove(10));
      });
      check_all_or_nothing("compact" + tag, make, snap_hnsw, [](HNSW& h) {
        return disarmed(h.compact());
      });
    }
  }
  check_all_or_nothing("set_ef_search", [] { return make_hnsw(); }, snap_hnsw, [](HNSW& h) {
    return disarmed(h.set_ef_search(300));
  });
  const std::vector<uint8_t> bytes = make_hnsw().serialize();
  check_all_or_nothing("deserialize", [] { return make_hnsw(); }, snap_hnsw, [&](HNSW& h) {
    auto r = HNSW::deserialize(bytes.data(), bytes.size());
    if (r.ok()) h = std::move(r).value();
    disarm_alloc_faults();
    return describe(r.status());
  });
}

// ---- Tokenizer ---------------------------------------------------------------------------
struct TokenizerBox {
  Tokenizer t;
  std::vector<TermId> out;
};
std::string snap_tokenizer(const TokenizerBox& b) {
  std::ostringstream o;
  // memory_bytes() may count room a failed call reserved (documented): not compared.
  o << b.t.vocab_size() << ':';
  for (TermId id = 0; id < static_cast<TermId>(b.t.vocab_size()); ++id) o << b.t.term(id).value() << ',';
  o << " out=" << join(b.out);
  return o.str();
}

TEST_CASE("alloc fault: Tokenizer encode_into is all-or-nothing", "[alloc_fault][tokenizer]") {
  auto make = [] {
    TokenizerBox b;
    REQUIRE(b.t.encode("the quick brown fox jumps over the lazy dog").ok());
    b.out = {1, 2, 3};
    return b;
  };
  check_all_or_nothing("encode_into", make, snap_tokenizer, [](TokenizerBox& b) {
    auto st = b.t.encode_into(
        "The QUICK fox met Ünïcode friends: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
        "omicron pi rho sigma tau upsilon phi chi psi omega, and some more words to grow every table",
        b.out);
    disarm_alloc_faults();
    return describe(st);
  });
  check_all_or_nothing("encode", make, snap_tokenizer, [](TokenizerBox& b) {
    auto r = b.t.encode("entirely novel vocabulary appears here");
    disarm_alloc_faults();
    return r.ok() ? join(*r) : describe(r.status());
  });
}

// ---- InvertedIndex -----------------------------------------------------------------------
const char* const kDocs[] = {
    "the cat sat on the mat",          "dogs chase cats around the yard", "a quick brown fox",
    "lazy dogs sleep all day long",    "cats and dogs living together",   "the yard is green and wide",
    "foxes are quick and clever",      "mats made of woven grass",        "green grass grows in the yard",
    "clever cats open doors sometimes"};

// InvertedIndex (and Tokenizer, RetrievalPipeline): stats().bytes may count room a failed call
// reserved ahead (documented in the headers); every other field and the contents must match.
std::string snap_index(const InvertedIndex& ix) {
  std::ostringstream o;
  o.precision(17);
  const InvertedIndexStats s = ix.stats();
  o << s.documents << ' ' << s.terms << ' ' << s.postings << ' ' << s.tokens << ' ' << s.avg_doc_length << ' '
    << s.dead_postings << ' ' << s.compressed_bytes << ' ' << s.uncompressed_bytes << '\n';  // not bytes: see below
  for (const char* q : {"cats dogs", "yard green", "quick fox clever"}) {
    const RankedHits h = ix.search(q, 5).value();
    o << join(h.ids) << '/' << join(h.scores) << '\n';
  }
  o << hex(ix.serialize());
  return o.str();
}

InvertedIndex make_index() {
  InvertedIndex ix = InvertedIndex::create().value();
  for (uint32_t i = 0; i < 10; ++i) REQUIRE(ix.add_document(i, kDocs[i]).ok());
  REQUIRE(ix.remove_document(4));
  return ix;
}

TEST_CASE("alloc fault: InvertedIndex operations are all-or-nothing", "[alloc_fault][inverted_index]") {
  check_all_or_nothing("add_document", make_index, snap_index, [](InvertedIndex& ix) {
    return disarmed(ix.add_document(20, "brand new words join the cats and the dogs in the yard again and again"));
  });
  check_all_or_nothing("add_document (re-add a removed id)", make_index, snap_index, [](InvertedIndex& ix) {
    return disarmed(ix.add_document(4, "cats and dogs living together again"));
  });
  for (uint32_t id : {1u, 8u, 4u}) {
    check_all_or_nothing("remove_document " + std::to_string(id), make_index, snap_index, [id](InvertedIndex& ix) {
      const bool ok = ix.remove_document(id);
      return describe(ok);
    });
  }
  check_all_or_nothing("add_document (replace a live document)", make_index, snap_index, [](InvertedIndex& ix) {
    return disarmed(ix.add_document(1, "dogs chase cats around the green yard and the cats chase back"));
  });
  {
    // 1100 documents, 1062 removed: one more removal makes dead slots outnumber live ones by
    // more than 1024 and compacts (compaction is skipped, not half done, when memory is short).
    auto make_big = [] {
      InvertedIndex ix = InvertedIndex::create().value();
      for (uint32_t i = 0; i < 1100; ++i) {
        REQUIRE(ix.add_document(i, "word" + std::to_string(i % 37) + " common term" + std::to_string(i)).ok());
      }
      for (uint32_t i = 0; i < 1062; ++i) REQUIRE(ix.remove_document(i));
      return ix;
    };
    {
      InvertedIndex ix = make_big();
      REQUIRE(ix.stats().dead_postings > 0);
      REQUIRE(ix.remove_document(1062));
      REQUIRE(ix.stats().dead_postings == 0);  // it did compact
    }
    check_all_or_nothing("remove_document that compacts", make_big, snap_index, [](InvertedIndex& ix) {
      const bool ok = ix.remove_document(1062);
      return describe(ok);
    });
  }
  for (uint32_t removed = 0; removed < 9; ++removed) {
    auto make_removed = [removed] {
      InvertedIndex ix = make_index();
      for (uint32_t i = 0; i < removed; ++i) ix.remove_document(i == 4 ? 9 : i);
      return ix;
    };
    check_all_or_nothing("remove_document after " + std::to_string(removed), make_removed, snap_index,
                         [](InvertedIndex& ix) {
                           const bool ok = ix.remove_document(5);
                           return describe(ok);
                         });
  }
  check_all_or_nothing("clear", make_index, snap_index, [](InvertedIndex& ix) {
    ix.clear();
    return std::string();
  });
  const std::vector<uint8_t> bytes = make_index().serialize();
  check_all_or_nothing("deserialize", make_index, snap_index, [&](InvertedIndex& ix) {
    auto r = InvertedIndex::deserialize(bytes.data(), bytes.size());
    if (r.ok()) ix = std::move(r).value();
    disarm_alloc_faults();
    return describe(r.status());
  });
}

// ---- CountMinSketch ----------------------------------------------------------------------
std::string snap_cms(const CountMinSketch& s) {
  std::ostringstream o;
  o << s.total_count() << ' ' << s.memory_bytes() << ':';
  for (int i = 0; i < 30; ++i) o << s.estimate("item " + std::to_string(i)) << ',';
  return o.str();
}

TEST_CASE("alloc fault: CountMinSketch operations are all-or-nothing", "[alloc_fault][count_min_sketch]") {
  auto make = [] {
    CountMinSketch s = CountMinSketch::create({64, 4, 9}).value();
    for (int i = 0; i < 20; ++i) REQUIRE(s.add("item " + std::to_string(i % 7), 1 + i).ok());
    return s;
  };
  const std::string long_item(100, 'x');
  check_all_or_nothing("add", make, snap_cms, [&](CountMinSketch& s) {
    return disarmed(s.add(long_item, 5));
  });
  const CountMinSketch other = make();
  check_all_or_nothing("merge", make, snap_cms, [&](CountMinSketch& s) {
    return disarmed(s.merge(other));
  });
}

// ---- RetrievalPipeline -------------------------------------------------------------------
std::vector<float> emb(uint32_t i) {
  std::vector<float> v(kDim);
  for (uint32_t d = 0; d < kDim; ++d) v[d] = std::cos(static_cast<float>(i * 3 + d)) + 0.5f;
  return v;
}

std::string snap_pipeline(const RetrievalPipeline& p) {
  std::ostringstream o;
  o.precision(17);
  const RetrievalPipelineStats s = p.stats();
  o << s.documents << ' ' << s.dense_documents << ' ' << s.searches << ' ' << s.cache_hits << ' ' << s.cache_misses
    << ' ' << s.cache_entries << ' ' << s.cache_tokens << '\n';  // not bytes (see snap_index)
  const auto q = emb(77);
  PipelineQuery query;
  query.text = "cats dogs yard";
  query.embedding = q.data();
  query.embedding_len = q.size();
  query.top_k = 4;
  const RankedHits h = p.search_exhaustive(query).value();
  o << join(h.ids) << '/' << join(h.scores) << '\n' << hex(p.serialize());
  return o.str();
}

RetrievalPipeline make_pipeline() {
  RetrievalPipelineOptions o;
  o.embedding_dim = kDim;
  o.hnsw_m = 4;
  o.hnsw_ef_construction = 16;
  o.token_budget = 40;
  RetrievalPipeline p = RetrievalPipeline::create(o).value();
  for (uint32_t i = 0; i < 10; ++i) {
    const auto e = emb(i);
    REQUIRE((i % 3 == 2 ? p.add_document(i, kDocs[i]) : p.add_document(i, kDocs[i], e.data(), e.size())).ok());
  }
  PipelineQuery query;
  query.text = "the yard";
  REQUIRE(p.search(query).ok());
  return p;
}

TEST_CASE("alloc fault: RetrievalPipeline operations are all-or-nothing", "[alloc_fault][retrieval_pipeline]") {
  check_all_or_nothing("add_document with embedding", make_pipeline, snap_pipeline, [](RetrievalPipeline& p) {
    const auto e = emb(30);
    return disarmed(p.add_document(30, "fresh words about cats in a green yard", e.data(), e.size()));
  });
  check_all_or_nothing("add_document without embedding", make_pipeline, snap_pipeline, [](RetrievalPipeline& p) {
    return disarmed(p.add_document(31, "text only, with words never seen before"));
  });
  for (uint32_t id : {0u, 2u, 99u}) {  // with an embedding, without, unknown
    check_all_or_nothing("remove_document " + std::to_string(id), make_pipeline, snap_pipeline,
                         [id](RetrievalPipeline& p) {
                           const bool ok = p.remove_document(id);
                           return describe(ok);
                         });
  }
  check_all_or_nothing("add_document replacing one with an embedding", make_pipeline, snap_pipeline,
                       [](RetrievalPipeline& p) {
                         const auto e = emb(40);
                         return disarmed(p.add_document(1, "replacement words for document one", e.data(), e.size()));
                       });
  for (bool dense : {false, true}) {
    for (const char* text : {"the yard", "dogs chase cats"}) {  // a cache hit, then a miss
      const std::string what = std::string("search '") + text + "'" + (dense ? " with embedding" : "");
      check_all_or_nothing(what, make_pipeline, snap_pipeline, [&](RetrievalPipeline& p) {
        const auto q = emb(5);
        PipelineQuery query;
        query.text = text;
        if (dense) {
          query.embedding = q.data();
          query.embedding_len = q.size();
        }
        query.top_k = 3;
        auto r = p.search(query);
        disarm_alloc_faults();
        return r.ok() ? join(r->ids) + '/' + join(r->scores) : describe(r.status());
      });
    }
  }
  const std::vector<uint8_t> bytes = make_pipeline().serialize();
  check_all_or_nothing("deserialize", make_pipeline, snap_pipeline, [&](RetrievalPipeline& p) {
    auto r = RetrievalPipeline::deserialize(bytes.data(), bytes.size());
    if (r.ok()) p = std::move(r).value();
    disarm_alloc_faults();
    return describe(r.status());
  });
}

TEST_CASE("alloc fault: injected failures in total", "[alloc_fault]") {
  // Catch2 runs test cases in declaration order by default: this one comes last.
  WARN("alloc fault tests injected " << g_injected << " allocation failures");
  // Run alone (e.g. with a tag filter) this case sees no earlier failures; with the whole file
  // it guards against a hook that silently stopped failing anything.
  if (g_injected > 0) CHECK(g_injected > 1000);
}

}  // namespace
