// SPDX-License-Identifier: MIT
// Random add / merge / reset sequences over three small sketches (narrow rows, so items
// collide a lot) against exact counts:
// - estimate >= true count, always (conservative update and merge included);
// - add(x, c) raises estimate(x) by at least c; estimates never exceed the total;
// - total_count == the sum of the true counts;
// - merge of a sketch with other options is invalid_argument, a total past 2^53 - 1 is
//   capacity_exceeded, and either failure changes nothing.
#include <map>
#include <string>

#include "fuzz_input.hpp"
#include "llmds/count_min_sketch.hpp"

using namespace llmds;

namespace {

constexpr int kSketches = 3;

std::string item_from(llmds_fuzz::Input& in) {
  if (in.below(4) != 0) return std::string(1, static_cast<char>('a' + in.below(24)));  // a small alphabet
  std::string s(in.below(6), '\0');
  for (char& c : s) c = static_cast<char>(in.u8());  // any bytes, the empty item included
  return s;
}

uint64_t count_from(llmds_fuzz::Input& in) {
  switch (in.below(10)) {
    case 0: return 0;
    case 1: return CountMinSketch::kMaxTotal / 3;  // a few of these reach the limit
    case 2: return uint64_t{1} << in.below(40);
    default: return 1 + in.below(5);
  }
}

struct Tracked {
  std::map<std::string, uint64_t> truth;
  uint64_t total = 0;
};

void check(const CountMinSketch& s, const Tracked& t) {
  FUZZ_CHECK(s.total_count() == t.total);
  for (const auto& [item, n] : t.truth) {
    const uint64_t e = s.estimate(item);
    FUZZ_CHECK(e >= n);
    FUZZ_CHECK(e <= s.total_count());
    FUZZ_CHECK(s.is_hot(item, static_cast<double>(n)));
  }
  FUZZ_CHECK(s.error_bound() >= 0.0);
}

std::vector<uint64_t> estimates(const CountMinSketch& s, const Tracked& t) {
  std::vector<uint64_t> e;
  for (const auto& [item, n] : t.truth) e.push_back(s.estimate(item));
  e.push_back(s.total_count());
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  llmds_fuzz::Input in(data, size);
  CountMinSketchOptions o;
  o.width = 1 + in.below(12);
  o.depth = 1 + in.below(4);
  o.seed = in.below(3);
  std::vector<CountMinSketch> sk;
  for (int i = 0; i < kSketches; ++i) sk.push_back(std::move(CountMinSketch::create(o).value()));
  CountMinSketchOptions other = o;
  switch (in.below(3)) {
    case 0: other.width += 1; break;
    case 1: other.depth = o.depth % 4 + 1; break;
    default: other.seed += 1; break;
  }
  CountMinSketch mismatched = std::move(CountMinSketch::create(other).value());
  FUZZ_CHECK(mismatched.add("a", 1).ok());
  Tracked t[kSketches];

  for (int step = 0; step < 500 && !in.empty(); ++step) {
    const int i = static_cast<int>(in.below(kSketches));
    switch (in.below(6)) {
      case 0:
      case 1:
      case 2: {
        const std::string item = item_from(in);
        const uint64_t c = count_from(in);
        const std::vector<uint64_t> before = estimates(sk[i], t[i]);
        const uint64_t est = sk[i].estimate(item);
        const Status st = sk[i].add(item, c);
        if (c > CountMinSketch::kMaxTotal - t[i].total) {
          FUZZ_CHECK(st.code() == Errc::capacity_exceeded);
          FUZZ_CHECK(estimates(sk[i], t[i]) == before);
          break;
        }
        FUZZ_CHECK(st.ok());
        FUZZ_CHECK(sk[i].estimate(item) >= est + c);
        if (c != 0) t[i].truth[item] += c;
        t[i].total += c;
        break;
      }
      case 3: {  // merge j into i (j == i doubles i)
        const int j = static_cast<int>(in.below(kSketches));
        const std::vector<uint64_t> before = estimates(sk[i], t[i]);
        const Status st = sk[i].merge(sk[j]);
        if (t[j].total > CountMinSketch::kMaxTotal - t[i].total) {
          FUZZ_CHECK(st.code() == Errc::capacity_exceeded);
          FUZZ_CHECK(estimates(sk[i], t[i]) == before);
          break;
        }
        FUZZ_CHECK(st.ok());
        const Tracked add = t[j];  // a copy: j may be i
        for (const auto& [item, n] : add.truth) t[i].truth[item] += n;
        t[i].total += add.total;
        break;
      }
      case 4: {
        const std::vector<uint64_t> before = estimates(sk[i], t[i]);
        FUZZ_CHECK(sk[i].merge(mismatched).code() == Errc::invalid_argument);
        FUZZ_CHECK(estimates(sk[i], t[i]) == before);
        break;
      }
      default:
        if (in.below(4) == 0) {
          sk[i].reset();
          t[i] = Tracked{};
          FUZZ_CHECK(sk[i].estimate("a") == 0 && sk[i].total_count() == 0);
        }
        break;
    }
    for (int k = 0; k < kSketches; ++k) check(sk[k], t[k]);
  }
  return 0;
}
