// SPDX-License-Identifier: MIT
// kv-trace suite: the Mooncake synthetic trace (FAST'25 release, 3,993 requests, 512-token
// blocks) replayed through KVCache on a simple server model.
//
// Server model (a stand-in for an engine, not a simulator of one): requests arrive at their
// trace timestamp and attach their whole prompt at once (block id h expands to the 512 tokens
// h * 512 + i, the last block cut at input_length); a request then holds its pages for
// 0.15 ms per prompt token not served from the cache (prefill) + 20 ms per output token
// (decode), and detaches. Arrivals and departures are processed in time order (departures
// first on ties). Output tokens are not appended (the trace gives no output content). A
// request that does not fit (capacity_exceeded) is rejected and counted.
//
// Reported per max_pages budget: hit rate (cached_tokens / input tokens), the unbounded ideal
// (every earlier request kept forever: leading whole blocks seen before after the same history;
// idealTokenGranular also counts a block an earlier request held only partly, up to the common
// length, which a token-granular radix cache could reuse), attach ns per input token (plan included; tokens generated outside the timed
// region), bytes per stored token (stats().bytes / (peak pages in use x page size)), and what
// token-granular partial-page reuse would add (match_prefix before the attach, which also
// counts the matching head of a partly matching cached page, minus cached_tokens).
#include "kv_trace_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llmds/kv_cache.hpp"

namespace llmds_bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kBlock = 512;

struct Request {
  double timestamp = 0;
  uint32_t input_length = 0;
  uint32_t output_length = 0;
  std::vector<uint32_t> hash_ids;
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "kv-trace: %s\n", msg.c_str());
  std::exit(1);
}

/// The trace's lines have fixed keys and only non-negative numbers: a tiny scanner suffices.
double number_after(const std::string& line, const char* key, std::size_t& pos) {
  const std::size_t k = line.find(key);
  if (k == std::string::npos) die(std::string("missing key ") + key + " in: " + line.substr(0, 80));
  pos = line.find(':', k) + 1;
  while (pos < line.size() && line[pos] == ' ') ++pos;
  char* end = nullptr;
  const double v = std::strtod(line.c_str() + pos, &end);
  pos = static_cast<std::size_t>(end - line.c_str());
  return v;
}

std::vector<Request> read_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) die("cannot open " + path);
  std::vector<Request> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find('{') == std::string::npos) continue;
    Request r;
    std::size_t pos = 0;
    r.timestamp = number_after(line, "\"timestamp\"", pos);
    r.input_length = static_cast<uint32_t>(number_after(line, "\"input_length\"", pos));
    r.output_length = static_cast<uint32_t>(number_after(line, "\"output_length\"", pos));
    const std::size_t k = line.find("\"hash_ids\"");
    if (k == std::string::npos) die("missing hash_ids");
    pos = line.find('[', k) + 1;
    const std::size_t close = line.find(']', pos);
    while (pos < close) {
      while (pos < close && (line[pos] < '0' || line[pos] > '9')) ++pos;
      if (pos >= close) break;
      char* end = nullptr;
      r.hash_ids.push_back(static_cast<uint32_t>(std::strtoul(line.c_str() + pos, &end, 10)));
      pos = static_cast<std::size_t>(end - line.c_str());
    }
    if ((r.input_length + kBlock - 1) / kBlock != r.hash_ids.size()) die("input_length and hash_ids disagree");
    out.push_back(std::move(r));
  }
  if (out.empty()) die(path + " holds no requests");
  return out;
}

void expand(const Request& r, std::vector<int32_t>& tokens) {
  tokens.resize(r.input_length);
  for (std::size_t b = 0; b < r.hash_ids.size(); ++b) {
    const int32_t base = static_cast<int32_t>(r.hash_ids[b] * kBlock);
    const std::size_t end = std::min<std::size_t>(tokens.size(), (b + 1) * kBlock);
    for (std::size_t i = b * kBlock; i < end; ++i) tokens[i] = base + static_cast<int32_t>(i - b * kBlock);
  }
}

/// Unbounded ideal: a trie over block-id histories; a request reuses its leading blocks seen
/// before after the same history. `page_granular`: only blocks earlier requests held whole (a
/// truncated last block is reusable up to its stored length only by a token-granular cache).
double ideal_hit_rate(const std::vector<Request>& reqs, bool page_granular) {
  std::unordered_map<uint64_t, uint32_t> edges;  // (node << 32 | block id) -> child node
  std::vector<uint32_t> stored_len{0};           // tokens stored in each node's block so far
  uint64_t hit = 0, total = 0;
  for (const Request& r : reqs) {
    uint32_t node = 0;
    bool matching = true;
    for (std::size_t b = 0; b < r.hash_ids.size(); ++b) {
      const uint32_t len = static_cast<uint32_t>(std::min<std::size_t>(kBlock, r.input_length - b * kBlock));
      const uint64_t key = (static_cast<uint64_t>(node) << 32) | r.hash_ids[b];
      auto it = edges.find(key);
      if (it == edges.end()) {
        it = edges.emplace(key, static_cast<uint32_t>(stored_len.size())).first;
        stored_len.push_back(0);
      }
      const uint32_t child = it->second;
      if (matching) {
        const bool whole = stored_len[child] == kBlock && len == kBlock;
        hit += page_granular ? (whole ? kBlock : 0) : std::min(len, stored_len[child]);
        matching = page_granular ? whole : stored_len[child] >= len;
      }
      stored_len[child] = std::max(stored_len[child], len);
      node = child;
    }
    total += r.input_length;
  }
  return static_cast<double>(hit) / static_cast<double>(total);
}

KVTraceRow replay(const std::vector<Request>& reqs, uint32_t max_pages, double ideal, double ideal_tokens,
                  bool events) {
  llmds::KVCacheOptions opt;
  opt.page_size = kBlock;
  opt.max_pages = max_pages;
  opt.events = events;
  auto created = llmds::KVCache::create(opt);
  if (!created.ok()) die("create: " + created.status().message());
  llmds::KVCache cache = std::move(created).value();
  using Departure = std::pair<double, uint32_t>;
  std::priority_queue<Departure, std::vector<Departure>, std::greater<Departure>> departures;
  std::vector<int32_t> tokens;
  llmds::KVPlan plan;  // reused: its vectors keep their capacity
  uint64_t event_count = 0;
  uint64_t input = 0, cached = 0, partial = 0, rejected = 0, peak_pages = 0;
  double attach_ns = 0, detach_ns = 0;
  auto depart_until = [&](double t) {
    while (!departures.empty() && departures.top().first <= t) {
      const auto t0 = Clock::now();
      cache.detach(departures.top().second);
      detach_ns += std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
      departures.pop();
    }
  };
  for (uint32_t i = 0; i < reqs.size(); ++i) {
    const Request& r = reqs[i];
    depart_until(r.timestamp);
    expand(r, tokens);
    const std::size_t could = cache.match_prefix(tokens.data(), tokens.size());
    const auto t0 = Clock::now();
    const llmds::Status st = cache.attach(i, tokens.data(), tokens.size(), -1, &plan);
    attach_ns += std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    if (events) event_count += cache.drain_events().size();
    input += r.input_length;
    if (!st) {
      ++rejected;
      continue;
    }
    const llmds::KVCacheStats s = cache.stats();
    const uint64_t got = plan.cached_tokens;
    if (got > could) die("cached_tokens exceeds match_prefix");
    if (plan.compute_from != got || plan.block_table.size() != r.hash_ids.size() ||
        plan.new_pages.size() != plan.block_table.size() - got / kBlock || !plan.copies.empty()) {
      die("inconsistent plan");
    }
    cached += got;
    partial += could - got;
    peak_pages = std::max<uint64_t>(peak_pages, s.used_pages + s.cached_pages);
    departures.emplace(r.timestamp + 0.15 * static_cast<double>(r.input_length - got) + 20.0 * r.output_length, i);
  }
  const uint64_t bytes = cache.stats().bytes;
  depart_until(1e300);
  const double in = static_cast<double>(input);
  return {{"maxPages", double(max_pages)},
          {"events", events ? double(event_count) : -1.0},
          {"requests", double(reqs.size())},
          {"inputTokens", in},
          {"rejected", double(rejected)},
          {"hitRate", double(cached) / in},
          {"idealHitRate", ideal},
          {"idealTokenGranularHitRate", ideal_tokens},
          {"partialPageGain", double(partial) / in},
          {"attachNsPerToken", attach_ns / in},
          {"detachNsPerRequest", detach_ns / double(reqs.size() - rejected)},
          {"peakPages", double(peak_pages)},
          {"bytes", double(bytes)},
          {"bytesPerStoredToken", double(bytes) / (double(peak_pages) * kBlock)},
          {"evictions", double(cache.stats().evictions)}};
}

/// stats().bytes per stored token for a cache filled with exactly `pages` distinct full pages.
KVTraceRow memory_at(uint32_t pages) {
  llmds::KVCacheOptions opt;
  opt.page_size = kBlock;
  opt.max_pages = pages;
  llmds::KVCache cache = llmds::KVCache::create(opt).value();
  std::vector<int32_t> tokens(64 * kBlock);  // 64 pages per sequence
  uint32_t done = 0;
  for (uint32_t seq = 0; done < pages; ++seq) {
    const uint32_t n = std::min<uint32_t>(64, pages - done);
    for (uint32_t i = 0; i < n * kBlock; ++i) tokens[i] = static_cast<int32_t>(done * kBlock + i);
    if (!cache.attach(seq, tokens.data(), n * kBlock)) die("memory fill failed");
    done += n;
  }
  const double stored = double(pages) * kBlock;
  const double bytes = double(cache.stats().bytes);
  return {{"pages", double(pages)}, {"pageSize", double(kBlock)}, {"bytes", bytes},
          {"bytesPerStoredToken", bytes / stored}, {"overTokenBytes", bytes / (stored * 4)}};
}

}  // namespace

std::map<std::string, std::vector<KVTraceRow>> run_kv_trace_suite(const std::string& trace_path, bool quick) {
  std::vector<Request> reqs = read_trace(trace_path);
  if (quick && reqs.size() > 1000) reqs.resize(1000);
  const double ideal = ideal_hit_rate(reqs, true);
  const double ideal_tokens = ideal_hit_rate(reqs, false);
  std::vector<KVTraceRow> rows;
  for (uint32_t max_pages : {5000u, 20000u, 100000u}) rows.push_back(replay(reqs, max_pages, ideal, ideal_tokens, false));
  rows.push_back(replay(reqs, 20000, ideal, ideal_tokens, true));  // the cost of recording events
  std::vector<KVTraceRow> memory;
  for (uint32_t pages : {5000u, 20000u, 100000u}) memory.push_back(memory_at(pages));
  return {{"kvTrace", rows}, {"kvMemory", memory}};
}

}  // namespace llmds_bench
