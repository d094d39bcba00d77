// SPDX-License-Identifier: MIT
// Private to src/text: the character classes the tokenizer needs, from unicode_tables.cpp.
#pragma once

#include <cstdint>

namespace llmds {
namespace text {

/// True for ASCII letters and digits and for code points in Unicode categories L*, M* and Nd.
/// Marks count as word characters so that decomposed accents (e + U+0301) and scripts whose
/// vowel signs are combining marks (Devanagari, Thai, ...) do not split words.
bool is_word_code_point(uint32_t cp) noexcept;

/// Simple lower-case mapping (one code point to one), with final sigma folded to sigma so that
/// all-caps Greek matches lower-case Greek.
uint32_t to_lower(uint32_t cp) noexcept;

}  // namespace text
}  // namespace llmds
