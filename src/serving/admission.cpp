// SPDX-License-Identifier: MIT
#include "llmds/admission.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace llmds {

namespace {

constexpr double kWindowMs = 1000.0;
constexpr double kDefaultBurstSeconds = 0.1;
// Refill arithmetic in doubles can land a hair below an exact threshold (0.1 s * 10/s =
// 0.9999999999999999); without this slack a request arriving exactly on time is refused.
constexpr double kSlack = 1e-9;

// Integers print as integers (as JS prints them, so both layers word reasons alike).
std::string num(double v) {
  char buf[64];
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.15g", v);
  }
  return buf;
}

bool finite_positive(double v) { return std::isfinite(v) && v > 0; }

}  // namespace

Result<AdmissionController> AdmissionController::create(const AdmissionOptions& o) {
  if (!finite_positive(o.qps_target)) return invalid_argument("qpsTarget must be a finite number > 0, got " + num(o.qps_target));
  if (!finite_positive(o.token_rate_limit)) {
    return invalid_argument("tokenRateLimit must be a finite number > 0, got " + num(o.token_rate_limit));
  }
  if (o.request_burst != 0.0 && !(std::isfinite(o.request_burst) && o.request_burst >= 1)) {
    return invalid_argument("requestBurst must be a finite number >= 1, got " + num(o.request_burst));
  }
  if (o.token_burst != 0.0 && !finite_positive(o.token_burst)) {
    return invalid_argument("tokenBurst must be a finite number > 0, got " + num(o.token_burst));
  }
  if (o.max_pending_estimates == 0) return invalid_argument("maxPendingEstimates must be >= 1, got 0");
  const double request_cap = o.request_burst != 0.0 ? o.request_burst : std::max(1.0, o.qps_target * kDefaultBurstSeconds);
  const double token_cap =
      o.token_burst != 0.0 ? o.token_burst : std::max(1.0, o.token_rate_limit * kDefaultBurstSeconds);
  return AdmissionController(o, request_cap, token_cap);
}

AdmissionController::AdmissionController(const AdmissionOptions& options, double request_cap, double token_cap)
    : options_(options), request_cap_(request_cap), token_cap_(token_cap) {
  reset();
}

void AdmissionController::reset() noexcept {
  request_level_ = request_cap_;
  token_level_ = token_cap_;
  last_ms_ = std::numeric_limits<double>::quiet_NaN();
  admitted_ = 0;
  rejected_ = 0;
  window_.clear();
  window_.shrink_to_fit();
  next_seq_ = 0;
  window_requests_ = 0.0;
  window_tokens_ = 0.0;
  pending_.clear();
  pending_.shrink_to_fit();
}

double AdmissionController::request_level_at(double now_ms) const noexcept {
  if (!(now_ms > last_ms_)) return request_level_;  // also true while last_ms_ is NaN
  return std::min(request_cap_, request_level_ + options_.qps_target * (now_ms - last_ms_) / 1000.0);
}

double AdmissionController::token_level_at(double now_ms) const noexcept {
  if (!(now_ms > last_ms_)) return token_level_;
  return std::min(token_cap_, token_level_ + options_.token_rate_limit * (now_ms - last_ms_) / 1000.0);
}

void AdmissionController::advance(double now_ms) noexcept {
  request_level_ = request_level_at(now_ms);
  token_level_ = token_level_at(now_ms);
  if (std::isnan(last_ms_) || now_ms > last_ms_) last_ms_ = now_ms;
  expire(now_ms);
}

void AdmissionController::expire(double now_ms) noexcept {
  while (!window_.empty() && window_.front().time_ms <= now_ms - kWindowMs) {
    const Admission& a = window_.front();
    if (a.request) window_requests_ -= 1.0;
    window_tokens_ -= a.tokens;
    window_.pop_front();
  }
  if (window_.empty()) {  // drop accumulated rounding
    window_requests_ = 0.0;
    window_tokens_ = 0.0;
  }
}

double AdmissionController::wait_ms(double request_level, double token_level, double estimated_tokens) const noexcept {
  // Aim at the exact threshold (not threshold - slack) so that calling back after the wait
  // succeeds despite rounding.
  const double req_short = 1.0 - request_level;
  const double tok_need = std::min(estimated_tokens, token_cap_);
  const double tok_short = tok_need - token_level;
  double wait = 0.0;
  if (req_short > kSlack) wait = std::max(wait, req_short / options_.qps_target * 1000.0);
  if (tok_short > kSlack * std::max(1.0, tok_need)) {
    wait = std::max(wait, tok_short / options_.token_rate_limit * 1000.0);
  }
  return wait;
}

void AdmissionController::push_window(double now_ms, double tokens, bool request) {
  window_.push_back(Admission{now_ms, tokens, next_seq_, request});  // may throw: nothing changed yet
  ++next_seq_;
  if (request) window_requests_ += 1.0;
  window_tokens_ += tokens;
}

Result<AdmissionDecision> AdmissionController::should_admit(double now_ms, double estimated_tokens) {
  if (!std::isfinite(now_ms)) return invalid_argument("shouldAdmit: the clock reading now must be finite, got " + num(now_ms));
  if (!std::isfinite(estimated_tokens) || estimated_tokens < 0) {
    return invalid_argument("shouldAdmit: estimatedTokens must be a finite number >= 0, got " + num(estimated_tokens));
  }
  advance(now_ms);
  AdmissionDecision d{true, AdmissionReason::admitted, 0.0};
  if (request_level_ < 1.0 - kSlack) {
    d = {false, AdmissionReason::qps_limit, wait_ms(request_level_, token_level_, estimated_tokens)};
  } else {
    const double tok_need = std::min(estimated_tokens, token_cap_);
    if (token_level_ < tok_need - kSlack * std::max(1.0, tok_need)) {
      d = {false, AdmissionReason::token_rate_limit, wait_ms(request_level_, token_level_, estimated_tokens)};
    }
  }
  if (!d.admitted) {
    ++rejected_;
    return d;
  }
  // Out of memory: both deques may need a new block, so push onto both first (undoing the
  // first if the second throws); everything after cannot fail.
  window_.push_back(Admission{now_ms, estimated_tokens, next_seq_, true});
  try {
    pending_.push_back(Pending{next_seq_, estimated_tokens});
  } catch (...) {
    window_.pop_back();
    throw;
  }
  ++next_seq_;
  window_requests_ += 1.0;
  window_tokens_ += estimated_tokens;
  if (pending_.size() > options_.max_pending_estimates) pending_.pop_front();  // oldest estimate becomes final
  request_level_ -= 1.0;
  token_level_ -= estimated_tokens;
  ++admitted_;
  return d;
}

Status AdmissionController::record_request(double now_ms, double tokens) {
  if (!std::isfinite(now_ms)) return invalid_argument("recordRequest: the clock reading now must be finite, got " + num(now_ms));
  if (!std::isfinite(tokens) || tokens < 0) {
    return invalid_argument("recordRequest: tokens must be a finite number >= 0, got " + num(tokens));
  }
  advance(now_ms);
  if (pending_.empty()) {
    push_window(now_ms, tokens, false);  // the only allocation, first
    token_level_ -= tokens;
    return Status::success();
  }
  const Pending p = pending_.front();
  pending_.pop_front();
  const double delta = tokens - p.estimate;
  // A refund can at most refill the bucket: unused capacity does not accumulate past the burst.
  token_level_ = std::min(token_cap_, token_level_ - delta);
  if (!window_.empty() && p.seq >= window_.front().seq) {
    Admission& a = window_[static_cast<std::size_t>(p.seq - window_.front().seq)];
    a.tokens += delta;
    window_tokens_ += delta;
  }
  return Status::success();
}

Result<double> AdmissionController::retry_after_ms(double now_ms, double estimated_tokens) const {
  if (!std::isfinite(now_ms)) return invalid_argument("retryAfterMs: the clock reading now must be finite, got " + num(now_ms));
  if (!std::isfinite(estimated_tokens) || estimated_tokens < 0) {
    return invalid_argument("retryAfterMs: estimatedTokens must be a finite number >= 0, got " + num(estimated_tokens));
  }
  return wait_ms(request_level_at(now_ms), token_level_at(now_ms), estimated_tokens);
}

AdmissionStats AdmissionController::stats(double now_ms) {
  if (std::isfinite(now_ms)) advance(now_ms);
  AdmissionStats s;
  s.current_qps = window_requests_ * (1000.0 / kWindowMs);
  s.target_qps = options_.qps_target;
  s.current_token_rate = std::max(0.0, window_tokens_) * (1000.0 / kWindowMs);
  s.token_rate_limit = options_.token_rate_limit;
  s.admitted = admitted_;
  s.rejected = rejected_;
  const uint64_t total = admitted_ + rejected_;
  s.rejection_rate = total == 0 ? 0.0 : static_cast<double>(rejected_) / static_cast<double>(total);
  s.pending_estimates = pending_.size();
  return s;
}

std::string AdmissionController::reason_text(const AdmissionDecision& d) const {
  switch (d.reason) {
    case AdmissionReason::admitted: return "admitted";
    case AdmissionReason::qps_limit:
      return "qps limit: " + num(options_.qps_target) + " requests/s (burst " + num(request_cap_) + ") exceeded; retry after " +
             num(std::ceil(d.retry_after_ms)) + " ms";
    case AdmissionReason::token_rate_limit:
      return "token rate limit: " + num(options_.token_rate_limit) + " tokens/s (burst " + num(token_cap_) +
             ") exceeded; retry after " + num(std::ceil(d.retry_after_ms)) + " ms";
  }
  return "admitted";
}

}  // namespace llmds
