// SPDX-License-Identifier: MIT
// HNSW::deserialize on arbitrary bytes, and on the same bytes resealed with a valid length and
// checksum so the payload parser itself is fuzzed: either an error or a usable index.
#include "fuzz_input.hpp"
#include "llmds/hnsw.hpp"
#include "llmds/serialize.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  for (const auto& bytes : {std::vector<uint8_t>(data, data + size), llmds_fuzz::reseal(data, size, llmds::crc32)}) {
    auto index = llmds::HNSW::deserialize(bytes.data(), bytes.size());
    if (!index) {
      const auto code = index.status().code();
      FUZZ_CHECK(code == llmds::Errc::corrupt_data || code == llmds::Errc::version_mismatch);
      continue;
    }
    // A parsed index must be safe to use.
    std::vector<float> query(index->dim(), 0.5f);
    auto hits = index->search(query.data(), query.size(), 5);
    (void)hits;
    (void)index->serialize();
  }
  return 0;
}
