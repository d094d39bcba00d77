// SPDX-License-Identifier: MIT
// Operation-sequence fuzzer for KVCache, checked against a reference model after every step:
// tokens of every sequence, page accounting, and failed calls leaving everything unchanged.
#include <map>

#include "fuzz_input.hpp"
#include "llmds/kv_cache.hpp"

using namespace llmds;

namespace {

struct Observed {
  std::map<SeqId, std::vector<TokenId>> tokens;
  std::map<SeqId, std::vector<PageId>> tables;
  uint32_t used = 0, cached = 0, shared = 0;
  bool operator==(const Observed& o) const {
    return tokens == o.tokens && tables == o.tables && used == o.used && cached == o.cached && shared == o.shared;
  }
};

constexpr SeqId kSeqs = 6;

Observed observe(const KVCache& c) {
  Observed o;
  for (SeqId s = 0; s < kSeqs; ++s) {
    if (!c.has(s)) continue;
    o.tokens[s] = c.get(s).value();
    o.tables[s] = c.block_table(s).value();
  }
  const auto st = c.stats();
  o.used = st.used_pages;
  o.cached = st.cached_pages;
  o.shared = st.shared_pages;
  return o;
}

std::vector<TokenId> tokens_from(llmds_fuzz::Input& in, uint32_t max_len) {
  std::vector<TokenId> t(in.below(max_len + 1));
  for (auto& x : t) x = static_cast<TokenId>(in.below(4)) - (in.below(64) == 0 ? 5 : 0);  // rare negatives
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  llmds_fuzz::Input in(data, size);
  const uint32_t page_size = 1 + in.below(6);
  const uint32_t max_pages = 1 + in.below(40);
  auto created = KVCache::create({page_size, max_pages, in.below(4) != 0});
  FUZZ_CHECK(created.ok());
  KVCache cache = std::move(created.value());
  std::map<SeqId, std::vector<TokenId>> model;

  while (!in.empty()) {
    const Observed before = observe(cache);
    const SeqId seq = in.below(kSeqs);
    Status st;
    switch (in.below(6)) {
      case 0: {
        auto t = tokens_from(in, 24);
        if (in.below(2) == 0) {
          st = cache.attach(seq, t.data(), t.size());
        } else {
          const std::size_t n = in.below(static_cast<uint32_t>(t.size()) + 2);
          std::vector<TokenId> prefix(t.begin(), t.begin() + std::min(n, t.size()));
          if (n > t.size()) prefix.push_back(1);
          st = cache.attach(seq, t.data(), t.size(), prefix.data(), prefix.size());
        }
        if (st) model[seq] = t;
        break;
      }
      case 1: {
        auto t = tokens_from(in, 10);
        st = cache.append(seq, t.data(), t.size());
        if (st) model.at(seq).insert(model.at(seq).end(), t.begin(), t.end());
        FUZZ_CHECK(st.code() != Errc::not_found || model.count(seq) == 0);
        break;
      }
      case 2: {
        const SeqId dst = in.below(kSeqs);
        st = cache.fork(seq, dst);
        if (st) model[dst] = model.at(seq);
        break;
      }
      case 3:
        FUZZ_CHECK(cache.detach(seq) == (model.erase(seq) == 1));
        break;
      default: {
        auto t = tokens_from(in, 24);
        const std::size_t m = cache.match_prefix(t.data(), t.size());
        FUZZ_CHECK(m <= t.size());
        FUZZ_CHECK(observe(cache) == before);  // matchPrefix changes nothing
        break;
      }
    }
    if (!st) FUZZ_CHECK(observe(cache) == before);

    const Observed now = observe(cache);
    FUZZ_CHECK(now.tokens == model);
    std::map<PageId, uint32_t> refs;
    for (const auto& [s, table] : now.tables) {
      FUZZ_CHECK(table.size() == (model[s].size() + page_size - 1) / page_size);
      for (PageId p : table) ++refs[p];
    }
    FUZZ_CHECK(now.used == refs.size());
    uint32_t shared = 0;
    for (const auto& [p, n] : refs) {
      FUZZ_CHECK(cache.page_refcount(p) == n);
      shared += n > 1;
    }
    FUZZ_CHECK(now.shared == shared);
    FUZZ_CHECK(now.used + now.cached <= max_pages);
  }
  for (SeqId s = 0; s < kSeqs; ++s) cache.detach(s);
  FUZZ_CHECK(cache.stats().used_pages == 0);
  return 0;
}
