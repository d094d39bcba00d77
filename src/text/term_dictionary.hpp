// SPDX-License-Identifier: MIT
// Private to src/text: the term <-> id map shared by Tokenizer and InvertedIndex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace llmds {
namespace text {

/// Terms live back to back in one character arena and an open-addressing table maps them to
/// dense ids 0..size()-1. Compared with unordered_map<std::string, id> it needs one allocation
/// per growth instead of one per term, looks terms up by string_view without building a
/// std::string, and keeps a 32-bit hash fragment in each slot so probes rarely touch the arena.
class TermDictionary {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  /// Ids are non-negative int32 values in the API, and offsets are 32-bit.
  static constexpr uint32_t kMaxTerms = 0x7fffffffu;
  static constexpr std::size_t kMaxChars = 0xffffffffu;

  uint32_t find(std::string_view term) const noexcept;
  /// Inserts a term that find() did not return; the caller checked can_insert().
  uint32_t insert(std::string_view term);
  uint32_t find_or_insert(std::string_view term) {
    const uint32_t id = find(term);
    return id != kNone ? id : insert(term);
  }
  /// Whether `terms` more terms of `chars` bytes in total still fit.
  bool can_insert(std::size_t terms, std::size_t chars) const noexcept {
    return terms <= kMaxTerms - size() && chars <= kMaxChars - chars_.size();
  }

  /// Out of memory: a batch of inserts (one text) is undone with rollback(mark()) when one of
  /// them throws. Capacities stay as grown.
  struct Mark {
    uint32_t terms;
    std::size_t chars;
  };
  Mark mark() const noexcept { return {size(), chars_.size()}; }
  /// Removes every term inserted since `m` (no allocation).
  void rollback(Mark m) noexcept;

  std::string_view term(uint32_t id) const noexcept {
    return {chars_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]};
  }
  uint32_t size() const noexcept { return static_cast<uint32_t>(offsets_.size() - 1); }
  std::size_t char_bytes() const noexcept { return chars_.size(); }
  std::size_t memory_bytes() const noexcept;
  void clear();

 private:
  static uint64_t hash(std::string_view term) noexcept;
  void grow();

  std::vector<char> chars_;
  std::vector<uint32_t> offsets_ = {0};  // term i is chars_[offsets_[i], offsets_[i + 1])
  std::vector<uint64_t> slots_;          // (hash >> 32) << 32 | (id + 1); 0 = empty
};

}  // namespace text
}  // namespace llmds
