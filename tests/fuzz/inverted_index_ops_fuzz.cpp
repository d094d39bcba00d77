// SPDX-License-Identifier: MIT
// Operation-sequence fuzzer for InvertedIndex: adds, re-adds, removals (single and in bulk, so
// posting lists grow past a skip block, collect tombstones, get rebuilt and the whole index gets
// compacted), searches and serialize / deserialize round trips, checked after every step
// against a brute-force Okapi BM25 over a plain model of the documents:
// - size, stats (documents, terms, postings, tokens) and term / document frequencies;
// - search == search_exhaustive bit for bit, and both equal the reference top k (scores
//   within 1e-9 relative; among near-equal scores any order);
// - a round trip through serialize / deserialize gives the same bytes and the same results.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "fuzz_input.hpp"
#include "llmds/inverted_index.hpp"

using llmds::InvertedIndex;

namespace {

const char* const kWords[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
constexpr uint32_t kWordCount = 8;
constexpr uint32_t kMaxId = 320;

using Doc = std::vector<uint32_t>;  // word indexes, with repetitions

struct Model {
  double k1, b;
  std::map<uint32_t, Doc> docs;

  std::map<uint32_t, double> scores(const std::vector<uint32_t>& query) const {
    std::map<uint32_t, double> out;
    if (docs.empty()) return out;
    std::vector<uint32_t> df(kWordCount, 0);
    uint64_t tokens = 0;
    for (const auto& [id, d] : docs) {
      std::set<uint32_t> seen(d.begin(), d.end());
      for (uint32_t w : seen) ++df[w];
      tokens += d.size();
    }
    const double n = static_cast<double>(docs.size());
    const double avgdl = static_cast<double>(tokens) / n;
    std::map<uint32_t, uint32_t> qtf;
    for (uint32_t w : query) ++qtf[w];
    for (const auto& [id, d] : docs) {
      double s = 0;
      bool any = false;
      for (const auto& [w, q] : qtf) {
        const double tf = static_cast<double>(std::count(d.begin(), d.end(), w));
        if (tf == 0 || df[w] == 0) continue;
        any = true;
        const double idf = std::log(1.0 + (n - df[w] + 0.5) / (df[w] + 0.5));
        s += q * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * static_cast<double>(d.size()) / avgdl));
      }
      if (any) out[id] = s;
    }
    return out;
  }
};

std::string text_of(const Doc& d, uint32_t style) {
  std::string t;
  for (uint32_t w : d) {
    // Separators and case vary; the terms do not.
    t += style % 3 == 0 ? " " : style % 3 == 1 ? ", " : "\n\t";
    t += style % 2 ? std::string(1, static_cast<char>(kWords[w][0] - 32)) : std::string(kWords[w]);
  }
  return t;
}

Doc doc_from(llmds_fuzz::Input& in) {
  Doc d(in.below(9));
  for (auto& w : d) w = in.below(kWordCount) % (1 + in.below(kWordCount));  // skewed to early words
  return d;
}

// `modulus` 0: no filter; else documents with id % modulus == residue are allowed (as an id
// list with repeats and unknown ids, and as a predicate: both must give the same result).
void check_search(const InvertedIndex& index, const Model& m, const std::vector<uint32_t>& query, uint32_t k,
                  uint32_t modulus = 0, uint32_t residue = 0) {
  std::string q;
  for (uint32_t w : query) q += std::string(kWords[w]) + " ";
  auto allowed = [&](uint32_t id) { return modulus == 0 || id % modulus == residue; };
  std::vector<uint32_t> list;
  for (uint32_t id = residue; modulus != 0 && id < kMaxId + 10; id += modulus) list.push_back(id);
  if (!list.empty()) list.push_back(list.front());
  const llmds::IdFilter filter = modulus == 0 ? llmds::IdFilter::all() : llmds::IdFilter::ids(list.data(), list.size());
  auto fast = index.search(q, k, filter);
  auto full = index.search_exhaustive(q, k, modulus == 0 ? llmds::IdFilter::all() : llmds::IdFilter::of(allowed));
  FUZZ_CHECK(fast.ok() && full.ok());
  FUZZ_CHECK(fast->ids == full->ids && fast->scores == full->scores);

  std::map<uint32_t, double> ref = m.scores(query);
  for (auto it = ref.begin(); it != ref.end();) it = allowed(it->first) ? std::next(it) : ref.erase(it);
  std::vector<double> ranked;
  for (const auto& [id, s] : ref) ranked.push_back(s);
  std::sort(ranked.rbegin(), ranked.rend());
  FUZZ_CHECK(fast->ids.size() == std::min<std::size_t>(k, ranked.size()));
  for (std::size_t i = 0; i < fast->ids.size(); ++i) {
    const auto it = ref.find(fast->ids[i]);
    FUZZ_CHECK(it != ref.end());
    const double tol = 1e-9 * std::max(1.0, std::fabs(it->second));
    FUZZ_CHECK(std::fabs(fast->scores[i] - it->second) <= tol);
    FUZZ_CHECK(std::fabs(fast->scores[i] - ranked[i]) <= tol);  // the i-th best, up to near-ties
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  llmds_fuzz::Input in(data, size);
  const double k1s[] = {1.2, 0.0, 2.5, 0.5};
  const double bs[] = {0.75, 0.0, 1.0, 0.3};
  Model m{k1s[in.below(4)], bs[in.below(4)], {}};
  auto created = InvertedIndex::create({m.k1, m.b});
  FUZZ_CHECK(created.ok());
  InvertedIndex index = std::move(created.value());

  for (int step = 0; step < 150 && !in.empty(); ++step) {
    switch (in.below(8)) {
      case 0:
      case 1: {  // add or replace one document
        const uint32_t id = in.below(2) == 0 ? in.below(8) : in.u8() * 5 % kMaxId;
        const Doc d = doc_from(in);
        FUZZ_CHECK(index.add_document(id, text_of(d, in.u8())).ok());
        m.docs[id] = d;
        break;
      }
      case 2: {  // the same text for a range of ids: long lists, skips, many re-adds
        const uint32_t first = in.u8() % kMaxId, n = 1 + in.u8();
        const Doc d = doc_from(in);
        const std::string t = text_of(d, 0);
        for (uint32_t id = first; id < std::min(first + n, kMaxId); ++id) {
          FUZZ_CHECK(index.add_document(id, t).ok());
          m.docs[id] = d;
        }
        break;
      }
      case 3: {  // remove one, or a range with a stride
        const uint32_t first = in.below(2) == 0 ? in.below(8) : in.u8() * 5 % kMaxId;
        const uint32_t n = in.below(2) == 0 ? 1 : 1 + in.u8() * 2, stride = 1 + in.below(3);
        for (uint32_t i = 0, id = first; i < n && id < kMaxId; ++i, id += stride) {
          FUZZ_CHECK(index.remove_document(id) == (m.docs.erase(id) == 1));
        }
        break;
      }
      case 4: {  // round trip
        const auto bytes = index.serialize();
        auto copy = InvertedIndex::deserialize(bytes.data(), bytes.size());
        FUZZ_CHECK(copy.ok());
        FUZZ_CHECK(copy->serialize() == bytes);
        auto a = index.search("a b c d e f g h", 20), c = copy->search("a b c d e f g h", 20);
        FUZZ_CHECK(a->ids == c->ids && a->scores == c->scores);
        if (in.below(2) == 0) index = std::move(copy.value());  // carry on with the loaded index
        break;
      }
      default: {
        std::vector<uint32_t> query(1 + in.below(4));
        for (auto& w : query) w = in.below(kWordCount);
        const uint32_t k = 1 + in.below(12);
        if (in.below(2) == 0) {
          check_search(index, m, query, k);
        } else {
          const uint32_t modulus = 1 + in.below(7);
          check_search(index, m, query, k, modulus, in.below(modulus));
        }
        break;
      }
    }
    // Counts and frequencies agree with the model (every few steps: the model is brute force).
    if (step % 4 != 0 && !in.empty()) continue;
    const auto st = index.stats();
    FUZZ_CHECK(index.size() == m.docs.size() && st.documents == m.docs.size());
    uint64_t tokens = 0, postings = 0;
    std::vector<uint32_t> df(kWordCount, 0);
    for (const auto& [id, d] : m.docs) {
      tokens += d.size();
      std::set<uint32_t> seen(d.begin(), d.end());
      postings += seen.size();
      for (uint32_t w : seen) ++df[w];
    }
    FUZZ_CHECK(st.tokens == tokens && st.postings == postings);
    uint32_t terms = 0;
    for (uint32_t w = 0; w < kWordCount; ++w) {
      terms += df[w] > 0;
      FUZZ_CHECK(index.document_frequency(kWords[w]).value() == df[w]);
    }
    FUZZ_CHECK(st.terms == terms);
    if (!m.docs.empty()) {
      const auto& [id, d] = *m.docs.begin();
      const uint32_t w = d.empty() ? 0 : d.front();
      FUZZ_CHECK(index.term_frequency(kWords[w], id).value() == static_cast<uint32_t>(std::count(d.begin(), d.end(), w)));
    }
  }
  return 0;
}
