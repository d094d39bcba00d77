// SPDX-License-Identifier: MIT
// KVRouter, two ways. An input that starts with the snapshot magic "LLMDSKVR" is deserialized
// as is and resealed (valid length and CRC, so the payload parser itself is fuzzed): either an
// error (corrupt_data / version_mismatch) or a router that routes and serializes back to the
// same bytes. Any other input drives a sequence of operations (workers, routes, loads, events;
// approximate or precise mode) and checks after every step: a failed call changes nothing
// (serialize() bytes), overlaps never exceed the prompt, the snapshot round-trips exactly.
#include <cstring>
#include <string>

#include "fuzz_input.hpp"
#include "llmds/block_hash.hpp"
#include "llmds/kv_router.hpp"
#include "llmds/serialize.hpp"

using namespace llmds;

namespace {

void check_router(KVRouter& r) {
  const auto bytes = r.serialize();
  auto back = KVRouter::deserialize(bytes.data(), bytes.size());
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(back->serialize() == bytes);
  FUZZ_CHECK(back->stats().indexed_blocks == r.stats().indexed_blocks);
  FUZZ_CHECK(back->stats().unique_blocks == r.stats().unique_blocks);
  FUZZ_CHECK(back->workers() == r.workers());
}

void fuzz_snapshot(const uint8_t* data, std::size_t size) {
  for (const auto& bytes : {std::vector<uint8_t>(data, data + size), llmds_fuzz::reseal(data, size, llmds::crc32)}) {
    auto r = KVRouter::deserialize(bytes.data(), bytes.size());
    if (!r) {
      const auto code = r.status().code();
      FUZZ_CHECK(code == Errc::corrupt_data || code == Errc::version_mismatch);
      continue;
    }
    FUZZ_CHECK(r->serialize() == bytes);
    const uint64_t h[3] = {1, 2, 3};
    auto d = r->route(h, 3, "x");
    FUZZ_CHECK(d.ok() == (r->stats().workers > 0));
    check_router(*r);
  }
}

void fuzz_ops(const uint8_t* data, std::size_t size) {
  llmds_fuzz::Input in(data, size);
  KVRouterOptions o;
  o.block_size = 1 + in.below(3);
  o.mode = in.below(2) ? KVRouterOptions::precise : KVRouterOptions::approximate;
  o.policy = static_cast<KVRouterOptions::Policy>(in.below(4));
  o.capacity_blocks = 1 + in.below(6);
  o.sglang_balance_abs = in.below(4);
  auto created = KVRouter::create(o);
  FUZZ_CHECK(created.ok());
  KVRouter r = std::move(created).value();
  const char* names[] = {"a", "b", "c", "d"};
  for (int step = 0; step < 64 && !in.empty(); ++step) {
    const std::string worker = names[in.below(4)];
    const auto before = r.serialize();
    Status st;
    switch (in.below(8)) {
      case 0: st = r.add_worker(worker, in.below(5)); break;
      case 1: st = r.remove_worker(worker); break;
      case 2: {  // route a prompt of hashes from a small alphabet (chains of small numbers)
        std::vector<uint64_t> h(in.below(8));
        for (auto& x : h) x = in.below(6);
        auto d = r.route(h.data(), h.size(), in.below(2) ? "rid" : "");
        if (d.ok()) {
          FUZZ_CHECK(d->overlap_blocks <= h.size());
          FUZZ_CHECK(d->candidates.size() == r.stats().workers);
          FUZZ_CHECK(d->candidates[0].worker == d->worker);
        } else {
          FUZZ_CHECK(r.stats().workers == 0);
          FUZZ_CHECK(r.serialize() == before);
        }
        break;
      }
      case 3: st = r.started(worker, std::string(1, static_cast<char>('0' + in.below(4))), in.below(40)); break;
      case 4: st = r.finished(std::string(1, static_cast<char>('0' + in.below(4)))); break;
      case 5: {  // stored: engine hashes from a small alphabet, tokens from a small alphabet
        const std::size_t n = in.below(4);
        std::vector<uint64_t> h(n);
        for (auto& x : h) x = in.below(8);
        const uint32_t bs = in.below(4) == 0 ? o.block_size + 1 : o.block_size;
        std::vector<int32_t> t(n * bs + (in.below(8) == 0 ? 1 : 0));
        for (auto& x : t) x = static_cast<int32_t>(in.below(3)) - (in.below(32) == 0 ? 5 : 0);
        const bool has_parent = in.below(2);
        st = r.apply_stored(worker, h.data(), n, has_parent, in.below(8), t.data(), t.size(), bs);
        break;
      }
      case 6: {
        std::vector<uint64_t> h(in.below(4));
        for (auto& x : h) x = in.below(8);
        st = r.apply_removed(worker, h.data(), h.size());
        break;
      }
      default: st = r.apply_cleared(worker); break;
    }
    if (!st.ok()) FUZZ_CHECK(r.serialize() == before);  // a failed call changes nothing
    check_router(r);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size >= 8 && std::memcmp(data, "LLMDSKVR", 8) == 0) {
    fuzz_snapshot(data, size);
  } else {
    fuzz_ops(data, size);
  }
  return 0;
}
