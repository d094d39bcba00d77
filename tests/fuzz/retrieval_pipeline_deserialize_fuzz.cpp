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
    (void)p->add_document(1, "new text", q.data(), q.size());
    (void)p->serialize();
  }
  return 0;
}
