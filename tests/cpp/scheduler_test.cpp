// SPDX-License-Identifier: MIT
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "llmds/scheduler.hpp"

using llmds::Errc;
using llmds::RequestId;
using llmds::RequestState;
using llmds::Scheduler;
using llmds::SchedulerOptions;
using llmds::SchedulerOrder;
using Ids = std::vector<RequestId>;

namespace {

Scheduler make(uint32_t max_batch = 32, double max_wait = 50.0, uint64_t max_tokens = 0,
               SchedulerOrder order = SchedulerOrder::weighted) {
  SchedulerOptions o;
  o.max_batch_size = max_batch;
  o.max_wait_ms = max_wait;
  o.max_batch_tokens = max_tokens;
  o.order = order;
  auto s = Scheduler::create(o);
  REQUIRE(s.ok());
  return std::move(s).value();
}

RequestId submit(Scheduler& s, uint32_t tokens, double now, double slo = 0.0) {
  auto r = s.submit(tokens, now, slo);
  REQUIRE(r.ok());
  return *r;
}

Ids batch(Scheduler& s, double now, bool force = false) {
  auto r = s.get_batch(now, force);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("scheduler: request 0 waits maxWaitMs like any other (prototype regression)", "[scheduler][regression]") {
  Scheduler s = make(32, 50.0);
  CHECK(submit(s, 10, 0.0) == 0);
  CHECK(batch(s, 0.0).empty());
  CHECK(batch(s, 10.0).empty());
  CHECK(batch(s, 49.9).empty());
  CHECK(s.stats().batches == 0);
  CHECK(batch(s, 50.0) == Ids{0});
  // The next ids are ordinary too.
  CHECK(submit(s, 10, 60.0) == 1);
  CHECK(batch(s, 60.0).empty());
  CHECK(batch(s, 110.0) == Ids{1});
}

TEST_CASE("scheduler: a full queue releases a batch at once (prototype regression)", "[scheduler][regression]") {
  Scheduler s = make(4, 1000.0);
  for (int i = 0; i < 3; ++i) submit(s, 1, 0.0);
  CHECK(batch(s, 0.0).empty());
  submit(s, 1, 0.0);
  CHECK(batch(s, 0.0) == Ids{0, 1, 2, 3});
  // More than a batch: the first full batch goes, the remainder waits.
  for (int i = 0; i < 6; ++i) submit(s, 1, 1.0);
  CHECK(batch(s, 1.0) == Ids{4, 5, 6, 7});
  CHECK(batch(s, 1.0).empty());
  CHECK(s.queued() == 2);
  CHECK(batch(s, 1001.0) == Ids{8, 9});
}

TEST_CASE("scheduler: in-flight requests do not make later batches release early (prototype regression)", "[scheduler][regression]") {
  Scheduler s = make(4, 50.0);
  for (int i = 0; i < 3; ++i) submit(s, 1, 0.0);
  CHECK(batch(s, 0.0, true) == Ids{0, 1, 2});
  CHECK(s.queued() == 0);
  CHECK(s.in_flight() == 3);
  // 3 in flight + 1 queued is not a full batch, and the old arrivals are not the oldest queued.
  submit(s, 1, 100.0);
  CHECK(batch(s, 100.0).empty());
  CHECK(batch(s, 149.0).empty());
  CHECK(batch(s, 150.0) == Ids{3});
}

TEST_CASE("scheduler: the oldest queued request decides the wait, cancel included", "[scheduler]") {
  Scheduler s = make(32, 50.0);
  const RequestId a = submit(s, 1, 0.0);
  const RequestId b = submit(s, 1, 30.0);
  CHECK(s.ready_at(0.0) == Approx(50.0));
  CHECK(s.cancel(a));
  CHECK(s.ready_at(40.0) == Approx(80.0));
  CHECK(batch(s, 60.0).empty());
  CHECK(batch(s, 80.0) == Ids{b});
  CHECK_FALSE(s.ready_at(80.0));
}

TEST_CASE("scheduler: get_batch at ready_at releases, whatever the rounding", "[scheduler]") {
  // 0.1 + 0.7 = 0.7999999999999999, and that minus 0.1 is below 0.7: comparing elapsed time
  // instead of the due time would leave an event loop that sleeps until ready_at spinning.
  Scheduler s = make(32, 0.7);
  submit(s, 1, 0.1);
  const auto due = s.ready_at(0.1);
  REQUIRE(due);
  CHECK(batch(s, *due) == Ids{0});
  std::mt19937 rng(3);
  for (int i = 0; i < 1000; ++i) {
    const double arrival = static_cast<double>(rng() % 100000) / 7.0;
    Scheduler t = make(32, static_cast<double>(rng() % 1000) / 13.0);
    submit(t, 1, arrival);
    REQUIRE(batch(t, *t.ready_at(arrival)).size() == 1);
  }
}

TEST_CASE("scheduler: force releases a non-empty queue only", "[scheduler]") {
  Scheduler s = make(8, 1e9);
  CHECK(batch(s, 0.0, true).empty());
  CHECK(s.stats().batches == 0);
  submit(s, 5, 0.0);
  CHECK(batch(s, 0.0).empty());
  CHECK(batch(s, 0.0, true) == Ids{0});
  CHECK(s.stats().batches == 1);
}

TEST_CASE("scheduler: default order is smallest tokens x SLO for SLO requests, then shortest first, ties FIFO", "[scheduler]") {
  CHECK(SchedulerOptions{}.order == SchedulerOrder::weighted);
  CHECK(SchedulerOptions{}.late_penalty == 10.0);
  Scheduler s = make(32, 0.0);
  const RequestId long_plain = submit(s, 50, 0.0);
  const RequestId big_tight = submit(s, 500, 0.0, 100.0);   // size 50,000
  const RequestId short_plain = submit(s, 2, 1.0);
  const RequestId small_loose = submit(s, 40, 10.0, 1000.0);  // size 40,000
  const RequestId tie = submit(s, 100, 20.0, 500.0);          // size 50,000, after big_tight
  const RequestId short_tie = submit(s, 2, 30.0);             // ties with short_plain
  const RequestId tiny = submit(s, 0, 30.0, 5000.0);          // size 0
  CHECK(batch(s, 30.0) == Ids{tiny, small_loose, big_tight, tie, short_plain, short_tie, long_plain});
}

TEST_CASE("scheduler: deadline order is EDF for SLO requests, then shortest first, ties FIFO", "[scheduler]") {
  Scheduler s = make(32, 0.0, 0, SchedulerOrder::deadline);
  const RequestId long_plain = submit(s, 50, 0.0);
  const RequestId slo100 = submit(s, 500, 0.0, 100.0);    // deadline 100
  const RequestId short_plain = submit(s, 2, 1.0);
  const RequestId slo50 = submit(s, 900, 10.0, 50.0);     // deadline 60
  const RequestId slo_tie = submit(s, 1, 20.0, 80.0);     // deadline 100, after slo100
  const RequestId short_tie = submit(s, 2, 30.0);         // ties with short_plain
  CHECK(batch(s, 30.0) == Ids{slo50, slo100, slo_tie, short_plain, short_tie, long_plain});
}

TEST_CASE("scheduler: weighted order penalises late requests and bounds their wait", "[scheduler]") {
  SchedulerOptions o;
  o.max_batch_size = 1;
  o.max_wait_ms = 0;
  o.max_demotion_ms = 100.0;  // second deadline = deadline + min(100, 10 x slo)
  auto s = std::move(Scheduler::create(o)).value();
  const RequestId late = submit(s, 10, 0.0, 10.0);       // size 100; overdue after 10: 1,000
  const RequestId mid = submit(s, 20, 0.0, 40.0);        // size 800
  const RequestId big = submit(s, 30, 0.0, 50.0);        // size 1,500
  const RequestId none = submit(s, 1, 0.0);              // no SLO: after every SLO request
  // At 5 nothing is late: smallest size first.
  CHECK(batch(s, 5.0) == Ids{late});
  const RequestId late2 = submit(s, 10, 5.0, 10.0);      // due 15, second deadline 15 + 100
  // At 20 late2 is overdue (1,000): behind mid (800), ahead of big (1,500).
  CHECK(batch(s, 20.0) == Ids{mid});
  const RequestId small = submit(s, 1, 20.0, 900.0);     // size 900: ahead of late2
  CHECK(batch(s, 20.0) == Ids{small});
  // At 116 late2's second deadline (115) has passed: it goes before everything.
  const RequestId tiny = submit(s, 0, 116.0, 1000.0);
  CHECK(batch(s, 116.0) == Ids{late2});
  CHECK(batch(s, 116.0) == Ids{tiny});
  CHECK(batch(s, 116.0) == Ids{big});  // overdue since 50, second deadline 150
  CHECK(batch(s, 116.0) == Ids{none});
  SECTION("late_penalty +infinity puts a late request behind every one still on time, 0 tokens too") {
    o.late_penalty = std::numeric_limits<double>::infinity();
    auto t = std::move(Scheduler::create(o)).value();
    const RequestId zero = submit(t, 0, 0.0, 10.0);
    const RequestId huge = submit(t, 1000000, 0.0, 1e6);
    const RequestId after = submit(t, 0, 0.0);
    CHECK(batch(t, 11.0) == Ids{huge});
    CHECK(batch(t, 11.0) == Ids{zero});
    CHECK(batch(t, 11.0) == Ids{after});
  }
  SECTION("late_penalty 1: lateness does not change the order") {
    o.late_penalty = 1.0;
    auto t = std::move(Scheduler::create(o)).value();
    const RequestId a = submit(t, 10, 0.0, 10.0);  // 100, late at 11
    const RequestId b = submit(t, 11, 0.0, 100.0); // 1,100
    CHECK(batch(t, 11.0) == Ids{a});
    CHECK(batch(t, 11.0) == Ids{b});
  }
  SECTION("invalid penalties and demote_overdue = false are refused with the weighted order") {
    for (double p : {0.5, 0.0, -1.0, std::nan(""), -std::numeric_limits<double>::infinity()}) {
      SchedulerOptions bad;
      bad.late_penalty = p;
      auto r = Scheduler::create(bad);
      REQUIRE(!r.ok());
      CHECK(r.status().code() == Errc::invalid_argument);
    }
    SchedulerOptions bad;
    bad.demote_overdue = false;
    auto r = Scheduler::create(bad);
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Errc::invalid_argument);
    bad.order = static_cast<SchedulerOrder>(7);
    bad.demote_overdue = true;
    CHECK(Scheduler::create(bad).status().code() == Errc::invalid_argument);
    bad.order = SchedulerOrder::deadline;
    bad.demote_overdue = false;
    CHECK(Scheduler::create(bad).ok());
  }
}

TEST_CASE("scheduler: maxBatchTokens caps a batch; an oversized request is served alone", "[scheduler]") {
  Scheduler s = make(32, 0.0, 100);
  const RequestId r60 = submit(s, 60, 0.0);
  const RequestId r30 = submit(s, 30, 0.0);
  const RequestId r20 = submit(s, 20, 0.0);
  CHECK(batch(s, 0.0) == Ids{r20, r30});  // 50 + 60 would exceed 100: stop, never skip ahead
  CHECK(batch(s, 0.0) == Ids{r60});
  const RequestId big = submit(s, 500, 1.0, 10.0);  // SLO: served first, alone
  const RequestId small = submit(s, 1, 1.0);
  CHECK(batch(s, 1.0) == Ids{big});
  CHECK(batch(s, 1.0) == Ids{small});
  // Exactly at the cap fits; zero-token requests always fit.
  const RequestId a = submit(s, 100, 2.0);
  const RequestId z = submit(s, 0, 3.0);
  CHECK(batch(s, 3.0) == Ids{z, a});
}

TEST_CASE("scheduler: a queue holding maxBatchTokens tokens counts as full", "[scheduler]") {
  Scheduler s = make(32, 1000.0, 100);
  submit(s, 40, 0.0);
  CHECK(batch(s, 0.0).empty());
  submit(s, 70, 0.0);
  CHECK(s.ready_at(0.0) == Approx(0.0));
  CHECK(batch(s, 0.0) == Ids{0});  // 40 first (shortest), 40 + 70 > 100
  CHECK(batch(s, 0.0).empty());    // 70 left: not full, not waited
}

TEST_CASE("scheduler: custom priority_fn, evaluated once per submit, higher first", "[scheduler]") {
  SchedulerOptions o;
  o.max_wait_ms = 0.0;
  int calls = 0;
  o.priority_fn = [&calls](const llmds::ScheduledRequest& r) {
    ++calls;
    return r.slo_ms > 0 ? -r.deadline_ms : static_cast<double>(r.tokens);  // longest first for plain requests
  };
  auto made = Scheduler::create(o);
  REQUIRE(made.ok());
  Scheduler s = std::move(made).value();
  CHECK(s.custom_order());
  const RequestId a = submit(s, 5, 0.0);
  const RequestId b = submit(s, 9, 0.0);
  const RequestId c = submit(s, 5, 0.0);
  CHECK(calls == 3);
  CHECK(batch(s, 0.0) == Ids{b, a, c});
  CHECK(calls == 3);

  SchedulerOptions bad;
  bad.priority_fn = [](const llmds::ScheduledRequest& r) {
    return r.tokens == 13 ? std::numeric_limits<double>::quiet_NaN() : 1.0;
  };
  auto t = std::move(Scheduler::create(bad)).value();
  auto r = t.submit(13, 0.0);
  CHECK(r.status().code() == Errc::invalid_argument);
  CHECK(t.queued() == 0);
  CHECK(submit(t, 1, 0.0) == 0);  // the failed submit consumed no id
}

TEST_CASE("scheduler: the priority function sees the request it ranks", "[scheduler]") {
  SchedulerOptions o;
  std::vector<llmds::ScheduledRequest> seen;
  o.priority_fn = [&seen](const llmds::ScheduledRequest& r) {
    seen.push_back(r);
    return 0.0;
  };
  auto s = std::move(Scheduler::create(o)).value();
  submit(s, 7, 100.0, 25.0);
  submit(s, 3, 110.0);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].id == 0);
  CHECK(seen[0].tokens == 7);
  CHECK(seen[0].arrival_ms == 100.0);
  CHECK(seen[0].slo_ms == 25.0);
  CHECK(seen[0].deadline_ms == 125.0);
  CHECK(seen[1].id == 1);
  CHECK(seen[1].slo_ms == 0.0);
  CHECK(std::isinf(seen[1].deadline_ms));
}

TEST_CASE("scheduler: external priorities (the JS binding's mode)", "[scheduler]") {
  SchedulerOptions o;
  o.external_priority = true;
  o.max_wait_ms = 0.0;
  auto s = std::move(Scheduler::create(o)).value();
  CHECK(s.submit(1, 0.0).status().code() == Errc::invalid_argument);
  const RequestId low = *s.submit_with_priority(1, -5.0, 0.0);
  const RequestId high = *s.submit_with_priority(1, 7.0, 0.0);
  const RequestId high2 = *s.submit_with_priority(1, 7.0, 0.0, 10.0);
  CHECK(s.submit_with_priority(1, std::numeric_limits<double>::quiet_NaN(), 0.0).status().code() == Errc::invalid_argument);
  CHECK(batch(s, 0.0) == Ids{high, high2, low});

  Scheduler d = make();
  CHECK(d.submit_with_priority(1, 1.0, 0.0).status().code() == Errc::invalid_argument);
  o.priority_fn = [](const llmds::ScheduledRequest&) { return 1.0; };
  CHECK(Scheduler::create(o).status().code() == Errc::invalid_argument);
}

TEST_CASE("scheduler: cancel queued and in-flight requests", "[scheduler]") {
  Scheduler s = make(32, 0.0);
  const RequestId a = submit(s, 1, 0.0);
  const RequestId b = submit(s, 2, 0.0);
  const RequestId c = submit(s, 3, 0.0);
  CHECK(s.cancel(b));
  CHECK_FALSE(s.cancel(b));
  CHECK_FALSE(s.cancel(12345));
  CHECK(s.state(b) == RequestState::unknown);
  CHECK(s.stats().queued_tokens == 4);
  CHECK(batch(s, 0.0) == Ids{a, c});
  CHECK(s.state(a) == RequestState::in_flight);
  CHECK(s.cancel(a));
  CHECK(s.in_flight() == 1);
  CHECK(s.complete_batch(Ids{a}, 1.0).code() == Errc::not_found);
  REQUIRE(s.complete_batch(Ids{c}, 1.0).ok());
  auto st = s.stats();
  CHECK(st.cancelled == 2);
  CHECK(st.completed == 1);
  CHECK(st.in_flight == 0);
  CHECK(st.queued == 0);
}

TEST_CASE("scheduler: completeBatch scores SLOs and reports stats", "[scheduler]") {
  Scheduler s = make(2, 0.0);
  const RequestId a = submit(s, 1, 0.0, 100.0);  // deadline 100
  const RequestId b = submit(s, 1, 0.0, 50.0);   // deadline 50
  const RequestId c = submit(s, 1, 0.0);         // no SLO
  CHECK(batch(s, 0.0) == Ids{b, a});
  CHECK(batch(s, 0.0) == Ids{c});
  REQUIRE(s.complete_batch(Ids{b, a}, 100.0).ok());  // b late, a exactly on its deadline
  REQUIRE(s.complete_batch(Ids{c}, 1e6).ok());
  auto st = s.stats();
  CHECK(st.batches == 2);
  CHECK(st.dispatched == 3);
  CHECK(st.avg_batch_size == Approx(1.5));
  CHECK(st.completed == 3);
  CHECK(st.slo_met == 1);
  CHECK(st.slo_missed == 1);
  CHECK(st.in_flight == 0);
}

TEST_CASE("scheduler: a bad completeBatch changes nothing", "[scheduler]") {
  Scheduler s = make(32, 0.0);
  const RequestId a = submit(s, 1, 0.0);
  const RequestId b = submit(s, 1, 0.0);
  REQUIRE(batch(s, 0.0) == Ids{a, b});
  const RequestId q = submit(s, 1, 1.0);
  auto dup = s.complete_batch(Ids{a, b, a}, 2.0);
  CHECK(dup.code() == Errc::invalid_argument);
  CHECK(dup.message().find("twice") != std::string::npos);
  CHECK(s.complete_batch(Ids{a, q}, 2.0).code() == Errc::invalid_argument);
  CHECK(s.complete_batch(Ids{a, 777}, 2.0).code() == Errc::not_found);
  CHECK(s.complete_batch(Ids{a}, std::numeric_limits<double>::quiet_NaN()).code() == Errc::invalid_argument);
  CHECK(s.stats().completed == 0);
  CHECK(s.in_flight() == 2);
  CHECK(s.state(a) == RequestState::in_flight);
  CHECK(s.state(q) == RequestState::queued);
  REQUIRE(s.complete_batch(Ids{b, a}, 2.0).ok());
  CHECK(s.complete_batch(Ids{}, 2.0).ok());
}

TEST_CASE("scheduler: invalid options and arguments", "[scheduler]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  SchedulerOptions o;
  o.max_batch_size = 0;
  auto bad = Scheduler::create(o);
  CHECK(bad.status().code() == Errc::invalid_argument);
  CHECK(bad.status().message().find("maxBatchSize") != std::string::npos);
  for (double w : {nan, inf, -1.0}) {
    SchedulerOptions ow;
    ow.max_wait_ms = w;
    CHECK(Scheduler::create(ow).status().code() == Errc::invalid_argument);
  }
  Scheduler s = make();
  for (double slo : {nan, inf, -1.0}) CHECK(s.submit(1, 0.0, slo).status().code() == Errc::invalid_argument);
  CHECK(s.submit(1, nan).status().code() == Errc::invalid_argument);
  CHECK(s.get_batch(inf).status().code() == Errc::invalid_argument);
  CHECK(s.queued() == 0);
  CHECK(submit(s, 1, 0.0) == 0);
}

TEST_CASE("scheduler: ids wrap after 2^32 submissions", "[scheduler]") {
  SchedulerOptions o;
  o.first_request_id = std::numeric_limits<uint32_t>::max() - 1;
  auto s = std::move(Scheduler::create(o)).value();
  CHECK(submit(s, 1, 0.0) == 4294967294u);
  CHECK(submit(s, 1, 0.0) == 4294967295u);
  CHECK(submit(s, 1, 0.0) == 0u);
  CHECK(s.next_request_id() == 1u);
  CHECK(batch(s, 0.0, true) == Ids{4294967294u, 4294967295u, 0u});
}

namespace {

// Brute-force reference: linear scans over every request, following the documented rules.
struct RefScheduler {
  struct Req {
    RequestId id;
    uint32_t tokens;
    double arrival;
    double slo;
    double deadline;
    uint64_t seq;
    int state;  // 1 queued, 2 in flight
    bool overdue = false;
    uint64_t late_seq = 0;  // when it turned overdue (ties among equal second deadlines)
  };
  uint32_t max_batch;
  double max_wait;
  uint64_t max_tokens;
  double window;  // max_demotion_ms
  double factor;  // max_demotion_factor
  bool weighted = false;
  double penalty = 10.0;  // late_penalty
  std::map<RequestId, Req> reqs;
  uint64_t seq = 0;
  uint64_t late_seq = 0;
  RequestId next = 0;
  uint64_t met = 0, missed = 0;
  double now = 0;

  // Weighted order: starved SLO requests (past deadline + min(window, factor x slo)) by that
  // second deadline, then SLO requests by tokens x slo (x penalty once overdue), then no-SLO by
  // tokens; FIFO ties.
  double second(const Req& r) const { return r.deadline + std::min(window, factor * r.slo); }
  bool starved(const Req& r) const { return r.overdue && second(r) < now; }
  double size(const Req& r) const {
    if (!r.overdue) return static_cast<double>(r.tokens) * r.slo;
    return std::isinf(penalty) ? penalty : static_cast<double>(r.tokens) * r.slo * penalty;
  }
  bool weighted_before(const Req& a, const Req& b) const {
    const int ra = a.slo <= 0 ? 2 : starved(a) ? 0 : 1, rb = b.slo <= 0 ? 2 : starved(b) ? 0 : 1;
    if (ra != rb) return ra < rb;
    if (ra == 0) return second(a) != second(b) ? second(a) < second(b) : a.late_seq < b.late_seq;
    const double ka = ra == 1 ? size(a) : a.tokens, kb = rb == 1 ? size(b) : b.tokens;
    return ka != kb ? ka < kb : a.seq < b.seq;
  }

  // Bounded demotion (a finite window): SLO requests by key = deadline, or once overdue by
  // deadline + min(window, factor x slo) (overdue first on equal keys), then no-SLO by tokens.
  // Both infinite: on-time SLO requests by deadline, then no-SLO by tokens, then overdue ones by
  // deadline.
  bool bounded() const { return !std::isinf(window) || !std::isinf(factor); }
  int rank(const Req& r) const {
    if (!bounded()) return r.overdue ? 2 : r.slo > 0 ? 0 : 1;
    return r.slo > 0 ? 0 : 1;
  }
  double key(const Req& r) const {
    if (!r.overdue) return r.deadline;
    return bounded() ? r.deadline + std::min(window, factor * r.slo) : r.deadline;
  }
  bool before(const Req& a, const Req& b) const {
    if (weighted) return weighted_before(a, b);
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    if (rank(a) == 1) return a.tokens != b.tokens ? a.tokens < b.tokens : a.seq < b.seq;
    if (a.overdue != b.overdue) {
      // The merge of the two queues: the overdue one goes first when its key is not later.
      return a.overdue ? key(a) <= key(b) : !(key(b) <= key(a));
    }
    if (key(a) != key(b)) return key(a) < key(b);
    if (a.overdue && b.overdue) return a.late_seq < b.late_seq;  // in the order they turned overdue
    return a.seq < b.seq;
  }
  RequestId submit(uint32_t tokens, double now, double slo) {
    reqs[next] = Req{next, tokens, now, slo, slo > 0 ? now + slo : 0, seq++, 1};
    return next++;
  }
  Ids get_batch(double t, bool force) {
    now = t;
    std::vector<Req*> q;
    uint64_t tok = 0;
    double oldest = std::numeric_limits<double>::infinity();
    for (auto& kv : reqs) {
      if (kv.second.state != 1) continue;
      q.push_back(&kv.second);
      tok += kv.second.tokens;
      oldest = std::min(oldest, kv.second.arrival);
    }
    if (q.empty()) return {};
    const bool full = q.size() >= max_batch || (max_tokens && tok >= max_tokens);
    if (!(force || full || now >= oldest + max_wait)) return {};
    std::vector<Req*> turning;
    for (Req* r : q) {
      if (!r->overdue && r->slo > 0 && r->deadline < now) turning.push_back(r);
    }
    std::sort(turning.begin(), turning.end(),
              [](const Req* a, const Req* b) { return a->deadline != b->deadline ? a->deadline < b->deadline : a->seq < b->seq; });
    for (Req* r : turning) {
      r->overdue = true;
      r->late_seq = late_seq++;
    }
    std::sort(q.begin(), q.end(), [this](const Req* a, const Req* b) { return before(*a, *b); });
    Ids out;
    uint64_t bt = 0;
    for (Req* r : q) {
      if (out.size() >= max_batch) break;
      if (max_tokens && !out.empty() && bt + r->tokens > max_tokens) break;
      bt += r->tokens;
      r->state = 2;
      out.push_back(r->id);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("scheduler: randomized operations match a brute-force reference", "[scheduler]") {
  const double inf = std::numeric_limits<double>::infinity();
  const SchedulerOptions defaults;
  for (int variant = 0; variant < 16; ++variant) {
    const uint32_t max_batch = variant % 3 == 0 ? 4 : 8;
    const double max_wait = variant % 3 == 1 ? 0.0 : 20.0;
    const uint64_t max_tokens = variant % 3 == 2 ? 300 : 0;
    const int v = variant % 8;
    const double window = std::vector<double>{defaults.max_demotion_ms, 10.0, 0.0, inf, 30.0, inf, 3.0, inf}[v];
    const bool weighted = variant >= 8;  // 0-7: deadline order, 8-15: weighted (defaults first)
    const SchedulerOrder order = weighted ? SchedulerOrder::weighted : SchedulerOrder::deadline;
    const double factor = std::vector<double>{Scheduler::default_window_slos(order), inf, inf, inf, 0.5, 2.0, 1.0, 0.0}[v];
    const double penalty = std::vector<double>{defaults.late_penalty, 1.0, inf, 3.0, 10.0, 100.0, 1.5, inf}[v];
    INFO("variant " << variant << ", max_demotion_ms " << window << ", max_demotion_factor " << factor
                    << (weighted ? ", weighted, late_penalty " : ", deadline order") << penalty);
    SchedulerOptions o;
    o.max_batch_size = max_batch;
    o.max_wait_ms = max_wait;
    o.max_batch_tokens = max_tokens;
    o.max_demotion_ms = window;
    if (v != 0) o.max_demotion_factor = factor;  // variant 0: the order's default
    o.order = order;
    o.late_penalty = penalty;
    Scheduler s = std::move(Scheduler::create(o)).value();
    RefScheduler ref{max_batch, max_wait, max_tokens, window, factor, weighted, penalty, {}, 0, 0, 0, 0, 0, 0.0};
    std::mt19937 rng(2024u + static_cast<uint32_t>(variant));
    double now = 0.0;
    std::vector<RequestId> in_flight;
    for (int step = 0; step < 2500; ++step) {
      now += static_cast<double>(rng() % 5);
      const uint32_t op = rng() % 10;
      if (op < 5) {
        const uint32_t tokens = rng() % 200;
        const double slo = (rng() % 3 == 0) ? static_cast<double>(1 + rng() % 60) : 0.0;
        REQUIRE(submit(s, tokens, now, slo) == ref.submit(tokens, now, slo));
      } else if (op < 8) {
        const bool force = rng() % 4 == 0;
        const Ids got = batch(s, now, force);
        REQUIRE(got == ref.get_batch(now, force));
        in_flight.insert(in_flight.end(), got.begin(), got.end());
      } else if (op < 9) {
        if (in_flight.empty()) continue;
        const std::size_t k = 1 + rng() % in_flight.size();
        Ids done(in_flight.begin(), in_flight.begin() + static_cast<std::ptrdiff_t>(k));
        in_flight.erase(in_flight.begin(), in_flight.begin() + static_cast<std::ptrdiff_t>(k));
        REQUIRE(s.complete_batch(done, now).ok());
        for (RequestId id : done) {
          const auto& r = ref.reqs[id];
          if (r.slo > 0) (now <= r.deadline ? ref.met : ref.missed)++;
          ref.reqs.erase(id);
        }
      } else {
        const RequestId id = ref.next == 0 ? 0 : rng() % ref.next;
        const bool live = ref.reqs.count(id) != 0;
        REQUIRE(s.cancel(id) == live);
        if (live) {
          if (ref.reqs[id].state == 2) in_flight.erase(std::find(in_flight.begin(), in_flight.end(), id));
          ref.reqs.erase(id);
        }
      }
      std::size_t q = 0;
      for (auto& kv : ref.reqs) q += kv.second.state == 1;
      REQUIRE(s.queued() == q);
      REQUIRE(s.in_flight() == ref.reqs.size() - q);
    }
    CHECK(s.stats().slo_met == ref.met);
    CHECK(s.stats().slo_missed == ref.missed);
  }
}

TEST_CASE("scheduler: 100k queued requests drain in order quickly", "[scheduler]") {
  Scheduler s = make(32, 50.0);
  std::mt19937 rng(7);
  for (uint32_t i = 0; i < 100000; ++i) submit(s, rng() % 1000, static_cast<double>(i) * 0.001);
  std::size_t drained = 0;
  uint32_t batches = 0;
  while (s.queued() > 0) {
    const Ids b = batch(s, 1e6);
    REQUIRE(!b.empty());
    REQUIRE(s.complete_batch(b, 1e6).ok());
    drained += b.size();
    ++batches;
  }
  CHECK(drained == 100000);
  CHECK(batches == 3125);
  CHECK(s.stats().completed == 100000);
}

// An absolute demotion window (no limit relative to the SLO).
Scheduler make_demoting(double window, uint32_t max_batch = 1, SchedulerOrder order = SchedulerOrder::deadline) {
  SchedulerOptions o;
  o.order = order;
  o.max_batch_size = max_batch;
  o.max_wait_ms = 0;
  o.max_demotion_ms = window;
  o.max_demotion_factor = std::numeric_limits<double>::infinity();
  auto s = Scheduler::create(o);
  REQUIRE(s.ok());
  return std::move(s).value();
}

TEST_CASE("scheduler: demote for good (max_demotion_ms = infinity) or plain EDF", "[scheduler]") {
  for (bool demote : {true, false}) {
    SchedulerOptions o;
    o.order = SchedulerOrder::deadline;
    o.max_batch_size = 1;
    o.max_wait_ms = 0;
    o.demote_overdue = demote;
    o.max_demotion_ms = std::numeric_limits<double>::infinity();
    o.max_demotion_factor = std::numeric_limits<double>::infinity();
    auto s = std::move(Scheduler::create(o)).value();
    const RequestId tight = submit(s, 10, 0.0, 5.0);     // deadline 5
    const RequestId loose = submit(s, 10, 0.0, 1000.0);  // deadline 1000
    const RequestId none = submit(s, 3, 0.0);            // no SLO
    if (demote) {
      // At t = 50 the tight request can no longer be on time: EDF would serve it first and
      // make the loose one late too; demotion serves the loose one, then no-SLO, then it.
      CHECK(batch(s, 50.0) == Ids{loose});
      CHECK(batch(s, 50.0) == Ids{none});
      CHECK(batch(s, 50.0) == Ids{tight});
    } else {
      CHECK(batch(s, 50.0) == Ids{tight});  // plain EDF
      CHECK(batch(s, 50.0) == Ids{loose});
      CHECK(batch(s, 50.0) == Ids{none});
    }
  }
}

TEST_CASE("scheduler: max_demotion_ms 0 is plain EDF", "[scheduler]") {
  auto s = make_demoting(0.0);
  const RequestId tight = submit(s, 10, 0.0, 5.0);
  const RequestId loose = submit(s, 10, 0.0, 1000.0);
  const RequestId none = submit(s, 3, 0.0);
  CHECK(batch(s, 50.0) == Ids{tight});
  CHECK(batch(s, 50.0) == Ids{loose});
  CHECK(batch(s, 50.0) == Ids{none});
}

TEST_CASE("scheduler: bounded demotion ranks an overdue request at its deadline + max_demotion_ms", "[scheduler]") {
  // The documented defaults: no absolute limit; 10 SLOs for the deadline order, 20 for the
  // weighted one (unset in the options, resolved by create).
  CHECK(SchedulerOptions{}.max_demotion_ms == std::numeric_limits<double>::infinity());
  CHECK(!SchedulerOptions{}.max_demotion_factor);
  CHECK(make(1, 0.0, 0, SchedulerOrder::deadline).options().max_demotion_factor == 10.0);
  CHECK(make(1, 0.0).options().max_demotion_factor == 20.0);
  for (double now : {50.0, 150.0}) {
    INFO("now " << now);
    auto s = make_demoting(100.0);
    const RequestId tight = submit(s, 10, 0.0, 5.0);   // deadline 5, second deadline 105
    const RequestId mid = submit(s, 10, 0.0, 80.0);    // deadline 80 (second deadline 180)
    const RequestId late = submit(s, 10, 0.0, 200.0);  // deadline 200
    const RequestId none = submit(s, 3, 0.0);          // no SLO: after every SLO request
    if (now == 50.0) {
      // tight is overdue and ranks at 105: behind mid (due 80), ahead of late (due 200).
      CHECK(batch(s, now) == Ids{mid});
      CHECK(batch(s, now) == Ids{tight});
    } else {
      // Both overdue: tight's second deadline (105) has passed, mid ranks at 180.
      CHECK(batch(s, now) == Ids{tight});
      CHECK(batch(s, now) == Ids{mid});
    }
    CHECK(batch(s, now) == Ids{late});
    CHECK(batch(s, now) == Ids{none});
  }
  SECTION("an overdue request goes first on a tie with an on-time one") {
    auto s = make_demoting(100.0);
    const RequestId a = submit(s, 1, 0.0, 10.0);   // overdue at 20: ranks at 110
    const RequestId b = submit(s, 1, 10.0, 100.0); // due 110
    CHECK(batch(s, 20.0) == Ids{a});
    CHECK(batch(s, 20.0) == Ids{b});
  }
  SECTION("the window relative to the SLO, and the smaller of the two limits") {
    SchedulerOptions o;
    o.order = SchedulerOrder::deadline;
    o.max_batch_size = 1;
    o.max_wait_ms = 0;
    o.max_demotion_factor = 2.0;  // default max_demotion_ms: no absolute limit
    auto s = std::move(Scheduler::create(o)).value();
    const RequestId a = submit(s, 1, 0.0, 10.0);   // second deadline 10 + 20 = 30
    const RequestId b = submit(s, 1, 0.0, 40.0);   // due 40
    const RequestId c = submit(s, 1, 0.0, 5.0);    // second deadline 5 + 10 = 15
    const RequestId d = submit(s, 1, 0.0, 25.0);   // due 25
    CHECK(batch(s, 12.0) == Ids{c});  // 15 < 25
    CHECK(batch(s, 12.0) == Ids{d});  // 25 < 30
    CHECK(batch(s, 12.0) == Ids{a});
    CHECK(batch(s, 12.0) == Ids{b});
    o.max_demotion_ms = 1.0;  // min(1, 2 x slo) = 1 for both
    auto t = std::move(Scheduler::create(o)).value();
    const RequestId e = submit(t, 1, 0.0, 10.0);  // second deadline 11
    const RequestId f = submit(t, 1, 0.0, 12.0);  // due 12
    CHECK(batch(t, 10.5) == Ids{e});
    CHECK(batch(t, 10.5) == Ids{f});
  }
  SECTION("invalid windows are refused") {
    for (double w : {-1.0, std::nan(""), -std::numeric_limits<double>::infinity()}) {
      for (bool relative : {false, true}) {
        SchedulerOptions o;
        if (relative) {
          o.max_demotion_factor = w;
        } else {
          o.max_demotion_ms = w;
        }
        auto r = Scheduler::create(o);
        REQUIRE(!r.ok());
        CHECK(r.status().code() == Errc::invalid_argument);
      }
    }
  }
}

TEST_CASE("scheduler: bounded waiting under a stream that fills every batch", "[scheduler]") {
  // The engine takes a batch of 2 every 10 ms; every 10 ms two requests due 50 ms later arrive,
  // so every batch could be filled with on-time requests forever. A request due at 5 is overdue
  // from the first batch on. Demoted for good, it never runs; with a window W it runs by its
  // second deadline (5 + W) plus one batch period.
  for (auto order : {SchedulerOrder::deadline, SchedulerOrder::weighted})
  for (double window : {0.0, 100.0, 500.0, std::numeric_limits<double>::infinity()}) {
    INFO("max_demotion_ms " << window << ", order " << static_cast<int>(order));
    auto s = make_demoting(window, 2, order);
    submit(s, 1, 0.0, 50.0);
    submit(s, 1, 0.0, 50.0);
    const RequestId tight = submit(s, 2, 0.0, 5.0);  // larger, so the weighted order passes it over too
    double served = -1;
    for (double t = 10.0; t <= 2000.0 && served < 0; t += 10.0) {
      submit(s, 1, t, 50.0);
      submit(s, 1, t, 50.0);
      const Ids b = batch(s, t, true);
      REQUIRE(b.size() == 2);
      if (std::find(b.begin(), b.end(), tight) != b.end()) served = t;
      REQUIRE(s.complete_batch(b, t).ok());
    }
    if (std::isinf(window)) {
      CHECK(served < 0);  // starved
    } else {
      CHECK(served >= 0);
      CHECK(served <= 5.0 + window + 10.0);
    }
  }
}

TEST_CASE("scheduler: once past deadline + max_demotion_ms, no later submission is served first", "[scheduler]") {
  // The bound as an invariant, under random load from light to overload: a request with an SLO
  // is passed over only by requests submitted before its deadline + max_demotion_ms.
  const double inf = std::numeric_limits<double>::infinity();
  const SchedulerOptions defaults;
  const std::vector<std::pair<double, double>> windows{
      {0.0, inf}, {20.0, inf}, {100.0, inf}, {inf, 0.5}, {40.0, 2.0}, {defaults.max_demotion_ms, -1.0}};  // -1: the order's default
  for (auto order : {SchedulerOrder::deadline, SchedulerOrder::weighted})
  for (const auto& [window, factor] : windows) {
    for (double rate : {0.15, 0.2, 0.3}) {  // requests per ms; the engine serves 0.2
      INFO("max_demotion_ms " << window << ", max_demotion_factor " << factor << ", rate " << rate << ", order " << static_cast<int>(order));
      SchedulerOptions o;
      o.order = order;
      o.max_batch_size = 4;
      o.max_wait_ms = 0;
      o.max_demotion_ms = window;
      if (factor >= 0) o.max_demotion_factor = factor;
      auto s = std::move(Scheduler::create(o)).value();
      const double f = *s.options().max_demotion_factor;
      std::mt19937 rng(static_cast<uint32_t>(std::min(window, 1e4) * 7 + rate * 1000 + std::min(f, 100.0)));
      struct Info {
        double arrival, deadline, second;  // second: deadline + the demotion window
      };
      std::map<RequestId, Info> queued;
      double t = 0;
      for (int period = 0; period < 400; ++period, t += 20.0) {
        std::poisson_distribution<int> arrivals(rate * 20.0);
        const int n = arrivals(rng);
        for (int i = 0; i < n; ++i) {
          const double at = t + static_cast<double>(rng() % 20);
          const uint32_t kind = rng() % 4;
          const double slo = kind == 0 ? 0.0 : kind == 3 ? 500.0 : static_cast<double>(5 + rng() % 60);
          const RequestId id = submit(s, rng() % 100, at, slo);
          queued[id] = {at, slo > 0 ? at + slo : inf, slo > 0 ? at + slo + std::min(window, f * slo) : inf};
        }
        const double now = t + 19.5;
        const Ids b = batch(s, now, true);
        for (RequestId id : b) {
          const Info x = queued.at(id);
          queued.erase(id);
          // For every SLO request still queued whose second deadline has passed, x must have
          // arrived by that second deadline.
          for (const auto& [other, y] : queued) {
            if (y.deadline == inf || now <= y.second) continue;
            INFO("served " << id << " (arrived " << x.arrival << ") before " << other << " (due " << y.deadline << ")");
            REQUIRE(x.arrival <= y.second);
          }
        }
        REQUIRE(s.complete_batch(b, now).ok());
      }
    }
  }
}

TEST_CASE("scheduler: demotion keeps deadline order among overdue requests and is O(1) per request", "[scheduler]") {
  auto s = make(8, 0.0, 0, SchedulerOrder::deadline);
  const RequestId a = submit(s, 1, 0.0, 20.0);
  const RequestId b = submit(s, 1, 0.0, 10.0);
  const RequestId c = submit(s, 1, 0.0, 30.0);
  const RequestId d = submit(s, 1, 0.0, 100.0);
  // At t = 25: b and a are overdue (deadlines 10 and 20), c and d are not.
  CHECK(batch(s, 25.0, true) == Ids{c, d, b, a});
}
