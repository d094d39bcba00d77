// SPDX-License-Identifier: MIT
// Operation-sequence fuzzer for Scheduler (submit with / without SLO, get_batch with / without
// force, complete_batch, cancel, a fake clock that mostly advances and sometimes goes back),
// checked after every step against a plain reference model written from the contract in
// scheduler.hpp:
// - release: a full batch (max_batch_size queued requests, or max_batch_tokens queued tokens),
//   or the oldest queued arrival has waited max_wait_ms, or force with a non-empty queue;
// - order: weighted (the default) = SLO requests past their second deadline (deadline +
//   min(max_demotion_ms, max_demotion_factor x slo)) first, by it (ties: the order they turned
//   overdue), then SLO requests by tokens x slo (x late_penalty once overdue), then the rest by
//   tokens; deadline = SLO requests by deadline, an overdue one (demote_overdue) ranked at its
//   second deadline (first on a tie with an on-time one), then the rest by tokens; with both
//   limits infinite the overdue ones come last, by deadline; overdue requests with equal keys
//   in the order they turned overdue (earlier deadline first); custom = priority
//   (from priority_fn, or supplied per call) highest first; ties in submission order;
// - a batch takes that order up to max_batch_size and stops at the first request that would
//   pass max_batch_tokens (a lone oversized request goes by itself);
// - ids count up from first_request_id, wrap, and skip live ids; a cancelled or completed id
//   is never returned again; failed calls change nothing;
// - stats, state() and ready_at() agree with the model.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "fuzz_input.hpp"
#include "llmds/scheduler.hpp"

using namespace llmds;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Req {
  uint32_t tokens;
  double slo, arrival, deadline, priority;
  uint64_t seq;
  RequestState state;
  bool overdue = false;  // marked by a releasing get_batch once its deadline had passed
  uint64_t late_seq = 0;  // when it was marked
};

struct Model {
  SchedulerOptions opt;
  bool custom = false;
  std::map<RequestId, Req> live;  // queued and in flight
  std::set<RequestId> dead;       // completed or cancelled: must never come back
  RequestId next_id = 0;
  uint64_t seq = 0, late_seq = 0, batches = 0, dispatched = 0, completed = 0, cancelled = 0, met = 0, missed = 0;
  double now = 0;  // of the releasing get_batch being modelled

  std::size_t count(RequestState s) const {
    std::size_t n = 0;
    for (const auto& [id, r] : live) n += r.state == s;
    return n;
  }
  uint64_t queued_tokens() const {
    uint64_t n = 0;
    for (const auto& [id, r] : live) n += r.state == RequestState::queued ? r.tokens : 0;
    return n;
  }
  RequestId peek_id() const {
    RequestId id = next_id;
    while (live.count(id) != 0) ++id;
    return id;
  }
  double factor() const { return *opt.max_demotion_factor; }  // resolved by create (see below)
  double second(const Req& r) const { return r.deadline + std::min(opt.max_demotion_ms, factor() * r.slo); }
  bool weighted_before(const Req& a, const Req& b) const {
    auto rank = [&](const Req& r) { return r.slo <= 0 ? 2 : r.overdue && second(r) < now ? 0 : 1; };
    auto size = [&](const Req& r) {
      if (!r.overdue) return static_cast<double>(r.tokens) * r.slo;
      return opt.late_penalty == kInf ? kInf : static_cast<double>(r.tokens) * r.slo * opt.late_penalty;
    };
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    if (rank(a) == 0) return second(a) != second(b) ? second(a) < second(b) : a.late_seq < b.late_seq;
    const double ka = rank(a) == 1 ? size(a) : a.tokens, kb = rank(b) == 1 ? size(b) : b.tokens;
    if (ka != kb) return ka < kb;
    return a.seq < b.seq;
  }
  // True if a is served before b.
  bool before(const Req& a, const Req& b) const {
    if (custom) {
      if (a.priority != b.priority) return a.priority > b.priority;
      return a.seq < b.seq;
    }
    if (opt.order == SchedulerOrder::weighted) return weighted_before(a, b);
    // Finite window: SLO requests by deadline, an overdue one at deadline + window (first on a
    // tie), then those without an SLO by tokens. Infinite: on-time SLO requests by deadline, then
    // those without an SLO by tokens, then overdue ones by deadline.
    const bool bounded = opt.max_demotion_ms != kInf || factor() != kInf;
    auto rank = [bounded](const Req& r) { return r.overdue && !bounded ? 2 : r.slo > 0 ? 0 : 1; };
    auto key = [&](const Req& r) {
      return r.overdue && bounded ? second(r) : r.deadline;
    };
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    if (rank(a) == 0 && a.overdue != b.overdue) return a.overdue ? key(a) <= key(b) : key(a) < key(b);
    const double ka = rank(a) == 1 ? a.tokens : key(a), kb = rank(b) == 1 ? b.tokens : key(b);
    if (ka != kb) return ka < kb;
    // Overdue requests with equal keys: in the order they turned overdue.
    if (a.overdue && b.overdue) return a.late_seq < b.late_seq;
    return a.seq < b.seq;
  }
  bool full() const {
    return count(RequestState::queued) >= opt.max_batch_size ||
           (opt.max_batch_tokens != 0 && queued_tokens() >= opt.max_batch_tokens);
  }
  double oldest() const {
    double t = kInf;
    for (const auto& [id, r] : live) {
      if (r.state == RequestState::queued) t = std::min(t, r.arrival);
    }
    return t;
  }
  std::vector<RequestId> batch(double now, bool force) {
    std::vector<RequestId> out;
    if (count(RequestState::queued) == 0) return out;
    if (!(force || full() || now >= oldest() + opt.max_wait_ms)) return out;
    this->now = now;
    if (!custom && opt.demote_overdue) {
      std::vector<Req*> turning;
      for (auto& e : live) {
        Req& r = e.second;
        if (r.state == RequestState::queued && r.slo > 0 && !r.overdue && r.deadline < now) turning.push_back(&r);
      }
      std::sort(turning.begin(), turning.end(),
                [](const Req* a, const Req* b) { return a->deadline != b->deadline ? a->deadline < b->deadline : a->seq < b->seq; });
      for (Req* r : turning) {
        r->overdue = true;
        r->late_seq = late_seq++;
      }
    }
    uint64_t tokens = 0;
    while (out.size() < opt.max_batch_size) {
      const std::pair<const RequestId, Req>* best = nullptr;
      for (const auto& e : live) {
        if (e.second.state == RequestState::queued && (best == nullptr || before(e.second, best->second))) best = &e;
      }
      if (best == nullptr) break;
      if (opt.max_batch_tokens != 0 && !out.empty() && tokens + best->second.tokens > opt.max_batch_tokens) break;
      tokens += best->second.tokens;
      out.push_back(best->first);
      live.at(best->first).state = RequestState::in_flight;
    }
    ++batches;
    dispatched += out.size();
    return out;
  }
};

struct Snapshot {
  SchedulerStats st;
  RequestId next;
  bool operator==(const Snapshot& o) const {
    return st.queued == o.st.queued && st.in_flight == o.st.in_flight && st.queued_tokens == o.st.queued_tokens &&
           st.batches == o.st.batches && st.dispatched == o.st.dispatched && st.completed == o.st.completed &&
           st.cancelled == o.st.cancelled && st.slo_met == o.st.slo_met && st.slo_missed == o.st.slo_missed &&
           next == o.next;
  }
};

Snapshot snap(const Scheduler& s) { return {s.stats(), s.next_request_id()}; }

void check_against(const Scheduler& s, const Model& m, double now) {
  const SchedulerStats st = s.stats();
  FUZZ_CHECK(st.queued == m.count(RequestState::queued) && s.queued() == st.queued);
  FUZZ_CHECK(st.in_flight == m.count(RequestState::in_flight) && s.in_flight() == st.in_flight);
  FUZZ_CHECK(st.queued_tokens == m.queued_tokens());
  FUZZ_CHECK(st.batches == m.batches && st.dispatched == m.dispatched);
  FUZZ_CHECK(st.completed == m.completed && st.cancelled == m.cancelled);
  FUZZ_CHECK(st.slo_met == m.met && st.slo_missed == m.missed);
  FUZZ_CHECK(st.avg_batch_size == (m.batches == 0 ? 0.0 : static_cast<double>(m.dispatched) / m.batches));
  FUZZ_CHECK(s.next_request_id() == m.peek_id());
  for (const auto& [id, r] : m.live) FUZZ_CHECK(s.state(id) == r.state);
  for (RequestId id : m.dead) {
    if (m.live.count(id) == 0) FUZZ_CHECK(s.state(id) == RequestState::unknown);
  }
  const std::optional<double> ready = s.ready_at(now);
  if (m.count(RequestState::queued) == 0) {
    FUZZ_CHECK(!ready);
  } else {
    FUZZ_CHECK(ready.has_value());
    FUZZ_CHECK(*ready == (m.full() ? now : std::max(m.oldest() + m.opt.max_wait_ms, now)));
  }
}

double pick_time_step(llmds_fuzz::Input& in) {
  switch (in.below(8)) {
    case 0: return 0.0;
    case 1: return -static_cast<double>(in.below(20));  // clocks may go back
    case 2: return in.below(4) * 0.1;                   // fractions: rounding of arrival + wait
    case 3: return 1e6;
    default: return in.below(40);
  }
}

double pick_slo(llmds_fuzz::Input& in) {
  switch (in.below(10)) {
    case 0: return -1.0;
    case 1: return std::numeric_limits<double>::quiet_NaN();
    case 2: return kInf;
    case 3: return 1e308;  // deadline overflows to +inf
    case 4: return 0.5;
    case 5:
    case 6: return 0.0;  // no SLO
    default: return 1 + in.below(60);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  llmds_fuzz::Input in(data, size);
  Model m;
  m.opt.max_batch_size = 1 + in.below(6);
  m.opt.max_wait_ms = std::array<double, 6>{0.0, 0.5, 1.0, 10.0, 25.0, 1e9}[in.below(6)];
  m.opt.max_batch_tokens = std::array<uint64_t, 4>{0, 1, 10, 40}[in.below(4)];
  m.opt.demote_overdue = in.below(4) != 0;
  m.opt.max_demotion_ms = std::array<double, 5>{0.0, 1.0, 5.0, 30.0, kInf}[in.below(5)];
  const double factor = std::array<double, 5>{0.0, 0.5, 2.0, -1.0, kInf}[in.below(5)];  // -1: unset
  if (factor >= 0) m.opt.max_demotion_factor = factor;
  m.opt.order = in.below(2) == 0 ? SchedulerOrder::weighted : SchedulerOrder::deadline;
  m.opt.late_penalty = std::array<double, 4>{1.0, 3.0, SchedulerOptions{}.late_penalty, kInf}[in.below(4)];
  const uint32_t mode = in.below(3);  // 0 default order, 1 priority_fn, 2 external priorities
  m.custom = mode != 0;
  const RequestId first = in.below(4) == 0 ? 0xfffffffcu : in.below(3);
  m.opt.first_request_id = first;
  m.next_id = first;
  double clock = in.below(100);
  // priority_fn: a pure function of the request with many ties; NaN for some ids; it also
  // checks what it is shown.
  RequestId expect_id = 0;
  if (mode == 1) {
    m.opt.priority_fn = [&](const ScheduledRequest& r) {
      FUZZ_CHECK(r.id == expect_id && r.arrival_ms == clock);
      FUZZ_CHECK(r.deadline_ms == (r.slo_ms > 0 ? r.arrival_ms + r.slo_ms : kInf));
      if (r.tokens == 13) return std::numeric_limits<double>::quiet_NaN();
      return static_cast<double>(r.tokens % 3) - (r.slo_ms > 0 ? 0.5 : 0.0);
    };
  }
  m.opt.external_priority = mode == 2;
  if (mode == 0 && m.opt.order == SchedulerOrder::weighted && !m.opt.demote_overdue) {
    FUZZ_CHECK(Scheduler::create(m.opt).status().code() == Errc::invalid_argument);  // demote_overdue is for the deadline order
    m.opt.demote_overdue = true;
  }
  auto created = Scheduler::create(m.opt);
  FUZZ_CHECK(created.ok());
  Scheduler s = std::move(created.value());
  FUZZ_CHECK(s.options().max_demotion_factor == (factor >= 0 ? factor : Scheduler::default_window_slos(m.opt.order)));
  m.opt.max_demotion_factor = s.options().max_demotion_factor;
  std::vector<RequestId> out;

  for (int step = 0; step < 400 && !in.empty(); ++step) {
    const Snapshot before = snap(s);
    bool failed = false;
    switch (in.below(8)) {
      case 0:
      case 1: {  // submit
        const uint32_t tokens = in.below(4) == 0 ? 13 : in.below(24);
        const double slo = pick_slo(in);
        const RequestId id = m.peek_id();
        expect_id = id;
        double priority = 0.0;
        Result<RequestId> r = RequestId{0};
        if (mode == 2) {
          const double table[] = {0.0, -0.0, 1.0, -1.0, kInf, -kInf, std::numeric_limits<double>::quiet_NaN(), 2.5};
          priority = table[in.below(8)];
          FUZZ_CHECK(!s.submit(tokens, clock, slo).ok());  // needs submit_with_priority
          r = s.submit_with_priority(tokens, priority, clock, slo);
        } else {
          if (mode == 1) {
            priority = tokens == 13 ? std::numeric_limits<double>::quiet_NaN()
                                    : static_cast<double>(tokens % 3) - (slo > 0 ? 0.5 : 0.0);
          }
          FUZZ_CHECK(!s.submit_with_priority(tokens, 1.0, clock, slo).ok());
          r = s.submit(tokens, clock, slo);
        }
        const bool valid = std::isfinite(slo) && slo >= 0 && !std::isnan(priority);
        FUZZ_CHECK(r.ok() == valid);
        if (!r.ok()) {
          FUZZ_CHECK(r.status().code() == Errc::invalid_argument);
          failed = true;
          break;
        }
        FUZZ_CHECK(*r == id);
        m.live[id] = Req{tokens, slo > 0 ? slo : 0.0, clock, slo > 0 ? clock + slo : kInf, priority, m.seq++,
                         RequestState::queued};
        m.next_id = id + 1;
        break;
      }
      case 2:
      case 3: {  // get_batch
        const bool force = in.below(3) == 0;
        const std::vector<RequestId> expected = m.batch(clock, force);
        if (in.below(2) == 0) {
          auto r = s.get_batch(clock, force);
          FUZZ_CHECK(r.ok() && *r == expected);
        } else {
          out.assign(3, 77);  // cleared first
          FUZZ_CHECK(s.get_batch(clock, force, out).ok() && out == expected);
        }
        for (RequestId id : expected) FUZZ_CHECK(m.dead.count(id) == 0);
        break;
      }
      case 4: {  // complete some in-flight requests, sometimes with a bad id mixed in
        std::vector<RequestId> ids;
        for (const auto& [id, r] : m.live) {
          if (r.state == RequestState::in_flight && in.below(3) != 0) ids.push_back(id);
        }
        bool bad = false;
        switch (in.below(6)) {
          case 0:
            if (!ids.empty()) ids.push_back(ids.front()), bad = true;  // repeated
            break;
          case 1:
            for (const auto& [id, r] : m.live) {
              if (r.state == RequestState::queued) {
                ids.insert(ids.begin(), id), bad = true;  // still queued
                break;
              }
            }
            break;
          case 2:
            ids.push_back(m.peek_id() + 1000), bad = true;  // unknown
            break;
          default:
            break;
        }
        const Status st = s.complete_batch(ids, clock);
        FUZZ_CHECK(st.ok() == !bad);
        if (!st) {
          failed = true;
          break;
        }
        for (RequestId id : ids) {
          const Req& r = m.live.at(id);
          if (r.slo > 0) ++(clock <= r.deadline ? m.met : m.missed);
          ++m.completed;
          m.live.erase(id);
          m.dead.insert(id);
        }
        break;
      }
      case 5: {  // cancel a live, a dead or an unknown id
        RequestId id = m.peek_id() + in.below(3);
        if (!m.live.empty() && in.below(3) != 0) {
          auto it = m.live.begin();
          std::advance(it, in.below(static_cast<uint32_t>(m.live.size())));
          id = it->first;
        } else if (!m.dead.empty() && in.below(2) == 0) {
          id = *m.dead.begin();
        }
        const bool expect = m.live.count(id) != 0;
        FUZZ_CHECK(s.cancel(id) == expect);
        if (expect) {
          m.live.erase(id);
          m.dead.insert(id);
          ++m.cancelled;
        }
        break;
      }
      case 6: {  // non-finite clocks are rejected everywhere
        const double bad = in.below(2) == 0 ? kInf : std::numeric_limits<double>::quiet_NaN();
        FUZZ_CHECK(!s.get_batch(bad, true).ok());
        FUZZ_CHECK(!s.complete_batch({}, bad).ok());
        FUZZ_CHECK(mode == 2 ? !s.submit_with_priority(1, 0.0, bad, 0.0).ok() : !s.submit(1, bad, 0.0).ok());
        failed = true;
        break;
      }
      default:
        clock += pick_time_step(in);
        break;
    }
    if (failed) FUZZ_CHECK(snap(s) == before);
    check_against(s, m, clock);
  }
  // Drain: forced batches empty the queue, and completing them empties the scheduler.
  while (s.queued() > 0) {
    const std::vector<RequestId> expected = m.batch(clock, true);
    auto r = s.get_batch(clock, true);
    FUZZ_CHECK(r.ok() && *r == expected && !expected.empty());
  }
  std::vector<RequestId> flying;
  for (const auto& [id, r] : m.live) flying.push_back(id);
  FUZZ_CHECK(s.complete_batch(flying, clock).ok());
  FUZZ_CHECK(s.queued() == 0 && s.in_flight() == 0);
  return 0;
}
