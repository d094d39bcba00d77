// SPDX-License-Identifier: MIT
#include "llmds/sharding.hpp"

#include <algorithm>
#include <string>
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
  if (s.terms.size() != s.df.size()) return invalid_argument("term stats: terms and df differ in length");
  if (s.documents > kMaxExact || s.tokens > kMaxExact) {
    return invalid_argument("term stats: documents and tokens must be at most 2^53");
  }
  for (std::size_t i = 0; i < s.terms.size(); ++i) {
    if (i > 0 && !(s.terms[i - 1] < s.terms[i])) {
      return invalid_argument("term stats: terms must be distinct and in ascending order (UTF-8 bytes)");
    }
    if (s.df[i] == 0 || s.df[i] > s.documents) return invalid_argument("term stats: every df must be in [1, documents]");
  }
  return Status::success();
}

Result<TermStats> merge_term_stats(const std::vector<TermStats>& parts) {
  TermStats out;
  for (const TermStats& p : parts) {
    if (Status st = validate_term_stats(p); !st) return st;
    out.documents += p.documents;
    out.tokens += p.tokens;
    if (out.documents > kMaxExact || out.tokens > kMaxExact) {
      return invalid_argument("mergeTermStats: documents or tokens exceed 2^53");
    }
  }
  // Each part is a sorted run: merge them into `out` one at a time (plain loops: the wasm build
  // pays for every sort instantiation in download size).
  TermStats next;
  for (const TermStats& p : parts) {
    next.terms.clear();
    next.df.clear();
    next.terms.reserve(out.terms.size() + p.terms.size());
    next.df.reserve(out.terms.size() + p.terms.size());
    std::size_t i = 0, j = 0;
    while (i < out.terms.size() || j < p.terms.size()) {
      const bool take_out = j == p.terms.size() || (i < out.terms.size() && !(p.terms[j] < out.terms[i]));
      const bool take_p = i == out.terms.size() || (j < p.terms.size() && !(out.terms[i] < p.terms[j]));
      next.terms.push_back(take_out ? std::move(out.terms[i]) : p.terms[j]);
      next.df.push_back((take_out ? out.df[i++] : 0) + (take_p ? p.df[j++] : 0));  // <= the summed documents
    }
    std::swap(out.terms, next.terms);
    std::swap(out.df, next.df);
  }
  return out;
}

Result<RankedHits> merge_ranked(const std::vector<RankedHits>& lists, uint32_t top_k) {
  if (top_k == 0) return invalid_argument("mergeShardResults: topK must be an integer >= 1, got 0");
  std::vector<std::pair<double, uint32_t>> all;
  std::vector<uint32_t> ids;
  for (const RankedHits& l : lists) {
    if (l.ids.size() != l.scores.size()) return invalid_argument("mergeShardResults: ids and scores differ in length");
    for (std::size_t i = 0; i < l.ids.size(); ++i) all.emplace_back(l.scores[i], l.ids[i]);
    ids.insert(ids.end(), l.ids.begin(), l.ids.end());
  }
  std::sort(ids.begin(), ids.end());
  const auto twice = std::adjacent_find(ids.begin(), ids.end());
  if (twice != ids.end()) {
    return invalid_argument("mergeShardResults: document " + std::to_string(*twice) +
                            " is in two shards' results (shards must hold disjoint documents)");
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
