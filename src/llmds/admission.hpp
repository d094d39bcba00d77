// SPDX-License-Identifier: MIT
/// @file admission.hpp
/// @brief Admission control: request-rate and token-rate limits as two token buckets (GCRA).
///
/// Model. Two buckets refill continuously: the request bucket at `qps_target` per second up
/// to `request_burst`, the token bucket at `token_rate_limit` tokens per second up to
/// `token_burst`. Both start full, and the bursts are small by default, so a fresh controller
/// never admits a window's worth of requests at once:
///   request_burst = max(1, qps_target * 0.1 s)       (default qps 10 => 1 request)
///   token_burst   = max(1, token_rate_limit * 0.1 s)  (default 10000 tokens/s => 1000 tokens)
/// i.e. at most 100 ms worth of traffic arrives back to back; after that requests are spaced
/// at the target rate.
///
/// Decision. `should_admit(now, estimated_tokens)` admits when the request bucket holds one
/// request and the token bucket holds min(estimated_tokens, token_burst) tokens; admitting
/// takes 1 request and the full estimate, so the token bucket may go negative (debt) for a
/// request larger than the burst. Such a request therefore waits for a full bucket and is
/// never starved, and the debt delays what follows, keeping the long-run rate at the limit.
/// The request limit is checked first: a request over both limits reports "qps limit".
///
/// Estimates. Each admission remembers its estimate in a FIFO. `record_request(now, tokens)`
/// settles the oldest unsettled estimate: the bucket is charged `tokens - estimate` (a refund
/// when the actual count is lower), so a request is counted once, at its actual size. With no
/// unsettled estimate it charges `tokens` outright. The FIFO is bounded by
/// `max_pending_estimates`; beyond it the oldest estimate is taken as final, so a caller that
/// never records actual counts cannot grow memory without bound.
///
/// Observed rates. `stats().current_qps` / `current_token_rate` count admissions (and their
/// tokens, actual once recorded) in the last 1000 ms.
///
/// Time. Calls take the caller's clock reading in milliseconds; a reading earlier than the
/// latest one seen is treated as no elapsed time.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "llmds/status.hpp"

namespace llmds {

struct AdmissionOptions {
  double qps_target = 10.0;          ///< requests per second, finite and > 0
  double token_rate_limit = 10000.0; ///< tokens per second, finite and > 0
  double request_burst = 0.0;        ///< requests; 0 = max(1, qps_target * 0.1); else finite and >= 1
  double token_burst = 0.0;          ///< tokens; 0 = max(1, token_rate_limit * 0.1); else finite and > 0
  uint32_t max_pending_estimates = 65536;  ///< unsettled estimates remembered, >= 1
};

enum class AdmissionReason : uint8_t { admitted = 0, qps_limit = 1, token_rate_limit = 2 };

struct AdmissionDecision {
  bool admitted;
  AdmissionReason reason;
  double retry_after_ms;  ///< 0 when admitted
};

struct AdmissionStats {
  double current_qps = 0.0;         ///< admissions in the last second
  double target_qps = 0.0;
  double current_token_rate = 0.0;  ///< tokens admitted (actual once recorded) in the last second
  double token_rate_limit = 0.0;
  uint64_t admitted = 0;
  uint64_t rejected = 0;
  double rejection_rate = 0.0;      ///< rejected / (admitted + rejected); 0 before any decision
  uint64_t pending_estimates = 0;   ///< admitted requests whose actual token count is not recorded yet
};

class AdmissionController {
 public:
  static Result<AdmissionController> create(const AdmissionOptions& options);

  /// invalid_argument for a non-finite clock or a negative / non-finite estimate.
  Result<AdmissionDecision> should_admit(double now_ms, double estimated_tokens = 0.0);
  /// Settles the oldest unsettled estimate with the actual count (see the file comment).
  Status record_request(double now_ms, double tokens);
  /// Milliseconds until should_admit(estimated_tokens) would admit, if nothing else happens.
  Result<double> retry_after_ms(double now_ms, double estimated_tokens = 0.0) const;
  AdmissionStats stats(double now_ms);
  /// Back to the state of a fresh controller with the same options.
  void reset() noexcept;

  /// "admitted", or "qps limit: ..." / "token rate limit: ..." with the limit and retry time.
  std::string reason_text(const AdmissionDecision& decision) const;
  double request_burst() const noexcept { return request_cap_; }
  double token_burst() const noexcept { return token_cap_; }
  const AdmissionOptions& options() const noexcept { return options_; }

 private:
  struct Admission {
    double time_ms;
    double tokens;
    uint64_t seq;   // position in the admission history, to find the entry of a pending estimate
    bool request;   // false: tokens charged by record_request with no pending estimate
  };
  struct Pending {
    uint64_t seq;
    double estimate;
  };

  AdmissionController(const AdmissionOptions& options, double request_cap, double token_cap);
  void advance(double now_ms) noexcept;
  void expire(double now_ms) noexcept;
  double request_level_at(double now_ms) const noexcept;
  double token_level_at(double now_ms) const noexcept;
  double wait_ms(double request_level, double token_level, double estimated_tokens) const noexcept;
  void push_window(double now_ms, double tokens, bool request);

  AdmissionOptions options_;
  double request_cap_;
  double token_cap_;
  double request_level_;
  double token_level_;
  double last_ms_;    // NaN until the first call
  uint64_t admitted_ = 0;
  uint64_t rejected_ = 0;
  std::deque<Admission> window_;  // the last second of admissions, oldest first
  uint64_t next_seq_ = 0;
  double window_requests_ = 0.0;
  double window_tokens_ = 0.0;
  std::deque<Pending> pending_;   // unsettled estimates, oldest first
};

}  // namespace llmds
