// SPDX-License-Identifier: MIT
// Private to src/text: varints, compressed posting lists, their cursors and score bounds.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace llmds {
namespace text {

inline void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

/// Bytes put_varint() writes for `v`.
inline std::size_t varint_size(uint64_t v) noexcept {
  std::size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

/// Room for `extra` more elements, growing geometrically (may throw; changes only capacity).
template <class T>
void reserve_more(std::vector<T>& v, std::size_t extra) {
  if (v.size() + extra <= v.capacity()) return;
  v.reserve(std::max(v.size() + extra, 2 * v.capacity()));
}

/// Decodes a varint the index wrote itself (in memory, trusted): no bounds checks.
inline uint64_t get_varint(const uint8_t*& p) noexcept {
  uint64_t v = *p & 0x7f;
  if ((*p++ & 0x80) == 0) return v;
  for (int shift = 7;; shift += 7) {
    const uint8_t c = *p++;
    v |= static_cast<uint64_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) return v;
  }
}

/// Decodes an untrusted varint: false if it runs past `end`, exceeds `max`, or is not in its
/// shortest form (so every value has exactly one accepted encoding).
inline bool get_varint_checked(const uint8_t*& p, const uint8_t* end, uint64_t max, uint64_t& v) noexcept {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p == end) return false;
    const uint8_t c = *p++;
    const uint64_t bits = static_cast<uint64_t>(c & 0x7f);
    if (shift == 63 && bits > 1) return false;
    v |= bits << shift;
    if ((c & 0x80) == 0) return (c != 0 || shift == 0) && v <= max;
  }
  return false;
}

/// A tiny Pareto set of (tf, document length) points that dominates every posting of a list:
/// for each posting some point has tf >= its tf and length <= its length. BM25's tf part grows
/// with tf and shrinks with length, so its maximum over the points bounds every posting's, for
/// any avgdl, k1 and b: the bound stays exact as the collection statistics move. When the set is
/// full, the new point is merged into its nearest neighbour as (max tf, min length), which only
/// loosens the bound.
class TfBound {
 public:
  static constexpr int kPoints = 4;

  void add(uint32_t tf, uint32_t len) noexcept {
    for (int i = 0; i < n_; ++i) {
      if (tf_[i] >= tf && len_[i] <= len) return;
    }
    int k = 0;
    for (int i = 0; i < n_; ++i) {
      if (!(tf >= tf_[i] && len <= len_[i])) {
        tf_[k] = tf_[i];
        len_[k] = len_[i];
        ++k;
      }
    }
    n_ = k;
    if (n_ < kPoints) {
      tf_[n_] = tf;
      len_[n_] = len;
      ++n_;
      return;
    }
    int best = 0;
    for (int i = 1; i < n_; ++i) {
      if (distance(tf_[i], tf) < distance(tf_[best], tf)) best = i;
    }
    tf_[best] = std::max(tf_[best], tf);
    len_[best] = std::min(len_[best], len);
  }

  /// max over points of tf * k1p1 / (tf + c1 + c2 * len).
  double max_tf_part(double k1p1, double c1, double c2) const noexcept {
    double best = 0.0;
    for (int i = 0; i < n_; ++i) {
      const double tf = tf_[i];
      best = std::max(best, tf * k1p1 / (tf + (c1 + c2 * len_[i])));
    }
    return best;
  }

  void clear() noexcept { n_ = 0; }

 private:
  static uint32_t distance(uint32_t a, uint32_t b) noexcept { return a > b ? a - b : b - a; }

  uint32_t tf_[kPoints] = {};
  uint32_t len_[kPoints] = {};
  int n_ = 0;
};

/// Postings per skip entry: a skip costs 8 bytes, a block is ~128-300 bytes of varints.
constexpr uint32_t kBlock = 128;

struct Skip {
  uint32_t last_doc;    ///< slot of the block's last posting
  uint32_t end_offset;  ///< byte offset just past the block
};

/// One term's postings in slot order. Each posting is the varint (gap << 1 | (tf == 1)) and,
/// only when tf != 1, the varint tf - 2, where gap = slot - (previous slot + 1) (the first
/// posting's gap is its slot). Most postings have tf == 1 and a small gap: one byte.
struct PostingList {
  std::vector<uint8_t> bytes;
  std::vector<Skip> skips;  // one per full block of kBlock postings
  uint32_t count = 0;       // postings encoded, live and dead
  uint32_t df = 0;          // live postings
  uint32_t last_doc = 0;    // slot of the last encoded posting (count > 0)
  TfBound bound;

  /// Makes room so that append(doc, tf, len) cannot allocate (may throw; changes only capacity).
  void reserve_append(uint32_t doc, uint32_t tf) {
    const uint64_t gap = count == 0 ? doc : doc - last_doc - 1;
    reserve_more(bytes, tf == 1 ? varint_size(gap << 1 | 1) : varint_size(gap << 1) + varint_size(tf - 2));
    if ((count + 1) % kBlock == 0) reserve_more(skips, 1);
  }

  /// `doc` must be greater than every slot already in the list.
  void append(uint32_t doc, uint32_t tf, uint32_t len) {
    const uint64_t gap = count == 0 ? doc : doc - last_doc - 1;
    if (tf == 1) {
      put_varint(bytes, gap << 1 | 1);
    } else {
      put_varint(bytes, gap << 1);
      put_varint(bytes, tf - 2);
    }
    ++count;
    last_doc = doc;
    bound.add(tf, len);
    if (count % kBlock == 0) skips.push_back({doc, static_cast<uint32_t>(bytes.size())});
  }

  void release() {
    std::vector<uint8_t>().swap(bytes);
    std::vector<Skip>().swap(skips);
    count = 0;
    df = 0;
    last_doc = 0;
    bound.clear();
  }

  std::size_t heap_bytes() const noexcept { return bytes.capacity() + skips.capacity() * sizeof(Skip); }
};

/// Forward iterator over a PostingList with next_geq (seek) through the skip entries.
class Cursor {
 public:
  static constexpr uint32_t kEnd = UINT32_MAX;

  void reset(const PostingList& list) noexcept {
    list_ = &list;
    p_ = list.bytes.data();
    end_ = p_ + list.bytes.size();
    base_ = 0;
    consumed_ = 0;
    advance();
  }

  uint32_t doc() const noexcept { return doc_; }
  uint32_t tf() const noexcept { return tf_; }

  void advance() noexcept {
    if (p_ == end_) {
      doc_ = kEnd;
      return;
    }
    const uint64_t v = get_varint(p_);
    doc_ = base_ + static_cast<uint32_t>(v >> 1);
    tf_ = (v & 1) != 0 ? 1 : static_cast<uint32_t>(get_varint(p_)) + 2;
    base_ = doc_ + 1;
    ++consumed_;
  }

  /// Moves to the first posting with slot >= target (kEnd if none); never moves backwards.
  void seek(uint32_t target) noexcept {
    if (doc_ >= target) return;
    const std::vector<Skip>& skips = list_->skips;
    const std::size_t block = (consumed_ - 1) / kBlock;
    if (block < skips.size() && skips[block].last_doc < target) {
      // The target lies past the current block: jump to the start of the first block whose
      // last slot reaches it (or of the unfinished tail block).
      const auto it = std::lower_bound(skips.begin() + static_cast<std::ptrdiff_t>(block) + 1, skips.end(), target,
                                       [](const Skip& s, uint32_t t) { return s.last_doc < t; });
      const Skip& prev = *(it - 1);
      p_ = list_->bytes.data() + prev.end_offset;
      base_ = prev.last_doc + 1;
      consumed_ = static_cast<uint32_t>(it - skips.begin()) * kBlock;
      advance();
    }
    while (doc_ < target) advance();
  }

 private:
  const PostingList* list_ = nullptr;
  const uint8_t* p_ = nullptr;
  const uint8_t* end_ = nullptr;
  uint32_t base_ = 0;
  uint32_t consumed_ = 0;
  uint32_t doc_ = kEnd;
  uint32_t tf_ = 0;
};

}  // namespace text
}  // namespace llmds
