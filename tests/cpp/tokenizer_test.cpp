// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "llmds/tokenizer.hpp"

using llmds::Errc;
using llmds::TermScanner;
using llmds::Tokenizer;

namespace {

std::vector<std::string> terms(std::string_view text) {
  std::vector<std::string> out;
  TermScanner s(text);
  while (s.next()) out.emplace_back(s.term());
  return out;
}

using V = std::vector<std::string>;

/// Strict UTF-8 validity (the scanner must only ever emit well-formed UTF-8).
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    const auto c1 = static_cast<unsigned char>(n > 1 ? s[i + 1] : 0);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) {
      return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

TEST_CASE("tokenizer: ASCII words, digits and punctuation", "[tokenizer]") {
  CHECK(terms("Hello, World! 42 foo_bar x-y") == V{"hello", "world", "42", "foo", "bar", "x", "y"});
  CHECK(terms("abc123 4.5 3rd") == V{"abc123", "4", "5", "3rd"});
  CHECK(terms("  don't STOP\tthe\nMUSIC ") == V{"don", "t", "stop", "the", "music"});
  CHECK(terms("the a of and") == V{"the", "a", "of", "and"});  // no stop-words
  CHECK(terms("running runs ran") == V{"running", "runs", "ran"});  // no stemming
  CHECK(terms("").empty());
  CHECK(terms("!!! ... --- ,,, ???").empty());
  CHECK(terms("x") == V{"x"});
}

TEST_CASE("tokenizer: accented Latin, Greek, Cyrillic, CJK and other scripts", "[tokenizer]") {
  CHECK(terms(u8"Café ÉCOLE Straße Ŝtelo ÆØÅ") == V{u8"café", u8"école", u8"straße", u8"ŝtelo", u8"æøå"});
  CHECK(terms(u8"ŁÓDŹ Čeština ĞÜŞ") == V{u8"łódź", u8"čeština", u8"ğüş"});
  CHECK(terms(u8"İstanbul") == V{u8"istanbul"});
  CHECK(terms(u8"Привет, МИР! Ёжик") == V{u8"привет", u8"мир", u8"ёжик"});
  // Final sigma is folded, so all-caps and lower-case Greek meet.
  CHECK(terms(u8"ΟΔΟΣ οδός Αθήνα") == V{u8"οδοσ", u8"οδόσ", u8"αθήνα"});
  // Every ideograph and hiragana character is its own term (text without spaces stays
  // searchable word by word); katakana runs stay whole; CJK punctuation separates.
  CHECK(terms(u8"中文 测试。日本語、かな カタカナ") ==
        V{u8"中", u8"文", u8"测", u8"试", u8"日", u8"本", u8"語", u8"か", u8"な", u8"カタカナ"});
  CHECK(terms(u8"abc漢字def") == V{"abc", u8"漢", u8"字", "def"});
  CHECK(terms(u8"か\u3099") == V{u8"か\u3099"});  // a combining voicing mark stays with its kana
  CHECK(terms(u8"한국어 텍스트") == V{u8"한국어", u8"텍스트"});
  // Combining marks stay inside words: decomposed accents and Devanagari vowel signs.
  CHECK(terms("cafe\xCC\x81 ok") == V{"cafe\xCC\x81", "ok"});
  CHECK(terms(u8"हिन्दी भाषा") == V{u8"हिन्दी", u8"भाषा"});
  CHECK(terms(u8"مرحبا بالعالم") == V{u8"مرحبا", u8"بالعالم"});
  // Non-ASCII digits count; symbols, emoji and superscripts separate.
  CHECK(terms(u8"٣٤٥ x²y €5 a😀b") == V{u8"٣٤٥", "x", "y", "5", "a", "b"});
  // Non-breaking and ideographic spaces separate.
  CHECK(terms(u8"a\u00A0b\u3000c") == V{"a", "b", "c"});
}

TEST_CASE("tokenizer: invalid UTF-8 bytes are separators", "[tokenizer]") {
  CHECK(terms("ab\xFF" "cd") == V{"ab", "cd"});
  CHECK(terms("ab\xC3") == V{"ab"});                          // truncated 2-byte sequence
  CHECK(terms("ab\xC3" "cd") == V{"ab", "cd"});               // lead byte without continuation
  CHECK(terms("a\xC0\xAF" "b") == V{"a", "b"});               // overlong '/'
  CHECK(terms("a\xE0\x80\xAF" "b") == V{"a", "b"});           // overlong 3-byte
  CHECK(terms("a\xED\xA0\x80" "b") == V{"a", "b"});           // UTF-16 surrogate
  CHECK(terms("a\xF4\x90\x80\x80" "b") == V{"a", "b"});       // above U+10FFFF
  CHECK(terms("a\x80\xBF" "b") == V{"a", "b"});               // stray continuation bytes
  CHECK(terms("\xE4\xB8") == V{});                            // truncated CJK
  CHECK(terms(std::string("a\0b", 3)) == V{"a", "b"});       // NUL is a separator
}

TEST_CASE("tokenizer: random bytes never crash and always give normalised UTF-8 terms", "[tokenizer]") {
  std::mt19937 rng(1234);
  for (int round = 0; round < 3000; ++round) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) {
      // Bias towards bytes that start or continue multi-byte sequences.
      const uint32_t r = rng();
      c = static_cast<char>((r & 3) == 0 ? 0x80 + (r >> 8) % 0x80 : (r >> 8) & 0xFF);
    }
    TermScanner scanner(s);
    std::size_t count = 0;
    while (scanner.next()) {
      ++count;
      const std::string t(scanner.term());
      REQUIRE(!t.empty());
      REQUIRE(valid_utf8(t));
      // Normalisation is idempotent: a term scans back to exactly itself.
      REQUIRE(terms(t) == V{t});
    }
    REQUIRE(count == llmds::count_terms(s));
  }
}

TEST_CASE("tokenizer: encode, decode and the growable vocabulary", "[tokenizer]") {
  Tokenizer tok;
  CHECK(tok.vocab_size() == 0);
  auto ids = tok.encode("The cat sat on the MAT");
  REQUIRE(ids.ok());
  CHECK(*ids == std::vector<int32_t>{0, 1, 2, 3, 0, 4});
  CHECK(tok.vocab_size() == 5);
  auto text = tok.decode(ids->data(), ids->size());
  REQUIRE(text.ok());
  CHECK(*text == "the cat sat on the mat");

  auto more = tok.encode(u8"a new cat, ÇA!");
  REQUIRE(more.ok());
  CHECK(*more == std::vector<int32_t>{5, 6, 1, 7});
  CHECK(tok.vocab_size() == 8);
  CHECK(*tok.decode(more->data(), more->size()) == u8"a new cat ça");

  CHECK(tok.encode("")->empty());
  CHECK(tok.decode(nullptr, 0).value().empty());
  CHECK(tok.id_of("cat") == 1);
  CHECK(!tok.id_of("Cat").has_value());
  CHECK(tok.term(4).value() == "mat");

  const int32_t unknown[] = {0, 8};
  auto bad = tok.decode(unknown, 2);
  REQUIRE(!bad.ok());
  CHECK(bad.status().code() == Errc::invalid_argument);
  CHECK(bad.status().message().find("ids[1] = 8") != std::string::npos);
  const int32_t negative[] = {-1};
  CHECK(tok.decode(negative, 1).status().code() == Errc::invalid_argument);
  CHECK(tok.term(-3).status().code() == Errc::invalid_argument);

  // count_tokens never grows the vocabulary.
  CHECK(tok.count_tokens("brand new words here, the cat") == 6);
  CHECK(tok.vocab_size() == 8);

  // encode_into appends.
  std::vector<int32_t> out = {99};
  REQUIRE(tok.encode_into("cat", out).ok());
  CHECK(out == std::vector<int32_t>{99, 1});

  Tokenizer moved = std::move(tok);
  CHECK(moved.vocab_size() == 8);
}

TEST_CASE("tokenizer: a large vocabulary keeps dense, stable ids", "[tokenizer]") {
  Tokenizer tok;
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "w" + std::to_string(i) + " ";
  auto ids = tok.encode(text);
  REQUIRE(ids.ok());
  REQUIRE(ids->size() == 20000);
  for (int i = 0; i < 20000; ++i) REQUIRE((*ids)[i] == i);
  auto again = tok.encode(text);
  CHECK(*again == *ids);
  CHECK(tok.vocab_size() == 20000);
  CHECK(tok.memory_bytes() > 20000 * 4);
}
