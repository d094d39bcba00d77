// SPDX-License-Identifier: MIT
#include "text/term_dictionary.hpp"

#include <cstring>

#include "text/hash.hpp"

namespace llmds {
namespace text {

uint64_t TermDictionary::hash(std::string_view term) noexcept {
  return hash_bytes(term.data(), term.size(), 0x6c6c6d6473ULL);
}

uint32_t TermDictionary::find(std::string_view term) const noexcept {
  if (slots_.empty()) return kNone;
  const uint64_t h = hash(term);
  const uint64_t tag = h >> 32;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = static_cast<std::size_t>(h) & mask;; i = (i + 1) & mask) {
    const uint64_t slot = slots_[i];
    if (slot == 0) return kNone;
    if ((slot >> 32) == tag) {
      const uint32_t id = static_cast<uint32_t>(slot) - 1;
      const std::string_view t = this->term(id);
      if (t.size() == term.size() && std::memcmp(t.data(), term.data(), t.size()) == 0) return id;
    }
  }
}

void TermDictionary::grow() {
  const std::size_t capacity = slots_.empty() ? 64 : slots_.size() * 2;
  std::vector<uint64_t> fresh(capacity, 0);
  const std::size_t mask = capacity - 1;
  const uint32_t n = size();
  for (uint32_t id = 0; id < n; ++id) {
    const uint64_t h = hash(term(id));
    std::size_t i = static_cast<std::size_t>(h) & mask;
    while (fresh[i] != 0) i = (i + 1) & mask;
    fresh[i] = ((h >> 32) << 32) | (static_cast<uint64_t>(id) + 1);
  }
  slots_.swap(fresh);
}

uint32_t TermDictionary::insert(std::string_view term) {
  // Load factor <= 1/2 keeps linear probing short.
  if ((static_cast<std::size_t>(size()) + 1) * 2 > slots_.size()) grow();
  const uint32_t id = size();
  chars_.insert(chars_.end(), term.begin(), term.end());
  offsets_.push_back(static_cast<uint32_t>(chars_.size()));
  const uint64_t h = hash(term);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = static_cast<std::size_t>(h) & mask;
  while (slots_[i] != 0) i = (i + 1) & mask;
  slots_[i] = ((h >> 32) << 32) | (static_cast<uint64_t>(id) + 1);
  return id;
}

void TermDictionary::rollback(Mark m) noexcept {
  if (offsets_.size() > std::size_t{m.terms} + 1) {
    // Terms inserted since the mark were placed after every older one, so no older term's
    // probe run passes through their slots: emptying them keeps every lookup working.
    for (uint64_t& slot : slots_) {
      if (slot != 0 && static_cast<uint32_t>(slot) - 1 >= m.terms) slot = 0;
    }
    offsets_.erase(offsets_.begin() + m.terms + 1, offsets_.end());
  }
  // insert() appends the characters before the offset: trim them even if the offset is missing.
  if (chars_.size() > m.chars) chars_.erase(chars_.begin() + static_cast<std::ptrdiff_t>(m.chars), chars_.end());
}

std::size_t TermDictionary::memory_bytes() const noexcept {
  return chars_.capacity() + offsets_.capacity() * sizeof(uint32_t) + slots_.capacity() * sizeof(uint64_t);
}

void TermDictionary::clear() {
  chars_.clear();
  offsets_.assign(1, 0);
  slots_.clear();
}

}  // namespace text
}  // namespace llmds
