// SPDX-License-Identifier: MIT
#include "llmds/inverted_index.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>

#include "llmds/serialize.hpp"
#include "llmds/tokenizer.hpp"
#include "text/postings.hpp"
#include "text/term_dictionary.hpp"

namespace llmds {

using text::Cursor;
using text::PostingList;

namespace {

constexpr uint32_t kNoSlot = UINT32_MAX;

Status validate_options(const InvertedIndexOptions& o) {
  if (!std::isfinite(o.k1) || o.k1 < 0.0) {
    return invalid_argument("k1 must be a finite number >= 0, got " + std::to_string(o.k1));
  }
  if (!(o.b >= 0.0 && o.b <= 1.0)) {
    return invalid_argument("b must be a number in [0, 1], got " + std::to_string(o.b));
  }
  return Status::success();
}

/// The single term of `text`, or invalid_argument naming `what`.
Result<std::string> single_term(std::string_view text, const char* what) {
  TermScanner s(text);
  if (!s.next()) {
    return invalid_argument(std::string(what) + ": term must contain one word (letters or digits), got \"" +
                            std::string(text.substr(0, 64)) + "\"");
  }
  std::string term(s.term());
  if (s.next()) {
    return invalid_argument(std::string(what) + ": term must be a single word, got \"" +
                            std::string(text.substr(0, 64)) + "\"");
  }
  return term;
}

/// Orders results: higher score first, then smaller document id. (A function object rather
/// than a function so the heap operations inline it.)
struct Better {
  bool operator()(const std::pair<double, uint32_t>& a, const std::pair<double, uint32_t>& b) const noexcept {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  }
};
constexpr Better better{};

/// Orders term ids by their terms' bytes: the order scores are summed in and TermStats lists
/// terms in (one comparator type, so one sort instantiation for every use).
struct ByTerm {
  const text::TermDictionary* dict;
  bool operator()(uint32_t a, uint32_t b) const noexcept { return dict->term(a) < dict->term(b); }
};

/// Sorts term ids by term. A heap sort: O(n log n) like std::sort, at a fraction of its code
/// size in the wasm download (query term lists are tiny; full vocabularies are a one-off).
void sort_by_term(std::vector<uint32_t>& ids, const text::TermDictionary& dict) {
  std::make_heap(ids.begin(), ids.end(), ByTerm{&dict});
  std::sort_heap(ids.begin(), ids.end(), ByTerm{&dict});
}

}  // namespace

struct InvertedIndex::Impl {
  double k1 = 1.2;
  double b = 0.75;

  text::TermDictionary dict;
  std::vector<PostingList> lists;  // by term id
  uint32_t live_terms = 0;         // terms with df > 0

  // Per slot (documents in insertion order; removed ones stay as dead slots until compaction).
  std::vector<uint32_t> slot_ext;
  std::vector<uint32_t> slot_len;
  std::vector<uint8_t> slot_alive;
  // Forward lists: per slot, varints (term id gap, tf - 1) in term order; what a removal needs.
  std::vector<uint8_t> fwd;
  std::vector<std::size_t> fwd_off = {0};  // slot s owns fwd[fwd_off[s], fwd_off[s + 1])
  std::unordered_map<uint32_t, uint32_t> slot_of;  // external id -> live slot

  uint32_t live_docs = 0;
  uint64_t live_tokens = 0;
  uint64_t live_postings = 0;
  uint64_t dead_postings = 0;

  // Scratch for add_document (the object is not thread-safe for writers anyway).
  std::vector<uint32_t> scratch_ids;

  // Global statistics (set_global_stats): what the rest of the corpus adds to this index's own
  // counts. All zero and empty without them, which leaves every score as it was.
  bool global = false;
  uint64_t remote_docs = 0;
  uint64_t remote_tokens = 0;
  // Terms with a df > 0 elsewhere, ascending, and that df: a binary search per query term.
  std::vector<std::string> remote_terms;
  std::vector<uint64_t> remote_df;

  uint64_t remote_df_of(uint32_t term) const {
    if (remote_terms.empty()) return 0;
    const std::string_view t = dict.term(term);
    const auto it = std::lower_bound(remote_terms.begin(), remote_terms.end(), t,
                                     [](const std::string& a, std::string_view b) { return std::string_view(a) < b; });
    return it != remote_terms.end() && *it == t ? remote_df[static_cast<std::size_t>(it - remote_terms.begin())] : 0;
  }

  template <class F>
  void for_each_forward(uint32_t slot, F&& f) const {
    const uint8_t* p = fwd.data() + fwd_off[slot];
    const uint8_t* end = fwd.data() + fwd_off[slot + 1];
    uint32_t term = 0;
    bool first = true;
    while (p != end) {
      const uint32_t gap = static_cast<uint32_t>(text::get_varint(p));
      term = first ? gap : term + gap;
      first = false;
      const uint32_t tf = static_cast<uint32_t>(text::get_varint(p)) + 1;
      f(term, tf);
    }
  }

  /// A list re-encoded without its dead postings, renumbering slots through `slot_map` when
  /// given (an increasing map, so the order survives), with its bound recomputed. Built aside:
  /// `list` is not touched.
  PostingList rebuilt(const PostingList& list, const std::vector<uint32_t>* slot_map,
                      uint32_t also_dead = kNoSlot) const {
    PostingList fresh;
    if (list.df > 0) {
      fresh.bytes.reserve(list.bytes.size());
      Cursor c;
      c.reset(list);
      for (; c.doc() != Cursor::kEnd; c.advance()) {
        if (slot_alive[c.doc()] == 0 || c.doc() == also_dead) continue;
        const uint32_t slot = slot_map != nullptr ? (*slot_map)[c.doc()] : c.doc();
        fresh.append(slot, c.tf(), slot_len[c.doc()]);
      }
      fresh.bytes.shrink_to_fit();
      fresh.skips.shrink_to_fit();
    }
    fresh.df = fresh.count;
    return fresh;
  }

  /// Lists rebuilt ahead of a remove_slot(), by term in ascending order.
  using Rebuilt = std::vector<std::pair<uint32_t, PostingList>>;

  /// The rebuilds remove_slot(slot) will do, made aside (may throw; changes nothing).
  Rebuilt rebuilds_for_removal(uint32_t slot) const {
    Rebuilt out;
    for_each_forward(slot, [&](uint32_t term, uint32_t) {
      const PostingList& list = lists[term];
      const uint32_t df = list.df - 1;
      if (list.count - df > df) out.emplace_back(term, rebuilt(list, nullptr, slot));
    });
    return out;
  }

  /// Never fails. With `prebuilt` (from rebuilds_for_removal) it installs those lists;
  /// without, it rebuilds here and skips a rebuild when memory is short (it is an optimisation).
  void remove_slot(uint32_t slot, Rebuilt* prebuilt = nullptr) noexcept {
    slot_alive[slot] = 0;
    --live_docs;
    live_tokens -= slot_len[slot];
    std::size_t next = 0;
    for_each_forward(slot, [&](uint32_t term, uint32_t) {
      PostingList& list = lists[term];
      --list.df;
      --live_postings;
      ++dead_postings;
      if (list.df == 0) --live_terms;
      // Once dead postings outnumber live ones the list is at least half garbage: rebuilding it
      // costs O(its length), which the removals that killed those postings have paid for.
      if (list.count - list.df <= list.df) return;
      if (prebuilt != nullptr) {
        if (next < prebuilt->size() && (*prebuilt)[next].first == term) {
          dead_postings -= list.count - list.df;
          list = std::move((*prebuilt)[next++].second);
        }
        return;
      }
      try {
        PostingList fresh = rebuilt(list, nullptr);  // a bad_alloc here changes nothing
        dead_postings -= list.count - list.df;
        list = std::move(fresh);
      } catch (const std::bad_alloc&) {
      }
    });
  }

  /// Compacts when enough is dead. Never fails: compaction builds the new index aside and is
  /// skipped (to be retried by a later call) when memory is short.
  void maybe_compact() noexcept {
    const std::size_t dead_slots = slot_ext.size() - live_docs;
    const std::size_t dead_terms = dict.size() - live_terms;
    if (dead_slots > std::size_t{live_docs} + 1024 || dead_terms > std::size_t{live_terms} + 4096) {
      try {
        compact();
      } catch (const std::bad_alloc&) {
      }
    }
  }

  /// Renumbers live slots 0..live_docs-1 and live terms 0..live_terms-1 (both in their old
  /// order), dropping dead postings, dead forward lists and terms no document uses any more.
  void compact() {
    const uint32_t old_slots = static_cast<uint32_t>(slot_ext.size());
    std::vector<uint32_t> slot_map(old_slots, kNoSlot);
    uint32_t next = 0;
    for (uint32_t s = 0; s < old_slots; ++s) {
      if (slot_alive[s] != 0) slot_map[s] = next++;
    }
    text::TermDictionary new_dict;
    std::vector<PostingList> new_lists;
    new_lists.reserve(live_terms);
    std::vector<uint32_t> term_map(dict.size(), text::TermDictionary::kNone);
    for (uint32_t t = 0; t < dict.size(); ++t) {
      if (lists[t].df == 0) continue;
      term_map[t] = new_dict.insert(dict.term(t));
      new_lists.push_back(rebuilt(lists[t], &slot_map));  // the old lists stay intact until the commit
    }
    std::vector<uint32_t> new_ext(live_docs), new_len(live_docs);
    std::vector<uint8_t> new_fwd;
    std::vector<std::size_t> new_off;
    new_off.reserve(std::size_t{live_docs} + 1);
    new_off.push_back(0);
    for (uint32_t s = 0; s < old_slots; ++s) {
      if (slot_alive[s] == 0) continue;
      const uint32_t ns = slot_map[s];
      new_ext[ns] = slot_ext[s];
      new_len[ns] = slot_len[s];
      uint32_t prev = 0;
      bool first = true;
      for_each_forward(s, [&](uint32_t term, uint32_t tf) {
        const uint32_t nt = term_map[term];
        text::put_varint(new_fwd, first ? nt : nt - prev);
        text::put_varint(new_fwd, tf - 1);
        prev = nt;
        first = false;
      });
      new_off.push_back(new_fwd.size());
    }
    std::vector<uint8_t> new_alive(live_docs, 1);
    // Commit: nothing below allocates.
    for (auto& entry : slot_of) entry.second = slot_map[entry.second];
    dict = std::move(new_dict);
    lists = std::move(new_lists);
    slot_ext = std::move(new_ext);
    slot_len = std::move(new_len);
    slot_alive = std::move(new_alive);
    fwd = std::move(new_fwd);
    fwd_off = std::move(new_off);
    dead_postings = 0;
  }
};

InvertedIndex::InvertedIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
InvertedIndex::InvertedIndex(InvertedIndex&&) noexcept = default;
InvertedIndex& InvertedIndex::operator=(InvertedIndex&&) noexcept = default;
InvertedIndex::~InvertedIndex() = default;

Result<InvertedIndex> InvertedIndex::create(const InvertedIndexOptions& options) {
  Status st = validate_options(options);
  if (!st.ok()) return st;
  auto impl = std::make_unique<Impl>();
  impl->k1 = options.k1;
  impl->b = options.b;
  return InvertedIndex(std::move(impl));
}

Status InvertedIndex::add_document(uint32_t doc_id, std::string_view text) {
  Impl& m = *impl_;
  if (text.size() > UINT32_MAX) {
    return capacity_exceeded("addDocument: text of " + std::to_string(text.size()) +
                             " bytes is too long (at most 4294967295)");
  }
  const auto existing = m.slot_of.find(doc_id);
  const bool replacing = existing != m.slot_of.end();
  if (!replacing && m.live_docs >= kMaxDocuments) {
    return capacity_exceeded("addDocument: the index already holds " + std::to_string(m.live_docs) +
                             " documents (the limit)");
  }
  // Same up-front bound as Tokenizer::encode_into: n bytes hold at most n new terms of 1.5 n bytes.
  if (!m.dict.can_insert(text.size(), text.size() + text.size() / 2 + 1)) {
    return capacity_exceeded("addDocument: the vocabulary (" + std::to_string(m.dict.size()) +
                             " terms) cannot take the new terms of a " + std::to_string(text.size()) +
                             "-byte text");
  }
  // Out of memory: first tokenize and reserve room for every change (undoing the new terms if
  // that throws), then commit with operations that cannot allocate. New terms enter the
  // dictionary with df 0 until their postings land. Capacities grown ahead stay grown.
  std::vector<uint32_t>& ids = m.scratch_ids;
  const text::TermDictionary::Mark mark = m.dict.mark();
  const std::size_t lists_before = m.lists.size();
  const uint32_t slot = static_cast<uint32_t>(m.slot_ext.size());
  auto entry = existing;
  Impl::Rebuilt rebuilt;  // lists the removal of a replaced document rebuilds
  try {
    if (replacing) rebuilt = m.rebuilds_for_removal(existing->second);
    ids.clear();
    TermScanner scanner(text);
    while (scanner.next()) ids.push_back(m.dict.find_or_insert(scanner.term()));
    if (m.lists.size() < m.dict.size()) m.lists.resize(m.dict.size());
    std::sort(ids.begin(), ids.end());
    std::size_t fwd_bytes = 0;
    uint32_t prev = 0;
    for (std::size_t i = 0, distinct = 0; i < ids.size(); ++distinct) {
      std::size_t j = i + 1;
      while (j < ids.size() && ids[j] == ids[i]) ++j;
      const uint32_t tf = static_cast<uint32_t>(j - i);
      fwd_bytes += text::varint_size(distinct == 0 ? ids[i] : ids[i] - prev) + text::varint_size(tf - 1);
      auto pre = std::lower_bound(rebuilt.begin(), rebuilt.end(), ids[i],
                                  [](const auto& r, uint32_t term) { return r.first < term; });
      (pre != rebuilt.end() && pre->first == ids[i] ? pre->second : m.lists[ids[i]]).reserve_append(slot, tf);
      prev = ids[i];
      i = j;
    }
    text::reserve_more(m.fwd, fwd_bytes);
    text::reserve_more(m.fwd_off, 1);
    text::reserve_more(m.slot_ext, 1);
    text::reserve_more(m.slot_len, 1);
    text::reserve_more(m.slot_alive, 1);
    if (!replacing) entry = m.slot_of.emplace(doc_id, slot).first;  // last: nothing fails after it
  } catch (...) {
    m.lists.resize(lists_before);  // shrinks: no allocation
    m.dict.rollback(mark);
    throw;
  }

  // Commit: nothing below allocates.
  const uint32_t len = static_cast<uint32_t>(ids.size());
  if (replacing) m.remove_slot(entry->second, &rebuilt);
  entry->second = slot;
  m.slot_ext.push_back(doc_id);
  m.slot_len.push_back(len);
  m.slot_alive.push_back(1);
  uint32_t prev = 0;
  uint64_t distinct = 0;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i + 1;
    while (j < ids.size() && ids[j] == ids[i]) ++j;
    const uint32_t term = ids[i];
    const uint32_t tf = static_cast<uint32_t>(j - i);
    text::put_varint(m.fwd, distinct == 0 ? term : term - prev);
    text::put_varint(m.fwd, tf - 1);
    prev = term;
    ++distinct;
    PostingList& list = m.lists[term];
    if (list.df == 0) ++m.live_terms;
    list.append(slot, tf, len);
    ++list.df;
    i = j;
  }
  m.fwd_off.push_back(m.fwd.size());
  ++m.live_docs;
  m.live_tokens += len;
  m.live_postings += distinct;
  // Compaction renumbers terms, so it waits until this document's term ids are spent.
  m.maybe_compact();
  return Status::success();
}

bool InvertedIndex::remove_document(uint32_t doc_id) {
  Impl& m = *impl_;
  const auto it = m.slot_of.find(doc_id);
  if (it == m.slot_of.end()) return false;
  m.remove_slot(it->second);
  m.slot_of.erase(it);
  m.maybe_compact();
  return true;
}

bool InvertedIndex::has_document(uint32_t doc_id) const noexcept { return impl_->slot_of.count(doc_id) != 0; }

Result<RankedHits> InvertedIndex::search(std::string_view query, uint32_t top_k) const {
  return run_search(query, top_k, true, IdFilter::all());
}

Result<RankedHits> InvertedIndex::search_exhaustive(std::string_view query, uint32_t top_k) const {
  return run_search(query, top_k, false, IdFilter::all());
}

Result<RankedHits> InvertedIndex::search(std::string_view query, uint32_t top_k, const IdFilter& filter) const {
  return run_search(query, top_k, true, filter);
}

Result<RankedHits> InvertedIndex::search_exhaustive(std::string_view query, uint32_t top_k,
                                                    const IdFilter& filter) const {
  return run_search(query, top_k, false, filter);
}

std::vector<uint32_t> InvertedIndex::document_ids() const {
  const Impl& m = *impl_;
  std::vector<uint32_t> out;
  out.reserve(m.live_docs);
  for (std::size_t s = 0; s < m.slot_ext.size(); ++s) {
    if (m.slot_alive[s] != 0) out.push_back(m.slot_ext[s]);
  }
  return out;
}

Result<RankedHits> InvertedIndex::run_search(std::string_view query, uint32_t top_k, bool prune,
                                             const IdFilter& filter) const {
  if (top_k == 0) return invalid_argument("topK must be an integer >= 1, got 0");
  const Impl& m = *impl_;
  RankedHits hits;
  if (m.live_docs == 0) return hits;

  // A filter becomes a mask over slots (live allowed documents only), which then stands in for
  // the liveness array below: disallowed postings are skipped exactly as dead ones are.
  std::vector<uint8_t> allowed_mask;
  uint32_t n_allowed = m.live_docs;
  if (!filter.is_all()) {
    allowed_mask.assign(m.slot_ext.size(), 0);
    n_allowed = 0;
    if (filter.kind() == IdFilter::Kind::ids) {
      for (std::size_t i = 0; i < filter.size(); ++i) {
        const auto it = m.slot_of.find(filter.list()[i]);
        if (it == m.slot_of.end() || allowed_mask[it->second] != 0) continue;
        allowed_mask[it->second] = 1;
        ++n_allowed;
      }
    } else {
      for (std::size_t s = 0; s < m.slot_ext.size(); ++s) {
        if (m.slot_alive[s] != 0 && filter.call(m.slot_ext[s])) {
          allowed_mask[s] = 1;
          ++n_allowed;
        }
      }
    }
    if (n_allowed == 0) return hits;
  }

  // Distinct known query terms in term-id order (the fixed order scores are summed in).
  std::vector<uint32_t> qterms;
  TermScanner scanner(query);
  while (scanner.next()) {
    const uint32_t id = m.dict.find(scanner.term());
    if (id != text::TermDictionary::kNone && m.lists[id].df > 0) qterms.push_back(id);
  }
  if (qterms.empty()) return hits;
  // Byte order of the terms, not term-id order: ids are per index, so this is the one order
  // every shard of a corpus shares (scores summed in it are bit-identical across shards).
  sort_by_term(qterms, m.dict);

  // With global statistics, N, tokens and df count the rest of the corpus too (0 without).
  const double n_docs = static_cast<double>(m.live_docs + m.remote_docs);
  const double avgdl = static_cast<double>(m.live_tokens + m.remote_tokens) / n_docs;  // > 0: some document has terms
  const double k1p1 = m.k1 + 1.0;
  const double c1 = m.k1 * (1.0 - m.b);
  const double c2 = m.k1 * m.b / avgdl;

  struct Term {
    const PostingList* list;
    double weight;  // qtf * idf
    double bound;   // weight * max tf part, inflated
    uint32_t canon; // position in term-id order
  };
  std::vector<Term> terms;
  for (std::size_t i = 0; i < qterms.size();) {
    std::size_t j = i + 1;
    while (j < qterms.size() && qterms[j] == qterms[i]) ++j;
    const PostingList& list = m.lists[qterms[i]];
    const double df = static_cast<double>(list.df + m.remote_df_of(qterms[i]));
    const double idf = std::log(1.0 + (n_docs - df + 0.5) / (df + 0.5));
    const double weight = static_cast<double>(j - i) * idf;
    const double bound = weight * list.bound.max_tf_part(k1p1, c1, c2) * (1.0 + 1e-9);
    terms.push_back({&list, weight, bound, static_cast<uint32_t>(terms.size())});
    i = j;
  }
  const std::size_t nt = terms.size();
  // MaxScore order: ascending bounds; prefix[i] bounds any score made only of terms 0..i.
  std::sort(terms.begin(), terms.end(), [](const Term& a, const Term& b) {
    return a.bound < b.bound || (a.bound == b.bound && a.canon < b.canon);
  });
  std::vector<double> prefix(nt);
  std::vector<uint32_t> pos_of_canon(nt);
  std::vector<Cursor> cursors(nt);
  double running = 0.0;
  for (std::size_t i = 0; i < nt; ++i) {
    running += terms[i].bound;
    prefix[i] = running * (1.0 + 1e-12);
    pos_of_canon[terms[i].canon] = static_cast<uint32_t>(i);
    cursors[i].reset(*terms[i].list);
  }
  const uint8_t* alive = allowed_mask.empty() ? m.slot_alive.data() : allowed_mask.data();
  const uint32_t* lens = m.slot_len.data();
  // Without tombstones or a filter (the common case) no posting needs the liveness lookup.
  const bool any_dead = m.dead_postings > 0 || !allowed_mask.empty();
  auto skip_dead = [alive, any_dead](Cursor& c) {
    if (!any_dead) return;
    while (c.doc() != Cursor::kEnd && alive[c.doc()] == 0) c.advance();
  };
  for (Cursor& c : cursors) skip_dead(c);

  const std::size_t k = std::min<std::size_t>(top_k, n_allowed);
  std::vector<std::pair<double, uint32_t>> heap;  // worst result on top
  heap.reserve(k);
  std::vector<double> contrib(nt, 0.0);
  double theta = -std::numeric_limits<double>::infinity();
  std::size_t first_essential = 0;

  for (;;) {
    while (first_essential < nt && prefix[first_essential] < theta) ++first_essential;
    if (first_essential == nt) break;
    uint32_t d = Cursor::kEnd;
    for (std::size_t i = first_essential; i < nt; ++i) d = std::min(d, cursors[i].doc());
    if (d == Cursor::kEnd) break;

    const double kd = c1 + c2 * lens[d];
    std::fill(contrib.begin(), contrib.end(), 0.0);
    double partial = 0.0;
    for (std::size_t i = first_essential; i < nt; ++i) {
      Cursor& c = cursors[i];
      if (c.doc() != d) continue;
      const double tf = c.tf();
      const double s = terms[i].weight * (tf * k1p1 / (tf + kd));
      contrib[i] = s;
      partial += s;
      c.advance();
      skip_dead(c);
    }
    bool pruned = false;
    for (std::size_t i = first_essential; i-- > 0;) {
      if (partial + prefix[i] < theta) {
        pruned = true;
        break;
      }
      Cursor& c = cursors[i];
      c.seek(d);
      skip_dead(c);
      if (c.doc() != d) continue;
      const double tf = c.tf();
      const double s = terms[i].weight * (tf * k1p1 / (tf + kd));
      contrib[i] = s;
      partial += s;
    }
    if (pruned) continue;
    double score = 0.0;
    for (std::size_t c = 0; c < nt; ++c) score += contrib[pos_of_canon[c]];
    const std::pair<double, uint32_t> entry{score, m.slot_ext[d]};
    if (heap.size() < k) {
      heap.push_back(entry);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(entry, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = entry;
      std::push_heap(heap.begin(), heap.end(), better);
    } else {
      continue;
    }
    if (prune && heap.size() == k) theta = heap.front().first;
  }

  std::sort(heap.begin(), heap.end(), better);
  hits.ids.reserve(heap.size());
  hits.scores.reserve(heap.size());
  for (const auto& e : heap) {
    hits.ids.push_back(e.second);
    hits.scores.push_back(e.first);
  }
  return hits;
}

Result<uint32_t> InvertedIndex::term_frequency(std::string_view term, uint32_t doc_id) const {
  Result<std::string> t = single_term(term, "getTermFrequency");
  if (!t.ok()) return t.status();
  const Impl& m = *impl_;
  const uint32_t id = m.dict.find(*t);
  const auto it = m.slot_of.find(doc_id);
  if (id == text::TermDictionary::kNone || it == m.slot_of.end()) return uint32_t{0};
  uint32_t found = 0;
  m.for_each_forward(it->second, [&](uint32_t term_id, uint32_t tf) {
    if (term_id == id) found = tf;
  });
  return found;
}

Result<uint32_t> InvertedIndex::document_frequency(std::string_view term) const {
  Result<std::string> t = single_term(term, "getDocumentFrequency");
  if (!t.ok()) return t.status();
  const Impl& m = *impl_;
  const uint32_t id = m.dict.find(*t);
  return id == text::TermDictionary::kNone ? uint32_t{0} : m.lists[id].df;
}

uint32_t InvertedIndex::size() const noexcept { return impl_->live_docs; }
double InvertedIndex::k1() const noexcept { return impl_->k1; }
double InvertedIndex::b() const noexcept { return impl_->b; }

InvertedIndexStats InvertedIndex::stats() const noexcept {
  const Impl& m = *impl_;
  InvertedIndexStats s;
  s.documents = m.live_docs;
  s.terms = m.live_terms;
  s.postings = m.live_postings;
  s.tokens = m.live_tokens;
  s.avg_doc_length = m.live_docs == 0 ? 0.0 : static_cast<double>(m.live_tokens) / m.live_docs;
  s.dead_postings = m.dead_postings;
  std::size_t list_heap = 0;
  for (const PostingList& l : m.lists) {
    s.compressed_bytes += l.bytes.size();
    list_heap += l.heap_bytes();
  }
  s.uncompressed_bytes = static_cast<std::size_t>(m.live_postings + m.dead_postings) * 8;
  // unordered_map: a bucket pointer per bucket plus a node (next pointer, key, value, cached
  // hash rounded up) per entry; an estimate, the exact figure depends on the standard library.
  const std::size_t map_bytes =
      m.slot_of.bucket_count() * sizeof(void*) + m.slot_of.size() * (sizeof(void*) + 2 * sizeof(std::size_t));
  s.bytes = sizeof(Impl) + m.dict.memory_bytes() + m.lists.capacity() * sizeof(PostingList) + list_heap +
            m.slot_ext.capacity() * 4 + m.slot_len.capacity() * 4 + m.slot_alive.capacity() + m.fwd.capacity() +
            m.fwd_off.capacity() * sizeof(std::size_t) + map_bytes + m.scratch_ids.capacity() * 4 +
            m.remote_terms.capacity() * sizeof(std::string) + m.remote_df.capacity() * 8;
  return s;
}

TermStats InvertedIndex::term_stats() const { return term_stats_of(nullptr); }

TermStats InvertedIndex::term_stats(std::string_view text) const { return term_stats_of(&text); }

TermStats InvertedIndex::term_stats_of(const std::string_view* text) const {
  const Impl& m = *impl_;
  std::vector<uint32_t> ids;
  if (text == nullptr) {
    ids.reserve(m.live_terms);
    for (uint32_t t = 0; t < m.dict.size(); ++t) {
      if (m.lists[t].df > 0) ids.push_back(t);
    }
  } else {
    TermScanner scanner(*text);
    while (scanner.next()) {
      const uint32_t id = m.dict.find(scanner.term());
      if (id != text::TermDictionary::kNone && m.lists[id].df > 0) ids.push_back(id);
    }
  }
  sort_by_term(ids, m.dict);
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  TermStats s;
  s.documents = m.live_docs;
  s.tokens = m.live_tokens;
  s.terms.reserve(ids.size());
  s.df.reserve(ids.size());
  for (uint32_t t : ids) {
    s.terms.emplace_back(m.dict.term(t));
    s.df.push_back(m.lists[t].df);
  }
  return s;
}

Status InvertedIndex::set_global_stats(const TermStats& global) {
  Impl& m = *impl_;
  if (Status st = validate_term_stats(global); !st) return Status(st.code(), "setGlobalStats: " + st.message());
  const Status not_included = invalid_argument(
      "setGlobalStats: the global statistics must include this index's own documents, tokens and df "
      "(and a term's df outside it must not exceed the documents outside it)");
  if (global.documents < m.live_docs || global.tokens < m.live_tokens) return not_included;
  const uint64_t remote_docs = global.documents - m.live_docs;
  std::vector<std::string> remote_terms;  // built aside: a bad_alloc changes nothing
  std::vector<uint64_t> remote_df;
  for (std::size_t i = 0; i < global.terms.size(); ++i) {
    const uint32_t id = m.dict.find(global.terms[i]);
    const uint64_t local = id == text::TermDictionary::kNone ? 0 : m.lists[id].df;
    if (global.df[i] < local || global.df[i] - local > remote_docs) return not_included;
    if (global.df[i] > local) {  // global.terms ascend, so these do too
      remote_terms.push_back(global.terms[i]);
      remote_df.push_back(global.df[i] - local);
    }
  }
  m.global = true;
  m.remote_docs = remote_docs;
  m.remote_tokens = global.tokens - m.live_tokens;
  m.remote_terms = std::move(remote_terms);
  m.remote_df = std::move(remote_df);
  return Status::success();
}

void InvertedIndex::clear_global_stats() noexcept {
  Impl& m = *impl_;
  m.global = false;
  m.remote_docs = 0;
  m.remote_tokens = 0;
  std::vector<std::string>().swap(m.remote_terms);
  std::vector<uint64_t>().swap(m.remote_df);
}

bool InvertedIndex::has_global_stats() const noexcept { return impl_->global; }

void InvertedIndex::clear() {
  auto fresh = std::make_unique<Impl>();
  fresh->k1 = impl_->k1;
  fresh->b = impl_->b;
  impl_ = std::move(fresh);
}

// ---------------------------------------------------------------------------------------------
// Serialization. Payload (inside the serialize.hpp envelope, all integers little-endian):
//   f64 k1, f64 b, u32 documents N, u32 terms T, u64 postings P,
//   u32[N] document ids in slot order,
//   T x { u32 term length, term bytes (one normalised term), u32 df, u32 byte length,
//         the term's postings encoded as in memory, slots renumbered 0..N-1 }.
// Document lengths and forward lists are derived on load (length = sum of tf), so the file
// cannot contradict itself about them.

std::vector<uint8_t> InvertedIndex::serialize() const {
  const Impl& m = *impl_;
  std::vector<uint32_t> slot_map(m.slot_ext.size(), kNoSlot);
  uint32_t next = 0;
  for (std::size_t s = 0; s < m.slot_ext.size(); ++s) {
    if (m.slot_alive[s] != 0) slot_map[s] = next++;
  }
  ByteWriter w;
  begin_envelope(w, kMagic, kFormatVersion);
  w.put_f64(m.k1);
  w.put_f64(m.b);
  w.put_u32(m.live_docs);
  w.put_u32(m.live_terms);
  w.put_u64(m.live_postings);
  for (std::size_t s = 0; s < m.slot_ext.size(); ++s) {
    if (m.slot_alive[s] != 0) w.put_u32(m.slot_ext[s]);
  }
  PostingList tmp;
  for (uint32_t t = 0; t < m.dict.size(); ++t) {
    const PostingList& list = m.lists[t];
    if (list.df == 0) continue;
    const std::string_view term = m.dict.term(t);
    w.put_u32(static_cast<uint32_t>(term.size()));
    w.put_bytes(term.data(), term.size());
    w.put_u32(list.df);
    tmp.release();
    Cursor c;
    c.reset(list);
    for (; c.doc() != Cursor::kEnd; c.advance()) {
      if (m.slot_alive[c.doc()] != 0) tmp.append(slot_map[c.doc()], c.tf(), 0);
    }
    w.put_u32(static_cast<uint32_t>(tmp.bytes.size()));
    w.put_bytes(tmp.bytes.data(), tmp.bytes.size());
  }
  return finish_envelope(std::move(w));
}

Result<InvertedIndex> InvertedIndex::deserialize(const uint8_t* data, std::size_t size) {
  Result<ByteSpan> span = open_envelope(data, size, kMagic, kFormatVersion, "InvertedIndex");
  if (!span.ok()) return span.status();
  ByteReader r(span->data, span->size);
  auto bad = [](const std::string& why) { return corrupt_data("InvertedIndex.deserialize: " + why); };

  InvertedIndexOptions options;
  uint32_t n_docs = 0, n_terms = 0;
  uint64_t n_postings = 0;
  if (!r.get_f64(options.k1) || !r.get_f64(options.b) || !r.get_u32(n_docs) || !r.get_u32(n_terms) ||
      !r.get_u64(n_postings)) {
    return bad("truncated header");
  }
  if (!validate_options(options).ok()) return bad("invalid k1 or b");
  if (n_docs > kMaxDocuments || !r.fits(n_docs, 4)) return bad("document count " + std::to_string(n_docs));
  // A term takes at least 14 bytes (4 + 1 + 4 + 4 + one posting byte).
  if (n_terms > text::TermDictionary::kMaxTerms || !r.fits(n_terms, 14)) {
    return bad("term count " + std::to_string(n_terms));
  }
  if (n_postings > r.remaining()) return bad("postings count " + std::to_string(n_postings));

  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.k1 = options.k1;
  m.b = options.b;
  m.slot_ext.resize(n_docs);
  m.slot_of.reserve(n_docs);
  for (uint32_t s = 0; s < n_docs; ++s) {
    if (!r.get_u32(m.slot_ext[s])) return bad("truncated document ids");
    if (!m.slot_of.emplace(m.slot_ext[s], s).second) {
      return bad("document id " + std::to_string(m.slot_ext[s]) + " appears twice");
    }
  }

  // Pass 1: validate every term and posting list, and sum the document lengths.
  struct Span {
    const uint8_t* p;
    uint32_t n;
    uint32_t df;
  };
  std::vector<Span> spans;
  spans.reserve(n_terms);
  std::vector<uint64_t> lens(n_docs, 0);
  uint64_t postings = 0;
  std::string term;
  for (uint32_t t = 0; t < n_terms; ++t) {
    uint32_t term_len = 0;
    if (!r.get_u32(term_len) || term_len == 0 || !r.fits(term_len, 1)) return bad("term " + std::to_string(t));
    term.resize(term_len);
    r.get_bytes(&term[0], term_len);
    TermScanner scanner(term);
    if (!scanner.next() || scanner.term() != term || scanner.next()) {
      return bad("term " + std::to_string(t) + " is not a normalised term");
    }
    if (m.dict.find(term) != text::TermDictionary::kNone) return bad("term " + std::to_string(t) + " repeats");
    m.dict.insert(term);
    uint32_t df = 0, nbytes = 0;
    if (!r.get_u32(df) || !r.get_u32(nbytes) || df == 0 || df > n_docs || nbytes < df || !r.fits(nbytes, 1)) {
      return bad("postings header of term " + std::to_string(t));
    }
    const uint8_t* p = span->data + r.position();
    const uint8_t* end = p + nbytes;
    r.skip(nbytes);
    uint64_t base = 0;
    for (uint32_t i = 0; i < df; ++i) {
      uint64_t v = 0, tf = 1;
      if (!text::get_varint_checked(p, end, uint64_t{UINT32_MAX} << 1 | 1, v)) return bad("posting varint");
      if ((v & 1) == 0) {
        if (!text::get_varint_checked(p, end, UINT32_MAX - 2, tf)) return bad("tf varint");
        tf += 2;
      }
      const uint64_t doc = base + (v >> 1);
      if (doc >= n_docs) return bad("posting of term " + std::to_string(t) + " names document slot " + std::to_string(doc));
      lens[doc] += tf;
      if (lens[doc] > UINT32_MAX) return bad("document length overflow");
      base = doc + 1;
    }
    if (p != end) return bad("postings of term " + std::to_string(t) + " have trailing bytes");
    postings += df;
    spans.push_back({end - nbytes, nbytes, df});
  }
  if (!r.at_end() || !r.ok()) return bad("trailing bytes after the last term");
  if (postings != n_postings) return bad("postings count does not match the lists");

  // Pass 2: build the lists (with skips and bounds) and the forward lists.
  m.lists.resize(n_terms);
  m.slot_len.resize(n_docs);
  for (uint32_t s = 0; s < n_docs; ++s) {
    m.slot_len[s] = static_cast<uint32_t>(lens[s]);
    m.live_tokens += lens[s];
  }
  std::vector<std::size_t> distinct(std::size_t{n_docs} + 1, 0);  // postings per slot, then CSR offsets
  std::vector<uint32_t> fwd_term(postings), fwd_tf(postings);
  for (uint32_t t = 0; t < n_terms; ++t) {
    PostingList& list = m.lists[t];
    const uint8_t* p = spans[t].p;
    uint32_t base = 0;
    for (uint32_t i = 0; i < spans[t].df; ++i) {
      const uint64_t v = text::get_varint(p);
      const uint32_t tf = (v & 1) != 0 ? 1 : static_cast<uint32_t>(text::get_varint(p)) + 2;
      const uint32_t doc = base + static_cast<uint32_t>(v >> 1);
      base = doc + 1;
      list.append(doc, tf, m.slot_len[doc]);
      ++distinct[doc + 1];
    }
    list.df = list.count;
  }
  for (uint32_t s = 0; s < n_docs; ++s) distinct[s + 1] += distinct[s];
  {
    std::vector<std::size_t> fill(distinct.begin(), distinct.end() - 1);
    for (uint32_t t = 0; t < n_terms; ++t) {
      Cursor c;
      c.reset(m.lists[t]);
      for (; c.doc() != Cursor::kEnd; c.advance()) {
        const std::size_t at = fill[c.doc()]++;
        fwd_term[at] = t;
        fwd_tf[at] = c.tf();
      }
    }
  }
  m.fwd_off.assign(1, 0);
  m.fwd_off.reserve(std::size_t{n_docs} + 1);
  for (uint32_t s = 0; s < n_docs; ++s) {
    uint32_t prev = 0;
    for (std::size_t at = distinct[s]; at < distinct[s + 1]; ++at) {
      text::put_varint(m.fwd, at == distinct[s] ? fwd_term[at] : fwd_term[at] - prev);
      text::put_varint(m.fwd, fwd_tf[at] - 1);
      prev = fwd_term[at];
    }
    m.fwd_off.push_back(m.fwd.size());
  }
  m.slot_alive.assign(n_docs, 1);
  m.live_docs = n_docs;
  m.live_terms = n_terms;
  m.live_postings = postings;
  return InvertedIndex(std::move(impl));
}

}  // namespace llmds
