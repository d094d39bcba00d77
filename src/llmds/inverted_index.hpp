// SPDX-License-Identifier: MIT
/// @file inverted_index.hpp
/// @brief BM25 full-text index: compressed postings, exact top-k search with MaxScore pruning.
///
/// Scoring is Okapi BM25 with the non-negative ("Lucene") IDF:
///
///     score(d, q) = sum over distinct query terms t of
///                   qtf(t) * idf(t) * tf(t,d) * (k1 + 1) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl))
///     idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
///
/// N = live documents, df(t) = live documents containing t, tf(t,d) = occurrences of t in d,
/// |d| = terms in d, avgdl = mean |d| over live documents, qtf(t) = occurrences of t in the query
/// (so a repeated query word counts once per repetition, as if it were summed term by term).
/// idf is always > 0, so every document sharing a term with the query scores > 0; documents
/// sharing none are never returned. Text is tokenized exactly as by llmds::Tokenizer.
///
/// Storage. Documents get dense internal slots in insertion order; each term's postings are a
/// byte buffer of varints in slot order: (gap << 1 | tf == 1) followed, only when tf != 1, by
/// tf - 2, with a skip entry (last slot, byte offset) every 128 postings for next_geq() jumps.
/// Because slots only grow, adding a document (also a re-add, which takes a new slot) always
/// appends. Removing one marks its slot dead (tombstone) and updates df and the live counts at
/// once, so scores never see it; a term's list is rebuilt without its dead postings as soon as
/// they outnumber its live ones, and the whole index is compacted (slots renumbered, dead terms
/// dropped) once dead slots outnumber live documents. Both rebuilds are paid for by the removals
/// that caused them (amortised O(postings of the removed document)).
///
/// Search is document-at-a-time MaxScore: each query term's upper bound (qtf * idf * the largest
/// tf part of its postings, from a tiny Pareto set of (max tf, min length) points kept per term)
/// splits the terms into essential and non-essential ones; only documents in an essential list
/// become candidates, and a candidate's remaining terms are probed only while its score can
/// still enter the top k. The result is exactly the exhaustive top k: bounds are inflated by a
/// relative 1e-9 so rounding can never prune a document that belongs in it, and every returned
/// score is summed in a fixed term order (byte order of the terms, so it depends neither on the
/// path that found the document nor on which index, e.g. which shard, holds it).
///
/// Global statistics (sharding.hpp): set_global_stats(corpus-wide TermStats) makes N, avgdl and
/// df those of the whole corpus, so a shard scores its documents exactly as one index over the
/// corpus would. They are kept as what the rest of the corpus adds to this index's own counts,
/// so later adds and removes here still count, on top (exact again after the next exchange);
/// terms missing from the table count only this index's own df. clear() and deserialize()
/// start without them; serialize() does not store them.
/// Ties are broken by ascending document id.
///
/// Out of memory: add_document tokenizes and reserves room for every change first (undoing new
/// terms if that throws), then commits; remove_document and clear cannot fail half-way (list
/// rebuilds and compaction, optimisations both, are skipped when memory is short). A
/// std::bad_alloc leaves the contents and stats() as they were, except that stats().bytes may
/// count the room reserved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "llmds/id_filter.hpp"
#include "llmds/ranked_hits.hpp"
#include "llmds/sharding.hpp"
#include "llmds/status.hpp"

namespace llmds {

struct InvertedIndexOptions {
  double k1 = 1.2;   ///< term-frequency saturation, finite and >= 0
  double b = 0.75;   ///< length normalisation, in [0, 1]
};

struct InvertedIndexStats {
  uint32_t documents = 0;           ///< live documents
  uint32_t terms = 0;               ///< distinct terms with df > 0
  uint64_t postings = 0;            ///< live (term, document) pairs = sum of df
  uint64_t tokens = 0;              ///< sum of live document lengths
  double avg_doc_length = 0.0;      ///< tokens / documents (0 when empty)
  uint64_t dead_postings = 0;       ///< postings of removed documents not yet compacted away
  std::size_t compressed_bytes = 0;    ///< bytes of encoded postings (live + dead)
  std::size_t uncompressed_bytes = 0;  ///< the same postings as (u32 doc, u32 tf) pairs
  std::size_t bytes = 0;            ///< approximate heap bytes of the whole index
};

/// Search results as parallel arrays, best first.
class InvertedIndex {
 public:
  static constexpr char kMagic[9] = "LLMDSBM2";
  static constexpr uint32_t kFormatVersion = 1;
  /// Live documents (slots, live plus dead, must stay below 2^32).
  static constexpr uint32_t kMaxDocuments = 1u << 30;

  static Result<InvertedIndex> create(const InvertedIndexOptions& options = {});

  InvertedIndex(InvertedIndex&&) noexcept;
  InvertedIndex& operator=(InvertedIndex&&) noexcept;
  ~InvertedIndex();

  /// Indexes `text` under `doc_id`, replacing an earlier document with that id. A text with no
  /// terms is still a document (length 0: it counts in N and avgdl but never matches).
  /// capacity_exceeded (nothing changed) when the text or the vocabulary is beyond the limits.
  Status add_document(uint32_t doc_id, std::string_view text);
  /// Removes a document; false (and nothing changed) if `doc_id` is not indexed.
  bool remove_document(uint32_t doc_id);
  bool has_document(uint32_t doc_id) const noexcept;

  /// The `top_k` best documents for `query`, best first (ties: smaller id first), exact.
  /// invalid_argument unless top_k >= 1.
  Result<RankedHits> search(std::string_view query, uint32_t top_k = 10) const;
  /// Same result computed by scoring every posting of every query term (no pruning): the
  /// reference for tests and benchmarks.
  Result<RankedHits> search_exhaustive(std::string_view query, uint32_t top_k = 10) const;
  /// The `top_k` best documents among those `filter` allows, exact: disallowed documents are
  /// skipped inside the MaxScore loop (their postings are passed over as removed documents'
  /// are), so the threshold only ever holds allowed documents and the result equals scoring
  /// every allowed document. The filter is compiled first into a mask over the documents (one
  /// lookup per listed id, or one predicate call per live document in insertion order).
  Result<RankedHits> search(std::string_view query, uint32_t top_k, const IdFilter& filter) const;
  Result<RankedHits> search_exhaustive(std::string_view query, uint32_t top_k, const IdFilter& filter) const;
  /// The ids of the live documents, in insertion order (replaced documents count as inserted
  /// when they were replaced).
  std::vector<uint32_t> document_ids() const;

  /// Occurrences of `term` in document `doc_id` (0 if either is unknown). `term` is normalised
  /// like document text and must hold exactly one term, else invalid_argument.
  Result<uint32_t> term_frequency(std::string_view term, uint32_t doc_id) const;
  /// Live documents containing `term` (same normalisation and rule as term_frequency).
  Result<uint32_t> document_frequency(std::string_view term) const;

  uint32_t size() const noexcept;
  double k1() const noexcept;
  double b() const noexcept;
  InvertedIndexStats stats() const noexcept;
  /// Drops every document and term (options kept).
  void clear();

  /// This index's own statistics (never the global ones set on it): N, tokens and every term
  /// with df > 0, terms in byte order. What each shard sends for merge_term_stats().
  TermStats term_stats() const;
  /// The same restricted to the distinct terms of `text` (tokenized like a query) that occur
  /// here: a query's statistics, far smaller than the whole vocabulary.
  TermStats term_stats(std::string_view text) const;
  /// Scores with corpus-wide statistics from now on (see the file comment). `global` must
  /// include this index's own documents: invalid_argument (nothing changed) when it is
  /// malformed (validate_term_stats), has fewer documents, tokens or df than this index, or a
  /// term's df outside this index exceeds the documents outside it.
  Status set_global_stats(const TermStats& global);
  /// Back to this index's own statistics.
  void clear_global_stats() noexcept;
  bool has_global_stats() const noexcept;

  /// Versioned, CRC-checked bytes (magic "LLMDSBM2"); dead postings are not written, and the
  /// same index gives the same bytes natively and in wasm.
  std::vector<uint8_t> serialize() const;
  /// corrupt_data / version_mismatch for anything that is not an intact serialize() output;
  /// never reads out of bounds and never allocates more than the input can describe.
  static Result<InvertedIndex> deserialize(const uint8_t* data, std::size_t size);

 private:
  struct Impl;
  explicit InvertedIndex(std::unique_ptr<Impl> impl);
  Result<RankedHits> run_search(std::string_view query, uint32_t top_k, bool prune, const IdFilter& filter) const;
  TermStats term_stats_of(const std::string_view* text) const;  // nullptr: every term
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmds
