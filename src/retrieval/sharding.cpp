// SPDX-License-Identifier: MIT
#include "llmds/sharding.hpp"

#include <algorithm>
#include <string>
#include <unordered_set>
#include <utility>

namespace llmds {
namespace {

constexpr uint64_t kMaxExact = uint64_t{1} << 53;  // JS numbers count exactly up to here

}  // namespace

uint32_t shard_of(uint32_t doc_id, uint32_t shards) noexcept {
  uint32_t x = doc_id;
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return shards <= 1 ? 0 : x % shards;
}

Status validate_term_stats(const TermStats& s) {
  if (s.terms.size() != s.df.size()) {
    return invalid_argument("term stats: " + std::to_string(s.terms.size()) + " terms but " +
                            std::to_string(s.df.size()) + " document frequencies");
  }
  if (s.documents > kMaxExact || s.tokens > kMaxExact) {
    return invalid_argument("term stats: documents and tokens must be at most 2^53");
  }
  for (std::size_t i = 0; i < s.terms.size(); ++i) {
    if (i > 0 && !(s.terms[i - 1] < s.terms[i])) {
      return invalid_argument("term stats: terms must be distinct and in ascending order (\"" + s.terms[i].substr(0, 64) +
                              "\" follows \"" + s.terms[i - 1].substr(0, 64) + "\")");
    }
    if (s.df[i] == 0 || s.df[i] > s.documents) {
      return invalid_argument("term stats: df of \"" + s.terms[i].substr(0, 64) + "\" must be in [1, documents = " +
                              std::to_string(s.documents) + "], got " + std::to_string(s.df[i]));
    }
  }
  return Status::success();
}

Result<TermStats> merge_term_stats(const std::vector<TermStats>& parts) {
  TermStats out;
  std::size_t total_terms = 0;
  for (const TermStats& p : parts) {
    if (Status st = validate_term_stats(p); !st) return st;
    out.documents += p.documents;
    out.tokens += p.tokens;
    if (out.documents > kMaxExact || out.tokens > kMaxExact) {
      return invalid_argument("mergeTermStats: documents or tokens exceed 2^53");
    }
    total_terms += p.terms.size();
  }
  // A k-way merge of sorted lists by repeated pairwise merging would copy terms log k times;
  // sorting (index into parts) pairs once is simpler and the inputs are already sorted runs.
  std::vector<std::pair<const std::string*, uint64_t>> all;
  all.reserve(total_terms);
  for (const TermStats& p : parts) {
    for (std::size_t i = 0; i < p.terms.size(); ++i) all.emplace_back(&p.terms[i], p.df[i]);
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  for (std::size_t i = 0; i < all.size();) {
    uint64_t df = 0;
    std::size_t j = i;
    for (; j < all.size() && *all[j].first == *all[i].first; ++j) df += all[j].second;
    out.terms.push_back(*all[i].first);
    out.df.push_back(df);  // <= the summed documents: each part's df <= its documents
    i = j;
  }
  return out;
}

Result<RankedHits> merge_ranked(const std::vector<RankedHits>& lists, uint32_t top_k) {
  if (top_k == 0) return invalid_argument("mergeShardResults: topK must be an integer >= 1, got 0");
  std::vector<std::pair<double, uint32_t>> all;
  std::unordered_set<uint32_t> seen;
  for (const RankedHits& l : lists) {
    if (l.ids.size() != l.scores.size()) return invalid_argument("mergeShardResults: ids and scores differ in length");
    for (std::size_t i = 0; i < l.ids.size(); ++i) {
      if (!seen.insert(l.ids[i]).second) {
        return invalid_argument("mergeShardResults: document " + std::to_string(l.ids[i]) +
                                " is in two shards' results (shards must hold disjoint documents)");
      }
      all.emplace_back(l.scores[i], l.ids[i]);
    }
  }
  auto better = [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; };
  const std::size_t k = std::min<std::size_t>(top_k, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), better);
  RankedHits out;
  out.ids.reserve(k);
  out.scores.reserve(k);
  for (std::size_t i = 0; i < k; ++i) {
    out.ids.push_back(all[i].second);
    out.scores.push_back(all[i].first);
  }
  return out;
}

}  // namespace llmds
