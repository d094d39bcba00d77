// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "llmds/admission.hpp"

using llmds::AdmissionController;
using llmds::AdmissionDecision;
using llmds::AdmissionOptions;
using llmds::AdmissionReason;
using llmds::Errc;

namespace {

AdmissionController make(double qps = 10, double tokens = 10000, double request_burst = 0, double token_burst = 0) {
  AdmissionOptions o;
  o.qps_target = qps;
  o.token_rate_limit = tokens;
  o.request_burst = request_burst;
  o.token_burst = token_burst;
  auto c = AdmissionController::create(o);
  REQUIRE(c.ok());
  return std::move(c).value();
}

AdmissionDecision decide(AdmissionController& c, double now, double est = 0) {
  auto d = c.should_admit(now, est);
  REQUIRE(d.ok());
  return *d;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

TEST_CASE("admission: the default limiter does not admit 100 requests at once (prototype regression)", "[admission][regression]") {
  AdmissionController c = make();
  CHECK(c.request_burst() == 1.0);
  CHECK(c.token_burst() == 1000.0);
  int admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += decide(c, 0.0).admitted;
  CHECK(admitted == 1);
  auto st = c.stats(0.0);
  CHECK(st.admitted == 1);
  CHECK(st.rejected == 99);
  CHECK(st.rejection_rate == Approx(0.99));
  // Then one per 100 ms.
  CHECK_FALSE(decide(c, 99.0).admitted);
  CHECK(decide(c, 100.0).admitted);
  CHECK_FALSE(decide(c, 100.0).admitted);
  CHECK(decide(c, 200.0).admitted);
}

TEST_CASE("admission: long-run admissions follow qpsTarget", "[admission]") {
  AdmissionController c = make(50, 1e9);
  CHECK(c.request_burst() == 5.0);
  int admitted = 0;
  for (int ms = 0; ms < 10000; ++ms) {
    for (int k = 0; k < 3; ++k) admitted += decide(c, static_cast<double>(ms)).admitted;
  }
  // 10 s at 50/s plus the 5-request burst (the last refill lands at 9999 ms).
  CHECK(admitted >= 500);
  CHECK(admitted <= 505);
  auto st = c.stats(9999.0);
  CHECK(st.current_qps == Approx(50).margin(1));
  CHECK(st.target_qps == 50);
}

TEST_CASE("admission: rejection reasons name the limit", "[admission]") {
  AdmissionController c = make(100, 1000);  // bursts: 10 requests, 100 tokens
  auto d = decide(c, 0.0, 60);
  CHECK(d.admitted);
  CHECK(c.reason_text(d) == "admitted");
  d = decide(c, 0.0, 60);
  CHECK_FALSE(d.admitted);
  CHECK(d.reason == AdmissionReason::token_rate_limit);
  CHECK(starts_with(c.reason_text(d), "token rate limit"));
  CHECK(d.retry_after_ms == Approx(20.0));  // 40 tokens short at 1000 tokens/s
  for (int i = 0; i < 9; ++i) REQUIRE(decide(c, 0.0).admitted);
  d = decide(c, 0.0, 1e6);  // over both limits: qps is reported
  CHECK_FALSE(d.admitted);
  CHECK(d.reason == AdmissionReason::qps_limit);
  CHECK(starts_with(c.reason_text(d), "qps limit"));
  CHECK(c.reason_text(d).find("retry after") != std::string::npos);
}

TEST_CASE("admission: a request larger than the token burst waits for a full bucket, never starves", "[admission]") {
  AdmissionController c = make(1000, 1000);  // token burst 100
  CHECK(decide(c, 0.0, 60).admitted);
  auto d = decide(c, 1.0, 500);
  CHECK_FALSE(d.admitted);
  CHECK(d.retry_after_ms == Approx(59.0));  // 41 tokens at 1000/s: full again at t = 60 ms
  CHECK(decide(c, 60.0, 500).admitted);     // takes the bucket 400 tokens into debt
  d = decide(c, 61.0, 0);
  CHECK_FALSE(d.admitted);
  CHECK(d.reason == AdmissionReason::token_rate_limit);
  CHECK(c.retry_after_ms(61.0, 0).value() == Approx(399.0));
  CHECK_FALSE(decide(c, 459.0, 0).admitted);
  CHECK(decide(c, 460.0, 0).admitted);
}

TEST_CASE("admission: recordRequest replaces the estimate instead of adding to it (prototype regression)", "[admission][regression]") {
  AdmissionController c = make(1000, 1000, 0, 200);
  CHECK(decide(c, 0.0, 100).admitted);
  REQUIRE(c.record_request(0.0, 100).ok());
  CHECK(c.stats(0.0).current_token_rate == Approx(100));
  CHECK(c.stats(0.0).pending_estimates == 0);
  // 100 tokens left: counting the request twice would leave 0 and refuse this one.
  CHECK(decide(c, 0.0, 100).admitted);
  CHECK(c.stats(0.0).current_token_rate == Approx(200));
}

TEST_CASE("admission: recordRequest settles estimates oldest first, refunding or charging the difference", "[admission]") {
  AdmissionController c = make(1000, 1000, 0, 300);
  REQUIRE(decide(c, 0.0, 100).admitted);
  REQUIRE(decide(c, 0.0, 50).admitted);  // bucket: 150 left
  CHECK(c.stats(0.0).pending_estimates == 2);
  REQUIRE(c.record_request(0.0, 20).ok());   // settles the 100: refund 80 -> 230
  REQUIRE(c.record_request(0.0, 130).ok());  // settles the 50: charge 80 -> 150
  CHECK(c.stats(0.0).current_token_rate == Approx(150));
  CHECK(c.stats(0.0).pending_estimates == 0);
  CHECK(decide(c, 0.0, 150).admitted);
  CHECK_FALSE(decide(c, 0.0, 1).admitted);
  // With nothing pending, recordRequest just charges.
  AdmissionController d = make(1000, 1000, 0, 100);
  REQUIRE(d.record_request(0.0, 100).ok());
  CHECK(d.stats(0.0).current_token_rate == Approx(100));
  CHECK(d.stats(0.0).current_qps == 0);
  CHECK_FALSE(decide(d, 0.0, 1).admitted);
}

TEST_CASE("admission: a refund never fills the bucket past its burst", "[admission]") {
  AdmissionController c = make(1000, 1000, 0, 100);
  REQUIRE(decide(c, 0.0, 50).admitted);
  REQUIRE(c.record_request(0.0, 0).ok());
  CHECK(decide(c, 0.0, 100).admitted);
  CHECK_FALSE(decide(c, 0.0, 1).admitted);
}

TEST_CASE("admission: waiting retryAfterMs is enough", "[admission]") {
  AdmissionController c = make(7, 333);
  double now = 0.0;
  int admitted = 0;
  for (int i = 0; i < 200; ++i) {
    const double est = static_cast<double>((i * 37) % 90);
    auto d = decide(c, now, est);
    if (d.admitted) {
      ++admitted;
      continue;
    }
    const double wait = c.retry_after_ms(now, est).value();
    CHECK(wait == Approx(d.retry_after_ms));
    REQUIRE(wait > 0);
    now += wait;
    REQUIRE(decide(c, now, est).admitted);
    ++admitted;
  }
  CHECK(admitted == 200);
  CHECK(c.retry_after_ms(now + 1e6, 0).value() == 0.0);
}

TEST_CASE("admission: the observed rate covers the last second", "[admission]") {
  AdmissionController c = make(100, 1e6, 100, 1e6);
  for (int i = 0; i < 40; ++i) REQUIRE(decide(c, 0.0, 10).admitted);
  auto st = c.stats(500.0);
  CHECK(st.current_qps == Approx(40));
  CHECK(st.current_token_rate == Approx(400));
  st = c.stats(1000.0);
  CHECK(st.current_qps == 0);
  CHECK(st.current_token_rate == 0);
  CHECK(st.admitted == 40);
  // A late recordRequest still settles the (now expired) estimate; nothing is added twice.
  REQUIRE(c.record_request(1500.0, 10).ok());
  CHECK(c.stats(1500.0).current_token_rate == 0);
  CHECK(c.stats(1500.0).pending_estimates == 39);
}

TEST_CASE("admission: reset restores a fresh controller", "[admission]") {
  AdmissionController c = make();
  REQUIRE(decide(c, 0.0, 900).admitted);
  REQUIRE_FALSE(decide(c, 0.0).admitted);
  c.reset();
  auto st = c.stats(0.0);
  CHECK(st.admitted == 0);
  CHECK(st.rejected == 0);
  CHECK(st.current_qps == 0);
  CHECK(st.pending_estimates == 0);
  CHECK(decide(c, 0.0, 1000).admitted);
}

TEST_CASE("admission: a clock that goes backwards refills nothing", "[admission]") {
  AdmissionController c = make();
  REQUIRE(decide(c, 1000.0).admitted);
  CHECK_FALSE(decide(c, 0.0).admitted);
  CHECK_FALSE(decide(c, 1099.0).admitted);
  CHECK(decide(c, 1100.0).admitted);
}

TEST_CASE("admission: pending estimates are bounded", "[admission]") {
  AdmissionOptions o;
  o.qps_target = 1e6;
  o.token_rate_limit = 1e9;
  o.max_pending_estimates = 8;
  auto c = std::move(AdmissionController::create(o)).value();
  for (int i = 0; i < 100; ++i) REQUIRE(decide(c, static_cast<double>(i), 5).admitted);
  CHECK(c.stats(100.0).pending_estimates == 8);
}

TEST_CASE("admission: invalid settings and arguments", "[admission]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {0.0, -1.0, nan, inf, -inf}) {
    AdmissionOptions o;
    o.qps_target = bad;
    auto r = AdmissionController::create(o);
    CHECK(r.status().code() == Errc::invalid_argument);
    CHECK(r.status().message().find("qpsTarget") != std::string::npos);
    AdmissionOptions t;
    t.token_rate_limit = bad;
    auto rt = AdmissionController::create(t);
    CHECK(rt.status().code() == Errc::invalid_argument);
    CHECK(rt.status().message().find("tokenRateLimit") != std::string::npos);
    AdmissionOptions tb;
    tb.token_burst = bad;
    if (bad != 0.0) CHECK(AdmissionController::create(tb).status().code() == Errc::invalid_argument);
  }
  AdmissionOptions rb;
  rb.request_burst = 0.5;
  CHECK(AdmissionController::create(rb).status().code() == Errc::invalid_argument);
  AdmissionOptions mp;
  mp.max_pending_estimates = 0;
  CHECK(AdmissionController::create(mp).status().code() == Errc::invalid_argument);

  AdmissionController c = make();
  CHECK(c.should_admit(0.0, -1).status().code() == Errc::invalid_argument);
  CHECK(c.should_admit(0.0, nan).status().code() == Errc::invalid_argument);
  CHECK(c.should_admit(nan, 0).status().code() == Errc::invalid_argument);
  CHECK(c.record_request(0.0, -5).code() == Errc::invalid_argument);
  CHECK(c.record_request(0.0, inf).code() == Errc::invalid_argument);
  CHECK(c.retry_after_ms(inf, 0).status().code() == Errc::invalid_argument);
  CHECK(c.retry_after_ms(0, -1).status().code() == Errc::invalid_argument);
  auto st = c.stats(0.0);
  CHECK(st.admitted == 0);
  CHECK(st.rejected == 0);
  CHECK(decide(c, 0.0).admitted);
}
