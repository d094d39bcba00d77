// SPDX-License-Identifier: MIT
// Helpers shared by the libFuzzer targets: a cursor over the fuzz input, and a check that
// traps (so libFuzzer records the input) instead of returning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace llmds_fuzz {

/// Reads small integers off the input; past the end it yields zeros, so every input is valid.
class Input {
 public:
  Input(const uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{u8()} << (8 * i);
    return v;
  }
  uint32_t below(uint32_t n) { return n == 0 ? 0 : u8() % n; }

 private:
  const uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

/// Rewrites an llmds envelope's length and CRC-32 so a mutated payload passes the integrity
/// checks and the fuzzer reaches the payload parser.
std::vector<uint8_t> reseal(const uint8_t* data, std::size_t size, uint32_t (*crc)(const uint8_t*, std::size_t, uint32_t));

}  // namespace llmds_fuzz

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      __builtin_trap();                                                        \
    }                                                                          \
  } while (0)
