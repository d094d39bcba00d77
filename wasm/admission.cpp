// SPDX-License-Identifier: MIT
// embind surface of AdmissionController. shouldAdmit returns a small number (0 admitted, 1 qps
// limit, 2 token rate limit, kFailed) and JS formats the reason from
// lastRetryAfterMs(): passing a std::string out costs ~0.9 µs, a rejection check ~30 ns without.
#include <memory>

#include "common.hpp"
#include "llmds/admission.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

class RawAdmission {
 public:
  explicit RawAdmission(AdmissionController c) : ctl_(std::move(c)) {}

  /// Bursts of 0 take the documented defaults.
  static std::unique_ptr<RawAdmission> create(double qps, double token_rate, double request_burst, double token_burst) {
    AdmissionOptions o;
    o.qps_target = qps;
    o.token_rate_limit = token_rate;
    o.request_burst = request_burst;
    o.token_burst = token_burst;
    return adopt<RawAdmission>(AdmissionController::create(o));
  }

  int32_t should_admit(double estimated_tokens, double now_ms) {
    auto d = ctl_.should_admit(now_ms, estimated_tokens);
    if (!d) return report(d.status());
    last_ = d.value();
    return static_cast<int32_t>(d->reason);
  }
  double last_retry_after_ms() const { return last_.retry_after_ms; }
  double request_burst() const { return ctl_.request_burst(); }
  double token_burst() const { return ctl_.token_burst(); }
  int32_t record_request(double tokens, double now_ms) { return report(ctl_.record_request(now_ms, tokens)); }
  /// Milliseconds, or kFailed.
  double retry_after_ms(double estimated_tokens, double now_ms) const {
    return value_or_failed(ctl_.retry_after_ms(now_ms, estimated_tokens));
  }
  val stats(double now_ms) {
    const AdmissionStats s = ctl_.stats(now_ms);
    val o = val::object();
    o.set("currentQps", s.current_qps);
    o.set("targetQps", s.target_qps);
    o.set("currentTokenRate", s.current_token_rate);
    o.set("tokenRateLimit", s.token_rate_limit);
    o.set("admitted", static_cast<double>(s.admitted));
    o.set("rejected", static_cast<double>(s.rejected));
    o.set("rejectionRate", s.rejection_rate);
    o.set("pendingEstimates", static_cast<double>(s.pending_estimates));
    o.set("requestBurst", ctl_.request_burst());
    o.set("tokenBurst", ctl_.token_burst());
    return o;
  }
  void reset() { ctl_.reset(); }

 private:
  AdmissionController ctl_;
  AdmissionDecision last_{true, AdmissionReason::admitted, 0.0};
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_admission) {
  using namespace llmds::wasm;
  emscripten::class_<RawAdmission>("RawAdmission")
      .class_function("create", LLMDS_GUARD(&RawAdmission::create))
      .function("shouldAdmit", LLMDS_GUARD(&RawAdmission::should_admit))
      .function("lastRetryAfterMs", LLMDS_GUARD(&RawAdmission::last_retry_after_ms))
      .function("requestBurst", LLMDS_GUARD(&RawAdmission::request_burst))
      .function("tokenBurst", LLMDS_GUARD(&RawAdmission::token_burst))
      .function("recordRequest", LLMDS_GUARD(&RawAdmission::record_request))
      .function("retryAfterMs", LLMDS_GUARD(&RawAdmission::retry_after_ms))
      .function("stats", LLMDS_GUARD(&RawAdmission::stats))
      .function("reset", LLMDS_GUARD(&RawAdmission::reset));
}
