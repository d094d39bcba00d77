// SPDX-License-Identifier: MIT
#include "llmds/tokenizer.hpp"

#include <string>

#include "text/term_dictionary.hpp"
#include "text/unicode.hpp"

namespace llmds {
namespace {

// ASCII byte -> its lower-cased form if it is a letter or digit, else 0 (a separator).
struct AsciiTable {
  unsigned char lower[128] = {};
  constexpr AsciiTable() {
    for (int c = '0'; c <= '9'; ++c) lower[c] = static_cast<unsigned char>(c);
    for (int c = 'a'; c <= 'z'; ++c) lower[c] = static_cast<unsigned char>(c);
    for (int c = 'A'; c <= 'Z'; ++c) lower[c] = static_cast<unsigned char>(c + 32);
  }
};
constexpr AsciiTable kAscii;

constexpr uint32_t kInvalid = UINT32_MAX;

/// Decodes one non-ASCII code point at p (p < end, *p >= 0x80) per RFC 3629: rejects stray
/// continuation bytes, overlong forms, surrogates and values above U+10FFFF. Sets `len` to the
/// bytes consumed: the whole sequence, or 1 for an invalid lead so scanning resynchronises on
/// the next byte.
inline uint32_t decode_utf8(const unsigned char* p, const unsigned char* end, int& len) noexcept {
  const unsigned char c = p[0];
  const std::ptrdiff_t avail = end - p;
  len = 1;
  auto cont = [&](int i) { return i < avail && (p[i] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) {
    if (!cont(1)) return kInvalid;
    len = 2;
    return (uint32_t(c & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return kInvalid;
    if (c == 0xE0 && p[1] < 0xA0) return kInvalid;  // overlong
    if (c == 0xED && p[1] > 0x9F) return kInvalid;  // UTF-16 surrogates
    len = 3;
    return (uint32_t(c & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return kInvalid;
    if (c == 0xF0 && p[1] < 0x90) return kInvalid;  // overlong
    if (c == 0xF4 && p[1] > 0x8F) return kInvalid;  // above U+10FFFF
    len = 4;
    return (uint32_t(c & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) | (uint32_t(p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
  }
  return kInvalid;
}

inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Scripts written without spaces between words: every ideograph and hiragana character is a
/// term of its own (as Unicode word segmentation, UAX #29, and Lucene's StandardTokenizer do),
/// so a Chinese or Japanese sentence is not one giant, unsearchable term.
bool is_single_character_term(uint32_t cp) noexcept {
  return (cp >= 0x3040 && cp <= 0x309F) ||    // Hiragana
         (cp >= 0x3400 && cp <= 0x4DBF) ||    // CJK Extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||    // CJK Unified Ideographs
         (cp >= 0xF900 && cp <= 0xFAFF) ||    // CJK Compatibility Ideographs
         (cp >= 0x20000 && cp <= 0x3134F);    // CJK Extensions B-G and compatibility supplement
}

/// Combining kana voicing marks stay with the character before them.
bool is_kana_mark(uint32_t cp) noexcept { return cp == 0x3099 || cp == 0x309A; }

}  // namespace

bool TermScanner::next() {
  const unsigned char* p = p_;
  // Skip separators.
  for (;;) {
    if (p == end_) {
      p_ = p;
      term_ = {};
      return false;
    }
    if (*p < 0x80) {
      if (kAscii.lower[*p] != 0) break;
      ++p;
      continue;
    }
    int len;
    const uint32_t cp = decode_utf8(p, end_, len);
    if (cp != kInvalid && text::is_word_code_point(cp)) break;
    p += len;
  }
  // The term is a view of the input until lower-casing changes a byte; only then is it copied.
  const unsigned char* start = p;
  if (*p >= 0x80) {
    int len;
    if (is_single_character_term(decode_utf8(p, end_, len))) {
      p += len;
      int mark_len;
      while (p != end_ && *p >= 0x80 && is_kana_mark(decode_utf8(p, end_, mark_len))) p += mark_len;
      p_ = p;
      term_ = std::string_view(reinterpret_cast<const char*>(start), static_cast<std::size_t>(p - start));
      return true;
    }
  }
  bool copying = false;
  while (p != end_) {
    const unsigned char c = *p;
    if (c < 0x80) {
      const unsigned char lc = kAscii.lower[c];
      if (lc == 0) break;
      if (lc != c && !copying) {
        buffer_.assign(reinterpret_cast<const char*>(start), static_cast<std::size_t>(p - start));
        copying = true;
      }
      if (copying) buffer_.push_back(static_cast<char>(lc));
      ++p;
      continue;
    }
    int len;
    const uint32_t cp = decode_utf8(p, end_, len);
    if (cp == kInvalid || !text::is_word_code_point(cp) || is_single_character_term(cp)) break;
    const uint32_t lower = text::to_lower(cp);
    if (lower != cp && !copying) {
      buffer_.assign(reinterpret_cast<const char*>(start), static_cast<std::size_t>(p - start));
      copying = true;
    }
    if (copying) {
      if (lower != cp) {
        append_utf8(buffer_, lower);
      } else {
        buffer_.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
      }
    }
    p += len;
  }
  p_ = p;
  term_ = copying ? std::string_view(buffer_)
                  : std::string_view(reinterpret_cast<const char*>(start), static_cast<std::size_t>(p - start));
  return true;
}

std::size_t count_terms(std::string_view text) noexcept {
  // Counting needs no lower-casing; a scanner still does it, but this is not a hot path and one
  // definition of a term is worth more than the saved work.
  TermScanner s(text);
  std::size_t n = 0;
  while (s.next()) ++n;
  return n;
}

struct Tokenizer::Impl {
  text::TermDictionary dict;
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Status Tokenizer::encode_into(std::string_view text, std::vector<TermId>& out) {
  text::TermDictionary& dict = impl_->dict;
  // A text of n bytes holds at most n terms of at most 1.5 n bytes after lower-casing (the
  // largest growth of one code point is 2 -> 3 bytes). Checking that bound up front keeps a
  // failed call free of side effects without a second pass.
  if (!dict.can_insert(text.size(), text.size() + text.size() / 2 + 1)) {
    return capacity_exceeded("encode: the vocabulary (" + std::to_string(dict.size()) +
                             " terms) cannot take the new terms of a " + std::to_string(text.size()) +
                             "-byte text");
  }
  // Out of memory: undo the new terms and the ids appended so far, then let bad_alloc go on.
  const text::TermDictionary::Mark mark = dict.mark();
  const std::size_t out_size = out.size();
  try {
    TermScanner s(text);
    while (s.next()) out.push_back(static_cast<TermId>(dict.find_or_insert(s.term())));
  } catch (...) {
    dict.rollback(mark);
    out.resize(out_size);
    throw;
  }
  return Status::success();
}

Result<std::vector<TermId>> Tokenizer::encode(std::string_view text) {
  std::vector<TermId> ids;
  Status st = encode_into(text, ids);
  if (!st.ok()) return st;
  return ids;
}

Result<std::string> Tokenizer::decode(const TermId* ids, std::size_t n) const {
  const text::TermDictionary& dict = impl_->dict;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || static_cast<uint32_t>(ids[i]) >= dict.size()) {
      return invalid_argument("decode: ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                              " is not a known token id (the vocabulary has " + std::to_string(dict.size()) +
                              " terms)");
    }
    bytes += dict.term(static_cast<uint32_t>(ids[i])).size() + 1;
  }
  std::string out;
  out.reserve(bytes);
  for (std::size_t i = 0; i < n; ++i) {
    if (i != 0) out.push_back(' ');
    out.append(dict.term(static_cast<uint32_t>(ids[i])));
  }
  return out;
}

std::optional<TermId> Tokenizer::id_of(std::string_view term) const noexcept {
  const uint32_t id = impl_->dict.find(term);
  if (id == text::TermDictionary::kNone) return std::nullopt;
  return static_cast<TermId>(id);
}

Result<std::string_view> Tokenizer::term(TermId id) const {
  if (id < 0 || static_cast<uint32_t>(id) >= impl_->dict.size()) {
    return invalid_argument("id must be a known token id in [0, " + std::to_string(impl_->dict.size()) + "), got " +
                            std::to_string(id));
  }
  return impl_->dict.term(static_cast<uint32_t>(id));
}

uint32_t Tokenizer::vocab_size() const noexcept { return impl_->dict.size(); }

std::size_t Tokenizer::memory_bytes() const noexcept { return sizeof(Impl) + impl_->dict.memory_bytes(); }

}  // namespace llmds
