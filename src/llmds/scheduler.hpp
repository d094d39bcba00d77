// SPDX-License-Identifier: MIT
/// @file scheduler.hpp
/// @brief Micro-batching request scheduler with SLO-aware ordering; every operation O(log n).
///
/// Release rule. `get_batch(now)` returns a batch when, among the *queued* requests (those
/// handed out and still in flight do not count):
/// - the queue holds a full batch: at least `max_batch_size` requests, or, when
///   `max_batch_tokens` is set, at least that many tokens; or
/// - the oldest queued request (by arrival time) has waited at least `max_wait_ms`; or
/// - `force` is set and the queue is not empty.
/// Otherwise it returns an empty batch.
///
/// Order. By default requests with an SLO come first, earliest deadline first
/// (deadline = arrival + slo_ms), then requests without one, fewest tokens first; ties in
/// submission order. A request whose deadline has passed (at a releasing get_batch) is demoted:
/// it ranks at a second deadline, deadline + min(max_demotion_ms, max_demotion_factor x
/// slo_ms) (see SchedulerOptions), so it is passed over for a bounded time. With a custom priority (a `priority_fn`, or priorities passed to
/// `submit_with_priority`) the highest priority comes first, ties in submission order. A
/// priority is computed once, at submission, and never re-evaluated.
///
/// Batch formation takes requests in that order, up to `max_batch_size`, and while the next
/// one fits in `max_batch_tokens` (when set). It stops at the first request that does not fit
/// rather than skipping ahead, so order is never violated; a request larger than
/// `max_batch_tokens` on its own is served in a batch by itself rather than starving.
///
/// Time. Every time-dependent call takes the caller's clock reading `now_ms` (any monotone
/// millisecond clock; simulations pass simulated time). A reading earlier than a previous one
/// is accepted; elapsed times are then simply smaller.
///
/// Request ids count up from `first_request_id` (0 by default); id 0 is an ordinary id. After
/// 2^32 submissions they wrap, skipping ids that are still queued or in flight.
///
/// Out of memory: submit and get_batch allocate the room they need in every queue and table
/// first, so a std::bad_alloc leaves the scheduler exactly as it was, memory_bytes() included.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <vector>

#include "llmds/indexed_heap.hpp"
#include "llmds/status.hpp"

namespace llmds {

using RequestId = uint32_t;

/// What a priority function sees about a request.
struct ScheduledRequest {
  RequestId id;
  uint32_t tokens;
  double slo_ms;       ///< 0 when the request has no SLO
  double arrival_ms;
  double deadline_ms;  ///< arrival + slo_ms; +infinity when the request has no SLO
};

/// Higher is served first. Must not return NaN.
using PriorityFn = std::function<double(const ScheduledRequest&)>;

struct SchedulerOptions {
  uint32_t max_batch_size = 32;  ///< requests per batch, >= 1
  double max_wait_ms = 50.0;     ///< finite, >= 0
  uint64_t max_batch_tokens = 0; ///< tokens per batch; 0 = no token limit
  PriorityFn priority_fn;        ///< evaluated once per submit; set => custom ordering
  /// Custom ordering with priorities supplied per call (`submit_with_priority`); what the JS
  /// binding uses, since its priorityFn is a JS callback evaluated on the JS side.
  bool external_priority = false;
  /// Default order only: a queued request whose deadline has passed goes behind every request
  /// that can still be on time (then those without an SLO), instead of first. Plain EDF serves
  /// the most overdue request first once a backlog forms, so every request ends up late (EDF's
  /// domino effect); measured by bench/serving-simulator.mjs.
  bool demote_overdue = true;
  /// Bounded demotion (default order with demote_overdue only): an overdue request can be passed
  /// over for at most window = min(max_demotion_ms, max_demotion_factor x its slo_ms) after its
  /// deadline. It ranks as if due at deadline + window (its second deadline): requests due
  /// before that go first, requests due after it (looser SLOs, no SLO) after it; once the second
  /// deadline has passed too it comes before every request still on time, earliest second
  /// deadline first. So no request is served before it that was submitted after its second
  /// deadline. A window of 0 is plain EDF; both limits +infinity keep an overdue request behind
  /// every on-time and every SLO-less request for good (the rule before these options, which
  /// starved the tail: chat TTFT p95 153 s vs 22 s under FCFS on the simulator's edge engine at
  /// 0.9 load). Each is a number >= 0 or +infinity. Defaults: no absolute limit, 10 SLOs (a
  /// chat turn due in 1 s is passed over for at most 10 s more), chosen by
  /// bench/serving-simulator.mjs (bench/README.md "Serving simulator").
  double max_demotion_ms = std::numeric_limits<double>::infinity();
  double max_demotion_factor = 10.0;
  RequestId first_request_id = 0;  ///< first id handed out (tests of the wrap-around use it)
};

enum class RequestState : uint8_t { unknown = 0, queued = 1, in_flight = 2 };

struct SchedulerStats {
  uint64_t queued = 0;
  uint64_t in_flight = 0;
  uint64_t queued_tokens = 0;
  uint64_t batches = 0;
  uint64_t dispatched = 0;  ///< requests handed out in batches
  uint64_t completed = 0;
  uint64_t cancelled = 0;
  double avg_batch_size = 0.0;  ///< dispatched / batches (0 before the first batch)
  uint64_t slo_met = 0;         ///< completed with completion time <= deadline
  uint64_t slo_missed = 0;      ///< completed after their deadline
};

class Scheduler {
 public:
  static constexpr uint32_t kMaxBatchSize = 1u << 20;

  static Result<Scheduler> create(SchedulerOptions options);

  /// Queues a request of `tokens` tokens; `slo_ms` > 0 sets deadline = now + slo_ms, 0 means
  /// no SLO. invalid_argument for a negative / non-finite slo_ms or a non-finite clock, and
  /// when the scheduler expects `submit_with_priority` instead.
  Result<RequestId> submit(uint32_t tokens, double now_ms, double slo_ms = 0.0);
  /// Same, with the caller's priority (higher first). Only for `external_priority` schedulers.
  Result<RequestId> submit_with_priority(uint32_t tokens, double priority, double now_ms, double slo_ms = 0.0);

  /// The next batch in service order (see the file comment), or an empty vector.
  Result<std::vector<RequestId>> get_batch(double now_ms, bool force = false);
  /// Same, into `out` (cleared first), so a caller that keeps `out` allocates nothing.
  Status get_batch(double now_ms, bool force, std::vector<RequestId>& out);
  /// Marks in-flight requests finished at `now_ms` and scores their SLOs. Every id must be in
  /// flight and appear once (else invalid_argument / not_found, and nothing changes).
  Status complete_batch(const RequestId* ids, std::size_t n, double now_ms);
  Status complete_batch(const std::vector<RequestId>& ids, double now_ms) {
    return complete_batch(ids.data(), ids.size(), now_ms);
  }
  /// Drops a queued or in-flight request; false if the id is neither.
  bool cancel(RequestId id);

  /// The earliest clock reading at which get_batch would release a batch without `force`:
  /// `now_ms` if it would now, empty when nothing is queued.
  std::optional<double> ready_at(double now_ms) const;
  RequestState state(RequestId id) const noexcept;
  /// The id the next submit will return.
  RequestId next_request_id() const noexcept;
  std::size_t queued() const noexcept { return queued_; }
  std::size_t in_flight() const noexcept { return in_flight_; }
  SchedulerStats stats() const noexcept;
  bool custom_order() const noexcept { return custom_order_; }
  const SchedulerOptions& options() const noexcept { return options_; }
  std::size_t memory_bytes() const noexcept;

 private:
  struct Record {
    double arrival_ms;
    double deadline_ms;  // +inf without SLO
    double slo_ms;
    uint32_t tokens;
    RequestState state;
    bool overdue = false;  // moved to the overdue queue by demote_overdue
  };

  explicit Scheduler(SchedulerOptions options);
  Result<RequestId> enqueue(uint32_t tokens, double now_ms, double slo_ms, double priority);
  Status check_submit(double now_ms, double slo_ms) const;
  IndexedHeap& queue_of(const Record& r) noexcept;
  std::optional<HeapEntry> best() const noexcept;
  void release(RequestId id, uint32_t slot) noexcept;
  bool full() const noexcept;

  SchedulerOptions options_;
  bool custom_order_;
  bool bounded_demotion_;  // a finite demotion window (max_demotion_ms or max_demotion_factor)
  // Default order: order_[0] = requests with an SLO by deadline, order_[1] = the others by
  // tokens; custom order: order_[0] = all requests by priority (max-heap).
  // by deadline (or custom priority), no-SLO by tokens, overdue by second deadline (by deadline
  // when demoted for good)
  IndexedHeap order_[3];
  void demote_overdue(double now_ms) noexcept;
  IndexedHeap arrivals_;  // queued requests by arrival time: the oldest one decides the wait
  detail::FlatIdMap table_;  // id -> index in records_ (queued and in-flight requests)
  std::vector<Record> records_;
  uint32_t free_record_ = detail::FlatIdMap::kNone;  // head of the free-record list
  RequestId next_id_;
  std::size_t queued_ = 0;
  std::size_t in_flight_ = 0;
  uint64_t queued_tokens_ = 0;
  uint64_t batches_ = 0;
  uint64_t dispatched_ = 0;
  uint64_t completed_ = 0;
  uint64_t cancelled_ = 0;
  uint64_t slo_met_ = 0;
  uint64_t slo_missed_ = 0;
};

}  // namespace llmds
