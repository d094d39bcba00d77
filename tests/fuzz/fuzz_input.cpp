// SPDX-License-Identifier: MIT
#include "fuzz_input.hpp"

namespace llmds_fuzz {

std::vector<uint8_t> reseal(const uint8_t* data, std::size_t size, uint32_t (*crc)(const uint8_t*, std::size_t, uint32_t)) {
  std::vector<uint8_t> out(data, data + size);
  constexpr std::size_t kHeader = 20, kTrailer = 4;
  if (out.size() < kHeader + kTrailer) return out;
  const uint64_t len = out.size() - kHeader - kTrailer;
  for (int i = 0; i < 8; ++i) out[12 + i] = static_cast<uint8_t>(len >> (8 * i));
  const uint32_t c = crc(out.data(), out.size() - kTrailer, 0);
  for (int i = 0; i < 4; ++i) out[out.size() - kTrailer + i] = static_cast<uint8_t>(c >> (8 * i));
  return out;
}

}  // namespace llmds_fuzz
