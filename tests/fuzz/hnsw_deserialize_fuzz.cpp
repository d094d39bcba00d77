// SPDX-License-Identifier: MIT
// HNSW::deserialize on arbitrary bytes, and on the same bytes resealed with a valid length and
// checksum so the payload parser itself is fuzzed: either an error or a usable index, which
// compact() rebuilds without its tombstones. The seed corpus holds format 1 (no quantization)
// and format 2 snapshots (f16, i8 with rescoring, b1), so the code parsers are fuzzed too.
#include <algorithm>

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
    // Filtered: only allowed ids, and the exact scan finds min(k, allowed live) of them.
    auto odd = [](uint32_t id) { return id % 2 == 1; };
    uint32_t allowed = 0;
    for (uint32_t id : index->ids()) allowed += odd(id);
    for (auto plan : {llmds::FilterPlan::graph, llmds::FilterPlan::exact, llmds::FilterPlan::automatic}) {
      auto f = index->search(query.data(), query.size(), 5, 0, llmds::IdFilter::of(odd), plan);
      FUZZ_CHECK(f.ok());
      for (const auto& h : *f) FUZZ_CHECK(odd(h.id) && index->has(h.id));
      if (plan == llmds::FilterPlan::exact) FUZZ_CHECK(f->size() == std::min<uint32_t>(5, allowed));
    }
    const auto quantization = index->quantization();
    const auto rescore = index->rescore();
    const auto bytes_before = index->serialize();
    // compact() of whatever graph the bytes describe: same live ids, no tombstones, and a
    // result that serializes, restores and (without tombstones) compacts to itself.
    const auto before = index->stats();
    FUZZ_CHECK(index->compact().ok());
    const auto after = index->stats();
    FUZZ_CHECK(after.size == before.size && after.nodes == before.size && after.tombstones == 0);
    const auto compacted = index->serialize();
    auto back = llmds::HNSW::deserialize(compacted.data(), compacted.size());
    FUZZ_CHECK(back.ok());
    FUZZ_CHECK(back->quantization() == quantization && back->rescore() == rescore);
    FUZZ_CHECK(back->compact().ok());
    FUZZ_CHECK(back->serialize() == compacted);
    if (before.tombstones == 0) FUZZ_CHECK(compacted == bytes_before);
  }
  return 0;
}
