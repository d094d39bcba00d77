// SPDX-License-Identifier: MIT
// embind surface of Scheduler. submit is one call with numeric arguments returning the id (or
// kFailed) so JS can submit millions of requests per second; getBatch leaves the batch's ids in
// the result slot, which JS copies out right after the call.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "common.hpp"
#include "llmds/scheduler.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

class RawScheduler {
 public:
  explicit RawScheduler(Scheduler s) : sched_(std::move(s)) {}

  /// max_batch_tokens <= 0: no token limit.
  static std::unique_ptr<RawScheduler> create(double max_batch_size, double max_wait_ms, double max_batch_tokens,
                                              bool external_priority, int order, double late_penalty,
                                              bool demote_overdue, double max_demotion_ms, double max_demotion_factor) {
    SchedulerOptions o;
    // JS validated the ranges; the casts only narrow already-checked integers.
    o.max_batch_size = static_cast<uint32_t>(max_batch_size);
    o.max_wait_ms = max_wait_ms;
    o.max_batch_tokens = max_batch_tokens > 0 ? static_cast<uint64_t>(max_batch_tokens) : 0;
    o.external_priority = external_priority;
    o.order = static_cast<SchedulerOrder>(order);  // validated by Scheduler::create
    o.late_penalty = late_penalty;
    o.demote_overdue = demote_overdue;
    o.max_demotion_ms = max_demotion_ms;  // validated by Scheduler::create (Infinity crosses as a double)
    if (!std::isnan(max_demotion_factor)) o.max_demotion_factor = max_demotion_factor;  // NaN: the order's default
    return adopt<RawScheduler>(Scheduler::create(std::move(o)));
  }
  static val limits() {
    val o = val::object();
    o.set("maxBatchSize", Scheduler::kMaxBatchSize);
    // The defaults live in the core only.
    o.set("defaultMaxDemotionMs", SchedulerOptions{}.max_demotion_ms);
    o.set("defaultLatePenalty", SchedulerOptions{}.late_penalty);
    return o;
  }

  /// The request id, or kFailed. slo_ms 0 = no SLO.
  double submit(uint32_t tokens, double slo_ms, double now_ms) { return value_or_failed(sched_.submit(tokens, now_ms, slo_ms)); }
  double submit_with_priority(uint32_t tokens, double slo_ms, double now_ms, double priority) {
    return value_or_failed(sched_.submit_with_priority(tokens, priority, now_ms, slo_ms));
  }
  uint32_t next_id() const { return sched_.next_request_id(); }
  /// Number of ids left in the result slot, or kFailed.
  int32_t get_batch(double now_ms, bool force) {
    Status st = sched_.get_batch(now_ms, force, batch_);
    if (!st) return report(st);
    std::copy(batch_.begin(), batch_.end(), result_.as<RequestId>(batch_.size()));
    return static_cast<int32_t>(batch_.size());
  }
  uintptr_t result_address() const { return result_.address(); }
  int32_t complete_batch(uintptr_t ids, uint32_t n, double now_ms) {
    return report(sched_.complete_batch(heap_ptr<RequestId>(ids), n, now_ms));
  }
  bool cancel(uint32_t id) { return sched_.cancel(id); }
  int32_t state(uint32_t id) const { return static_cast<int32_t>(sched_.state(id)); }
  /// NaN when nothing is queued.
  double ready_at(double now_ms) const {
    return sched_.ready_at(now_ms).value_or(std::numeric_limits<double>::quiet_NaN());
  }
  uint32_t queued() const { return static_cast<uint32_t>(sched_.queued()); }
  uint32_t in_flight() const { return static_cast<uint32_t>(sched_.in_flight()); }
  val stats() const {
    const SchedulerStats s = sched_.stats();
    val o = val::object();
    o.set("queued", static_cast<double>(s.queued));
    o.set("inFlight", static_cast<double>(s.in_flight));
    o.set("batches", static_cast<double>(s.batches));
    o.set("completed", static_cast<double>(s.completed));
    o.set("avgBatchSize", s.avg_batch_size);
    o.set("sloMet", static_cast<double>(s.slo_met));
    o.set("sloMissed", static_cast<double>(s.slo_missed));
    o.set("cancelled", static_cast<double>(s.cancelled));
    o.set("dispatched", static_cast<double>(s.dispatched));
    o.set("queuedTokens", static_cast<double>(s.queued_tokens));
    o.set("bytes", static_cast<double>(sched_.memory_bytes()));
    return o;
  }

 private:
  Scheduler sched_;
  std::vector<RequestId> batch_;  // reused by every getBatch: no allocation once it has grown
  ResultSlot result_;
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_scheduler) {
  using namespace llmds::wasm;
  emscripten::class_<RawScheduler>("RawScheduler")
      .class_function("create", LLMDS_GUARD(&RawScheduler::create))
      .class_function("limits", &RawScheduler::limits)
      .function("submit", LLMDS_GUARD(&RawScheduler::submit))
      .function("submitWithPriority", LLMDS_GUARD(&RawScheduler::submit_with_priority))
      .function("nextId", LLMDS_GUARD(&RawScheduler::next_id))
      .function("getBatch", LLMDS_GUARD(&RawScheduler::get_batch))
      .function("resultAddress", LLMDS_GUARD(&RawScheduler::result_address))
      .function("completeBatch", LLMDS_GUARD(&RawScheduler::complete_batch))
      .function("cancel", LLMDS_GUARD(&RawScheduler::cancel))
      .function("state", LLMDS_GUARD(&RawScheduler::state))
      .function("readyAt", LLMDS_GUARD(&RawScheduler::ready_at))
      .function("queued", LLMDS_GUARD(&RawScheduler::queued))
      .function("inFlight", LLMDS_GUARD(&RawScheduler::in_flight))
      .function("stats", LLMDS_GUARD(&RawScheduler::stats));
}
