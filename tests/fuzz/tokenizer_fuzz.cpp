// SPDX-License-Identifier: MIT
// Tokenizer on arbitrary bytes (mostly invalid UTF-8): encode / decode / count_terms never
// crash and agree with each other and with an independent reference scanner written from
// RFC 3629's table of well-formed byte sequences:
// - the terms, in order, exactly partition the lower-cased maximal runs of word code points
//   that the reference finds (every invalid byte and non-word code point separates; a run may
//   be cut further, e.g. between ideographs, but no term spans a separator or drops a byte);
// - count_terms(text) == encode(text).size(), and counting never changes the vocabulary;
// - every term is non-empty, well-formed UTF-8 and already normalised (scanning it yields
//   exactly itself, so an InvertedIndex holding it can be serialized and loaded again);
// - ids are dense, in order of first appearance; id_of(term(id)) == id;
// - decode(encode(text)) re-encodes to the same ids without growing the vocabulary;
// - unknown ids make decode fail with invalid_argument.
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "llmds/tokenizer.hpp"
#include "text/unicode.hpp"

using namespace llmds;

namespace {

/// Length of the well-formed UTF-8 sequence at s[i] (Unicode table 3-7), or 0 if none starts there.
std::size_t well_formed(std::string_view s, std::size_t i, uint32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const std::size_t avail = s.size() - i;
  const unsigned char c = b(0);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  auto in = [](unsigned char x, unsigned char lo, unsigned char hi) { return x >= lo && x <= hi; };
  if (in(c, 0xC2, 0xDF)) {
    if (avail < 2 || !in(b(1), 0x80, 0xBF)) return 0;
    cp = (c & 0x1Fu) << 6 | (b(1) & 0x3Fu);
    return 2;
  }
  if (in(c, 0xE0, 0xEF)) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    if (avail < 3 || !in(b(1), lo, hi) || !in(b(2), 0x80, 0xBF)) return 0;
    cp = (c & 0x0Fu) << 12 | (b(1) & 0x3Fu) << 6 | (b(2) & 0x3Fu);
    return 3;
  }
  if (in(c, 0xF0, 0xF4)) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    if (avail < 4 || !in(b(1), lo, hi) || !in(b(2), 0x80, 0xBF) || !in(b(3), 0x80, 0xBF)) return 0;
    cp = (c & 0x07u) << 18 | (b(1) & 0x3Fu) << 12 | (b(2) & 0x3Fu) << 6 | (b(3) & 0x3Fu);
    return 4;
  }
  return 0;
}

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | cp >> 6);
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | cp >> 12);
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | cp >> 18);
    out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_word(uint32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  return text::is_word_code_point(cp);
}

/// The maximal runs of word code points of `s`, lower-cased; anything else separates.
std::vector<std::string> reference_runs(std::string_view s) {
  std::vector<std::string> terms;
  std::string cur;
  bool in_term = false;
  for (std::size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const std::size_t n = well_formed(s, i, cp);
    if (n != 0 && is_word(cp)) {
      put_utf8(cur, text::to_lower(cp));
      in_term = true;
      i += n;
      continue;
    }
    if (in_term) terms.push_back(std::move(cur));
    cur.clear();
    in_term = false;
    i += n != 0 ? n : 1;
  }
  if (in_term) terms.push_back(std::move(cur));
  return terms;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    uint32_t cp;
    const std::size_t n = well_formed(s, i, cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

/// Whether `terms` cut each of `runs` into consecutive pieces, in order, with nothing left over.
bool partitions(const std::vector<std::string>& terms, const std::vector<std::string>& runs) {
  std::size_t t = 0;
  for (const std::string& run : runs) {
    std::size_t at = 0;
    while (at < run.size()) {
      if (t == terms.size() || terms[t].empty() || run.compare(at, terms[t].size(), terms[t]) != 0) return false;
      at += terms[t++].size();
    }
  }
  return t == terms.size();
}

void check_text(Tokenizer& tok, std::string_view text) {
  const uint32_t vocab_before = tok.vocab_size();
  const std::size_t counted = count_terms(text);
  FUZZ_CHECK(tok.count_tokens(text) == counted);
  FUZZ_CHECK(tok.vocab_size() == vocab_before);

  auto ids = tok.encode(text);
  FUZZ_CHECK(ids.ok());
  FUZZ_CHECK(ids->size() == counted);
  std::vector<std::string> terms;
  uint32_t next_new = vocab_before;
  for (std::size_t i = 0; i < ids->size(); ++i) {
    const TermId id = (*ids)[i];
    FUZZ_CHECK(id >= 0 && static_cast<uint32_t>(id) < tok.vocab_size());
    if (static_cast<uint32_t>(id) >= vocab_before) {
      FUZZ_CHECK(static_cast<uint32_t>(id) <= next_new);  // dense, in order of first appearance
      if (static_cast<uint32_t>(id) == next_new) ++next_new;
    }
    auto term = tok.term(id);
    FUZZ_CHECK(term.ok());
    terms.emplace_back(*term);
    FUZZ_CHECK(!term->empty());
    FUZZ_CHECK(valid_utf8(*term));
    FUZZ_CHECK(tok.id_of(*term) == id);
    // Normalised: the term scans as exactly one term, itself.
    TermScanner s(*term);
    FUZZ_CHECK(s.next() && s.term() == *term && !s.next());
  }
  FUZZ_CHECK(tok.vocab_size() == next_new);
  FUZZ_CHECK(partitions(terms, reference_runs(text)));

  auto decoded = tok.decode(ids->data(), ids->size());
  FUZZ_CHECK(decoded.ok());
  FUZZ_CHECK(valid_utf8(*decoded));
  const uint32_t vocab_after = tok.vocab_size();
  auto again = tok.encode(*decoded);
  FUZZ_CHECK(again.ok() && *again == *ids);
  FUZZ_CHECK(tok.vocab_size() == vocab_after);
  FUZZ_CHECK(count_terms(*decoded) == ids->size());

  // Unknown ids are an error that names them, and change nothing.
  const TermId bad[] = {static_cast<TermId>(vocab_after), -1};
  for (TermId b : bad) {
    std::vector<TermId> with_bad(*ids);
    with_bad.insert(with_bad.begin() + static_cast<std::ptrdiff_t>(with_bad.size() / 2), b);
    auto r = tok.decode(with_bad.data(), with_bad.size());
    FUZZ_CHECK(!r.ok() && r.status().code() == Errc::invalid_argument);
  }
  FUZZ_CHECK(tok.vocab_size() == vocab_after);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  Tokenizer tok;
  // The whole input, then its halves against the grown vocabulary (old and new terms mixed).
  check_text(tok, all.substr(size / 2));
  check_text(tok, all);
  check_text(tok, all.substr(0, size / 3));
  return 0;
}
