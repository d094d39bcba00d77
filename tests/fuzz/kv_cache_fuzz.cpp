// SPDX-License-Identifier: MIT
// Operation-sequence fuzzer for KVCache, checked against a reference model after every step:
// tokens of every sequence, page accounting, failed calls leaving everything unchanged, plans
// agreeing with the block tables, and KV events replaying into exactly the findable pages.
#include <map>

#include "fuzz_input.hpp"
#include "llmds/block_hash.hpp"
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
  KVCacheOptions options;
  options.page_size = page_size;
  options.max_pages = max_pages;
  options.enable_prefix_sharing = in.below(4) != 0;
  options.events = in.below(2) != 0;
  auto created = KVCache::create(options);
  FUZZ_CHECK(created.ok());
  KVCache cache = std::move(created.value());
  std::map<SeqId, std::vector<TokenId>> model;
  std::map<uint64_t, std::vector<TokenId>> mirror;  // replayed events: hash -> page tokens
  KVPlan plan;

  while (!in.empty()) {
    const Observed before = observe(cache);
    const std::vector<uint64_t> findable_before = cache.findable_hashes();
    const SeqId seq = in.below(kSeqs);
    Status st;
    bool planned = false;
    const uint32_t op = in.below(7);
    switch (op) {
      case 0: {
        auto t = tokens_from(in, 24);
        planned = in.below(2) == 0;
        if (in.below(2) == 0) {
          st = cache.attach(seq, t.data(), t.size(), -1, planned ? &plan : nullptr);
        } else {
          const std::size_t n = in.below(static_cast<uint32_t>(t.size()) + 2);
          std::vector<TokenId> prefix(t.begin(), t.begin() + std::min(n, t.size()));
          if (n > t.size()) prefix.push_back(1);
          st = cache.attach(seq, t.data(), t.size(), prefix.data(), prefix.size(), planned ? &plan : nullptr);
        }
        if (st) {
          model[seq] = t;
          if (planned) {
            FUZZ_CHECK(plan.compute_from == plan.cached_tokens && plan.cached_tokens % page_size == 0);
            FUZZ_CHECK(plan.copies.empty());
          }
        }
        break;
      }
      case 1: {
        auto t = tokens_from(in, 10);
        planned = true;
        const std::size_t old_len = model.count(seq) ? model[seq].size() : 0;
        st = cache.append(seq, t.data(), t.size(), &plan);
        if (st) {
          model.at(seq).insert(model.at(seq).end(), t.begin(), t.end());
          FUZZ_CHECK(plan.compute_from == old_len && plan.cached_tokens == old_len);
          FUZZ_CHECK(plan.copies.size() == 0 || plan.copies.size() == 2);
        }
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
      case 4:
        if (in.below(8) == 0) {
          cache.clear();
          model.clear();
          FUZZ_CHECK(cache.findable_hashes().empty());
        }
        break;
      default: {
        auto t = tokens_from(in, 24);
        const std::size_t m = cache.match_prefix(t.data(), t.size());
        FUZZ_CHECK(m <= t.size());
        FUZZ_CHECK(observe(cache) == before);  // matchPrefix changes nothing
        break;
      }
    }
    if (!st) {
      FUZZ_CHECK(observe(cache) == before);
      FUZZ_CHECK(cache.findable_hashes() == findable_before);
      if (planned) FUZZ_CHECK(plan.block_table.empty() && plan.new_pages.empty() && plan.cached_tokens == 0);
    } else if (planned) {
      const auto table = cache.block_table(seq).value();
      FUZZ_CHECK(plan.block_table == table);
      for (std::size_t i = 0; i < plan.new_pages.size(); ++i) {
        FUZZ_CHECK(plan.new_pages[i] == table[plan.compute_from / page_size + i]);
      }
    }
    // Events replay into exactly the findable pages (with the tokens they hash to).
    for (const KVEvent& e : cache.drain_events()) {
      if (e.type == KVEvent::Type::cleared) {
        mirror.clear();
      } else if (e.type == KVEvent::Type::removed) {
        for (uint64_t h : e.block_hashes) FUZZ_CHECK(mirror.erase(h) == 1);
      } else {
        FUZZ_CHECK(!e.has_parent || mirror.count(e.parent_hash) == 1);
        FUZZ_CHECK(e.tokens.size() == e.block_hashes.size() * page_size);
        uint64_t parent = e.parent_hash;
        for (std::size_t i = 0; i < e.block_hashes.size(); ++i) {
          const TokenId* t = e.tokens.data() + i * page_size;
          const uint64_t h = page_content_hash(t, page_size);
          FUZZ_CHECK(e.block_hashes[i] == (i == 0 && !e.has_parent ? h : chain_block_hash(parent, h)));
          FUZZ_CHECK(mirror.emplace(e.block_hashes[i], std::vector<TokenId>(t, t + page_size)).second);
          parent = e.block_hashes[i];
        }
      }
    }
    if (options.events) {
      std::vector<uint64_t> keys;
      for (const auto& kv : mirror) keys.push_back(kv.first);
      FUZZ_CHECK(keys == cache.findable_hashes());
    }

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
