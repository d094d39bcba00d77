// SPDX-License-Identifier: MIT
// HNSW suite of llmds_bench: the same data files, parameters, warm-up and recall definition as
// bench/hnsw/hnsw.mjs, so the JS API (wasm) figures have a native C++ counterpart in the same run.
#include "hnsw_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <numeric>
#include <sstream>
#include <vector>

#include "bench_common.hpp"
#include "llmds/hnsw.hpp"

namespace llmds_bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kMinSeconds = 0.2;  // shortest timed measurement of a search sweep (as hnsw.mjs)

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// CPU time of this (single-threaded) process: the machines are shared, so wall time includes
/// waiting for a core; hnsw.mjs compares CPU-time rates (process.cpuUsage()) as well as wall rates.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct Timing {
  double wall = 0, cpu = 0;
};

template <typename Fn>
Timing timed(Fn&& fn) {
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  fn();
  return {seconds_since(t0), cpu_seconds() - c0};
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "llmds_bench --suite hnsw: %s\n", msg.c_str());
  std::exit(1);
}

/// `u32 rows, u32 cols, rows × cols 4-byte values` (little-endian, as bench/hnsw/data.mjs writes).
template <typename T>
std::vector<T> read_bin(const std::string& file, uint32_t& rows, uint32_t& cols) {
  std::ifstream in(file, std::ios::binary);
  if (!in) die("cannot open " + file);
  uint32_t header[2];
  if (!in.read(reinterpret_cast<char*>(header), sizeof header)) die(file + ": no header");
  rows = header[0];
  cols = header[1];
  std::vector<T> out(static_cast<std::size_t>(rows) * cols);
  if (!in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(T)))) {
    die(file + ": truncated");
  }
  return out;
}

/// Unit-length copy, rounded as bench/hnsw/data.mjs's normalizeRows does (double sums, float store).
std::vector<float> unit_rows(const std::vector<float>& v, uint32_t dim) {
  std::vector<float> out(v.size());
  for (std::size_t o = 0; o < v.size(); o += dim) {
    double s = 0;
    for (uint32_t i = 0; i < dim; ++i) s += double(v[o + i]) * double(v[o + i]);
    const double inv = s > 0 ? 1 / std::sqrt(s) : 0;
    for (uint32_t i = 0; i < dim; ++i) out[o + i] = static_cast<float>(double(v[o + i]) * inv);
  }
  return out;
}

/// Exact distance in double precision, as recallAt() in data.mjs: squared l2, or 1 - dot of unit vectors.
double exact_distance(bool l2, const float* a, const float* b, uint32_t dim) {
  double s = 0;
  for (uint32_t i = 0; i < dim; ++i) {
    if (l2) {
      const double d = double(a[i]) - double(b[i]);
      s += d * d;
    } else {
      s += double(a[i]) * double(b[i]);
    }
  }
  return l2 ? s : 1 - s;
}

struct Set {
  std::string name, metric;
  uint32_t dim = 0, n_base = 0, n_queries = 0, k = 0;
  std::vector<float> base, queries;
  std::vector<int32_t> truth;
  std::vector<uint32_t> efs;
};

Set load_set(const std::string& line) {
  std::istringstream in(line);
  Set s;
  std::string base_file, query_file, gt_file, efs;
  if (!(in >> s.name >> s.metric >> base_file >> query_file >> gt_file >> s.k >> efs)) die("bad manifest line: " + line);
  uint32_t qdim = 0, gk = 0, gq = 0;
  s.base = read_bin<float>(base_file, s.n_base, s.dim);
  s.queries = read_bin<float>(query_file, s.n_queries, qdim);
  s.truth = read_bin<int32_t>(gt_file, gq, gk);
  if (qdim != s.dim || gq != s.n_queries || gk != s.k) die("inconsistent files for " + s.name);
  std::istringstream e(efs);
  for (std::string tok; std::getline(e, tok, ',');) s.efs.push_back(static_cast<uint32_t>(std::stoul(tok)));
  return s;
}

void bench_set(const Set& s, std::size_t set_index, bool quick, std::vector<HnswRow>& build_rows,
               std::vector<HnswRow>& search_rows) {
  const bool l2 = s.metric == "l2";
  auto metric = llmds::parse_metric(s.metric);
  if (!metric) die(metric.status().message());
  llmds::HnswOptions o;
  o.dim = s.dim;
  o.m = 16;
  o.ef_construction = 200;
  o.metric = *metric;  // seed: the default (100), as the JS API's

  // Warm-up as in hnsw.mjs: a throw-away index of the first 1,000 vectors.
  {
    auto warm = llmds::HNSW::create(o).value();
    for (uint32_t i = 0; i < std::min<uint32_t>(1000, s.n_base); ++i) (void)warm.add(&s.base[std::size_t(i) * s.dim], s.dim, i);
  }
  auto hnsw = llmds::HNSW::create(o).value();
  const Timing build = timed([&] {
    for (uint32_t i = 0; i < s.n_base; ++i) {
      auto st = hnsw.add(&s.base[std::size_t(i) * s.dim], s.dim, i);
      if (!st.ok()) die("add: " + st.message());
    }
  });
  const auto stats = hnsw.stats();
  build_rows.push_back({{"set", double(set_index)},
                        {"n", double(s.n_base)},
                        {"dim", double(s.dim)},
                        {"buildSeconds", build.wall},
                        {"buildCpuSeconds", build.cpu},
                        {"vectorsPerSecond", s.n_base / build.wall},
                        {"vectorsPerCpuSecond", s.n_base / build.cpu},
                        {"bytes", double(stats.bytes)},
                        {"edges", double(stats.edges)},
                        {"levels", double(stats.levels)}});
  std::printf("  llmds (native C++) %s: built %u vectors in %.1f s, %.1f CPU s (%.0f/CPU s)\n", s.name.c_str(),
              s.n_base, build.wall, build.cpu, s.n_base / build.cpu);
  std::fflush(stdout);

  const std::vector<float> base_u = l2 ? std::vector<float>() : unit_rows(s.base, s.dim);
  const std::vector<float> queries_u = l2 ? std::vector<float>() : unit_rows(s.queries, s.dim);
  const float* bu = l2 ? s.base.data() : base_u.data();
  const float* qu = l2 ? s.queries.data() : queries_u.data();
  const uint32_t k = s.k, dim = s.dim;
  std::vector<std::vector<llmds::Neighbor>> found(s.n_queries);
  // One measurement: whole passes over the queries until at least kMinSeconds, per pass.
  auto run = [&](uint32_t ef) {
    int passes = 0;
    Timing t;
    while (t.wall < kMinSeconds) {
      const Timing p = timed([&] {
        for (uint32_t q = 0; q < s.n_queries; ++q) found[q] = hnsw.search(&s.queries[std::size_t(q) * dim], dim, k, ef).value();
      });
      t.wall += p.wall;
      t.cpu += p.cpu;
      ++passes;
    }
    return Timing{t.wall / passes, t.cpu / passes};
  };
  run(s.efs.front());  // warm-up
  const int reps = quick ? 2 : 3;
  for (uint32_t ef : s.efs) {
    Timing best{1e300, 1e300};
    for (int r = 0; r < reps; ++r) {
      const Timing t = run(ef);
      best.wall = std::min(best.wall, t.wall);
      best.cpu = std::min(best.cpu, t.cpu);
    }
    double recall = 0;
    for (uint32_t q = 0; q < s.n_queries; ++q) {
      const float* qv = qu + std::size_t(q) * dim;
      const double kth = exact_distance(l2, qv, bu + std::size_t(s.truth[std::size_t(q) * k + k - 1]) * dim, dim);
      const double limit = kth + 1e-6 * std::max(1.0, std::fabs(kth));
      uint32_t hits = 0;
      for (const auto& nb : found[q]) hits += exact_distance(l2, qv, bu + std::size_t(nb.id) * dim, dim) <= limit;
      recall += double(hits) / k;
    }
    search_rows.push_back({{"set", double(set_index)},
                           {"efSearch", double(ef)},
                           {"qps", s.n_queries / best.wall},
                           {"cpuQps", s.n_queries / best.cpu},
                           {"recall", recall / s.n_queries}});
  }
}

}  // namespace

std::map<std::string, std::vector<HnswRow>> run_hnsw_suite(const std::string& manifest, bool quick) {
  std::ifstream in(manifest);
  if (!in) die("cannot open the manifest " + manifest + " (bench/hnsw/hnsw.mjs writes it)");
  std::map<std::string, std::vector<HnswRow>> out;
  auto& build_rows = out["hnswBuild"];
  auto& search_rows = out["hnswSearch"];
  std::size_t index = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    bench_set(load_set(line), index++, quick, build_rows, search_rows);
  }
  return out;
}

std::map<std::string, std::vector<HnswRow>> run_hnsw_compact_suite(bool quick) {
  const uint32_t n = quick ? 10000 : 40000, dim = 64, clusters = 50, nq = 500, k = 10, ef = 50;
  // Clustered data (bench/retrieval.mjs's hybridCorpus shape: Gaussian centroids + noise 1.5).
  Mulberry32 next{11};
  auto gauss = [&] {
    const double r = std::sqrt(-2 * std::log(next() + 1e-12));
    return r * std::cos(2 * 3.141592653589793 * next());
  };
  std::vector<float> centroids(std::size_t(clusters) * dim);
  for (float& x : centroids) x = static_cast<float>(gauss());
  auto sample = [&](std::vector<float>& out, uint32_t rows) {
    out.resize(std::size_t(rows) * dim);
    for (uint32_t i = 0; i < rows; ++i) {
      const uint32_t c = static_cast<uint32_t>(next() * clusters);
      for (uint32_t j = 0; j < dim; ++j) {
        out[std::size_t(i) * dim + j] = static_cast<float>(centroids[std::size_t(c) * dim + j] + 1.5 * gauss());
      }
    }
  };
  std::vector<float> base, queries;
  sample(base, n);
  sample(queries, nq);

  llmds::HnswOptions o;
  o.dim = dim;
  o.m = 16;
  o.ef_construction = 100;
  o.metric = llmds::Metric::cosine;
  auto index = llmds::HNSW::create(o).value();
  const Timing build = timed([&] {
    for (uint32_t i = 0; i < n; ++i) (void)index.add(&base[std::size_t(i) * dim], dim, i);
  });
  // Remove a seeded random half (a Fisher-Yates prefix of the ids).
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  for (uint32_t i = 0; i < n / 2; ++i) std::swap(order[i], order[i + static_cast<uint32_t>(next() * (n - i))]);
  std::vector<uint8_t> alive(n, 1);
  for (uint32_t i = 0; i < n / 2; ++i) {
    (void)index.remove(order[i]);
    alive[order[i]] = 0;
  }
  // Exact top-k over the live vectors (cosine on unit copies, in double).
  const std::vector<float> base_u = unit_rows(base, dim), queries_u = unit_rows(queries, dim);
  std::vector<std::vector<uint32_t>> truth(nq);
  for (uint32_t q = 0; q < nq; ++q) {
    std::vector<std::pair<double, uint32_t>> all;
    for (uint32_t i = 0; i < n; ++i) {
      if (alive[i]) all.emplace_back(exact_distance(false, &queries_u[std::size_t(q) * dim], &base_u[std::size_t(i) * dim], dim), i);
    }
    std::partial_sort(all.begin(), all.begin() + k, all.end());
    for (uint32_t j = 0; j < k; ++j) truth[q].push_back(all[j].second);
  }
  auto measure = [&](int phase) {
    std::vector<std::vector<llmds::Neighbor>> found(nq);
    auto pass = [&] {
      for (uint32_t q = 0; q < nq; ++q) found[q] = index.search(&queries[std::size_t(q) * dim], dim, k, ef).value();
    };
    pass();  // warm-up
    Timing best{1e300, 1e300};
    for (int r = 0; r < (quick ? 3 : 5); ++r) {
      const Timing t = timed(pass);
      best.wall = std::min(best.wall, t.wall);
      best.cpu = std::min(best.cpu, t.cpu);
    }
    std::size_t hits = 0;
    for (uint32_t q = 0; q < nq; ++q) {
      for (uint32_t id : truth[q]) {
        for (const auto& nb : found[q]) hits += nb.id == id;
      }
    }
    const auto st = index.stats();
    return HnswRow{{"phase", double(phase)},
                   {"n", double(n)},
                   {"dim", double(dim)},
                   {"live", double(st.size)},
                   {"nodes", double(st.nodes)},
                   {"tombstones", double(st.tombstones)},
                   {"bytes", double(st.bytes)},
                   {"efSearch", double(ef)},
                   {"qps", nq / best.wall},
                   {"cpuQps", nq / best.cpu},
                   {"recall", double(hits) / double(nq * k)}};
  };
  HnswRow before = measure(0);
  const Timing compact = timed([&] {
    auto st = index.compact();
    if (!st.ok()) die("compact: " + st.message());
  });
  HnswRow after = measure(1);
  after["compactSeconds"] = compact.wall;
  after["compactCpuSeconds"] = compact.cpu;
  after["buildCpuSeconds"] = build.cpu;
  after["bytesRatio"] = after["bytes"] / before["bytes"];
  std::printf("  HNSW compact (%u x %u-d, 50%% removed): %.1f MB -> %.1f MB, compact %.2f s (%.2f CPU s; the build of %u"
              " took %.2f CPU s), cpuQps %.0f -> %.0f, recall@10 %.3f -> %.3f\n",
              n, dim, before["bytes"] / 1048576, after["bytes"] / 1048576, compact.wall, compact.cpu, n, build.cpu,
              before["cpuQps"], after["cpuQps"], before["recall"], after["recall"]);
  std::fflush(stdout);
  return {{"hnswCompact", {before, after}}};
}

}  // namespace llmds_bench
