// SPDX-License-Identifier: MIT
// KVCache with a K/V payload: f16 conversion, the attention kernels, write/read, copy-on-write,
// reuse of cached prefixes, eviction, attention against a dense f64 reference, bad inputs.
//
// Tolerance used throughout ("1e-5 relative"): |a - b| <= 1e-5 * max(1, |b|) per element,
// b being the f64 reference.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kv_cache/kv_cache_internals.hpp"
#include "llmds/kv_cache.hpp"
#include "simd/kernels.hpp"

using namespace llmds;
using Tokens = std::vector<TokenId>;
using Floats = std::vector<float>;

namespace {

float draw(std::mt19937& g) { return static_cast<float>(g() >> 8) * (1.0f / 8388608.0f) - 1.0f; }
Floats random_floats(std::mt19937& g, std::size_t n, float amp = 1.0f) {
  Floats out(n);
  for (float& x : out) x = draw(g) * amp;
  return out;
}
Tokens range(TokenId from, std::size_t n) {
  Tokens t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = from + static_cast<TokenId>(i);
  return t;
}
uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

KVCache make(uint32_t page_size, uint32_t max_pages, uint32_t layers, uint32_t kv_heads, uint32_t head_dim,
             KVDtype dtype = KVDtype::f32, bool sharing = true) {
  KVCacheOptions o;
  o.page_size = page_size;
  o.max_pages = max_pages;
  o.enable_prefix_sharing = sharing;
  o.kv.layers = layers;
  o.kv.kv_heads = kv_heads;
  o.kv.head_dim = head_dim;
  o.kv.dtype = dtype;
  auto c = KVCache::create(o);
  REQUIRE(c.ok());
  return std::move(c).value();
}

struct KV {
  Floats k, v;
};
KV read(const KVCache& c, SeqId seq, uint32_t layer, uint32_t from, std::size_t n) {
  const std::size_t row = std::size_t{c.payload().kv_heads} * c.payload().head_dim;
  KV out{Floats(n * row, -7.0f), Floats(n * row, -7.0f)};
  REQUIRE(c.read_kv(seq, layer, from, n, out.k.data(), out.v.data()).ok());
  return out;
}
bool all_zero(const Floats& x) {
  return std::all_of(x.begin(), x.end(), [](float f) { return f == 0.0f; });
}

/// Dense causal GQA attention in f64 over K/V given as len x kv_heads x hd.
std::vector<double> reference(const Floats& k, const Floats& v, std::size_t len, uint32_t kv_heads, uint32_t hd,
                              const Floats& q, std::size_t m, uint32_t num_heads, double scale) {
  std::vector<double> out(m * num_heads * hd, 0.0);
  const uint32_t group = num_heads / kv_heads;
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t end = len - m + i + 1;
    for (uint32_t h = 0; h < num_heads; ++h) {
      const uint32_t g = h / group;
      const float* qh = q.data() + (i * num_heads + h) * hd;
      std::vector<double> s(end);
      double mx = -std::numeric_limits<double>::infinity();
      for (std::size_t j = 0; j < end; ++j) {
        double d = 0;
        for (uint32_t x = 0; x < hd; ++x) d += double(qh[x]) * double(k[(j * kv_heads + g) * hd + x]);
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      double* o = out.data() + (i * num_heads + h) * hd;
      for (std::size_t j = 0; j < end; ++j) {
        for (uint32_t x = 0; x < hd; ++x) o[x] += s[j] / sum * double(v[(j * kv_heads + g) * hd + x]);
      }
    }
  }
  return out;
}

/// Largest |a - b| / max(1, |b|).
double worst_rel(const Floats& a, const std::vector<double>& b) {
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i) w = std::max(w, std::fabs(double(a[i]) - b[i]) / std::max(1.0, std::fabs(b[i])));
  return w;
}

}  // namespace

// ---- binary16 conversion ---------------------------------------------------------------------
TEST_CASE("f16: exact widening, round trip of every half, SIMD widening equals scalar on finite halves", "[kv_payload][f16]") {
  std::vector<uint16_t> all(65536);
  for (uint32_t h = 0; h < 65536; ++h) all[h] = static_cast<uint16_t>(h);
  Floats wide(65536), wide_scalar(65536);
  simd::widen_f16(all.data(), wide.data(), all.size());
  simd::scalar::widen_f16(all.data(), wide_scalar.data(), all.size());
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint32_t e = (h >> 10) & 31, m = h & 1023;
    const double mag = e == 0 ? std::ldexp(double(m), -24) : std::ldexp(1.0 + m / 1024.0, int(e) - 15);
    const double want = (h & 0x8000) ? -mag : mag;
    const float f = simd::f16_to_f32(static_cast<uint16_t>(h));
    if (e == 31) {
      CHECK((m == 0 ? std::isinf(f) : std::isnan(f)));
      CHECK((m == 0 ? std::isinf(wide_scalar[h]) : std::isnan(wide_scalar[h])));
      continue;  // the SIMD widening takes finite halves only: the payload never holds others
    }
    INFO("half " << h);
    REQUIRE(double(f) == want);
    REQUIRE(std::signbit(f) == bool(h & 0x8000));
    REQUIRE(bits(wide[h]) == bits(f));
    REQUIRE(bits(wide_scalar[h]) == bits(f));
    REQUIRE(simd::f32_to_f16(f) == h);
  }
}

TEST_CASE("f16: f32 -> f16 rounds to nearest even, subnormals and overflow included", "[kv_payload][f16]") {
  // Every midpoint between adjacent positive halves (exact in f32) goes to the even one; one f32
  // ulp either side goes to the nearer one.
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const float a = simd::f16_to_f32(static_cast<uint16_t>(h)), b = simd::f16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((double(a) + double(b)) / 2);
    REQUIRE(double(mid) == (double(a) + double(b)) / 2);
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    INFO("half " << h);
    REQUIRE(simd::f32_to_f16(mid) == even);
    REQUIRE(simd::f32_to_f16(-mid) == (even | 0x8000));
    REQUIRE(simd::f32_to_f16(std::nextafter(mid, 0.0f)) == h);
    REQUIRE(simd::f32_to_f16(std::nextafter(mid, 1e9f)) == h + 1);
  }
  CHECK(simd::f32_to_f16(65504.0f) == 0x7bff);
  CHECK(simd::f32_to_f16(std::nextafter(65520.0f, 0.0f)) == 0x7bff);
  CHECK(simd::f32_to_f16(65520.0f) == 0x7c00);  // the tie above the largest half rounds to Inf
  CHECK(simd::f32_to_f16(-1e9f) == 0xfc00);
  CHECK(simd::f32_to_f16(std::ldexp(1.0f, -25)) == 0);       // tie between 0 and the smallest subnormal
  CHECK(simd::f32_to_f16(std::ldexp(1.5f, -25)) == 1);
  CHECK(simd::f32_to_f16(std::ldexp(1.0f, -40)) == 0);
  CHECK(simd::f32_to_f16(-0.0f) == 0x8000);
  CHECK(std::isnan(simd::f16_to_f32(simd::f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
}

// ---- kernels -----------------------------------------------------------------------------------
TEST_CASE("attention kernels agree with their scalar references", "[kv_payload][simd]") {
  std::mt19937 g(5);
  for (std::size_t n : {1u, 3u, 4u, 5u, 17u, 64u, 127u}) {
    Floats x = random_floats(g, n, 80.0f), y = x;
    const float mx = *std::max_element(x.begin(), x.end());
    const float s = simd::softmax_exp(x.data(), n, mx), sr = simd::scalar::softmax_exp(y.data(), n, mx);
    for (std::size_t i = 0; i < n; ++i) CHECK(std::fabs(x[i] - y[i]) <= 4e-7f * std::max(1e-30f, y[i]) + 1e-38f);
    CHECK(std::fabs(s - sr) <= 1e-6f * sr);
  }
  // exp over its whole argument range, against the f64 exp.
  Floats xs;
  for (float t = -87.0f; t <= 0.0f; t += 0.0137f) xs.push_back(t);
  Floats e = xs;
  simd::softmax_exp(e.data(), e.size(), 0.0f);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double want = std::exp(double(xs[i]));
    REQUIRE(std::fabs(e[i] - want) <= 3e-7 * want);
  }
  for (std::size_t dim : {1u, 3u, 4u, 17u, 64u, 127u}) {
    const std::size_t rows = 13;
    const Floats q = random_floats(g, dim), k = random_floats(g, rows * dim), v = random_floats(g, rows * dim);
    Floats sc(rows), scr(rows);
    simd::attn_scores(q.data(), k.data(), rows, dim, 0.5f, sc.data());
    simd::scalar::attn_scores(q.data(), k.data(), rows, dim, 0.5f, scr.data());
    for (std::size_t r = 0; r < rows; ++r) {
      CHECK(std::fabs(sc[r] - scr[r]) <= 1e-5f);
      CHECK(bits(sc[r]) == bits(simd::dot(q.data(), k.data() + r * dim, dim) * 0.5f));  // dot()'s order exactly
    }
    Floats acc(dim, 0.25f), accr(dim, 0.25f);
    simd::attn_accumulate(acc.data(), sc.data(), v.data(), rows, dim);
    simd::scalar::attn_accumulate(accr.data(), sc.data(), v.data(), rows, dim);
    for (std::size_t d = 0; d < dim; ++d) CHECK(acc[d] == Approx(accr[d]).margin(1e-5));
  }
}

// ---- options ---------------------------------------------------------------------------------
TEST_CASE("KVCache payload options are validated", "[kv_payload]") {
  auto with = [](uint32_t layers, uint32_t heads, uint32_t dim, uint32_t page = 16) {
    KVCacheOptions o;
    o.page_size = page;
    o.max_pages = 10;
    o.kv = {layers, heads, dim, KVDtype::f32};
    return KVCache::create(o).status().code();
  };
  CHECK(with(1, 1, 1) == Errc::ok);
  CHECK(with(0, 0, 0) == Errc::ok);  // no payload: the other fields are ignored
  CHECK(with(1, 0, 4) == Errc::invalid_argument);
  CHECK(with(1, 4, 0) == Errc::invalid_argument);
  CHECK(with(KVPayloadOptions::kMaxLayers + 1, 1, 1) == Errc::invalid_argument);
  CHECK(with(1, KVPayloadOptions::kMaxKVHeads + 1, 1) == Errc::invalid_argument);
  CHECK(with(1, 1, KVPayloadOptions::kMaxHeadDim + 1) == Errc::invalid_argument);
  CHECK(with(64, 64, 1024, 512) == Errc::invalid_argument);  // 16 GiB per page
  KVCacheOptions o;
  o.kv = {1, 1, 1, static_cast<KVDtype>(7)};
  CHECK(KVCache::create(o).status().code() == Errc::invalid_argument);

  KVCache none = KVCache::create(KVCacheOptions{}).value();
  CHECK(none.stats().payload_bytes == 0);
  const Tokens t = range(0, 4);
  REQUIRE(none.attach(1, t.data(), t.size()).ok());
  Floats buf(64);
  CHECK(none.write_kv(1, 0, 0, buf.data(), buf.data(), 1).code() == Errc::invalid_argument);
  CHECK(none.read_kv(1, 0, 0, 1, buf.data(), buf.data()).code() == Errc::invalid_argument);
  CHECK(none.attention(1, 0, buf.data(), 1, 1, 0.0f, buf.data()).code() == Errc::invalid_argument);
}

// ---- write / read ------------------------------------------------------------------------------
TEST_CASE("write_kv / read_kv round trip, f32 exact and f16 rounded; unwritten positions read zeros",
          "[kv_payload]") {
  for (KVDtype dt : {KVDtype::f32, KVDtype::f16}) {
    KVCache c = make(3, 64, 3, 2, 5, dt);
    const Tokens t = range(0, 20);
    REQUIRE(c.attach(1, t.data(), t.size()).ok());
    CHECK(c.stats().payload_bytes >= 7 * 3 * 3 * 2 * 2 * 5 * (dt == KVDtype::f16 ? 2 : 4));
    std::mt19937 g(1);
    const Floats k = random_floats(g, 9 * 10, 3.0f), v = random_floats(g, 9 * 10, 3.0f);
    REQUIRE(c.write_kv(1, 2, 4, k.data(), v.data(), 9).ok());  // positions 4..12, across pages
    const KV got = read(c, 1, 2, 4, 9);
    for (std::size_t i = 0; i < k.size(); ++i) {
      const float wk = dt == KVDtype::f32 ? k[i] : simd::f16_to_f32(simd::f32_to_f16(k[i]));
      const float wv = dt == KVDtype::f32 ? v[i] : simd::f16_to_f32(simd::f32_to_f16(v[i]));
      REQUIRE(got.k[i] == wk);
      REQUIRE(got.v[i] == wv);
    }
    CHECK(all_zero(read(c, 1, 2, 0, 4).k));    // unwritten positions of the same layer
    CHECK(all_zero(read(c, 1, 2, 13, 7).v));
    CHECK(all_zero(read(c, 1, 1, 0, 20).k));   // another layer
    CHECK(all_zero(read(c, 1, 0, 0, 20).v));
    CHECK(c.write_kv(1, 0, 20, k.data(), v.data(), 0).ok());  // empty range at the end
    CHECK(c.stats().cow_copies == 0);
  }
}

// ---- copy-on-write, prefix reuse, eviction ---------------------------------------------------------
TEST_CASE("write_kv into pages shared after fork copies them; the other sequence keeps its K/V",
          "[kv_payload]") {
  KVCache c = make(4, 64, 2, 1, 3);
  const Tokens t = range(0, 10);
  REQUIRE(c.attach(1, t.data(), t.size()).ok());
  std::mt19937 g(2);
  const Floats k = random_floats(g, 30), v = random_floats(g, 30);
  REQUIRE(c.write_kv(1, 0, 0, k.data(), v.data(), 10).ok());
  REQUIRE(c.write_kv(1, 1, 0, v.data(), k.data(), 10).ok());
  REQUIRE(c.fork(1, 2).ok());
  const auto before = c.block_table(1).value();
  const Floats k2 = random_floats(g, 12), v2 = random_floats(g, 12);
  REQUIRE(c.write_kv(2, 0, 2, k2.data(), v2.data(), 4).ok());  // positions 2..5: pages 0 and 1
  CHECK(c.stats().cow_copies == 2);
  CHECK(c.block_table(1).value() == before);
  const auto after = c.block_table(2).value();
  CHECK(after[0] != before[0]);
  CHECK(after[1] != before[1]);
  CHECK(after[2] == before[2]);
  CHECK(c.page_refcount(before[2]) == 2);
  // Seq 1 unchanged on both layers; seq 2 has the new values at 2..5 and the old ones elsewhere
  // (the copy carried every layer).
  CHECK(read(c, 1, 0, 0, 10).k == k);
  CHECK(read(c, 1, 0, 0, 10).v == v);
  CHECK(read(c, 1, 1, 0, 10).k == v);
  const KV s2 = read(c, 2, 0, 0, 10);
  for (std::size_t i = 0; i < 30; ++i) {
    const bool is_new = i >= 6 && i < 18;
    CHECK(s2.k[i] == (is_new ? k2[i - 6] : k[i]));
    CHECK(s2.v[i] == (is_new ? v2[i - 6] : v[i]));
  }
  CHECK(read(c, 2, 1, 0, 10).k == v);
  CHECK(c.get(2).value() == t);  // tokens copied too

  // append's copy-on-write of a shared tail (KVPlan::copies) copies the payload as well.
  REQUIRE(c.fork(1, 3).ok());
  KVPlan plan;
  const Tokens more = range(100, 1);
  REQUIRE(c.append(3, more.data(), 1, &plan).ok());
  REQUIRE(plan.copies.size() == 2);
  CHECK(read(c, 3, 0, 0, 10).k == k);
  CHECK(read(c, 3, 1, 0, 10).v == k);
  CHECK(all_zero(read(c, 3, 0, 10, 1).k));
}

TEST_CASE("a reused cached prefix keeps its K/V; evicted and reused pages read zeros", "[kv_payload]") {
  for (bool sharing : {true, false}) {
    KVCache c = make(4, 4, 1, 2, 2, KVDtype::f32, sharing);
    const Tokens t = range(0, 12);
    std::mt19937 g(3);
    const Floats k = random_floats(g, 48), v = random_floats(g, 48);
    REQUIRE(c.attach(1, t.data(), t.size()).ok());
    REQUIRE(c.write_kv(1, 0, 0, k.data(), v.data(), 12).ok());
    c.detach(1);
    KVPlan plan;
    REQUIRE(c.attach(2, t.data(), t.size(), -1, &plan).ok());
    if (sharing) {
      CHECK(plan.cached_tokens == 12);
      CHECK(read(c, 2, 0, 0, 12).k == k);
      CHECK(read(c, 2, 0, 0, 12).v == v);
    } else {
      CHECK(plan.cached_tokens == 0);
      CHECK(all_zero(read(c, 2, 0, 0, 12).k));
    }
    c.detach(2);
    // Other tokens: every page is reused (evicted first when cached); nothing leaks.
    const Tokens u = range(500, 16);
    REQUIRE(c.attach(3, u.data(), u.size()).ok());
    const KV r = read(c, 3, 0, 0, 16);
    CHECK(all_zero(r.k));
    CHECK(all_zero(r.v));
    const Floats k3 = random_floats(g, 8), v3 = random_floats(g, 8);
    REQUIRE(c.write_kv(3, 0, 5, k3.data(), v3.data(), 2).ok());
    const KV r2 = read(c, 3, 0, 0, 16);
    for (std::size_t i = 0; i < 64; ++i) {
      CHECK(r2.k[i] == (i >= 20 && i < 28 ? k3[i - 20] : 0.0f));
    }
    // Re-attach over itself with a longer sequence: fresh pages past the matched prefix are zero.
    const Tokens w = range(900, 6);
    c.detach(3);
    REQUIRE(c.attach(4, w.data(), w.size()).ok());
    CHECK(all_zero(read(c, 4, 0, 0, 6).k));
  }
}

// ---- attention -------------------------------------------------------------------------------
TEST_CASE("attention equals a dense f64 reference within 1e-5 relative (f32 payload)", "[kv_payload][attention]") {
  std::mt19937 g(11);
  const uint32_t kv_heads = 2;
  int runs = 0;
  for (uint32_t hd : {1u, 3u, 17u, 64u, 127u}) {
    for (uint32_t ratio : {1u, 2u, 4u, 8u}) {
      for (uint32_t ps : {1u, 3u, 16u, 512u}) {
        for (std::size_t len : {std::size_t{1}, std::size_t{2}, std::size_t{ps + 1}, std::size_t{47}, std::size_t{301}}) {
          if (hd == 127 && len == 301 && ratio == 8 && ps != 16) continue;  // keep the run short
          const uint32_t num_heads = kv_heads * ratio;
          KVCache c = make(ps, static_cast<uint32_t>(len / ps + 2), 2, kv_heads, hd);
          const Tokens t = range(0, len);
          REQUIRE(c.attach(7, t.data(), len).ok());
          const std::size_t row = std::size_t{kv_heads} * hd;
          const Floats k = random_floats(g, len * row, 2.0f), v = random_floats(g, len * row);
          // Written in two chunks on layer 1 (layer 0 stays zero).
          const std::size_t half = len / 2;
          REQUIRE(c.write_kv(7, 1, 0, k.data(), v.data(), half).ok());
          REQUIRE(c.write_kv(7, 1, static_cast<uint32_t>(half), k.data() + half * row, v.data() + half * row, len - half).ok());
          for (std::size_t m : {std::size_t{1}, std::min<std::size_t>(len, 5)}) {
            const Floats q = random_floats(g, m * num_heads * hd, 2.0f);
            Floats out(m * num_heads * hd, 99.0f), out_scalar(out.size());
            INFO("hd " << hd << " ratio " << ratio << " page " << ps << " len " << len << " m " << m);
            REQUIRE(c.attention(7, 1, q.data(), m, num_heads, 0.0f, out.data()).ok());
            REQUIRE(KVCacheInternals::attention_scalar(c, 7, 1, q.data(), m, num_heads, 0.0f, out_scalar.data()).ok());
            const auto want = reference(k, v, len, kv_heads, hd, q, m, num_heads, 1.0 / std::sqrt(double(hd)));
            CHECK(worst_rel(out, want) <= 1e-5);
            CHECK(worst_rel(out_scalar, want) <= 1e-5);
            ++runs;
          }
        }
      }
    }
  }
  CHECK(runs > 700);
}

TEST_CASE("attention: explicit scale, zero layer, unwritten positions count as zero K/V", "[kv_payload][attention]") {
  std::mt19937 g(12);
  KVCache c = make(16, 8, 2, 1, 8);
  const Tokens t = range(0, 40);
  REQUIRE(c.attach(1, t.data(), t.size()).ok());
  const Floats k = random_floats(g, 40 * 8), v = random_floats(g, 40 * 8);
  REQUIRE(c.write_kv(1, 0, 0, k.data(), v.data(), 40).ok());
  const Floats q = random_floats(g, 3 * 2 * 8);
  Floats out(q.size());
  REQUIRE(c.attention(1, 0, q.data(), 3, 2, 0.3f, out.data()).ok());
  CHECK(worst_rel(out, reference(k, v, 40, 1, 8, q, 3, 2, double(0.3f))) <= 1e-5);
  // Layer 1 was never written: all scores 0, uniform weights over zero V.
  REQUIRE(c.attention(1, 1, q.data(), 3, 2, 0.0f, out.data()).ok());
  CHECK(all_zero(out));
  // Half written: the rest reads as zero K/V (score 0, value 0).
  REQUIRE(c.write_kv(1, 1, 0, k.data(), v.data(), 20).ok());
  Floats kz = k, vz = v;
  std::fill(kz.begin() + 160, kz.end(), 0.0f);
  std::fill(vz.begin() + 160, vz.end(), 0.0f);
  REQUIRE(c.attention(1, 1, q.data(), 1, 2, 0.0f, out.data()).ok());
  out.resize(16);
  CHECK(worst_rel(out, reference(kz, vz, 40, 1, 8, q, 1, 2, 1.0 / std::sqrt(8.0))) <= 1e-5);
}

TEST_CASE("attention over f16 pages: exact on the rounded K/V, within the documented bound of the f32 inputs",
          "[kv_payload][attention][f16]") {
  // The bound (kv_cache.hpp): with u = 2^-11 and per element e(x) = u |x| + 2^-25 (rounding
  // error of one f16 store, subnormals included), for query head h over positions j:
  //   delta = |scale| * max_j sum_d |q_d| e(k_jd)          (score error)
  //   |out - exact| <= 1e-5 max(1, |exact|) + (exp(2 delta) - 1) max|v| + max_j e(v_j).
  std::mt19937 g(13);
  const double u = std::ldexp(1.0, -11), sub = std::ldexp(1.0, -25);
  for (uint32_t hd : {3u, 64u, 127u}) {
    for (uint32_t ps : {1u, 16u}) {
      const uint32_t kv_heads = 2, num_heads = 8;
      const std::size_t len = 130, m = 4, row = kv_heads * hd;
      KVCache c = make(ps, 200, 1, kv_heads, hd, KVDtype::f16);
      const Tokens t = range(0, len);
      REQUIRE(c.attach(1, t.data(), len).ok());
      const Floats k = random_floats(g, len * row, 2.0f), v = random_floats(g, len * row);
      REQUIRE(c.write_kv(1, 0, 0, k.data(), v.data(), len).ok());
      const Floats q = random_floats(g, m * num_heads * hd);
      Floats out(m * num_heads * hd);
      REQUIRE(c.attention(1, 0, q.data(), m, num_heads, 0.0f, out.data()).ok());
      const double scale = 1.0 / std::sqrt(double(hd));
      const KV rounded = read(c, 1, 0, 0, len);
      CHECK(worst_rel(out, reference(rounded.k, rounded.v, len, kv_heads, hd, q, m, num_heads, scale)) <= 1e-5);
      const auto exact = reference(k, v, len, kv_heads, hd, q, m, num_heads, scale);
      double vmax = 0, vmax_err = 0;
      for (float x : v) {
        vmax = std::max(vmax, double(std::fabs(x)));
        vmax_err = std::max(vmax_err, u * std::fabs(x) + sub);
      }
      for (std::size_t i = 0; i < m; ++i) {
        for (uint32_t h = 0; h < num_heads; ++h) {
          const uint32_t gk = h / (num_heads / kv_heads);
          double delta = 0;
          for (std::size_t j = 0; j < len; ++j) {
            double s = 0;
            for (uint32_t d = 0; d < hd; ++d) {
              s += std::fabs(q[(i * num_heads + h) * hd + d]) * (u * std::fabs(k[(j * kv_heads + gk) * hd + d]) + sub);
            }
            delta = std::max(delta, scale * s);
          }
          const double bound = (std::exp(2 * delta) - 1) * vmax + vmax_err;
          for (uint32_t d = 0; d < hd; ++d) {
            const std::size_t at = (i * num_heads + h) * hd + d;
            REQUIRE(std::fabs(out[at] - exact[at]) <= 1e-5 * std::max(1.0, std::fabs(exact[at])) + bound);
          }
        }
      }
    }
  }
}

// ---- bad inputs ---------------------------------------------------------------------------
TEST_CASE("bad payload inputs are rejected and change nothing", "[kv_payload]") {
  for (KVDtype dt : {KVDtype::f32, KVDtype::f16}) {
    KVCache c = make(4, 5, 2, 2, 3, dt);
    const Tokens t = range(0, 10);
    REQUIRE(c.attach(1, t.data(), t.size()).ok());
    std::mt19937 g(4);
    const Floats k = random_floats(g, 60), v = random_floats(g, 60);
    REQUIRE(c.write_kv(1, 0, 0, k.data(), v.data(), 10).ok());
    REQUIRE(c.fork(1, 2).ok());
    auto snapshot = [&] {
      std::string s = std::to_string(c.stats().cow_copies) + "/" + std::to_string(c.stats().used_pages) + "/" +
                      std::to_string(c.stats().payload_bytes) + ":";
      for (SeqId seq : {1u, 2u}) {
        const std::vector<PageId> table = c.block_table(seq).value();
        for (PageId p : table) s += std::to_string(p) + ",";
        for (uint32_t layer : {0u, 1u}) {
          const KV r = read(c, seq, layer, 0, 10);
          for (float x : r.k) s += std::to_string(bits(x)) + ",";
          for (float x : r.v) s += std::to_string(bits(x)) + ",";
        }
      }
      return s;
    };
    const std::string before = snapshot();
    Floats bad = k;
    bad[59] = std::numeric_limits<float>::quiet_NaN();
    CHECK(c.write_kv(2, 0, 0, bad.data(), v.data(), 10).code() == Errc::invalid_argument);
    CHECK(c.write_kv(2, 0, 0, k.data(), bad.data(), 10).code() == Errc::invalid_argument);
    bad[59] = std::numeric_limits<float>::infinity();
    CHECK(c.write_kv(2, 0, 0, bad.data(), v.data(), 10).code() == Errc::invalid_argument);
    bad[59] = 70000.0f;  // finite, but Inf in f16
    CHECK((c.write_kv(2, 0, 0, bad.data(), v.data(), 10).code() == Errc::invalid_argument) == (dt == KVDtype::f16));
    if (dt == KVDtype::f32) {  // that write succeeded: restore the cache
      c.detach(2);
      c.detach(1);
      REQUIRE(c.attach(1, t.data(), t.size()).ok());
      REQUIRE(c.write_kv(1, 0, 0, k.data(), v.data(), 10).ok());
      REQUIRE(c.fork(1, 2).ok());
    }
    const std::string base = snapshot();
    if (dt == KVDtype::f16) CHECK(base == before);
    CHECK(c.write_kv(2, 2, 0, k.data(), v.data(), 1).code() == Errc::invalid_argument);   // layer
    CHECK(c.write_kv(2, 0, 8, k.data(), v.data(), 3).code() == Errc::invalid_argument);   // beyond length
    CHECK(c.write_kv(2, 0, 11, k.data(), v.data(), 0).code() == Errc::invalid_argument);
    CHECK(c.write_kv(2, 0, 0, nullptr, v.data(), 1).code() == Errc::invalid_argument);
    CHECK(c.write_kv(9, 0, 0, k.data(), v.data(), 1).code() == Errc::not_found);
    Floats ko(60, 5.0f), vo(60, 5.0f);
    CHECK(c.read_kv(9, 0, 0, 1, ko.data(), vo.data()).code() == Errc::not_found);
    CHECK(c.read_kv(1, 0, 5, 6, ko.data(), vo.data()).code() == Errc::invalid_argument);
    CHECK(c.read_kv(1, 3, 0, 1, ko.data(), vo.data()).code() == Errc::invalid_argument);
    CHECK(ko == Floats(60, 5.0f));
    // Copy-on-write that needs more pages than exist: 5 pages, 3 used, 2 free; all 3 shared.
    CHECK(c.write_kv(2, 0, 0, k.data(), v.data(), 10).code() == Errc::capacity_exceeded);
    CHECK(snapshot() == base);
    // attention errors: out untouched.
    Floats q(5 * 4 * 3, 0.5f), out(5 * 4 * 3, 42.0f);
    CHECK(c.attention(9, 0, q.data(), 1, 4, 0.0f, out.data()).code() == Errc::not_found);
    CHECK(c.attention(1, 0, q.data(), 0, 4, 0.0f, out.data()).code() == Errc::invalid_argument);
    CHECK(c.attention(1, 0, q.data(), 11, 4, 0.0f, out.data()).code() == Errc::invalid_argument);
    CHECK(c.attention(1, 0, q.data(), 1, 3, 0.0f, out.data()).code() == Errc::invalid_argument);
    CHECK(c.attention(1, 0, q.data(), 1, 0, 0.0f, out.data()).code() == Errc::invalid_argument);
    CHECK(c.attention(1, 2, q.data(), 1, 4, 0.0f, out.data()).code() == Errc::invalid_argument);
    CHECK(c.attention(1, 0, q.data(), 1, 4, std::numeric_limits<float>::quiet_NaN(), out.data()).code() ==
          Errc::invalid_argument);
    CHECK(c.attention(1, 0, nullptr, 1, 4, 0.0f, out.data()).code() == Errc::invalid_argument);
    q[q.size() - 1] = std::numeric_limits<float>::infinity();
    CHECK(c.attention(1, 0, q.data(), 5, 4, 0.0f, out.data()).code() == Errc::invalid_argument);
    CHECK(out == Floats(5 * 4 * 3, 42.0f));
    CHECK(snapshot() == base);
    // A valid write into the shared range that fits: one copy.
    CHECK(c.write_kv(2, 1, 9, k.data(), v.data(), 1).ok());
    CHECK(c.stats().cow_copies == 1);
  }
}

TEST_CASE("copy-on-write of a published page pins it: the sequence's later published pages stay reachable",
          "[kv_payload]") {
  // A holds published pages P0 P1 P2; B shares P0. A writes into P0, so A gets a private copy
  // while P1 and P2 still hang from P0 in the registry. When B leaves, P0 must not become an
  // evictable cached page with live descendants (evicting it would evict them from under A).
  KVCache c = make(4, 8, 1, 1, 2);
  const Tokens a = range(0, 12), other = range(1000, 40);
  REQUIRE(c.attach(1, a.data(), 12).ok());
  std::mt19937 g(21);
  const Floats k = random_floats(g, 24), v = random_floats(g, 24);
  REQUIRE(c.write_kv(1, 0, 0, k.data(), v.data(), 12).ok());
  REQUIRE(c.attach(2, a.data(), 4).ok());
  const PageId p0 = c.block_table(1).value()[0];
  CHECK(c.page_refcount(p0) == 2);
  const Floats k2 = random_floats(g, 2), v2 = random_floats(g, 2);
  REQUIRE(c.write_kv(1, 0, 1, k2.data(), v2.data(), 1).ok());
  CHECK(c.stats().cow_copies == 1);
  CHECK(c.block_table(1).value()[0] != p0);
  CHECK(c.page_refcount(p0) == 2);  // B and A's pin
  c.detach(2);
  CHECK(c.page_refcount(p0) == 1);  // still pinned by A
  CHECK(c.match_prefix(a.data(), 12) == 12);
  // Fill every other page, then ask for more: nothing of A may be evicted.
  REQUIRE(c.attach(3, other.data(), 16).ok());
  CHECK(c.attach(4, other.data() + 20, 4).code() == Errc::capacity_exceeded);
  CHECK(c.get(1).value() == a);
  Floats want_k = k, want_v = v;
  want_k[2] = k2[0];
  want_k[3] = k2[1];
  want_v[2] = v2[0];
  want_v[3] = v2[1];
  CHECK(read(c, 1, 0, 0, 12).k == want_k);
  CHECK(read(c, 1, 0, 0, 12).v == want_v);
  // A leaves: P2, P1 and then P0 become cached (P0 most recent), and later attaches evict them
  // leaves first.
  c.detach(3);
  c.detach(1);
  CHECK(c.stats().cached_pages == 7);  // A's three and seq 3's four
  const Tokens fresh = range(5000, 32);
  REQUIRE(c.attach(5, fresh.data(), 32).ok());  // 8 pages: evicts all seven
  CHECK(c.stats().evictions == 7);
  CHECK(c.stats().used_pages == 8);
  // Forks carry the pin; re-attach releases it.
  c.detach(5);
  REQUIRE(c.attach(1, a.data(), 12).ok());
  REQUIRE(c.attach(2, a.data(), 4).ok());
  REQUIRE(c.write_kv(1, 0, 0, k.data(), v.data(), 1).ok());
  const PageId q0 = c.block_table(2).value()[0];
  REQUIRE(c.fork(1, 6).ok());
  CHECK(c.page_refcount(q0) == 3);
  REQUIRE(c.attach(1, other.data(), 4).ok());
  CHECK(c.page_refcount(q0) == 2);
  c.detach(6);
  CHECK(c.page_refcount(q0) == 1);
}

TEST_CASE("random operations: every sequence always reads the K/V of its own token history", "[kv_payload][random]") {
  // An honest runtime: the K/V of position p is a function of tokens[0..p]; after every attach
  // or append it writes positions >= compute_from, and it sometimes rewrites (the same values)
  // ranges that may be shared, forcing copy-on-write and pins. Sharing, reuse of cached
  // prefixes, eviction and page reuse must never show a sequence anything else.
  uint64_t cows = 0, evictions = 0, hits = 0;
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    for (KVDtype dt : {KVDtype::f32, KVDtype::f16}) {
      std::mt19937 g(seed);
      const uint32_t ps = 1 + seed % 4, max_pages = 48;
      KVCache c = make(ps, max_pages, 2, 1, 2, dt);
      std::map<SeqId, Tokens> model;
      auto values = [](const Tokens& t, std::size_t from, std::size_t n, float salt) {
        Floats out(n * 2);
        uint32_t h = 0;
        for (std::size_t p = 0; p < from + n; ++p) {
          h = h * 2654435761u + static_cast<uint32_t>(t[p]) + 1u;
          if (p < from) continue;
          out[(p - from) * 2] = static_cast<float>(h >> 20) / 4096.0f - 0.5f + salt;
          out[(p - from) * 2 + 1] = static_cast<float>((h >> 8) & 0xfff) / 4096.0f - salt;
        }
        return out;
      };
      auto write = [&](SeqId seq, std::size_t from, std::size_t n) {
        const Tokens& t = model[seq];
        for (uint32_t layer = 0; layer < 2; ++layer) {
          const Floats k = values(t, from, n, 0.25f * layer), v = values(t, from, n, -0.5f);
          const Status st = c.write_kv(seq, layer, static_cast<uint32_t>(from), k.data(), v.data(), n);
          if (st.code() == Errc::capacity_exceeded) return false;
          REQUIRE(st.ok());
        }
        return true;
      };
      auto round = [&](float x) { return dt == KVDtype::f32 ? x : simd::f16_to_f32(simd::f32_to_f16(x)); };
      const Tokens bases[3] = {range(0, 40), range(100, 40), range(200, 40)};
      for (int step = 0; step < 400; ++step) {
        const SeqId seq = g() % 6;
        const int op = static_cast<int>(g() % 6);
        KVPlan plan;
        if (op == 0 || (op == 1 && !model.count(seq))) {
          const Tokens& base = bases[g() % 3];
          Tokens t(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(g() % 30));
          for (int i = static_cast<int>(g() % 6); i > 0; --i) t.push_back(static_cast<TokenId>(1000 + g() % 5));
          const Status st = c.attach(seq, t.data(), t.size(), -1, &plan);
          if (st.code() == Errc::capacity_exceeded) continue;
          REQUIRE(st.ok());
          model[seq] = t;
          // A partly written attach would leave zeros: write everything the plan asks for, and
          // if a copy-on-write cannot get a page, drop the sequence (as a runtime would).
          if (!write(seq, plan.compute_from, t.size() - plan.compute_from)) {
            c.detach(seq);
            model.erase(seq);
          }
        } else if (op == 1) {
          Tokens more;
          for (int i = static_cast<int>(1 + g() % 5); i > 0; --i) more.push_back(static_cast<TokenId>(g() % 7));
          const Status st = c.append(seq, more.data(), more.size(), &plan);
          if (st.code() == Errc::capacity_exceeded) continue;
          REQUIRE(st.ok());
          model[seq].insert(model[seq].end(), more.begin(), more.end());
          if (!write(seq, plan.compute_from, model[seq].size() - plan.compute_from)) {
            c.detach(seq);
            model.erase(seq);
          }
        } else if (op == 2 && model.count(seq)) {
          const SeqId dst = g() % 6;
          if (model.count(dst)) continue;
          REQUIRE(c.fork(seq, dst).ok());
          model[dst] = model[seq];
        } else if (op == 3) {
          c.detach(seq);
          model.erase(seq);
        } else if (op >= 4 && model.count(seq) && !model[seq].empty()) {
          const std::size_t len = model[seq].size(), from = g() % len, n = 1 + g() % (len - from);
          (void)write(seq, from, n);  // capacity_exceeded changes nothing
        }
        // Every live sequence reads exactly its history's K/V.
        for (const auto& [s, t] : model) {
          REQUIRE(c.get(s).value() == t);
          for (uint32_t layer = 0; layer < 2; ++layer) {
            const KV r = read(c, s, layer, 0, t.size());
            const Floats k = values(t, 0, t.size(), 0.25f * layer), v = values(t, 0, t.size(), -0.5f);
            for (std::size_t i = 0; i < k.size(); ++i) {
              INFO("seed " << seed << " step " << step << " seq " << s << " layer " << layer << " element " << i);
              REQUIRE(r.k[i] == round(k[i]));
              REQUIRE(r.v[i] == round(v[i]));
            }
          }
        }
        REQUIRE(c.stats().used_pages <= max_pages);
      }
      cows += c.stats().cow_copies;
      evictions += c.stats().evictions;
      hits += c.stats().prefix_hits;
    }
  }
  CHECK(cows > 50);
  CHECK(evictions > 50);
  CHECK(hits > 50);
}
