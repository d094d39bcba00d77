// SPDX-License-Identifier: MIT
#include "llmds/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/growth.hpp"

namespace llmds {

namespace {

constexpr uint32_t kNone = detail::FlatIdMap::kNone;

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  std::string s = std::to_string(v);
  // to_string prints 6 decimals; trim the zeros so messages show "50" rather than "50.000000".
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

}  // namespace

Result<Scheduler> Scheduler::create(SchedulerOptions options) {
  if (options.max_batch_size == 0 || options.max_batch_size > kMaxBatchSize) {
    return invalid_argument("maxBatchSize must be an integer in [1, " + std::to_string(kMaxBatchSize) + "], got " +
                            std::to_string(options.max_batch_size));
  }
  if (!std::isfinite(options.max_wait_ms) || options.max_wait_ms < 0) {
    return invalid_argument("maxWaitMs must be a finite number >= 0, got " + num(options.max_wait_ms));
  }
  if (!(options.max_demotion_ms >= 0)) {
    return invalid_argument("maxDemotionMs must be a number >= 0 (Infinity allowed), got " + num(options.max_demotion_ms));
  }
  if (options.max_demotion_factor && !(*options.max_demotion_factor >= 0)) {
    return invalid_argument("maxDemotionFactor must be a number >= 0 (Infinity allowed), got " +
                            num(*options.max_demotion_factor));
  }
  if (options.order != SchedulerOrder::weighted && options.order != SchedulerOrder::deadline) {
    return invalid_argument("order must be weighted or deadline, got " + std::to_string(static_cast<int>(options.order)));
  }
  if (!options.max_demotion_factor) options.max_demotion_factor = default_window_slos(options.order);
  if (!(options.late_penalty >= 1)) {
    return invalid_argument("latePenalty must be a number >= 1 (Infinity allowed), got " + num(options.late_penalty));
  }
  if (options.order == SchedulerOrder::weighted && !options.demote_overdue && !options.priority_fn &&
      !options.external_priority) {
    return invalid_argument("demoteOverdue applies to order 'deadline' only (the weighted order has latePenalty)");
  }
  if (options.priority_fn && options.external_priority) {
    return invalid_argument("priority_fn and external_priority are mutually exclusive");
  }
  return Scheduler(std::move(options));
}

Scheduler::Scheduler(SchedulerOptions options)
    : options_(std::move(options)),
      custom_order_(static_cast<bool>(options_.priority_fn) || options_.external_priority),
      bounded_demotion_(options_.max_demotion_ms != std::numeric_limits<double>::infinity() ||
                        *options_.max_demotion_factor != std::numeric_limits<double>::infinity()),
      next_id_(options_.first_request_id) {
  if (custom_order_) order_[0] = IndexedHeap(IndexedHeapOptions{true});
}

RequestId Scheduler::next_request_id() const noexcept {
  RequestId id = next_id_;
  // Only reachable after 2^32 submissions: skip ids still in use (at most queued + in flight).
  while (table_.find(id) != kNone) ++id;
  return id;
}

Status Scheduler::check_submit(double now_ms, double slo_ms) const {
  if (!std::isfinite(now_ms)) return invalid_argument("submit: the clock reading now must be finite, got " + num(now_ms));
  if (!std::isfinite(slo_ms) || slo_ms < 0) {
    return invalid_argument("submit: sloMs must be a positive finite number (or absent), got " + num(slo_ms));
  }
  return Status::success();
}

Result<RequestId> Scheduler::submit(uint32_t tokens, double now_ms, double slo_ms) {
  if (options_.external_priority) {
    return invalid_argument("submit: this scheduler takes caller-supplied priorities; use submit_with_priority");
  }
  Status st = check_submit(now_ms, slo_ms);
  if (!st) return st;
  double priority = 0.0;
  if (options_.priority_fn) {
    const RequestId id = next_request_id();
    const ScheduledRequest req{id, tokens, slo_ms, now_ms,
                               slo_ms > 0 ? now_ms + slo_ms : std::numeric_limits<double>::infinity()};
    priority = options_.priority_fn(req);
    if (std::isnan(priority)) return invalid_argument("submit: priorityFn returned NaN for request " + std::to_string(id));
  }
  return enqueue(tokens, now_ms, slo_ms, priority);
}

Result<RequestId> Scheduler::submit_with_priority(uint32_t tokens, double priority, double now_ms, double slo_ms) {
  if (!options_.external_priority) {
    return invalid_argument("submit_with_priority: this scheduler was not created with external_priority");
  }
  Status st = check_submit(now_ms, slo_ms);
  if (!st) return st;
  if (std::isnan(priority)) return invalid_argument("submit: priority must not be NaN");
  return enqueue(tokens, now_ms, slo_ms, priority);
}

IndexedHeap& Scheduler::queue_of(const Record& r) noexcept {
  if (custom_order_) return order_[0];
  if (r.slo_ms <= 0) return order_[1];
  return r.overdue && !weighted() ? order_[2] : order_[0];
}

double Scheduler::window_of(const Record& r) const noexcept {
  return std::min(options_.max_demotion_ms, *options_.max_demotion_factor * r.slo_ms);
}

double Scheduler::late_size(const Record& r) const noexcept {
  // +infinity is "behind every request still on time", also for a request of 0 tokens (whose
  // product would be NaN).
  if (options_.late_penalty == std::numeric_limits<double>::infinity()) return options_.late_penalty;
  return static_cast<double>(r.tokens) * r.slo_ms * options_.late_penalty;
}

void Scheduler::unlink(RequestId id, const Record& r) noexcept {
  IndexedHeap& queue = queue_of(r);
  // Popping a top skips the id lookup that erase needs.
  if (queue.peek()->id == id) {
    (void)queue.pop();
  } else {
    (void)queue.erase(id);
  }
  if (weighted() && r.slo_ms > 0) {
    if (r.overdue) {
      (void)order_[2].erase(id);
    } else {
      // mark_overdue skips a stale top itself, so nothing is popped here.
      drop_lazily(due_, stale_due_, false);
    }
  }
  drop_lazily(arrivals_, stale_arrivals_, true);
}

void Scheduler::drop_lazily(IndexedHeap& q, std::size_t& stale, bool live_top) noexcept {
  ++stale;
  // ready_at and get_batch read the oldest arrival from the top: keep it live there.
  while (live_top && !q.empty() && !waiting(q.peek()->id)) {
    (void)q.pop();
    if (stale > 0) --stale;
  }
  if (stale > q.size() - stale) {
    (void)q.retain_if([this](const HeapEntry& e) { return waiting(e.id); });
    stale = 0;
  }
}

void Scheduler::purge_stale() noexcept {
  auto live = [this](const HeapEntry& e) { return waiting(e.id); };
  (void)due_.retain_if(live);
  (void)arrivals_.retain_if(live);
  stale_due_ = stale_arrivals_ = 0;
}

Result<RequestId> Scheduler::enqueue(uint32_t tokens, double now_ms, double slo_ms, double priority) {
  const RequestId id = next_request_id();
  const bool has_slo = slo_ms > 0;
  const Record rec{now_ms, has_slo ? now_ms + slo_ms : std::numeric_limits<double>::infinity(), has_slo ? slo_ms : 0.0,
                   tokens, RequestState::queued};
  // Allocate first (a record, the id table, both heaps), then commit without allocating: a
  // bad_alloc leaves the scheduler unchanged.
  std::vector<Record> records;
  if (free_record_ == kNone) records = detail::grown_copy(records_, records_.size() + 1);
  auto table = table_.table_for(table_.size() + 1);
  IndexedHeap& queue = queue_of(rec);
  const bool tracks_deadline = weighted() && has_slo;  // also in due_, to notice when it turns late
  IndexedHeap::Room queue_room = queue.room_for(queue.size() + 1);
  IndexedHeap::Room due_room = tracks_deadline ? due_.room_for(due_.size() + 1) : IndexedHeap::Room{};
  IndexedHeap::Room arrival_room = arrivals_.room_for(arrivals_.size() + 1);
  detail::adopt_grown(records_, records);
  table_.adopt(std::move(table));
  queue.adopt(std::move(queue_room));
  due_.adopt(std::move(due_room));
  arrivals_.adopt(std::move(arrival_room));

  uint32_t slot = free_record_;
  if (slot != kNone) {
    free_record_ = records_[slot].tokens;
    records_[slot] = rec;
  } else {
    slot = static_cast<uint32_t>(records_.size());
    records_.push_back(rec);
  }
  table_.insert(id, slot);
  // Scores cannot be NaN here (validated above) and the id is fresh, so these pushes cannot
  // fail; they have room, so they do not allocate.
  double score;
  if (custom_order_) {
    score = priority;
  } else if (!has_slo) {
    score = static_cast<double>(tokens);
  } else {
    score = weighted() ? static_cast<double>(tokens) * slo_ms : rec.deadline_ms;
  }
  (void)queue.push(id, score);
  if (tracks_deadline) (void)due_.push(id, rec.deadline_ms);
  (void)arrivals_.push(id, now_ms);
  ++queued_;
  queued_tokens_ += tokens;
  // A stale entry in due_ or arrivals_ (see drop_lazily) must be gone before its id can be
  // handed out again, which takes a full cycle of 2^32 ids: purge whenever the ids wrap.
  const bool wrapped = id < next_id_ || id == std::numeric_limits<RequestId>::max();
  next_id_ = id + 1;
  if (wrapped) purge_stale();
  return id;
}

bool Scheduler::full() const noexcept {
  if (queued_ >= options_.max_batch_size) return true;
  return options_.max_batch_tokens != 0 && queued_tokens_ >= options_.max_batch_tokens;
}

std::optional<HeapEntry> Scheduler::best(double now_ms) const noexcept {
  if (custom_order_) return order_[0].peek();
  if (weighted()) {
    // Starved: past its second deadline, it goes before everything, earliest first.
    const std::optional<HeapEntry> starved = order_[2].peek();
    if (starved && starved->score < now_ms) return starved;
    if (!order_[0].empty()) return order_[0].peek();
    return order_[1].peek();
  }
  if (bounded_demotion_ && !order_[2].empty()) {
    // Bounded demotion: order_[2] is keyed by second deadline; the earliest ranks among the
    // on-time requests by it (first on a tie), and before every request without an SLO.
    const std::optional<HeapEntry> late = order_[2].peek();
    const std::optional<HeapEntry> on_time = order_[0].peek();
    if (!on_time || late->score <= on_time->score) return late;
    return on_time;
  }
  if (!order_[0].empty()) return order_[0].peek();
  if (!order_[1].empty()) return order_[1].peek();
  return order_[2].peek();
}

std::optional<double> Scheduler::ready_at(double now_ms) const {
  if (queued_ == 0) return std::nullopt;
  if (full()) return now_ms;
  const double due = arrivals_.peek()->score + options_.max_wait_ms;
  return std::max(due, now_ms);
}

Result<std::vector<RequestId>> Scheduler::get_batch(double now_ms, bool force) {
  std::vector<RequestId> batch;
  Status st = get_batch(now_ms, force, batch);
  if (!st) return st;
  return batch;
}

Status Scheduler::get_batch(double now_ms, bool force, std::vector<RequestId>& batch) {
  if (!std::isfinite(now_ms)) return invalid_argument("getBatch: the clock reading now must be finite, got " + num(now_ms));
  if (queued_ == 0) {
    batch.clear();
    return Status::success();
  }
  // The prototype compared the oldest id for truthiness, so request 0 never waited; here the
  // oldest *queued* arrival decides, whatever its id, and in-flight requests play no part.
  // Written as ready_at() computes it (arrival + wait, not now - arrival): the two roundings
  // differ, and get_batch(ready_at(t)) must release what ready_at promised.
  const bool waited = now_ms >= arrivals_.peek()->score + options_.max_wait_ms;
  if (!(force || full() || waited)) {
    batch.clear();
    return Status::success();
  }
  // Allocate first (the batch, room in the overdue queue for the requests about to be
  // demoted), then commit without allocating: a bad_alloc leaves the scheduler unchanged.
  batch.reserve(std::min<std::size_t>(queued_, options_.max_batch_size));
  if (!custom_order_ && options_.demote_overdue) {
    const std::size_t late = due_queue().count_below(now_ms);
    if (late > 0) order_[2].adopt(order_[2].room_for(order_[2].size() + late));
  }
  batch.clear();
  mark_overdue(now_ms);
  const uint64_t token_cap = options_.max_batch_tokens;
  uint64_t batch_tokens = 0;
  while (batch.size() < options_.max_batch_size) {
    const std::optional<HeapEntry> top = best(now_ms);
    if (!top) break;
    const uint32_t slot = table_.find(top->id);
    Record& rec = records_[slot];
    if (token_cap != 0 && !batch.empty() && batch_tokens + rec.tokens > token_cap) break;
    rec.state = RequestState::in_flight;
    unlink(top->id, rec);
    --queued_;
    ++in_flight_;
    queued_tokens_ -= rec.tokens;
    batch_tokens += rec.tokens;
    batch.push_back(top->id);
  }
  ++batches_;
  dispatched_ += batch.size();
  return Status::success();
}

void Scheduler::mark_overdue(double now_ms) noexcept {  // order_[2] has room (see get_batch)
  if (custom_order_ || !options_.demote_overdue) return;
  // Each request turns overdue at most once, so this is O(log n) amortised per request.
  IndexedHeap& due = due_queue();
  while (!due.empty() && due.peek()->score < now_ms) {
    const HeapEntry late = *due.pop();
    if (!waiting(late.id)) {  // left the queue, dropped lazily (only in due_)
      if (stale_due_ > 0) --stale_due_;
      continue;
    }
    Record& rec = records_[table_.find(late.id)];
    rec.overdue = true;
    if (weighted()) {
      // Keeps its place among equal sizes (update preserves the push order).
      (void)order_[0].update(late.id, late_size(rec));
      (void)order_[2].push(late.id, late.score + window_of(rec));
      continue;
    }
    // Bounded: keyed by the second deadline; for good: by deadline, behind everything else.
    (void)order_[2].push(late.id, bounded_demotion_ ? late.score + window_of(rec) : late.score);
  }
}

Status Scheduler::complete_batch(const RequestId* ids, std::size_t n, double now_ms) {
  if (!std::isfinite(now_ms)) {
    return invalid_argument("completeBatch: the clock reading now must be finite, got " + num(now_ms));
  }
  // Validate all ids before changing anything; mark each seen one so a repeat is caught, then
  // restore the marks. The error message (an allocation) is built after the restore, so running
  // out of memory there leaves no marks behind either.
  enum class Problem { none, unknown, queued, repeated } problem = Problem::none;
  std::size_t checked = 0;
  for (; checked < n; ++checked) {
    const uint32_t slot = table_.find(ids[checked]);
    if (slot == kNone) {
      problem = Problem::unknown;
      break;
    }
    Record& rec = records_[slot];
    if (rec.state == RequestState::queued) {
      problem = Problem::queued;
      break;
    }
    if (rec.state == RequestState::unknown) {
      problem = Problem::repeated;
      break;
    }
    rec.state = RequestState::unknown;
  }
  for (std::size_t i = 0; i < checked; ++i) records_[table_.find(ids[i])].state = RequestState::in_flight;
  switch (problem) {
    case Problem::none: break;
    case Problem::unknown:
      return not_found("completeBatch: request " + std::to_string(ids[checked]) +
                       " is not in flight (unknown, completed or cancelled)");
    case Problem::queued:
      return invalid_argument("completeBatch: request " + std::to_string(ids[checked]) +
                              " is still queued (it was never returned by getBatch)");
    case Problem::repeated:
      return invalid_argument("completeBatch: request " + std::to_string(ids[checked]) + " appears twice");
  }
  for (std::size_t i = 0; i < n; ++i) {
    const uint32_t slot = table_.find(ids[i]);
    const Record& rec = records_[slot];
    if (rec.slo_ms > 0) {
      if (now_ms <= rec.deadline_ms) {
        ++slo_met_;
      } else {
        ++slo_missed_;
      }
    }
    --in_flight_;
    ++completed_;
    release(ids[i], slot);
  }
  return Status::success();
}

bool Scheduler::cancel(RequestId id) {
  const uint32_t slot = table_.find(id);
  if (slot == kNone) return false;
  Record& rec = records_[slot];
  if (rec.state == RequestState::queued) {
    rec.state = RequestState::unknown;  // before unlink, which drops entries that are not queued
    unlink(id, rec);
    --queued_;
    queued_tokens_ -= rec.tokens;
  } else {
    --in_flight_;
  }
  ++cancelled_;
  release(id, slot);
  return true;
}

void Scheduler::release(RequestId id, uint32_t slot) noexcept {
  table_.erase(id);
  Record& rec = records_[slot];
  rec.state = RequestState::unknown;
  rec.tokens = free_record_;  // a free record's tokens field links the free list: no allocation here
  free_record_ = slot;
}

RequestState Scheduler::state(RequestId id) const noexcept {
  const uint32_t slot = table_.find(id);
  return slot == kNone ? RequestState::unknown : records_[slot].state;
}

SchedulerStats Scheduler::stats() const noexcept {
  SchedulerStats s;
  s.queued = queued_;
  s.in_flight = in_flight_;
  s.queued_tokens = queued_tokens_;
  s.batches = batches_;
  s.dispatched = dispatched_;
  s.completed = completed_;
  s.cancelled = cancelled_;
  s.avg_batch_size = batches_ == 0 ? 0.0 : static_cast<double>(dispatched_) / static_cast<double>(batches_);
  s.slo_met = slo_met_;
  s.slo_missed = slo_missed_;
  return s;
}

std::size_t Scheduler::memory_bytes() const noexcept {
  return order_[0].memory_bytes() + order_[1].memory_bytes() + order_[2].memory_bytes() + due_.memory_bytes() +
         arrivals_.memory_bytes() + table_.memory_bytes() +
         records_.capacity() * sizeof(Record);
}

}  // namespace llmds
