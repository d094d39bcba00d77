// SPDX-License-Identifier: MIT
// Serving suite of llmds_bench: Scheduler submit / getBatch, AdmissionController::should_admit
// and IndexedHeap push / update / pop on the same data (mulberry32, same seeds and draw order),
// sizes, warm-ups and timing method as bench/serving.mjs, so each JS API figure has a native one.
// Where the JS API reads performance.now(), the native code reads steady_clock (in the timed code,
// as in JS).
#include "bench_common.hpp"
#include "serving_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <utility>
#include <vector>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "llmds/admission.hpp"
#include "llmds/indexed_heap.hpp"
#include "llmds/scheduler.hpp"

namespace llmds_bench {
namespace {

using Clock = std::chrono::steady_clock;

/// The default clock of the JS Scheduler / AdmissionController is performance.now(): a
/// millisecond reading per call. Natively: steady_clock in milliseconds.
double now_ms() { return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count(); }

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "llmds_bench --suite serving: %s\n", msg.c_str());
  std::exit(1);
}

void add_summary(ServingRow& row, const std::string& name, const std::vector<double>& s) {
  row[name + "P50Ms"] = percentile(s, 50);
  row[name + "P95Ms"] = percentile(s, 95);
  row[name + "P99Ms"] = percentile(s, 99);
  double sum = 0;
  for (double x : s) sum += x;
  row[name + "MeanMs"] = s.empty() ? 0 : sum / double(s.size());
}

/// serving.mjs's interleaved(): best-of-`reps` ns per operation of each contender, run a, b, c,
/// a, b, c, ... so machine noise hits them alike. Each fn performs `ops` operations and returns
/// a count the caller checks.
struct Interleaved {
  std::vector<double> ns;
  std::vector<std::size_t> kept;
};
Interleaved interleaved(std::size_t ops, const std::vector<std::function<std::size_t()>>& fns, int reps = 5) {
  Interleaved out{std::vector<double>(fns.size(), 1e300), std::vector<std::size_t>(fns.size(), 0)};
  for (int r = 0; r < reps; ++r) {
    for (std::size_t f = 0; f < fns.size(); ++f) {
      const auto t0 = Clock::now();
      out.kept[f] = fns[f]();
      out.ns[f] = std::min(out.ns[f], ms_since(t0) * 1e6 / double(ops));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scheduler

std::vector<ServingRow> bench_submit(std::size_t n) {
  Mulberry32 next{11};
  std::vector<uint32_t> tokens(n);
  std::vector<double> slos(n);
  for (auto& t : tokens) t = 16 + static_cast<uint32_t>(next() * 4000);
  for (auto& s : slos) s = 200 + std::floor(next() * 30000);

  auto make = [](bool fcfs) {
    llmds::SchedulerOptions o;
    o.max_batch_size = 32;
    // The JS priorityFn (req) => -req.arrivalMs; natively a priority_fn evaluated in C++.
    if (fcfs) o.priority_fn = [](const llmds::ScheduledRequest& r) { return -r.arrival_ms; };
    auto s = llmds::Scheduler::create(std::move(o));
    if (!s) die("Scheduler::create: " + s.status().message());
    return std::move(s.value());
  };
  auto check = [](const llmds::Result<llmds::RequestId>& r) {
    if (!r) die("submit: " + r.status().message());
  };
  std::vector<std::function<std::size_t()>> fns = {
      [&] {  // 0: default order, with SLO
        auto s = make(false);
        for (std::size_t i = 0; i < n; ++i) check(s.submit(tokens[i], now_ms(), slos[i]));
        return s.queued();
      },
      [&] {  // 1: default order, no SLO
        auto s = make(false);
        for (std::size_t i = 0; i < n; ++i) check(s.submit(tokens[i], now_ms()));
        return s.queued();
      },
      [&] {  // 2: priority function (FCFS), with SLO
        auto s = make(true);
        for (std::size_t i = 0; i < n; ++i) check(s.submit(tokens[i], now_ms(), slos[i]));
        return s.queued();
      },
  };
  for (auto& f : fns) f();  // warm-up
  const Interleaved r = interleaved(n, fns);
  std::vector<ServingRow> rows;
  for (std::size_t v = 0; v < fns.size(); ++v) {
    if (r.kept[v] != n) die("submit variant " + std::to_string(v) + ": wrong queue length");
    rows.push_back({{"variant", double(v)}, {"requests", double(n)}, {"nsPerSubmit", r.ns[v]}, {"millionPerS", 1e3 / r.ns[v]}});
  }
  return rows;
}

ServingRow bench_get_batch(std::size_t queued, std::size_t samples, uint32_t batch) {
  Mulberry32 next{12};
  llmds::SchedulerOptions o;
  o.max_batch_size = batch;
  o.max_wait_ms = 50;
  auto created = llmds::Scheduler::create(std::move(o));
  if (!created) die("Scheduler::create: " + created.status().message());
  llmds::Scheduler s = std::move(created.value());
  auto submit = [&] {
    const uint32_t tokens = 16 + static_cast<uint32_t>(next() * 4000);  // drawn first, as in JS
    const double slo = 200 + std::floor(next() * 30000);
    if (!s.submit(tokens, now_ms(), slo)) die("submit failed");
  };
  for (std::size_t i = 0; i < queued; ++i) submit();
  std::vector<double> complete(samples), get(samples);
  std::vector<llmds::RequestId> ids;  // reused, as the binding's batch buffer
  std::size_t bad = 0;
  auto round = [&](bool timed, std::size_t i) {
    const auto t0 = Clock::now();
    if (!s.get_batch(now_ms(), false, ids)) die("get_batch failed");
    const auto t1 = Clock::now();
    if (ids.size() != batch) ++bad;
    if (!s.complete_batch(ids, now_ms())) die("complete_batch failed");
    if (timed) complete[i] = ms_since(t1);
    for (uint32_t k = 0; k < batch; ++k) submit();
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
  };
  for (std::size_t i = 0; i < std::min<std::size_t>(samples, 5000); ++i) round(false, i);  // warm-up
  for (std::size_t i = 0; i < samples; ++i) get[i] = round(true, i);
  if (bad) die(std::to_string(bad) + " get_batch calls did not return a full batch");
  if (s.queued() != queued) die("queue drifted");
  ServingRow row{{"queued", double(queued)}, {"batch", double(batch)}, {"samples", double(samples)}};
  add_summary(row, "getBatch", get);
  add_summary(row, "completeBatch", complete);
  return row;
}

// ---------------------------------------------------------------------------------------------
// AdmissionController

std::vector<ServingRow> bench_admission(std::size_t n) {
  double t = 0;  // the injected clock: +0.1 ms per call, shared by the gates as in JS
  auto make = [](double qps, double token_rate, double token_burst) {
    llmds::AdmissionOptions o;
    o.qps_target = qps;
    o.token_rate_limit = token_rate;
    o.token_burst = token_burst;
    auto c = llmds::AdmissionController::create(o);
    if (!c) die("AdmissionController::create: " + c.status().message());
    return std::move(c.value());
  };
  std::vector<llmds::AdmissionController> gates;
  gates.push_back(make(1e9, 1e15, 0));     // 0: admitted
  gates.push_back(make(1e9, 1e15, 0));     // 1: admitted, default clock
  gates.push_back(make(1e-6, 1e15, 0));    // 2: rejected (qps limit)
  gates.push_back(make(1e9, 1e-6, 100));   // 3: rejected (token rate limit)
  const bool expect[] = {true, true, false, false};
  const bool injected[] = {true, false, true, true};
  auto loop = [&n](llmds::AdmissionController& gate, bool want, auto&& clock) {
    std::size_t agree = 0;
    for (std::size_t i = 0; i < n; ++i) {
      auto d = gate.should_admit(clock(), 100.0);
      if (d && d->admitted == want) ++agree;
    }
    return agree;
  };
  std::vector<std::function<std::size_t()>> fns;
  for (std::size_t g = 0; g < gates.size(); ++g) {
    if (!expect[g] && !gates[g].should_admit(t += 0.1, 100.0)) die("should_admit failed");  // use up the burst
    if (injected[g]) {
      fns.push_back([&, g] { return loop(gates[g], expect[g], [&t] { return t += 0.1; }); });
    } else {
      fns.push_back([&, g] { return loop(gates[g], expect[g], [] { return now_ms(); }); });
    }
    fns.back()();  // warm-up
  }
  const Interleaved r = interleaved(n, fns);
  std::vector<ServingRow> rows;
  for (std::size_t g = 0; g < gates.size(); ++g) {
    if (r.kept[g] != n) die("should_admit case " + std::to_string(g) + ": not every call decided as expected");
    rows.push_back({{"case", double(g)}, {"calls", double(n)}, {"nsPerCall", r.ns[g]}});
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// IndexedHeap

ServingRow bench_heap(std::size_t n) {
  Mulberry32 next{13};
  std::vector<double> scores(n), updates(n);
  for (auto& s : scores) s = next() * 1e6;
  for (auto& u : updates) u = next() * 1e6;
  std::vector<uint32_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[static_cast<std::size_t>(next() * double(i + 1))]);
  const std::size_t rounds = std::max<std::size_t>(1, (200000 + n - 1) / n);
  llmds::IndexedHeap heap;
  double best[3] = {1e300, 1e300, 1e300};  // push, update, pop (ms over all rounds)
  for (int r = 0; r < 6; ++r) {  // the first pass is the warm-up
    double took[3] = {0, 0, 0};
    for (std::size_t k = 0; k < rounds; ++k) {
      auto t0 = Clock::now();
      for (std::size_t i = 0; i < n; ++i) {
        if (!heap.push(static_cast<uint32_t>(i), scores[i])) die("push failed");
      }
      took[0] += ms_since(t0);
      t0 = Clock::now();
      for (std::size_t i = 0; i < n; ++i) {
        if (!heap.update(order[i], updates[i])) die("update failed");
      }
      took[1] += ms_since(t0);
      t0 = Clock::now();
      double last = -INFINITY;
      for (std::size_t i = 0; i < n; ++i) {
        const auto e = heap.pop();
        if (!e || e->score < last) die("IndexedHeap popped out of order");
        last = e->score;
      }
      took[2] += ms_since(t0);
      if (!heap.empty()) die("IndexedHeap not empty after popping everything");
    }
    if (r == 0) continue;
    for (int op = 0; op < 3; ++op) best[op] = std::min(best[op], took[op]);
  }
  const double per = 1e6 / double(n * rounds);
  return {{"size", double(n)}, {"pushNs", best[0] * per}, {"updateNs", best[1] * per}, {"popNs", best[2] * per}};
}

}  // namespace

std::map<std::string, std::vector<ServingRow>> run_serving_suite(bool quick) {
  std::map<std::string, std::vector<ServingRow>> out;
  // Sizes of serving.mjs's runServingBench().
  const std::size_t submits = quick ? 30000 : 100000;
  // Each submit repetition fills a fresh Scheduler (several MB) and destroys it. A wasm heap never
  // shrinks, so in JS every repetition after the warm-up reuses memory that is already mapped;
  // glibc's malloc instead returns the large blocks to the OS (mmap threshold, heap trimming) and
  // every repetition pays the page faults again: 2-4x the cost of the submits on this kind of
  // machine. So the figure compared with JS (nsPerSubmit) is taken with malloc keeping freed memory,
  // as the wasm heap does; the default behaviour is reported too (nsPerSubmitDefaultMalloc). The
  // setting stays for the rest of the process (the other serving workloads do not free large blocks).
  std::vector<ServingRow> default_malloc = bench_submit(submits);
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  out["servingSubmit"] = bench_submit(submits);
  for (std::size_t v = 0; v < default_malloc.size(); ++v) {
    out["servingSubmit"][v]["nsPerSubmitDefaultMalloc"] = default_malloc[v]["nsPerSubmit"];
  }
  out["servingGetBatch"] = {bench_get_batch(10000, quick ? 5000 : 20000, 32)};
  out["servingAdmission"] = bench_admission(quick ? 50000 : 200000);
  for (std::size_t n : {std::size_t(1000), std::size_t(quick ? 20000 : 100000)}) out["servingHeap"].push_back(bench_heap(n));
  return out;
}

}  // namespace llmds_bench
