// SPDX-License-Identifier: MIT
// TermStats across the boundary, shared by the InvertedIndex, RetrievalPipeline and sharding
// bindings. Terms travel as one UTF-8 string, each term followed by a space (a term is letters,
// marks and digits, never a space), so a vocabulary is one copy each way instead of one JS
// string per term; document frequencies as a Float64Array (exact up to 2^53).
#pragma once

#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"
#include "llmds/sharding.hpp"

namespace llmds::wasm {

/// { documents, tokens, terms: Uint8Array (space-terminated UTF-8), df: Float64Array }.
inline emscripten::val term_stats_out(const TermStats& s) {
  std::string joined;
  std::size_t bytes = 0;
  for (const std::string& t : s.terms) bytes += t.size() + 1;
  joined.reserve(bytes);
  for (const std::string& t : s.terms) {
    joined += t;
    joined += ' ';
  }
  std::vector<double> df(s.df.begin(), s.df.end());
  emscripten::val o = emscripten::val::object();
  o.set("documents", static_cast<double>(s.documents));
  o.set("tokens", static_cast<double>(s.tokens));
  o.set("terms", copy_out(reinterpret_cast<const uint8_t*>(joined.data()), joined.size()));
  o.set("df", copy_out(df));
  return o;
}

/// Reads `count` space-terminated terms starting at `*at` of `text`, advancing `*at`; false
/// when the text ends first. The JS side validated counts, integers and the absence of spaces.
inline bool take_terms(std::string_view text, std::size_t* at, std::size_t count, std::vector<std::string>& out) {
  out.reserve(out.size() + count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t end = text.find(' ', *at);
    if (end == std::string_view::npos) return false;
    out.emplace_back(text.substr(*at, end - *at));
    *at = end + 1;
  }
  return true;
}

/// A TermStats from JS numbers (integers in [0, 2^53], checked in JS) and heap arrays.
inline bool term_stats_in(double documents, double tokens, std::string_view terms, std::size_t* at, const double* df,
                          std::size_t count, TermStats& out) {
  out.documents = static_cast<uint64_t>(documents);
  out.tokens = static_cast<uint64_t>(tokens);
  if (!take_terms(terms, at, count, out.terms)) return false;
  out.df.reserve(count);
  for (std::size_t i = 0; i < count; ++i) out.df.push_back(static_cast<uint64_t>(df[i]));
  return true;
}

/// termStats(text?) of an index or pipeline: all terms, or with `of_text` only the text's.
template <class Index>
emscripten::val term_stats_of(const Index& index, uintptr_t text, uint32_t n, bool of_text) {
  return term_stats_out(of_text ? index.term_stats(text_at(text, n)) : index.term_stats());
}

/// setGlobalStats of an index or pipeline; `clear`: back to its own statistics (the other
/// arguments are ignored). 0, or kFailed with the status recorded.
template <class Index>
int32_t set_global_stats_on(Index& index, double documents, double tokens, uintptr_t terms, uint32_t terms_bytes,
                            uintptr_t df, uint32_t count, bool clear) {
  if (clear) {
    index.clear_global_stats();
    return 0;
  }
  TermStats g;
  std::size_t at = 0;
  if (!term_stats_in(documents, tokens, text_at(terms, terms_bytes), &at, heap_ptr<double>(df), count, g)) {
    return report(invalid_argument("setGlobalStats: terms and df disagree"));
  }
  return report(index.set_global_stats(g));
}

}  // namespace llmds::wasm
