// SPDX-License-Identifier: MIT
// RetrievalPipeline::deserialize on arbitrary and resealed bytes: an error or a usable pipeline.
#include <string>

#include "fuzz_input.hpp"
#include "llmds/retrieval_pipeline.hpp"
#include "llmds/serialize.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  for (const auto& bytes : {std::vector<uint8_t>(data, data + size), llmds_fuzz::reseal(data, size, llmds::crc32)}) {
    auto p = llmds::RetrievalPipeline::deserialize(bytes.data(), bytes.size());
    if (!p) {
      const auto code = p.status().code();
      FUZZ_CHECK(code == llmds::Errc::corrupt_data || code == llmds::Errc::version_mismatch);
      continue;
    }
    std::vector<float> q(p->options().embedding_dim, 0.25f);
    llmds::PipelineQuery query;
    query.text = "apple cherry";
    query.embedding = q.data();
    query.embedding_len = q.size();
    (void)p->search(query);
    // Metadata read from the bytes, filtered searches on it, and a round trip.
    const llmds::Where where = {{"lang", llmds::WhereOp::eq, {llmds::MetadataValue::text("en")}},
                                {"year", llmds::WhereOp::gte, {llmds::MetadataValue::num(2020)}}};
    query.where = &where;
    auto filtered = p->search(query);
    FUZZ_CHECK(filtered.ok());
    for (uint32_t id : filtered->ids) {
      const llmds::Metadata* m = p->metadata(id);
      FUZZ_CHECK(m != nullptr);
    }
    auto even = [](uint32_t id) { return id % 2 == 0; };
    query.filter = llmds::IdFilter::of(even);
    auto both = p->search(query);
    FUZZ_CHECK(both.ok());
    for (uint32_t id : both->ids) FUZZ_CHECK(even(id));
    const llmds::Metadata meta = {{"lang", llmds::MetadataValue::text("en")}, {"year", llmds::MetadataValue::num(2021)}};
    (void)p->add_document(1, "new text", q.data(), q.size(), &meta);
    const auto out = p->serialize();
    auto again = llmds::RetrievalPipeline::deserialize(out.data(), out.size());
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->serialize() == out);
  }
  return 0;
}
