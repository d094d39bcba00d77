// SPDX-License-Identifier: MIT
/// @file tokenizer.hpp
/// @brief Word-level tokenizer: Unicode-aware term scanning plus a growable term <-> id vocabulary.
///
/// A term is a maximal run of word characters, lower-cased, as UTF-8. Word characters are ASCII
/// letters and digits and every code point in the Unicode categories L* (letters: Latin with
/// accents, Greek, Cyrillic, CJK ideographs, ...), M* (combining marks, so decomposed accents
/// and Indic vowel signs stay inside their word) and Nd (decimal digits), per Unicode 14.
/// Everything else separates terms, including every byte that is not part of well-formed UTF-8
/// (stray continuation bytes, overlong forms, surrogates, code points above U+10FFFF): invalid
/// input is never an error and never crashes. Lower-casing uses the Unicode simple mapping for
/// all scripts (so ASCII, Latin-1, Latin Extended, Greek, Cyrillic, Armenian, Georgian...), with
/// U+0130 mapped to 'i' and final sigma folded to sigma. No stemming, no stop-words.
/// Scripts written without spaces between words are split per character: every CJK ideograph
/// and every hiragana character is a term of its own (no dictionary segmentation).
///
/// Out of memory: encode / encode_into undo the terms they added (and what they appended to
/// `out`) when an allocation fails; only memory_bytes() may count room reserved by the failed call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmds/status.hpp"

namespace llmds {

using TermId = int32_t;

/// Walks the terms of a UTF-8 text without allocating per term.
/// @code
/// TermScanner s(text);
/// while (s.next()) use(s.term());
/// @endcode
class TermScanner {
 public:
  explicit TermScanner(std::string_view text) noexcept
      : p_(reinterpret_cast<const unsigned char*>(text.data())), end_(p_ + text.size()) {}

  /// Moves to the next term; false once the text is exhausted.
  bool next();
  /// The current term (lower-cased UTF-8), valid until the next call to next().
  std::string_view term() const noexcept { return term_; }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
  std::string buffer_;  // used only when lower-casing changed the bytes
  std::string_view term_;
};

/// Counts the terms of `text` (what Tokenizer::encode would return, without a vocabulary).
std::size_t count_terms(std::string_view text) noexcept;

/// Vocabulary-backed tokenizer: ids are dense (0, 1, 2, ... in order of first appearance).
class Tokenizer {
 public:
  /// The vocabulary holds at most this many terms (ids are non-negative int32).
  static constexpr uint32_t kMaxTerms = 0x7fffffffu;

  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  /// Ids of the terms of `text`, adding unseen terms to the vocabulary.
  /// capacity_exceeded (vocabulary unchanged) if the new terms would not fit.
  Result<std::vector<TermId>> encode(std::string_view text);
  /// Same, appending to `out` (which is left as it was on failure).
  Status encode_into(std::string_view text, std::vector<TermId>& out);
  /// Terms of `ids` joined by single spaces; invalid_argument names the first unknown id.
  Result<std::string> decode(const TermId* ids, std::size_t n) const;
  /// Number of terms in `text`; never changes the vocabulary.
  std::size_t count_tokens(std::string_view text) const noexcept { return count_terms(text); }

  /// Id of an already normalized term (as decode() returns it), if known.
  std::optional<TermId> id_of(std::string_view term) const noexcept;
  /// The term of an id, or invalid_argument.
  Result<std::string_view> term(TermId id) const;
  uint32_t vocab_size() const noexcept;
  std::size_t memory_bytes() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmds
