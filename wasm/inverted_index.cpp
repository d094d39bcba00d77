// SPDX-License-Identifier: MIT
// embind surface of InvertedIndex: UTF-8 bytes in (one heap copy per call), codes and copies out.
#include <memory>
#include <string_view>

#include "common.hpp"
#include "sharding.hpp"
#include "llmds/inverted_index.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

class RawInvertedIndex {
 public:
  explicit RawInvertedIndex(InvertedIndex index) : index_(std::move(index)) {}

  static std::unique_ptr<RawInvertedIndex> create(double k1, double b) {
    return adopt<RawInvertedIndex>(InvertedIndex::create({k1, b}));
  }
  static std::unique_ptr<RawInvertedIndex> deserialize(uintptr_t bytes, uint32_t n) {
    return adopt<RawInvertedIndex>(InvertedIndex::deserialize(heap_ptr<uint8_t>(bytes), n));
  }
  static val limits() {
    val o = val::object();
    o.set("maxDocuments", InvertedIndex::kMaxDocuments);
    o.set("maxTopK", 0x7fffffffu);
    return o;
  }

  int32_t add(uint32_t doc, uintptr_t text, uint32_t n) { return report(index_.add_document(doc, text_at(text, n))); }
  bool remove(uint32_t doc) { return index_.remove_document(doc); }
  bool has(uint32_t doc) const { return index_.has_document(doc); }
  uint32_t size() const { return index_.size(); }
  void clear() { index_.clear(); }
  double k1() const { return index_.k1(); }
  double b() const { return index_.b(); }

  /// { ids: Uint32Array, scores: Float64Array } best first, or null. `filtered`: only the
  /// `n_allowed` ids at `allowed`.
  val search(uintptr_t query, uint32_t n, uint32_t k, bool filtered, uintptr_t allowed, uint32_t n_allowed) const {
    const IdFilter filter = filtered ? IdFilter::ids(heap_ptr<uint32_t>(allowed), n_allowed) : IdFilter::all();
    auto hits = index_.search(text_at(query, n), k, filter);
    return ranked_or_null(hits);
  }
  /// The live document ids in insertion order.
  val ids() const { return copy_out(index_.document_ids()); }
  /// The frequency, or kFailed when `term` is not a single term.
  double term_frequency(uintptr_t term, uint32_t n, uint32_t doc) const {
    return value_or_failed(index_.term_frequency(text_at(term, n), doc));
  }
  double document_frequency(uintptr_t term, uint32_t n) const {
    return value_or_failed(index_.document_frequency(text_at(term, n)));
  }
  val stats() const {
    const InvertedIndexStats s = index_.stats();
    val o = val::object();
    o.set("documents", s.documents);
    o.set("terms", s.terms);
    o.set("postings", static_cast<double>(s.postings));
    o.set("tokens", static_cast<double>(s.tokens));
    o.set("avgDocLength", s.avg_doc_length);
    o.set("deadPostings", static_cast<double>(s.dead_postings));
    o.set("compressedBytes", static_cast<double>(s.compressed_bytes));
    o.set("uncompressedBytes", static_cast<double>(s.uncompressed_bytes));
    o.set("bytes", static_cast<double>(s.bytes));
    return o;
  }
  val serialize() const { return copy_out(index_.serialize()); }

  // Sharding (wasm/sharding.hpp carries TermStats across).
  val term_stats(uintptr_t text, uint32_t n, bool of_text) const { return term_stats_of(index_, text, n, of_text); }
  int32_t set_global_stats(double documents, double tokens, uintptr_t terms, uint32_t terms_bytes, uintptr_t df,
                           uint32_t count, bool clear) {
    return set_global_stats_on(index_, documents, tokens, terms, terms_bytes, df, count, clear);
  }
  bool has_global_stats() const { return index_.has_global_stats(); }

 private:
  InvertedIndex index_;
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_inverted_index) {
  using namespace llmds::wasm;
  emscripten::class_<RawInvertedIndex>("RawInvertedIndex")
      .class_function("create", LLMDS_GUARD(&RawInvertedIndex::create))
      .class_function("deserialize", LLMDS_GUARD(&RawInvertedIndex::deserialize))
      .class_function("limits", &RawInvertedIndex::limits)
      .function("add", LLMDS_GUARD(&RawInvertedIndex::add))
      .function("remove", LLMDS_GUARD(&RawInvertedIndex::remove))
      .function("has", LLMDS_GUARD(&RawInvertedIndex::has))
      .function("size", LLMDS_GUARD(&RawInvertedIndex::size))
      .function("clear", LLMDS_GUARD(&RawInvertedIndex::clear))
      .function("k1", LLMDS_GUARD(&RawInvertedIndex::k1))
      .function("b", LLMDS_GUARD(&RawInvertedIndex::b))
      .function("search", LLMDS_GUARD(&RawInvertedIndex::search))
      .function("ids", LLMDS_GUARD(&RawInvertedIndex::ids))
      .function("termFrequency", LLMDS_GUARD(&RawInvertedIndex::term_frequency))
      .function("documentFrequency", LLMDS_GUARD(&RawInvertedIndex::document_frequency))
      .function("stats", LLMDS_GUARD(&RawInvertedIndex::stats))
      .function("serialize", LLMDS_GUARD(&RawInvertedIndex::serialize))
      .function("termStats", LLMDS_GUARD(&RawInvertedIndex::term_stats))
      .function("setGlobalStats", LLMDS_GUARD(&RawInvertedIndex::set_global_stats))
      .function("hasGlobalStats", LLMDS_GUARD(&RawInvertedIndex::has_global_stats));
}
