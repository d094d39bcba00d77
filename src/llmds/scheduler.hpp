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
/// Order. By default (`SchedulerOrder::weighted`) requests with an SLO come first, smallest
/// weighted size first: tokens x slo_ms (Smith's rule with weight 1/SLO: a short request and a
/// tight SLO both go earlier; the order that minimises the sum of completion times measured in
/// SLOs); then requests without one, fewest tokens first; ties in submission order. A request
/// whose deadline (arrival + slo_ms) has passed at a releasing get_batch counts `late_penalty`
/// times its size (10 by default), so requests that can still be on time go first unless they
/// are much larger. Starvation is bounded: a request whose second deadline, deadline +
/// min(max_demotion_ms, max_demotion_factor x slo_ms), has passed goes before everything else,
/// earliest second deadline first, so no request submitted after that is served before it.
/// `SchedulerOrder::deadline` is earliest deadline first with bounded demotion instead: an
/// overdue request ranks at its second deadline among the deadlines of the others (see
/// SchedulerOptions). With a custom priority (a `priority_fn`, or priorities passed to
/// `submit_with_priority`) the highest priority comes first, ties in submission order. A
/// priority is computed once, at submission, and never re-evaluated. Overdue requests ranked by
/// their second deadline (or, demoted for good, by deadline) that tie go in the order they
/// turned overdue (the earlier deadline first).
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

/// The default order (without a priority function); see the file comment.
enum class SchedulerOrder : uint8_t {
  /// Smallest tokens x slo_ms first, late requests penalised, starvation bounded.
  weighted = 0,
  /// Earliest deadline first, overdue requests demoted for a bounded window.
  deadline = 1,
};

struct SchedulerOptions {
  uint32_t max_batch_size = 32;  ///< requests per batch, >= 1
  double max_wait_ms = 50.0;     ///< finite, >= 0
  uint64_t max_batch_tokens = 0; ///< tokens per batch; 0 = no token limit
  PriorityFn priority_fn;        ///< evaluated once per submit; set => custom ordering
  /// Custom ordering with priorities supplied per call (`submit_with_priority`); what the JS
  /// binding uses, since its priorityFn is a JS callback evaluated on the JS side.
  bool external_priority = false;
  /// Which default order (ignored with a custom priority). `weighted` (the default) was chosen
  /// over `deadline` by bench/serving-simulator.mjs: earliest-deadline-first serves a loose-SLO
  /// request at the end of its SLO, after its cached prefix has been evicted, and under a
  /// backlog that costs the engine capacity until the order collapses (bench/README.md
  /// "Serving simulator").
  SchedulerOrder order = SchedulerOrder::weighted;
  /// Weighted order: an overdue request's size is multiplied by this (>= 1, +infinity = behind
  /// every request still on time). Serving a request that is already late gains no SLO, so one
  /// that can still be on time goes first unless it is more than late_penalty times larger.
  double late_penalty = 10.0;
  /// Deadline order only: a queued request whose deadline has passed goes behind every
  /// request that can still be on time (then those without an SLO), instead of first. Plain
  /// EDF serves the most overdue request first once a backlog forms, so every request ends up
  /// late (EDF's domino effect); measured by bench/serving-simulator.mjs. Must stay true with
  /// the weighted order (its counterpart there is late_penalty).
  bool demote_overdue = true;
  /// The starvation bound, both orders: a queued SLO request can be passed over for at most
  /// window = min(max_demotion_ms, max_demotion_factor x its slo_ms) after its deadline; after
  /// that second deadline it goes before every request still on time, earliest second deadline
  /// first. So no request is served before it that was submitted after its second deadline.
  /// Deadline order: until then an overdue request ranks as if due at its second deadline
  /// (requests due before that go first, requests due after it after it); a window of 0 is
  /// plain EDF; both limits +infinity keep an overdue request behind every on-time and every
  /// SLO-less request for good (which starved the tail: chat TTFT p95 153 s vs 22 s under FCFS
  /// on the simulator's edge engine at 0.9 load). Weighted order: both +infinity = no bound.
  /// Each is a number >= 0 or +infinity. Defaults: no absolute limit, and
  /// default_window_slos(order) SLOs (20 weighted, 10 deadline: a chat turn due in 1 s waits at
  /// most 20 s more), each the best measured for its order by bench/serving-simulator.mjs.
  double max_demotion_ms = std::numeric_limits<double>::infinity();
  std::optional<double> max_demotion_factor;  ///< unset: default_window_slos(order)
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
  /// The default max_demotion_factor of an order: 20 SLOs for weighted, 10 for deadline.
  static constexpr double default_window_slos(SchedulerOrder order) noexcept {
    return order == SchedulerOrder::weighted ? 20.0 : 10.0;
  }

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
  /// The options in force (max_demotion_factor resolved to its order's default when unset).
  const SchedulerOptions& options() const noexcept { return options_; }
  std::size_t memory_bytes() const noexcept;

 private:
  struct Record {
    double arrival_ms;
    double deadline_ms;  // +inf without SLO
    double slo_ms;
    uint32_t tokens;
    RequestState state;
    bool overdue = false;  // its deadline had passed at a releasing get_batch (see mark_overdue)
  };

  explicit Scheduler(SchedulerOptions options);
  Result<RequestId> enqueue(uint32_t tokens, double now_ms, double slo_ms, double priority);
  Status check_submit(double now_ms, double slo_ms) const;
  bool weighted() const noexcept { return !custom_order_ && options_.order == SchedulerOrder::weighted; }
  double window_of(const Record& r) const noexcept;
  double late_size(const Record& r) const noexcept;
  IndexedHeap& queue_of(const Record& r) noexcept;
  /// Removes a request that has just left the queue (its state already changed) from every
  /// queue it is in: exactly from the ordering queues, lazily from due_ and arrivals_.
  void unlink(RequestId id, const Record& r) noexcept;
  bool waiting(RequestId id) const noexcept { return state(id) == RequestState::queued; }
  void drop_lazily(IndexedHeap& q, std::size_t& stale, bool live_top) noexcept;
  void purge_stale() noexcept;
  std::optional<HeapEntry> best(double now_ms) const noexcept;
  void release(RequestId id, uint32_t slot) noexcept;
  bool full() const noexcept;
  IndexedHeap& due_queue() noexcept { return weighted() ? due_ : order_[0]; }
  void mark_overdue(double now_ms) noexcept;

  SchedulerOptions options_;
  bool custom_order_;
  bool bounded_demotion_;  // a finite window (max_demotion_ms or max_demotion_factor)
  // order_[0]: custom order: every request by priority (max-heap); weighted: SLO requests by
  // tokens x slo (x late_penalty once overdue); deadline: on-time SLO requests by deadline.
  // order_[1]: requests without an SLO by tokens. order_[2]: overdue SLO requests by second
  // deadline (deadline order, demoted for good: by deadline).
  IndexedHeap order_[3];
  IndexedHeap due_;  // weighted order: on-time SLO requests by deadline (who turns overdue next)
  IndexedHeap arrivals_;  // queued requests by arrival time: the oldest one decides the wait
  // due_ and arrivals_ drop a request that leaves the queue lazily: only when it is at the top
  // (where a reader would see it) or when stale entries outnumber live ones (one O(n) purge,
  // amortised O(1) per request). Each exact removal is a heap erase at a random position, and
  // with three queues per request those erases were most of getBatch's cost.
  std::size_t stale_due_ = 0;
  std::size_t stale_arrivals_ = 0;
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
