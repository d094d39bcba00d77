// SPDX-License-Identifier: MIT
// InvertedIndex::deserialize on arbitrary bytes, and on the same bytes resealed with a valid
// length and checksum so the payload parser itself is fuzzed. Either a corrupt_data /
// version_mismatch error, or an index that is fully usable: it serializes back to exactly the
// bytes it was read from (the format has one encoding per index), MaxScore search equals the
// exhaustive reference, and add / remove / serialize / deserialize keep working.
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "llmds/inverted_index.hpp"
#include "llmds/serialize.hpp"

using llmds::InvertedIndex;

namespace {

void check_search(const InvertedIndex& index, std::string_view query, uint32_t k) {
  auto fast = index.search(query, k);
  auto full = index.search_exhaustive(query, k);
  FUZZ_CHECK(fast.ok() && full.ok());
  FUZZ_CHECK(fast->ids == full->ids);
  FUZZ_CHECK(fast->scores == full->scores);  // bit-identical, not merely close
  FUZZ_CHECK(fast->ids.size() <= k && fast->ids.size() <= index.size());
  for (std::size_t i = 0; i < fast->ids.size(); ++i) {
    FUZZ_CHECK(index.has_document(fast->ids[i]));
    FUZZ_CHECK(fast->scores[i] > 0.0);
    if (i > 0) {
      FUZZ_CHECK(fast->scores[i - 1] > fast->scores[i] ||
                 (fast->scores[i - 1] == fast->scores[i] && fast->ids[i - 1] < fast->ids[i]));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size > (1u << 16)) return 0;
  for (const auto& bytes : {std::vector<uint8_t>(data, data + size), llmds_fuzz::reseal(data, size, llmds::crc32)}) {
    auto parsed = InvertedIndex::deserialize(bytes.data(), bytes.size());
    if (!parsed) {
      const auto code = parsed.status().code();
      FUZZ_CHECK(code == llmds::Errc::corrupt_data || code == llmds::Errc::version_mismatch);
      continue;
    }
    InvertedIndex& index = parsed.value();
    FUZZ_CHECK(index.serialize() == bytes);

    const auto st = index.stats();
    FUZZ_CHECK(st.documents == index.size());
    FUZZ_CHECK(st.dead_postings == 0);
    FUZZ_CHECK(st.postings >= st.terms);

    // The payload spells out every term of the index: as a query it reaches all of them.
    const std::string_view all(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const uint32_t k = 1 + (size > 0 ? data[0] % 8 : 0);
    check_search(index, all, k);
    check_search(index, all, 1000);
    check_search(index, all.substr(0, all.size() / 2), 3);

    // Usable as a live index: add (a new id and a replacement), remove, then persist again.
    FUZZ_CHECK(index.add_document(0xfffffff0u, "apple cherry apple").ok());
    const uint32_t some = index.size() > 1 ? (size > 1 ? data[1] : 0) : 0xfffffff0u;
    (void)index.add_document(some, all.substr(0, 64));
    (void)index.remove_document(size > 2 ? data[2] : 7);
    check_search(index, all, k);
    check_search(index, "apple cherry", 4);
    const auto again = index.serialize();
    auto reparsed = InvertedIndex::deserialize(again.data(), again.size());
    FUZZ_CHECK(reparsed.ok());
    FUZZ_CHECK(reparsed->size() == index.size());
    FUZZ_CHECK(reparsed->serialize() == again);
    check_search(*reparsed, all, k);
    // Same slots and terms in the same relative order: the very same results.
    auto a = index.search(all, 16), b = reparsed->search(all, 16);
    FUZZ_CHECK(a->ids == b->ids && a->scores == b->scores);
  }
  return 0;
}
