// SPDX-License-Identifier: MIT
/// @file kv_router.hpp
/// @brief KV-cache-aware routing of requests over a fleet of LLM servers (workers).
///
/// The router keeps an index of which worker holds which KV block. A block is named by its
/// chained block hash (block_hash.hpp: Dynamo's XXH3 chain), so one hash names a whole prefix.
/// A request's overlap with a worker is the number of leading blocks of its prompt that the
/// worker holds: the prompt's hashes are walked in order and a worker drops out at its first
/// missing block (a block held after a miss does not count: its prefix would be recomputed).
///
/// Index layout: an open-addressing table from block hash to a block record; a record holds the
/// hash and a bitset of the workers that hold it (ceil(slots / 64) words, so routing intersects
/// one word per block for fleets of up to 64 workers); each (block, worker) pair is one 20-byte
/// entry on that worker's LRU list and on the block's holder list. Storage grows in fixed chunks
/// (never a copy of the whole index). Measured: 45.3 bytes per indexed block per worker when no
/// two workers share a block (less when they do: the record is shared); see stats().bytes.
/// Limits: 2^26 − 2 distinct blocks, 2^32 − 16 (block, worker) pairs (capacity_exceeded).
/// Routing walks the prompt's hashes until no worker is left: one table probe (slots carry
/// the entry's distance from home and 2 hash bits, so a probe rarely reads a record in vain)
/// and one bitset AND per block.
///
/// Policies (KVRouterOptions::policy). Every candidate gets a score, lower is better; candidates
/// are ordered by (score, load, worker id) and the first one is chosen. load = the blocks of the
/// worker's in-flight requests (started() / finished(): ceil(prompt_tokens / block_size) each).
/// - cache_aware (NVIDIA Dynamo's KV router cost): score = overlap_weight × (prompt blocks −
///   overlap blocks) + load, i.e. the blocks still to prefill plus the blocks already decoding.
/// - sglang (SGLang router's cache-aware rule): the fleet is imbalanced when max load − min load
///   > sglang_balance_abs AND max load > sglang_balance_rel × min load; then score = load (the
///   least loaded worker). Otherwise, when the best match ratio (overlap blocks / prompt blocks,
///   0 for an empty prompt) is ≥ sglang_cache_threshold, score = 1 − match ratio (the best
///   match wins, ties by load then id); below the threshold score = load. (SGLang then picks the
///   worker with the smallest cache tree; llmds picks the least loaded.) SGLang counts load in
///   requests with abs 64 / rel 1.5; llmds counts blocks, hence abs 256 blocks (4096 tokens at
///   16-token blocks) by default.
/// - least_loaded: score = load.
/// - round_robin: the workers in id order, in turn; score = distance from the turn (0 = chosen).
///
/// Modes (KVRouterOptions::mode):
/// - approximate: route() with a non-empty request_id records the prompt's blocks as held by the
///   chosen worker (its first capacity_blocks blocks). Each worker keeps at most its
///   capacity_blocks blocks and evicts its least recently used ones. A recorded prompt is
///   touched leaf first, root last, so its head is more recent than its tail and eviction takes
///   a prompt's deepest blocks first: what remains of it stays a prefix. apply_* are rejected.
/// - precise: the index mirrors each worker's own KV events (apply_stored / apply_removed /
///   apply_cleared); route() records nothing and capacity_blocks is not enforced (the engine's
///   removed events are). The router re-hashes every stored block from its token ids and trusts
///   them, not the engine's hashes (as Dynamo does): an engine whose hashes differ (vLLM's) maps
///   onto the router's hashes through a per-worker map engine hash -> router hash, kept only for
///   the blocks whose two hashes differ (llmds KVCache events cost no map entry). Several engine
///   hashes may name one router block (e.g. the same tokens under two LoRA adapters); the block
///   stays held until all of them are removed.
///
/// Determinism: no unordered iteration reaches a result or the serialized bytes; no threads, no
/// clocks, no platform-specific code (the same results natively and in wasm).
///
/// Out of memory: every mutating operation allocates everything it may need first and then
/// commits without allocating, so a std::bad_alloc leaves the router exactly as it was
/// (contents, stats(), serialize() bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llmds/status.hpp"

namespace llmds {

struct KVRouterOptions {
  enum Policy : uint8_t { cache_aware = 0, sglang = 1, least_loaded = 2, round_robin = 3 };
  enum Mode : uint8_t { approximate = 0, precise = 1 };
  uint32_t block_size = 16;           ///< tokens per block (>= 1); precise mode: the engines' too
  Policy policy = cache_aware;
  double overlap_weight = 1.0;        ///< cache_aware: weight of the blocks to prefill (finite, >= 0)
  Mode mode = approximate;
  uint64_t capacity_blocks = 100000;  ///< approximate mode: default blocks kept per worker (>= 1)
  double sglang_cache_threshold = 0.5;  ///< sglang: route by cache at a match ratio >= this, [0, 1]
  double sglang_balance_abs = 256;      ///< sglang: imbalance needs max − min load > this (blocks, >= 0)
  double sglang_balance_rel = 1.5;      ///< ... and max load > this × min load (>= 1)
};

/// One worker as route() saw it.
struct RouteCandidate {
  std::string worker;
  uint32_t overlap_blocks = 0;  ///< leading prompt blocks this worker holds
  double load = 0;              ///< blocks of its in-flight requests
  double score = 0;             ///< the policy's score, lower is better (see the file comment)
};

struct RouteDecision {
  std::string worker;           ///< the chosen worker (== candidates[0].worker)
  uint32_t overlap_blocks = 0;  ///< the chosen worker's overlap
  uint32_t overlap_tokens = 0;  ///< overlap_blocks × block_size (route_text: × 128 bytes)
  std::vector<RouteCandidate> candidates;  ///< every worker, best first (a failover order)
  using Candidate = RouteCandidate;
};

struct KVRouterStats {
  uint32_t workers = 0;
  uint64_t indexed_blocks = 0;  ///< (block, worker) pairs held, summed over workers
  uint64_t unique_blocks = 0;   ///< distinct block hashes held by any worker
  uint64_t bytes = 0;           ///< memory of the router's own structures
  uint64_t routed = 0;          ///< successful route calls
  uint64_t hit_blocks = 0;      ///< overlap blocks of the chosen workers, summed over route calls
};

class KVRouter {
 public:
  /// invalid_argument for out-of-range options.
  static Result<KVRouter> create(const KVRouterOptions& options = {});
  KVRouter(KVRouter&&) noexcept;
  KVRouter& operator=(KVRouter&&) noexcept;
  ~KVRouter();

  /// A worker named `id` (non-empty, any bytes) keeping up to `capacity_blocks` blocks
  /// (0: options.capacity_blocks). duplicate_id if present; capacity_exceeded beyond
  /// kMaxWorkers workers; invalid_argument for an empty id.
  Status add_worker(std::string_view id, uint64_t capacity_blocks = 0);
  /// Drops the worker, its indexed blocks and its in-flight requests; not_found if unknown.
  Status remove_worker(std::string_view id);
  /// Worker ids, sorted (bytewise).
  std::vector<std::string> workers() const;
  bool has_worker(std::string_view id) const noexcept;

  /// Routes a prompt given as chained block hashes. not_found when there are no workers.
  /// Approximate mode with a non-empty request_id: records the prompt's blocks as held by the
  /// chosen worker. Does not change loads (call started() when the request is dispatched).
  Result<RouteDecision> route(const uint64_t* block_hashes, std::size_t n, std::string_view request_id = {});
  /// Routes token ids: hashes their full blocks with block_hashes(tokens, n, block_size) (a
  /// partial last block is not a block). invalid_argument for a negative token id. Hashes
  /// lazily: only the blocks the prefix walk reaches (all of them when the route is recorded).
  Result<RouteDecision> route_tokens(const int32_t* tokens, std::size_t n, std::string_view request_id = {});
  /// Routes raw text (gateways without a tokenizer): text_block_hashes(text), 128-byte chunks of
  /// its UTF-8 bytes; overlap_tokens counts bytes.
  Result<RouteDecision> route_text(std::string_view text, std::string_view request_id = {});

  /// Request `request_id` (non-empty) runs on `worker` with a prompt of `prompt_tokens` tokens:
  /// adds ceil(prompt_tokens / block_size) blocks to the worker's load. not_found for an unknown
  /// worker, duplicate_id for a request id already in flight.
  Status started(std::string_view worker, std::string_view request_id, uint32_t prompt_tokens);
  /// The request is done: its blocks leave its worker's load. not_found if not in flight.
  Status finished(std::string_view request_id);
  /// The worker's load in blocks (not_found if unknown).
  Result<uint64_t> load(std::string_view worker) const;
  /// Blocks the worker holds in the index (not_found if unknown).
  Result<uint64_t> worker_blocks(std::string_view worker) const;

  /// Precise mode: `worker` stored n blocks, engine hashes `block_hashes`, the first one
  /// following the block the engine calls `parent_hash` (when has_parent), with their
  /// n × block_size token ids. The router re-hashes from the tokens (chained from the parent's
  /// router hash) and maps the engine hashes onto them. Errors, changing nothing:
  /// invalid_argument in approximate mode, for block_size != options.block_size, n_tokens !=
  /// n × block_size, a negative token id, an engine hash repeated in the event, or an engine
  /// hash this worker already uses for a different block (hashes that do not chain);
  /// not_found for an unknown worker or a parent this worker does not hold; capacity_exceeded
  /// when 32767 engine hashes already name one block.
  Status apply_stored(std::string_view worker, const uint64_t* block_hashes, std::size_t n, bool has_parent,
                      uint64_t parent_hash, const int32_t* tokens, std::size_t n_tokens, uint32_t block_size);
  /// Precise mode: the worker evicted these blocks (engine hashes). Hashes it does not hold
  /// are ignored (events from before the router started). invalid_argument in approximate mode,
  /// not_found for an unknown worker.
  Status apply_removed(std::string_view worker, const uint64_t* block_hashes, std::size_t n);
  /// Precise mode: the worker dropped every block. Errors as apply_removed.
  Status apply_cleared(std::string_view worker);

  /// Versioned, CRC-checked snapshot (serialize.hpp envelope, magic "LLMDSKVR"): options, the
  /// workers with their capacities, blocks (LRU order) and engine-hash maps, the round-robin
  /// turn and the routed / hit_blocks counters. In-flight requests (loads) are not saved: a
  /// restored router starts with every load at 0.
  std::vector<uint8_t> serialize() const;
  /// corrupt_data or version_mismatch for bad input, never a crash.
  static Result<KVRouter> deserialize(const uint8_t* data, std::size_t size);

  KVRouterStats stats() const noexcept;
  const KVRouterOptions& options() const noexcept;

  static constexpr uint32_t kMaxWorkers = 4096;
  /// The most blocks one worker may keep (capacity_blocks).
  static constexpr uint64_t kMaxCapacityBlocks = 0xFFFFFFF0u;

 private:
  struct Impl;
  explicit KVRouter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmds
