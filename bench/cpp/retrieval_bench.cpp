// SPDX-License-Identifier: MIT
// Retrieval suite of llmds_bench: RetrievalPipeline build rate and hybrid QPS on the corpus and
// queries of bench/retrieval.mjs (its hybridCorpus(), written to a file by bench/ratios.mjs), with
// the same options, query strings, warm-up, repetitions and cache behaviour.
#include "retrieval_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "llmds/retrieval_pipeline.hpp"

namespace llmds_bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "llmds_bench --suite retrieval: %s\n", msg.c_str());
  std::exit(1);
}

struct Item {
  uint32_t id = 0;
  std::string text;
  std::vector<float> embedding;
};

struct Data {
  uint32_t dim = 0, top_k = 0, seed = 0;
  std::vector<Item> docs, queries;
};

Data load(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) die("cannot open " + file + " (bench/ratios.mjs writes it)");
  auto u32 = [&] {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) die(file + ": truncated");
    return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  };
  Data d;
  const uint32_t n_docs = u32();
  d.dim = u32();
  const uint32_t n_queries = u32();
  d.top_k = u32();
  d.seed = u32();
  if (d.dim == 0 || d.dim > 65536 || d.top_k == 0) die(file + ": bad header");
  auto item = [&](bool with_id) {
    Item it;
    if (with_id) it.id = u32();
    it.text.resize(u32());
    it.embedding.resize(d.dim);
    if (!in.read(it.text.data(), static_cast<std::streamsize>(it.text.size())) ||
        !in.read(reinterpret_cast<char*>(it.embedding.data()), static_cast<std::streamsize>(d.dim * sizeof(float)))) {
      die(file + ": truncated");
    }
    return it;
  };
  for (uint32_t i = 0; i < n_docs; ++i) d.docs.push_back(item(true));
  for (uint32_t i = 0; i < n_queries; ++i) d.queries.push_back(item(false));
  return d;
}

}  // namespace

std::map<std::string, std::vector<RetrievalRow>> run_retrieval_suite(const std::string& data_file, bool /*quick*/) {
  // Sizes come from the file (retrieval.mjs: 20,000 docs and 1,000 queries; --quick 5,000 and 200).
  const Data data = load(data_file);
  if (data.queries.empty()) die("no queries");
  llmds::RetrievalPipelineOptions o;
  o.embedding_dim = data.dim;
  o.seed = data.seed;
  auto created = llmds::RetrievalPipeline::create(o);
  if (!created) die("create: " + created.status().message());
  llmds::RetrievalPipeline pipeline = std::move(created.value());

  const auto t0 = Clock::now();
  for (const auto& d : data.docs) {
    const auto st = pipeline.add_document(d.id, d.text, d.embedding.data(), d.embedding.size());
    if (!st) die("add_document: " + st.message());
  }
  const double build_seconds = seconds_since(t0);

  auto query = [&](const std::string& text, const Item& q, bool dense, llmds::Fusion fusion = llmds::Fusion::weighted) {
    llmds::PipelineQuery pq;
    pq.text = text;
    if (dense) {
      pq.embedding = q.embedding.data();
      pq.embedding_len = q.embedding.size();
    }
    pq.top_k = data.top_k;
    pq.fusion = fusion;
    return pq;
  };
  std::size_t returned = 0;  // kept, so no search can be optimised away
  auto search = [&](const llmds::PipelineQuery& pq) {
    auto r = pipeline.search(pq);
    if (!r) die("search: " + r.status().message());
    returned += r->ids.size();
    return std::move(r.value());
  };
  // retrieval.mjs's run(): 20 warm-up queries, then the best of 3 passes over all queries.
  auto run = [&](const std::function<void(const Item&)>& fn) {
    for (std::size_t i = 0; i < std::min<std::size_t>(20, data.queries.size()); ++i) fn(data.queries[i]);
    double best = 1e300;
    for (int r = 0; r < 3; ++r) {
      const auto s0 = Clock::now();
      for (const auto& q : data.queries) fn(q);
      best = std::min(best, seconds_since(s0));
    }
    return double(data.queries.size()) / best;
  };
  uint64_t round = 0;  // shared by the miss runs, as in JS: the suffix " zz<n>" matches nothing
  const double miss_qps = run([&](const Item& q) { search(query(q.text + " zz" + std::to_string(round++), q, true)); });
  const double hit_qps = run([&](const Item& q) { search(query(q.text, q, true)); });
  const double bm25_qps = run([&](const Item& q) { search(query(q.text + " zz" + std::to_string(round++), q, false)); });

  auto overlap_of = [&](const Item& q, llmds::Fusion fusion) {
    const auto pq = query(q.text, q, true, fusion);
    auto exact = pipeline.search_exhaustive(pq);
    if (!exact) die("search_exhaustive: " + exact.status().message());
    const std::set<uint32_t> want(exact->ids.begin(), exact->ids.end());
    const auto got = search(pq);
    std::size_t same = 0;
    for (uint32_t id : got.ids) same += want.count(id);
    return double(same) / double(std::max<std::size_t>(1, want.size()));
  };
  double overlap = 0, overlap_rrf = 0;
  for (const auto& q : data.queries) {
    overlap += overlap_of(q, llmds::Fusion::weighted);
    overlap_rrf += overlap_of(q, llmds::Fusion::rrf);
  }
  const auto st = pipeline.stats();
  const double nq = double(data.queries.size());
  RetrievalRow row{{"docs", double(data.docs.size())},
                   {"dim", double(data.dim)},
                   {"queries", nq},
                   {"topK", double(data.top_k)},
                   {"buildSeconds", build_seconds},
                   {"buildDocsPerSec", double(data.docs.size()) / build_seconds},
                   {"hybridQps", miss_qps},
                   {"cachedQps", hit_qps},
                   {"bm25OnlyQps", bm25_qps},
                   {"overlapWeighted", overlap / nq},
                   {"overlapRrf", overlap_rrf / nq},
                   {"cacheHits", double(st.cache_hits)},
                   {"cacheMisses", double(st.cache_misses)},
                   {"resultsReturned", double(returned)},
                   {"pipelineMb", double(st.bytes) / (1 << 20)}};
  return {{"retrieval", {row}}};
}

namespace {

/// bench/retrieval.mjs's hybridCorpus({docs, dim}) (mulberry32 seed 1, 50 topics, 5,000 words):
/// each document is a topic's embedding centroid plus Gaussian noise (spread 1.5) and 20-59 words,
/// 30% from the topic's own 20 words, the rest Zipf-like. Same generator, same call order; the
/// JS side rounds through Math.log/Math.cos, so a rare last-bit difference is possible.
struct Corpus {
  std::vector<std::string> texts;
  std::vector<float> embeddings;
};

Corpus hybrid_corpus(uint32_t docs, uint32_t dim) {
  constexpr uint32_t kTopics = 50, kVocabulary = 5000;
  Mulberry32 next{1};
  auto gauss = [&] {
    const double r = std::sqrt(-2 * std::log(next() + 1e-12));  // sequenced: JS evaluates left first
    return r * std::cos(2 * 3.141592653589793 * next());
  };
  auto word = [](uint32_t i) {
    std::string s;
    do {
      s.insert(s.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36]);
      i /= 36;
    } while (i);
    return "w" + s;
  };
  auto zipf = [&] {
    return std::min<uint32_t>(kVocabulary - 1,
                              static_cast<uint32_t>(std::floor(std::exp(next() * std::log(double(kVocabulary))))) - 1);
  };
  std::vector<float> centroids(std::size_t(kTopics) * dim);
  for (float& x : centroids) x = static_cast<float>(gauss());
  std::vector<uint32_t> topic_words(std::size_t(kTopics) * 20);
  for (uint32_t& w : topic_words) w = static_cast<uint32_t>(next() * kVocabulary);
  Corpus c;
  c.texts.resize(docs);
  c.embeddings.resize(std::size_t(docs) * dim);
  for (uint32_t d = 0; d < docs; ++d) {
    const uint32_t topic = static_cast<uint32_t>(next() * kTopics);
    const uint32_t length = 20 + static_cast<uint32_t>(next() * 40);
    std::string& t = c.texts[d];
    for (uint32_t i = 0; i < length; ++i) {
      const uint32_t w = next() < 0.3 ? topic_words[topic * 20 + static_cast<uint32_t>(next() * 20)] : zipf();
      if (i) t += ' ';
      t += word(w);
    }
    for (uint32_t j = 0; j < dim; ++j) {
      c.embeddings[std::size_t(d) * dim + j] = static_cast<float>(centroids[std::size_t(topic) * dim + j] + 1.5 * gauss());
    }
  }
  return c;
}

/// CPU time of this (single-threaded) process: the machines are shared, so wall time includes
/// waiting for a core, which would swamp the ratio between two builds measured seconds apart.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

constexpr uint32_t kBuildDim = 64;

/// Docs/s (wall and CPU) of building one pipeline from the first `docs` documents of `corpus`
/// (64-d, M 8, efConstruction 40, other options at the JS API's defaults: cosine, seed 100), and
/// of a plain HNSW with the same settings over the same embeddings: the pipeline's extra cost
/// per document (BM25, bookkeeping) should not grow with the index.
RetrievalRow build_rate(const Corpus& corpus, uint32_t docs) {
  llmds::RetrievalPipelineOptions o;
  o.embedding_dim = kBuildDim;
  o.hnsw_m = 8;
  o.hnsw_ef_construction = 40;
  auto created = llmds::RetrievalPipeline::create(o);
  if (!created) die("create: " + created.status().message());
  llmds::RetrievalPipeline pipeline = std::move(created.value());
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  for (uint32_t i = 0; i < docs; ++i) {
    const auto st = pipeline.add_document(i, corpus.texts[i], &corpus.embeddings[std::size_t(i) * kBuildDim], kBuildDim);
    if (!st) die("add_document: " + st.message());
  }
  const double seconds = seconds_since(t0), cpu = cpu_seconds() - c0;

  llmds::HnswOptions h;
  h.dim = kBuildDim;
  h.m = 8;
  h.ef_construction = 40;
  h.metric = o.metric;
  h.seed = o.seed;
  auto hnsw = llmds::HNSW::create(h).value();
  const double h0 = cpu_seconds();
  for (uint32_t i = 0; i < docs; ++i) (void)hnsw.add(&corpus.embeddings[std::size_t(i) * kBuildDim], kBuildDim, i);
  const double hnsw_cpu = cpu_seconds() - h0;
  return {{"docs", double(docs)},
          {"dim", double(kBuildDim)},
          {"buildSeconds", seconds},
          {"buildCpuSeconds", cpu},
          {"docsPerSec", double(docs) / seconds},
          {"docsPerCpuSec", double(docs) / cpu},
          {"hnswOnlyVectorsPerCpuSec", double(docs) / hnsw_cpu},
          {"pipelineMb", double(pipeline.stats().bytes) / (1 << 20)}};
}

}  // namespace

std::map<std::string, std::vector<RetrievalRow>> run_retrieval_build_suite(bool /*quick*/) {
  // Both sizes even with --quick: the point is the ratio, and 50k documents take seconds natively.
  const Corpus corpus = hybrid_corpus(50000, kBuildDim);
  RetrievalRow small = build_rate(corpus, 5000);
  RetrievalRow large = build_rate(corpus, 50000);
  // The ratio in CPU time (see cpu_seconds()); the wall-time rates are in the rows too.
  large["ratio"] = large["docsPerCpuSec"] / small["docsPerCpuSec"];
  large["hnswOnlyRatio"] = large["hnswOnlyVectorsPerCpuSec"] / small["hnswOnlyVectorsPerCpuSec"];
  std::printf("  RetrievalPipeline build (64-d, M 8, efC 40): %.0f docs/CPU s at 5k, %.0f at 50k, ratio %.2f"
              " (plain HNSW: %.0f, %.0f vectors/CPU s, ratio %.2f)\n",
              small["docsPerCpuSec"], large["docsPerCpuSec"], large["ratio"], small["hnswOnlyVectorsPerCpuSec"],
              large["hnswOnlyVectorsPerCpuSec"], large["hnswOnlyRatio"]);
  std::fflush(stdout);
  return {{"retrievalBuild", {small, large}}};
}

}  // namespace llmds_bench
