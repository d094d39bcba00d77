// SPDX-License-Identifier: MIT
#include "llmds/hnsw.hpp"

#include <algorithm>
#include <cstddef>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <string_view>

#include "llmds/indexed_heap.hpp"  // detail::FlatIdMap
#include "llmds/serialize.hpp"
#include "simd/kernels.hpp"

namespace llmds {
namespace {

constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr float kInf = std::numeric_limits<float>::infinity();

// A (distance, slot) pair ordered by distance, then slot. The slot tie-break makes the order
// total, so heap pops and sorts give the same sequence with libstdc++ and libc++.
struct Cand {
  float d;
  uint32_t slot;
};
// Function objects rather than functions: passed to std::push_heap / std::sort, a function
// pointer is not always inlined (g++ keeps the indirect call), an object's operator() is.
struct Nearer {
  bool operator()(const Cand& a, const Cand& b) const noexcept { return a.d < b.d || (a.d == b.d && a.slot < b.slot); }
};
struct Farther {
  bool operator()(const Cand& a, const Cand& b) const noexcept { return Nearer()(b, a); }
};
constexpr Nearer nearer{};
constexpr Farther farther{};

constexpr std::size_t kCacheLine = 64;

constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept { return (n + to - 1) / to * to; }

// Room for `n` more elements without reallocating on the next push_backs (geometric growth).
template <typename V>
void reserve_more(V& v, std::size_t n) {
  if (v.size() + n > v.capacity()) v.reserve(std::max<std::size_t>({16, v.capacity() * 2, v.size() + n}));
}
template <typename V>
void make_room(V& v) {
  reserve_more(v, 1);
}

// Node rows of a fixed byte size, in blocks of 2^shift rows that are never moved once full:
// growth allocates one more block instead of copying everything into a larger array (which a
// std::vector does, leaving old and new array in a wasm heap that never shrinks). Slack is at
// most one block. Only the first block grows by doubling from a few rows up to the block size,
// so that a small index stays small. Rows start zeroed and 64-byte aligned blocks keep every
// row at a multiple of 16 bytes from a cache-line boundary.
class RowStore {
 public:
  static constexpr std::size_t kAlign = 64;
  static constexpr std::size_t kBlockBytes = std::size_t{1} << 20;  // largest block, unless one row is bigger
  static constexpr uint32_t kMaxShift = 12;                         // at most 4096 rows per block
  static constexpr uint32_t kFirstRows = 8;                         // initial capacity of the first block

  RowStore() = default;
  RowStore(RowStore&&) noexcept = default;
  RowStore& operator=(RowStore&&) noexcept = default;

  void init(std::size_t row_bytes) noexcept {
    row_bytes_ = row_bytes;
    shift_ = 0;
    while (shift_ < kMaxShift && (row_bytes << (shift_ + 1)) <= kBlockBytes) ++shift_;
    mask_ = (1u << shift_) - 1;
  }

  unsigned char* row(uint32_t i) const noexcept {
    return blocks_[i >> shift_].get() + static_cast<std::size_t>(i & mask_) * row_bytes_;
  }
  uint32_t size() const noexcept { return size_; }
  /// Bytes allocated for rows, plus the block table.
  std::size_t bytes() const noexcept {
    return static_cast<std::size_t>(capacity_) * row_bytes_ + blocks_.capacity() * sizeof(Block);
  }

  /// Makes room for `n` rows (may throw std::bad_alloc; then nothing changed).
  void reserve(uint32_t n) {
    while (capacity_ < n) grow(n);
  }
  /// Appends a zeroed row; reserve(size() + 1) first for a call that cannot throw.
  void push() {
    reserve(size_ + 1);
    ++size_;
  }

 private:
  struct Free {
    void operator()(unsigned char* p) const noexcept { ::operator delete(p, std::align_val_t{kAlign}); }
  };
  using Block = std::unique_ptr<unsigned char, Free>;

  Block allocate(uint32_t rows) const {
    const std::size_t bytes = static_cast<std::size_t>(rows) * row_bytes_;
    Block b(static_cast<unsigned char*>(::operator new(bytes, std::align_val_t{kAlign})));
    std::memset(b.get(), 0, bytes);
    return b;
  }

  void grow(uint32_t want) {
    const uint32_t block_rows = 1u << shift_;
    if (capacity_ < block_rows) {
      // The first block: doubles (copying at most one block's worth) until it is full size.
      uint32_t cap = capacity_ == 0 ? std::min(block_rows, kFirstRows) : std::min(block_rows, capacity_ * 2);
      while (cap < want && cap < block_rows) cap = std::min(block_rows, cap * 2);
      Block b = allocate(cap);
      if (blocks_.empty()) {
        blocks_.push_back(std::move(b));
      } else {
        std::memcpy(b.get(), blocks_[0].get(), static_cast<std::size_t>(capacity_) * row_bytes_);
        blocks_[0] = std::move(b);
      }
      capacity_ = cap;
      return;
    }
    make_room(blocks_);  // so that push_back cannot throw after the allocation
    blocks_.push_back(allocate(block_rows));
    capacity_ += block_rows;
  }

  std::vector<Block> blocks_;
  std::size_t row_bytes_ = 0;
  uint32_t shift_ = 0;
  uint32_t mask_ = 0;
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;
};

std::string u(uint64_t v) { return std::to_string(v); }

Status validate_options(const HnswOptions& o) {
  if (o.dim == 0 || o.dim > HNSW::kMaxDim) {
    return invalid_argument("dim must be an integer in [1, 65536], got " + u(o.dim));
  }
  if (o.m < HNSW::kMinM || o.m > HNSW::kMaxM) {
    return invalid_argument("M must be an integer in [2, 512], got " + u(o.m));
  }
  if (o.ef_construction == 0 || o.ef_construction > HNSW::kMaxEf) {
    return invalid_argument("efConstruction must be an integer in [1, 1048576], got " + u(o.ef_construction));
  }
  if (o.ef_search == 0 || o.ef_search > HNSW::kMaxEf) {
    return invalid_argument("efSearch must be an integer in [1, 1048576], got " + u(o.ef_search));
  }
  if (o.metric != Metric::l2 && o.metric != Metric::cosine && o.metric != Metric::ip) {
    return invalid_argument("metric must be 'l2', 'cosine' or 'ip', got " + u(static_cast<uint8_t>(o.metric)));
  }
  if (!(o.compact_threshold >= 0.0 && o.compact_threshold < 1.0)) {
    return invalid_argument("compactThreshold must be a number in [0, 1), got " + std::to_string(o.compact_threshold));
  }
  if (static_cast<uint8_t>(o.quantization) > 3) {
    return invalid_argument("quantization must be 'none', 'f16', 'i8' or 'b1', got " +
                            u(static_cast<uint8_t>(o.quantization)));
  }
  if (o.quantization == Quantization::b1 && o.metric == Metric::l2) {
    return invalid_argument("quantization 'b1' supports metric 'cosine' or 'ip', not 'l2'");
  }
  if (o.rescore != kRescoreDefault) {
    if (o.rescore > HNSW::kMaxRescore) return invalid_argument("rescore must be an integer in [0, 1024], got " + u(o.rescore));
    if (o.quantization == Quantization::none && o.rescore > 0) {
      return invalid_argument("rescore needs quantization ('f16', 'i8' or 'b1'): without it the walk is exact already");
    }
  }
  return Status::success();
}

// First non-finite element, or -1.
std::ptrdiff_t first_non_finite(const float* v, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

std::string describe_float(float f) {
  if (std::isnan(f)) return "NaN";
  return f > 0 ? "Infinity" : "-Infinity";
}

}  // namespace

const char* metric_name(Metric metric) noexcept {
  switch (metric) {
    case Metric::l2: return "l2";
    case Metric::cosine: return "cosine";
    case Metric::ip: return "ip";
  }
  return "unknown";
}

const char* quantization_name(Quantization q) noexcept {
  switch (q) {
    case Quantization::none: return "none";
    case Quantization::f16: return "f16";
    case Quantization::i8: return "i8";
    case Quantization::b1: return "b1";
  }
  return "unknown";
}

Result<Quantization> parse_quantization(const std::string& name) {
  if (name == "none") return Quantization::none;
  if (name == "f16") return Quantization::f16;
  if (name == "i8") return Quantization::i8;
  if (name == "b1") return Quantization::b1;
  return invalid_argument("quantization must be 'none', 'f16', 'i8' or 'b1', got '" + name + "'");
}

uint32_t HNSW::default_rescore(Quantization q) noexcept { return q == Quantization::b1 ? 20 : 0; }

Result<Metric> parse_metric(const std::string& name) {
  if (name == "l2") return Metric::l2;
  if (name == "cosine") return Metric::cosine;
  if (name == "ip") return Metric::ip;
  return invalid_argument("metric must be 'l2', 'cosine' or 'ip', got '" + name + "'");
}

uint32_t HNSW::level_from_random(uint64_t raw, uint32_t m) noexcept {
  constexpr uint64_t kTwo53 = 1ull << 53;
  const uint64_t r = (raw >> 11) + 1;  // U = r / 2^53 in (0, 1]
  uint32_t level = 0;
  uint64_t p = 1;  // m^level
  while (level < kMaxLevel && p <= kTwo53 / m) {
    const uint64_t next = p * m;
    if (r > kTwo53 / next) break;  // r * m^(level+1) > 2^53, i.e. U > m^-(level+1)
    p = next;
    ++level;
  }
  return level;
}

double HNSW::uniform_from_random(uint64_t raw) noexcept {
  return static_cast<double>((raw >> 11) + 1) * (1.0 / 9007199254740992.0);
}

// ---------------------------------------------------------------------------------------------

struct HNSW::Impl {
  // Options.
  uint32_t dim = 0;
  uint32_t m = 0;
  uint32_t m0 = 0;  // 2M: link capacity on layer 0
  uint32_t ef_construction = 0;
  uint32_t ef_search = 0;
  uint64_t seed = 0;
  Metric metric = Metric::l2;
  bool keep_pruned = false;
  double compact_threshold = 0.0;  // not serialized (see HnswOptions)
  Quantization quant = Quantization::none;
  uint32_t rescore = 0;            // resolved (never kRescoreDefault)
  bool keep_exact = false;         // quantized with rescore > 0: f32 vectors in `exact`
  std::size_t code_len = 0;        // bytes of a node's code (f32 vector when quant == none)
  std::mt19937_64 rng;

  // Nodes ("slots"), in insertion order. Removed nodes stay as tombstones.
  //
  // Each node's layer-0 row holds its vector and its layer-0 links side by side,
  //   [f32 vector[dim], padding | u32 count, u32 targets[m0], padding]
  // (hnswlib's data_level0 keeps them together too), so expanding a node during a search reads
  // its links from next to the vector that was read when the node was measured, not from a
  // separate array (a cache miss per expansion). Links after the vector: reading a vector
  // forwards, the hardware prefetcher brings the lines that follow it (measured: 7-16% more
  // queries per second in wasm than links first). Both parts start at a multiple of 16 bytes.
  // Rows live in fixed-size blocks (RowStore).
  RowStore rows;
  // With quantization the row holds the node's code instead of its f32 vector; the f32
  // vectors kept for rescoring live apart, in `exact` (one row of dim floats per slot), since
  // the walk never reads them.
  RowStore exact;
  std::size_t links_off = 0;  // byte offset of [count, targets...] in a row
  std::size_t vec_off = 0;    // byte offset of the vector in a row
  std::vector<uint32_t> ext_ids;   // slot -> external id
  std::vector<uint8_t> levels;     // slot -> top layer of the node
  std::vector<uint8_t> deleted;    // slot -> 1 when removed
  // Upper layers: a node with level L > 0 owns one array of L blocks of [count, m targets]
  // (layers 1..L), allocated at its exact size; null for level-0 nodes.
  std::vector<std::unique_ptr<uint32_t[]>> upper;
  std::size_t upper_words = 0;     // words held by `upper`'s arrays
  // Live external id -> slot. A flat table: inserting needs no allocation once it has room, so
  // add_batch can reserve for the whole batch up front.
  detail::FlatIdMap slot_of;
  uint32_t entry = kNone;          // a live node of maximal level, kNone iff no live node
  uint32_t max_level = 0;          // level of `entry`

  // Scratch reused across calls (hence "not thread-safe").
  mutable std::vector<uint32_t> visited;  // generation stamps
  mutable uint32_t generation = 0;
  mutable std::vector<Cand> cand_heap, result_heap;
  mutable std::vector<float> query_buf;
  std::vector<Cand> prune_buf;
  std::vector<uint32_t> select_buf, keep_buf, pruned_buf;
  std::vector<Cand> found_buf;
  // Insertion scratch: the new node's query (cosine: normalised), its planned links per layer
  // ([count, m targets] from its top layer down), the levels and upper-layer arrays of a batch.
  std::vector<float> insert_query;
  std::vector<uint32_t> plan_buf;
  std::vector<uint32_t> batch_ids;  // add_batch's sorted copy of its ids (duplicate check)
  std::vector<std::unique_ptr<uint32_t[]>> pending_upper;  // see prepare()
  std::size_t pending_front = 0;
  mutable std::vector<uint32_t> fresh_buf;  // search_layer: the unvisited links of a node (m0)
  mutable std::vector<uint64_t> filter_mask;  // filtered search: a bit per slot (compile_filter)
  mutable uint32_t warm_sink = 0;            // the values warm() read; never used
  // Quantization scratch, sized once in init_layout (an insertion after reserve() must not
  // allocate): the code of the node being inserted, of the query, and f32 copies of f16 nodes
  // measured as queries (connect_back's base, select_neighbors' candidate, a compacted node).
  std::vector<unsigned char> insert_code;
  mutable std::vector<unsigned char> query_code;
  std::vector<float> base_f32, cand_f32, insert_f32;

  void init_layout() {
    fresh_buf.resize(m0);
    // connect_back's buffers never hold more than m0 + 1 entries: sized once, they never grow
    // while an insertion is changing the graph.
    prune_buf.reserve(m0 + 1);
    select_buf.reserve(m0 + 1);
    keep_buf.reserve(m0 + 1);
    pruned_buf.reserve(m0 + 1);
    const std::size_t link_bytes = round_up((1 + static_cast<std::size_t>(m0)) * 4, 16);
    switch (quant) {
      case Quantization::none: code_len = static_cast<std::size_t>(dim) * 4; break;
      case Quantization::f16: code_len = static_cast<std::size_t>(dim) * 2; break;
      case Quantization::i8: code_len = simd::kI8Header + dim; break;
      case Quantization::b1: code_len = (static_cast<std::size_t>(dim) + 7) / 8; break;
    }
    const std::size_t vec_bytes = round_up(code_len, 16);
    vec_off = 0;
    links_off = vec_bytes;
    rows.init(link_bytes + vec_bytes);
    keep_exact = quant != Quantization::none && rescore > 0;
    if (keep_exact) exact.init(round_up(static_cast<std::size_t>(dim) * 4, 16));
    if (quant != Quantization::none) {
      // Padded to the row's code size with zeros: b1's Hamming kernel reads whole 16-byte blocks.
      insert_code.assign(vec_bytes, 0);
      query_code.assign(vec_bytes, 0);
    }
    if (quant == Quantization::f16) {
      base_f32.assign(dim, 0.0f);
      cand_f32.assign(dim, 0.0f);
      insert_f32.assign(dim, 0.0f);
    }
  }

  const unsigned char* code(uint32_t s) const noexcept { return rows.row(s) + vec_off; }
  unsigned char* code(uint32_t s) noexcept { return rows.row(s) + vec_off; }
  bool has_exact() const noexcept { return quant == Quantization::none || keep_exact; }
  // The exact f32 vector of slot s (has_exact() only).
  const float* exact_vec(uint32_t s) const noexcept {
    return keep_exact ? reinterpret_cast<const float*>(exact.row(s)) : vec(s);
  }

  // Code of a f32 vector (already normalised under cosine) into out (code_len bytes).
  void encode(const float* v, unsigned char* out) const noexcept {
    switch (quant) {
      case Quantization::none: std::memcpy(out, v, code_len); break;
      case Quantization::f16: {
        uint16_t h;
        for (uint32_t i = 0; i < dim; ++i) {
          h = simd::f32_to_f16(v[i]);
          std::memcpy(out + 2 * static_cast<std::size_t>(i), &h, 2);
        }
        break;
      }
      case Quantization::i8: simd::encode_i8(v, dim, out); break;
      case Quantization::b1: simd::encode_b1(v, dim, out); break;
    }
  }

  // The form dist() takes as its query for a f32 vector: the vector itself for none and f16
  // (f16 measures f32 × f16), its code (in `buf`) for i8 and b1.
  const void* query_form(const float* v, unsigned char* buf) const noexcept {
    if (quant == Quantization::none || quant == Quantization::f16) return v;
    encode(v, buf);
    return buf;
  }
  // The query form of the stored node s: its code, widened into `scratch` for f16.
  const void* node_query(uint32_t s, std::vector<float>& scratch) const noexcept {
    if (quant == Quantization::f16) {
      simd::widen_f16(reinterpret_cast<const uint16_t*>(code(s)), const_cast<float*>(scratch.data()), dim);
      return scratch.data();
    }
    return code(s);
  }

  uint32_t slots() const noexcept { return static_cast<uint32_t>(ext_ids.size()); }
  const float* vec(uint32_t s) const noexcept { return reinterpret_cast<const float*>(rows.row(s) + vec_off); }
  float* vec(uint32_t s) noexcept { return reinterpret_cast<float*>(rows.row(s) + vec_off); }
  const uint32_t* links0(uint32_t s) const noexcept {
    return reinterpret_cast<const uint32_t*>(rows.row(s) + links_off);
  }
  uint32_t* links(uint32_t s, uint32_t level) noexcept {
    if (level == 0) return reinterpret_cast<uint32_t*>(rows.row(s) + links_off);
    return upper[s].get() + static_cast<std::size_t>(level - 1) * (m + 1);
  }
  const uint32_t* links(uint32_t s, uint32_t level) const noexcept {
    return const_cast<Impl*>(this)->links(s, level);
  }
  uint32_t capacity(uint32_t level) const noexcept { return level == 0 ? m0 : m; }

  // Starts loading slot s's vector ahead of its distance computation: reads one byte of each
  // of its cache lines. Nothing waits for those values, so the loads of all the vectors warmed
  // in a row are in flight together, instead of each distance computation paying its own cache
  // misses one after another (at a high ef the search is bound by them). Plain loads rather than
  // a prefetch instruction: wasm has none, and natively (x86-64, g++) they measured ~1.4x
  // faster than __builtin_prefetch of the same lines. Volatile, so that neither the compiler
  // nor the wasm engine drops them; the sum goes to warm_sink for the same reason.
  void warm(uint32_t s) const noexcept {
    const volatile unsigned char* p = rows.row(s) + vec_off;
    const std::size_t n = code_len;
    uint32_t acc = 0;
    for (std::size_t o = 0; o < n; o += kCacheLine) acc += p[o];
    acc += p[n - 1];  // the last line, when the vector does not start on a line boundary
    warm_sink += acc;
  }

  // Exact f32 distance.
  float dist(const float* a, const float* b) const noexcept {
    if (metric == Metric::l2) return simd::l2sq(a, b, dim);
    const float d = 1.0f - simd::dot(a, b, dim);
    // ip with huge finite values can overflow to inf - inf = NaN; NaN would break the ordering.
    return d == d ? d : kInf;
  }

  // The walk's distance: from a query form (query_form / node_query) to a stored code.
  float dist(const void* q, const unsigned char* c) const noexcept {
    float d;
    switch (quant) {
      case Quantization::none: return dist(static_cast<const float*>(q), reinterpret_cast<const float*>(c));
      case Quantization::f16: {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(c);
        if (metric == Metric::l2) return simd::l2sq_f16(static_cast<const float*>(q), h, dim);
        d = 1.0f - simd::dot_f16(static_cast<const float*>(q), h, dim);
        break;
      }
      case Quantization::i8:
        if (metric == Metric::l2) {
          d = simd::i8_l2sq(static_cast<const unsigned char*>(q), c, dim);
        } else if (metric == Metric::cosine) {
          // Unit vectors: 1 - cos = |a - b|^2 / 2. Measured on the decoded vectors this form
          // also accounts for their norms' rounding away from 1, which 1 - dot does not
          // (Fashion-MNIST, 10k: recall@10 0.9955 instead of 0.9735 at ef 128).
          d = 0.5f * simd::i8_l2sq(static_cast<const unsigned char*>(q), c, dim);
        } else {
          d = 1.0f - simd::i8_dot(static_cast<const unsigned char*>(q), c, dim);
        }
        break;
      case Quantization::b1:
        return static_cast<float>(simd::hamming(static_cast<const unsigned char*>(q), c, links_off)) *
               (2.0f / static_cast<float>(dim));
      default: return kInf;
    }
    return d == d ? d : kInf;
  }

  void next_generation() const {
    if (visited.size() < slots()) visited.resize(slots(), 0);
    if (++generation == 0) {
      std::fill(visited.begin(), visited.end(), 0u);
      generation = 1;
    }
  }

  // Writes the unit-length version of v (already validated finite and non-zero) to out.
  // Scaling by the largest magnitude first keeps the squared norm from overflowing or
  // underflowing; every step is a plain IEEE operation, so it is deterministic.
  void normalize(const float* v, float* out) const noexcept {
    float nn = simd::dot(v, v, dim);
    const float* src = v;
    if (!(nn > 0.0f) || !std::isfinite(nn)) {
      float mx = 0.0f;
      for (uint32_t i = 0; i < dim; ++i) mx = std::max(mx, std::fabs(v[i]));
      for (uint32_t i = 0; i < dim; ++i) out[i] = v[i] / mx;
      nn = simd::dot(out, out, dim);
      src = out;
    }
    const float norm = std::sqrt(nn);
    for (uint32_t i = 0; i < dim; ++i) out[i] = src[i] / norm;
  }

  // `what` is a view so that checking builds no string (a std::string of "add: vector" allocates
  // in wasm32's libc++, whose short-string buffer holds 10 chars): an add that reserve() made
  // room for must not allocate even here.
  // `index` (when not npos) is appended to `what` in a message: only a failure builds one.
  // `stored`: the vector is to be added (f16 must be able to hold it).
  Status validate_vector(const float* v, std::size_t len, std::string_view what,
                         std::size_t index = std::string::npos, bool stored = false) const {
    auto name = [&] { return std::string(what) + (index == std::string::npos ? "" : " " + u(index)); };
    if (len != dim) {
      return dimension_mismatch(name() + " has " + u(len) + " elements but the index dim is " + u(dim));
    }
    const std::ptrdiff_t bad = first_non_finite(v, len);
    if (bad >= 0) {
      return invalid_argument(name() + "[" + u(static_cast<uint64_t>(bad)) + "] must be finite, got " +
                              describe_float(v[bad]));
    }
    if (metric == Metric::cosine) {
      bool zero = true;
      for (std::size_t i = 0; i < len && zero; ++i) zero = v[i] == 0.0f;
      if (zero) return invalid_argument(name() + " is the zero vector, which has no direction (metric 'cosine')");
    }
    if (stored && quant == Quantization::f16 && metric != Metric::cosine) {  // cosine stores unit vectors
      for (std::size_t i = 0; i < len; ++i) {
        if (std::fabs(v[i]) >= 65520.0f) {
          return invalid_argument(name() + "[" + u(i) + "] is outside the binary16 range of quantization 'f16' (|x| < 65520)");
        }
      }
    }
    return Status::success();
  }

  // ---- search primitives ----

  // Greedy walk on one layer: moves to a strictly nearer neighbour until none is nearer.
  void greedy(const void* q, uint32_t level, uint32_t& cur, float& dcur) const {
    bool changed = true;
    while (changed) {
      changed = false;
      const uint32_t* l = links(cur, level);
      const uint32_t count = l[0];
      for (uint32_t i = 1; i <= count; ++i) warm(l[i]);
      for (uint32_t i = 1; i <= count; ++i) {
        const uint32_t nb = l[i];
        const float d = dist(q, code(nb));
        if (d < dcur || (d == dcur && nb < cur)) {
          dcur = d;
          cur = nb;
          changed = true;
        }
      }
    }
  }

  // Beam search of width ef on one layer from `ep` (the paper's SEARCH-LAYER). Removed nodes are
  // traversed but never enter the results. Returns the results nearest first in `out`.
  void search_layer(const void* q, uint32_t ep, float dep, uint32_t level, uint32_t ef,
                    std::vector<Cand>& out) const {
    if (level == 0) {
      search_layer_impl<true, false>(q, ep, dep, 0, ef, out);
    } else {
      search_layer_impl<false, false>(q, ep, dep, level, ef, out);
    }
  }

  // kFiltered: a node may enter the results only when its bit in filter_mask is set (the mask
  // holds live allowed nodes only); every other node is walked through as a removed one is.
  template <bool kLayer0, bool kFiltered>
  void search_layer_impl(const void* q, uint32_t ep, float dep, uint32_t level, uint32_t ef,
                         std::vector<Cand>& out) const {
    const uint64_t* const mask = filter_mask.data();
    auto result = [&](uint32_t s) {
      if constexpr (kFiltered) {
        return ((mask[s >> 6] >> (s & 63)) & 1) != 0;
      } else {
        (void)mask;
        return deleted[s] == 0;
      }
    };
    next_generation();
    uint32_t* const seen = visited.data();
    const uint32_t gen = generation;
    auto& cands = cand_heap;    // min-heap by distance: nearest unexpanded on top
    auto& results = result_heap;  // max-heap by distance: farthest kept result on top
    cands.clear();
    results.clear();
    seen[ep] = gen;
    cands.push_back({dep, ep});
    if (result(ep)) results.push_back({dep, ep});
    float bound = results.empty() ? kInf : dep;

    while (!cands.empty()) {
      const Cand c = cands.front();
      // Stopping rule: the nearest candidate is farther than the farthest of the ef results.
      if (results.size() >= ef && c.d > bound) break;
      std::pop_heap(cands.begin(), cands.end(), farther);
      cands.pop_back();
      const uint32_t* l = kLayer0 ? links0(c.slot) : links(c.slot, level);
      // First collect the links not seen yet, starting each one's vector load (warm()), then
      // measure them in the same order (so the graph is the one a single loop builds): the
      // cache misses of up to 2M vectors overlap instead of coming one vector at a time.
      const uint32_t count = l[0];
      uint32_t* const fresh = fresh_buf.data();
      uint32_t n_fresh = 0;
      for (uint32_t i = 1; i <= count; ++i) {
        const uint32_t nb = l[i];
        if (seen[nb] == gen) continue;
        seen[nb] = gen;
        fresh[n_fresh++] = nb;
        warm(nb);
      }
      for (uint32_t j = 0; j < n_fresh; ++j) {
        const uint32_t nb = fresh[j];
        const float d = dist(q, code(nb));
        if (results.size() < ef || d < bound) {
          cands.push_back({d, nb});
          std::push_heap(cands.begin(), cands.end(), farther);
          if (result(nb)) {
            results.push_back({d, nb});
            std::push_heap(results.begin(), results.end(), nearer);
            if (results.size() > ef) {
              std::pop_heap(results.begin(), results.end(), nearer);
              results.pop_back();
            }
            bound = results.front().d;
          }
        }
      }
    }
    out.assign(results.begin(), results.end());
    std::sort(out.begin(), out.end(), nearer);
  }

  // Heuristic neighbour selection (Algorithm 4) over `cands` sorted nearest first (distances
  // to the base node): keeps e when it is nearer to the base than to every neighbour kept so far.
  void select_neighbors(const std::vector<Cand>& cands, uint32_t limit, std::vector<uint32_t>& out) {
    out.clear();
    if (cands.size() <= limit) {
      for (const Cand& c : cands) out.push_back(c.slot);
      return;
    }
    std::vector<uint32_t>& pruned = pruned_buf;
    pruned.clear();
    for (const Cand& c : cands) {
      if (out.size() >= limit) break;
      bool good = true;
      const void* cv = node_query(c.slot, cand_f32);
      for (uint32_t r : out) {
        if (dist(cv, code(r)) < c.d) {
          good = false;
          break;
        }
      }
      if (good) {
        out.push_back(c.slot);
      } else if (keep_pruned) {
        pruned.push_back(c.slot);
      }
    }
    for (std::size_t i = 0; i < pruned.size() && out.size() < limit; ++i) out.push_back(pruned[i]);
  }

  // Adds `s` to the links of `nb` on `level`, re-running the heuristic when the list is full.
  void connect_back(uint32_t nb, uint32_t s, uint32_t level) {
    uint32_t* l = links(nb, level);
    const uint32_t cap = capacity(level);
    if (l[0] < cap) {
      l[1 + l[0]] = s;
      ++l[0];
      return;
    }
    const void* base = node_query(nb, base_f32);
    prune_buf.clear();
    for (uint32_t i = 1; i <= l[0]; ++i) warm(l[i]);
    for (uint32_t i = 1; i <= l[0]; ++i) prune_buf.push_back({dist(base, code(l[i])), l[i]});
    prune_buf.push_back({dist(base, code(s)), s});
    std::sort(prune_buf.begin(), prune_buf.end(), nearer);
    std::vector<uint32_t>& keep = keep_buf;
    select_neighbors(prune_buf, cap, keep);
    l[0] = static_cast<uint32_t>(keep.size());
    std::copy(keep.begin(), keep.end(), l + 1);
  }

  // Plans the links of a node with vector `q` and level `level` that is not in the graph yet:
  // for each layer from min(level, max_level) down to 0, the neighbours selected for it, as
  // [count, targets] rows of m + 1 words in plan_buf. Reads the graph and writes only scratch,
  // so it changes nothing observable. Searching every layer before linking any gives the same
  // graph as interleaving them (as the paper's Algorithm 1 does): linking on a layer edits only
  // that layer's lists, and each layer's search reads only its own.
  void plan_links(const void* q, uint32_t level) {
    const uint32_t top = std::min(level, max_level);
    uint32_t cur = entry;
    float dcur = dist(q, code(cur));
    for (uint32_t lev = max_level; lev > level; --lev) greedy(q, lev, cur, dcur);
    std::vector<Cand>& found = found_buf;
    for (uint32_t lev = top + 1; lev-- > 0;) {
      uint32_t* row = plan_buf.data() + static_cast<std::size_t>(top - lev) * (m + 1);
      search_layer(q, cur, dcur, lev, ef_construction, found);
      if (found.empty()) {  // only tombstones reachable on this layer
        row[0] = 0;
        continue;
      }
      select_neighbors(found, m, select_buf);
      row[0] = static_cast<uint32_t>(select_buf.size());
      std::copy(select_buf.begin(), select_buf.end(), row + 1);
      cur = found.front().slot;
      dcur = found.front().d;
    }
  }

  // Links the node at slot `s` as planned by plan_links(). Allocates nothing (connect_back's
  // buffers have room for m0 + 1 entries).
  void link_planned(uint32_t s) noexcept {
    const uint32_t level = levels[s];
    if (entry == kNone) {
      entry = s;
      max_level = level;
      return;
    }
    const uint32_t top = std::min(level, max_level);
    for (uint32_t lev = top + 1; lev-- > 0;) {
      const uint32_t* row = plan_buf.data() + static_cast<std::size_t>(top - lev) * (m + 1);
      uint32_t* l = links(s, lev);
      l[0] = row[0];
      std::copy(row + 1, row + 1 + row[0], l + 1);
      for (uint32_t i = 1; i <= row[0]; ++i) connect_back(row[i], s, lev);
    }
    if (level > max_level) {
      entry = s;
      max_level = level;
    }
  }

  // Out of memory: allocates everything the next n insertions need, changing nothing
  // observable (only reserved capacity, counted in stats().bytes): room in every per-node array
  // and the id table, the upper-layer links of the nodes the generator's next n draws make
  // (kept in pending_upper, front first), and the search scratch. With `bound_candidates` the
  // candidate heap gets its bound (every node once per search), so the insertions' searches
  // cannot allocate either.
  void prepare(std::size_t n, bool bound_candidates) {
    const std::size_t total = static_cast<std::size_t>(slots()) + n;
    const std::size_t pending = pending_upper.size() - pending_front;
    std::mt19937_64 next = rng;  // a copy: the generator moves only when a node is committed
    uint32_t top_level = max_level;
    for (std::size_t i = 0; i < n; ++i) {
      const uint32_t level = HNSW::level_from_random(next(), m);
      top_level = std::max(top_level, level);
      if (i < pending) continue;  // allocated by an earlier prepare()
      if (pending_front > 0 && pending_upper.size() == pending_upper.capacity()) {
        // Reuse the consumed front before growing.
        pending_upper.erase(pending_upper.begin(), pending_upper.begin() + static_cast<std::ptrdiff_t>(pending_front));
        pending_front = 0;
      }
      const std::size_t words = static_cast<std::size_t>(level) * (m + 1);
      std::unique_ptr<uint32_t[]> up(words > 0 ? new uint32_t[words]() : nullptr);
      pending_upper.push_back(std::move(up));  // strong: on failure `up` frees the array
    }
    rows.reserve(static_cast<uint32_t>(total));
    if (keep_exact) exact.reserve(static_cast<uint32_t>(total));
    reserve_more(ext_ids, n);
    reserve_more(levels, n);
    reserve_more(deleted, n);
    reserve_more(upper, n);
    slot_of.adopt(slot_of.table_for(slot_of.size() + n));
    visited.reserve(total);
    result_heap.reserve(static_cast<std::size_t>(ef_construction) + 1);
    found_buf.reserve(static_cast<std::size_t>(ef_construction) + 1);
    const std::size_t plan_words = (static_cast<std::size_t>(top_level) + 1) * (m + 1);
    if (plan_buf.size() < plan_words) plan_buf.resize(plan_words);
    if (metric == Metric::cosine) insert_query.resize(dim);
    if (bound_candidates) cand_heap.reserve(total);
    batch_ids.reserve(n);  // so that the add_batch() calls reserve() made room for check ids in place
  }

  // Appends n nodes (vectors already validated, ids fresh and distinct) and links them in.
  // Draws exactly one random number per node. All-or-nothing under std::bad_alloc: prepare()
  // allocates for the whole batch first (a single add skips the candidate-heap bound and plans
  // its links before storing the node, so its search may still allocate, before any change).
  // `stored_form`: the vectors come from an index (already normalised under cosine), as in
  // compact(); normalising them again could move a last bit. `codes` (compact() of a quantized
  // index without f32 vectors): the nodes' codes (code_len bytes each) instead of `vectors`;
  // each is inserted with the query form of its code, as adding the decoded vector would.
  void add_nodes(const float* vectors, const uint32_t* ids, std::size_t n, bool stored_form = false,
                 const unsigned char* codes = nullptr) {
    if (n == 0) return;
    prepare(n, n > 1);
    const uint32_t first = slots();
    // Nothing below allocates, except the candidate heap of a single add's search (see above).
    for (std::size_t i = 0; i < n; ++i) {
      const float* v = codes ? nullptr : vectors + i * dim;
      const uint32_t s = first + static_cast<uint32_t>(i);
      std::mt19937_64::result_type draw;
      {
        std::mt19937_64 peek = rng;  // the draw this node will consume at commit
        draw = peek();
      }
      const uint32_t level = HNSW::level_from_random(draw, m);
      const float* q = v;
      if (metric == Metric::cosine && !stored_form && !codes) {
        normalize(v, insert_query.data());
        q = insert_query.data();
      }
      const void* walk_q = q;
      if (codes) {
        std::memcpy(insert_code.data(), codes + i * code_len, code_len);
        if (quant == Quantization::f16) {
          simd::widen_f16(reinterpret_cast<const uint16_t*>(insert_code.data()), insert_f32.data(), dim);
          walk_q = insert_f32.data();
        } else {
          walk_q = insert_code.data();
        }
      } else if (quant != Quantization::none) {
        encode(q, insert_code.data());
        if (quant != Quantization::f16) walk_q = insert_code.data();
      }
      if (entry != kNone) plan_links(walk_q, level);
      // Commit the node.
      rng.discard(1);
      rows.push();
      if (quant == Quantization::none) {
        std::copy(q, q + dim, vec(s));
      } else {
        std::memcpy(code(s), insert_code.data(), code_len);
      }
      if (keep_exact) {
        exact.push();
        std::copy(q, q + dim, reinterpret_cast<float*>(exact.row(s)));
      }
      ext_ids.push_back(ids[i]);
      levels.push_back(static_cast<uint8_t>(level));
      deleted.push_back(0);
      upper.push_back(std::move(pending_upper[pending_front++]));
      if (pending_front == pending_upper.size()) {
        pending_upper.clear();
        pending_front = 0;
      }
      upper_words += static_cast<std::size_t>(level) * (m + 1);
      slot_of.insert(ids[i], s);
      link_planned(s);
    }
  }

  uint32_t live() const noexcept { return static_cast<uint32_t>(slot_of.size()); }
  bool has(uint32_t id) const noexcept { return slot_of.find(id) != detail::FlatIdMap::kNone; }

  // Writes slot s's code little-endian (code_len bytes).
  void put_code(ByteWriter& w, uint32_t s) const {
    const unsigned char* c = code(s);
    if (quant == Quantization::f16) {
      for (uint32_t i = 0; i < dim; ++i) {
        uint16_t h;
        std::memcpy(&h, c + 2 * static_cast<std::size_t>(i), 2);
        w.put_u16(h);
      }
      return;
    }
    if (quant == Quantization::i8) {
      float f[2];
      uint32_t sums[2];
      std::memcpy(f, c, 8);
      std::memcpy(sums, c + 8, 8);
      w.put_f32(f[0]);
      w.put_f32(f[1]);
      w.put_u32(sums[0]);
      w.put_u32(sums[1]);
      w.put_bytes(c + simd::kI8Header, dim);
      return;
    }
    w.put_bytes(c, code_len);
  }

  // Reads slot s's code (put_code's layout) and checks it is one encode() can produce, as far
  // as the distance kernels rely on it. False when truncated or invalid.
  bool get_code(ByteReader& r, uint32_t s) {
    unsigned char* c = code(s);
    if (quant == Quantization::f16) {
      for (uint32_t i = 0; i < dim; ++i) {
        uint16_t h;
        if (!r.get_u16(h) || (h & 0x7c00u) == 0x7c00u) return false;  // no Inf / NaN
        std::memcpy(c + 2 * static_cast<std::size_t>(i), &h, 2);
      }
      return true;
    }
    if (quant == Quantization::i8) {
      float f[2];
      uint32_t sums[2];
      if (!r.get_f32(f[0]) || !r.get_f32(f[1]) || !r.get_u32(sums[0]) || !r.get_u32(sums[1])) return false;
      if (!r.get_bytes(c + simd::kI8Header, dim)) return false;
      if (!std::isfinite(f[0]) || !std::isfinite(f[1]) || !(f[0] >= 0.0f)) return false;
      const int8_t* q = reinterpret_cast<const int8_t*>(c + simd::kI8Header);
      int32_t sum = 0, sumsq = 0;
      for (uint32_t i = 0; i < dim; ++i) {
        if (q[i] < -127) return false;
        sum += q[i];
        sumsq += q[i] * q[i];
      }
      if (static_cast<uint32_t>(sum) != sums[0] || static_cast<uint32_t>(sumsq) != sums[1]) return false;
      std::memcpy(c, f, 8);
      std::memcpy(c + 8, sums, 8);
      return true;
    }
    // b1: the bits past dim in the last byte must be 0 (the Hamming kernel counts them).
    if (!r.get_bytes(c, code_len)) return false;
    return dim % 8 == 0 || (c[code_len - 1] >> (dim % 8)) == 0;
  }

  // The query to search with: normalised for cosine, as is otherwise.
  const float* prepare_query(const float* q) const {
    if (metric != Metric::cosine) return q;
    query_buf.resize(dim);
    normalize(q, query_buf.data());
    return query_buf.data();
  }

  // ---- filtered search ----

  // Compiles `filter` into filter_mask (one bit per slot, set for live allowed nodes); returns
  // how many nodes it allows. The predicate runs here, once per live node in slot order.
  uint32_t compile_filter(const IdFilter& filter) const {
    const std::size_t words = (static_cast<std::size_t>(slots()) + 63) / 64;
    filter_mask.assign(words + 1, 0);  // + 1: never empty, so data() is a valid pointer
    uint64_t* mask = filter_mask.data();
    uint32_t allowed = 0;
    auto allow = [&](uint32_t s) {
      uint64_t& w = mask[s >> 6];
      const uint64_t bit = uint64_t{1} << (s & 63);
      allowed += (w & bit) == 0;
      w |= bit;
    };
    if (filter.kind() == IdFilter::Kind::ids) {
      for (std::size_t i = 0; i < filter.size(); ++i) {
        const uint32_t s = slot_of.find(filter.list()[i]);
        if (s != detail::FlatIdMap::kNone) allow(s);
      }
    } else if (filter.kind() == IdFilter::Kind::predicate) {
      for (uint32_t s = 0; s < slots(); ++s) {
        if (!deleted[s] && filter.call(ext_ids[s])) allow(s);
      }
    } else {
      for (uint32_t s = 0; s < slots(); ++s) {
        if (!deleted[s]) allow(s);
      }
    }
    return allowed;
  }

  bool prefers_scan(uint32_t allowed, uint32_t ef) const noexcept {
    const double a = allowed;
    return a * a <= HNSW::kExactScanFactor * static_cast<double>(ef) * m * static_cast<double>(live());
  }

  // The k nearest among the nodes filter_mask allows (compile_filter() first; `allowed` is its
  // count), by the graph walk or the exact scan.
  void knn_filtered(const float* q, uint32_t k, uint32_t ef, uint32_t allowed, FilterPlan plan,
                    std::vector<Cand>& out) const {
    out.clear();
    if (entry == kNone || allowed == 0) return;
    const float* qf = prepare_query(q);
    const void* qq = query_form(qf, query_code.data());
    ef = std::max(ef, k);
    const bool scan = plan == FilterPlan::exact || (plan == FilterPlan::automatic && prefers_scan(allowed, ef));
    if (scan) {
      // Exact f32 distances when the index keeps them, else the codes' (no rescoring: every
      // allowed vector is measured already).
      // Every allowed vector, in slot order; the k nearest kept in a max-heap.
      auto& best = result_heap;
      best.clear();
      const uint64_t* mask = filter_mask.data();
      const std::size_t words = (static_cast<std::size_t>(slots()) + 63) / 64;
      for (std::size_t w = 0; w < words; ++w) {
        for (uint64_t bits = mask[w]; bits != 0; bits &= bits - 1) {
          const uint32_t s = static_cast<uint32_t>(w * 64 + static_cast<std::size_t>(count_trailing_zeros(bits)));
          const Cand c{has_exact() ? dist(qf, exact_vec(s)) : dist(qq, code(s)), s};
          if (best.size() < k) {
            best.push_back(c);
            std::push_heap(best.begin(), best.end(), nearer);
          } else if (nearer(c, best.front())) {
            std::pop_heap(best.begin(), best.end(), nearer);
            best.back() = c;
            std::push_heap(best.begin(), best.end(), nearer);
          }
        }
      }
      out.assign(best.begin(), best.end());
      std::sort(out.begin(), out.end(), nearer);
      return;
    }
    uint32_t cur = entry;
    float dcur = dist(qq, code(cur));
    for (uint32_t lev = max_level; lev > 0; --lev) greedy(qq, lev, cur, dcur);
    search_layer_impl<true, true>(qq, cur, dcur, 0, beam_for(k, ef), out);
    finish(qf, k, out);
  }

  // The walk's beam width: max(ef, k), and at least rescore × k when it rescores.
  uint32_t beam_for(uint32_t k, uint32_t ef) const noexcept {
    uint64_t b = std::max(ef, k);
    if (keep_exact) b = std::max<uint64_t>(b, std::min<uint64_t>(uint64_t{rescore} * k, HNSW::kMaxEf));
    return static_cast<uint32_t>(b);
  }

  // `out`: the walk's results, nearest first by the walk's distance. Keeps the k nearest; when
  // the index rescores, those are the k nearest by exact f32 distance among the walk's best
  // rescore × k, and the distances reported are the exact ones.
  void finish(const float* qf, uint32_t k, std::vector<Cand>& out) const {
    if (keep_exact) {
      const uint64_t n = std::min<uint64_t>(out.size(), uint64_t{rescore} * k);
      out.resize(static_cast<std::size_t>(n));
      for (const Cand& c : out) warm_exact(c.slot);
      for (Cand& c : out) c.d = dist(qf, exact_vec(c.slot));
      std::sort(out.begin(), out.end(), nearer);
    }
    if (out.size() > k) out.resize(k);
  }

  // warm() for the f32 row of slot s kept for rescoring.
  void warm_exact(uint32_t s) const noexcept {
    const volatile unsigned char* p = exact.row(s);
    const std::size_t n = static_cast<std::size_t>(dim) * 4;
    uint32_t acc = 0;
    for (std::size_t o = 0; o < n; o += kCacheLine) acc += p[o];
    warm_sink += acc;
  }

  static int count_trailing_zeros(uint64_t x) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int n = 0;
    while ((x & 1) == 0) {
      x >>= 1;
      ++n;
    }
    return n;
#endif
  }

  void knn(const float* q, uint32_t k, uint32_t ef, std::vector<Cand>& out) const {
    out.clear();
    if (entry == kNone) return;
    const float* qf = prepare_query(q);
    const void* qq = query_form(qf, query_code.data());
    uint32_t cur = entry;
    float dcur = dist(qq, code(cur));
    for (uint32_t lev = max_level; lev > 0; --lev) greedy(qq, lev, cur, dcur);
    search_layer(qq, cur, dcur, 0, beam_for(k, ef), out);
    finish(qf, k, out);
  }

  // compact(): a new index with the same options holding the live nodes, in slot order, as
  // create() + add() of their vectors would build it (one level draw per node from the seed).
  // Vectors are copied as stored (already normalised for cosine: normalising again could move
  // a last bit). Everything happens in the new object, so an exception leaves *this untouched.
  std::unique_ptr<Impl> rebuilt_without_tombstones() const {
    auto x = std::make_unique<Impl>();
    x->dim = dim;
    x->m = m;
    x->m0 = m0;
    x->ef_construction = ef_construction;
    x->ef_search = ef_search;
    x->seed = seed;
    x->metric = metric;
    x->keep_pruned = keep_pruned;
    x->compact_threshold = compact_threshold;
    x->quant = quant;
    x->rescore = rescore;
    x->rng.seed(seed);
    x->init_layout();
    const uint32_t n = live();
    std::vector<uint32_t> ids;
    ids.reserve(n);
    if (!has_exact()) {  // quantized, codes only: rebuilt from the codes
      std::vector<unsigned char> codes(static_cast<std::size_t>(n) * code_len);
      for (uint32_t old = 0; old < slots(); ++old) {
        if (deleted[old]) continue;
        std::memcpy(codes.data() + ids.size() * code_len, code(old), code_len);
        ids.push_back(ext_ids[old]);
      }
      x->add_nodes(nullptr, ids.data(), n, /*stored_form=*/true, codes.data());
      return x;
    }
    std::vector<float> vectors(static_cast<std::size_t>(n) * dim);
    for (uint32_t old = 0; old < slots(); ++old) {
      if (deleted[old]) continue;
      std::copy(exact_vec(old), exact_vec(old) + dim, vectors.data() + ids.size() * dim);
      ids.push_back(ext_ids[old]);
    }
    x->add_nodes(vectors.data(), ids.data(), n, /*stored_form=*/true);
    return x;
  }

  bool wants_compaction() const noexcept {
    const uint32_t tombstones = slots() - live();
    return compact_threshold > 0.0 && tombstones > 0 &&
           static_cast<double>(tombstones) > compact_threshold * static_cast<double>(slots());
  }

  void pick_new_entry() {
    entry = kNone;
    max_level = 0;
    for (uint32_t s = 0; s < slots(); ++s) {
      if (deleted[s]) continue;
      if (entry == kNone || levels[s] > max_level) {
        entry = s;
        max_level = levels[s];
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------

HNSW::HNSW(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
HNSW::HNSW(HNSW&&) noexcept = default;
HNSW& HNSW::operator=(HNSW&&) noexcept = default;
HNSW::~HNSW() = default;

Result<HNSW> HNSW::create(const HnswOptions& options) {
  Status st = validate_options(options);
  if (!st.ok()) return st;
  auto impl = std::make_unique<Impl>();
  impl->dim = options.dim;
  impl->m = options.m;
  impl->m0 = 2 * options.m;
  impl->ef_construction = options.ef_construction;
  impl->ef_search = options.ef_search;
  impl->seed = options.seed;
  impl->metric = options.metric;
  impl->keep_pruned = options.keep_pruned_connections;
  impl->compact_threshold = options.compact_threshold;
  impl->quant = options.quantization;
  impl->rescore = options.rescore == kRescoreDefault ? default_rescore(options.quantization) : options.rescore;
  impl->rng.seed(options.seed);
  impl->init_layout();
  return HNSW(std::move(impl));
}

Status HNSW::add(const float* vector, std::size_t len, uint32_t id) {
  Impl& x = *impl_;
  if (len != x.dim) {
    return dimension_mismatch("add: vector has " + u(len) + " elements but the index dim is " + u(x.dim));
  }
  if (id > kMaxId) return invalid_argument("add: id must be an integer in [0, 2147483647], got " + u(id));
  if (x.has(id)) return duplicate_id("add: id " + u(id) + " is already in the index");
  Status st = x.validate_vector(vector, len, "add: vector", std::string::npos, true);
  if (!st.ok()) return st;
  if (x.slots() >= kMaxNodes) return capacity_exceeded("add: the index holds the maximum of 2147483647 nodes");
  x.add_nodes(vector, &id, 1);
  return Status::success();
}

Status HNSW::add_batch(const float* vectors, std::size_t len, const uint32_t* ids, std::size_t n_ids) {
  Impl& x = *impl_;
  if (len != static_cast<uint64_t>(n_ids) * x.dim) {
    return dimension_mismatch("addBatch: vectors has " + u(len) + " elements, expected ids.length × dim = " +
                              u(n_ids) + " × " + u(x.dim) + " = " + u(static_cast<uint64_t>(n_ids) * x.dim));
  }
  if (n_ids > static_cast<std::size_t>(kMaxNodes - x.slots())) {
    return capacity_exceeded("addBatch: " + u(n_ids) + " vectors would exceed the maximum of 2147483647 nodes");
  }
  // Checked in call order (the first bad id or vector is the one reported). Nothing here
  // allocates unless it fails, so after reserve() a batch sent in chunks cannot fail part way
  // on memory (the JS addBatch relies on it).
  for (std::size_t i = 0; i < n_ids; ++i) {
    const uint32_t id = ids[i];
    if (id > kMaxId) {
      return invalid_argument("addBatch: ids[" + u(i) + "] must be an integer in [0, 2147483647], got " + u(id));
    }
    if (x.has(id)) return duplicate_id("addBatch: ids[" + u(i) + "] = " + u(id) + " is already in the index");
    Status st = x.validate_vector(vectors + i * x.dim, x.dim, "addBatch: vector", i, true);
    if (!st.ok()) return st;
  }
  x.batch_ids.assign(ids, ids + n_ids);
  std::sort(x.batch_ids.begin(), x.batch_ids.end());
  const auto repeat = std::adjacent_find(x.batch_ids.begin(), x.batch_ids.end());
  if (repeat != x.batch_ids.end()) {
    const std::size_t second = static_cast<std::size_t>(std::find(std::find(ids, ids + n_ids, *repeat) + 1, ids + n_ids, *repeat) - ids);
    return duplicate_id("addBatch: ids[" + u(second) + "] = " + u(*repeat) + " appears more than once in the batch");
  }
  x.add_nodes(vectors, ids, n_ids);  // all-or-nothing, also when memory runs out
  return Status::success();
}

void HNSW::reserve(std::size_t n) { impl_->prepare(n, true); }

Status HNSW::remove(uint32_t id) {
  Impl& x = *impl_;
  const uint32_t s = x.slot_of.find(id);
  if (s == detail::FlatIdMap::kNone) return not_found("remove: id " + u(id) + " is not in the index");
  x.slot_of.erase(id);
  x.deleted[s] = 1;
  if (s == x.entry) x.pick_new_entry();
  if (x.wants_compaction()) {
    try {
      (void)compact();
    } catch (const std::bad_alloc&) {
      // The removal itself is done; compaction is an optimisation and left the index as it was.
    }
  }
  return Status::success();
}

Status HNSW::compact() {
  if (impl_->live() == impl_->slots()) return Status::success();  // no tombstones
  impl_ = impl_->rebuilt_without_tombstones();                    // may throw; then unchanged
  return Status::success();
}

bool HNSW::has(uint32_t id) const noexcept { return impl_->has(id); }
uint32_t HNSW::size() const noexcept { return impl_->live(); }
uint32_t HNSW::nodes() const noexcept { return impl_->slots(); }

Result<std::vector<Neighbor>> HNSW::search(const float* query, std::size_t len, uint32_t k, uint32_t ef) const {
  const Impl& x = *impl_;
  if (k == 0 || k > kMaxK) return invalid_argument("search: k must be an integer in [1, 1048576], got " + u(k));
  if (ef > kMaxEf) return invalid_argument("search: efSearch must be an integer in [1, 1048576], got " + u(ef));
  Status st = x.validate_vector(query, len, "search: query");
  if (!st.ok()) return st;
  std::vector<Cand> found;
  x.knn(query, k, ef == 0 ? x.ef_search : ef, found);
  std::vector<Neighbor> out;
  out.reserve(found.size());
  for (const Cand& c : found) out.push_back({x.ext_ids[c.slot], c.d});
  return out;
}

Result<std::vector<Neighbor>> HNSW::search(const float* query, std::size_t len, uint32_t k, uint32_t ef,
                                           const IdFilter& filter, FilterPlan plan) const {
  if (filter.is_all()) return search(query, len, k, ef);
  const Impl& x = *impl_;
  if (k == 0 || k > kMaxK) return invalid_argument("search: k must be an integer in [1, 1048576], got " + u(k));
  if (ef > kMaxEf) return invalid_argument("search: efSearch must be an integer in [1, 1048576], got " + u(ef));
  Status st = x.validate_vector(query, len, "search: query");
  if (!st.ok()) return st;
  const uint32_t allowed = x.compile_filter(filter);
  std::vector<Cand> found;
  x.knn_filtered(query, k, ef == 0 ? x.ef_search : ef, allowed, plan, found);
  std::vector<Neighbor> out;
  out.reserve(found.size());
  for (const Cand& c : found) out.push_back({x.ext_ids[c.slot], c.d});
  return out;
}

bool HNSW::prefers_exact_scan(uint32_t allowed, uint32_t ef) const noexcept { return impl_->prefers_scan(allowed, ef); }

std::vector<uint32_t> HNSW::ids() const {
  const Impl& x = *impl_;
  std::vector<uint32_t> out;
  out.reserve(x.live());
  for (uint32_t s = 0; s < x.slots(); ++s) {
    if (!x.deleted[s]) out.push_back(x.ext_ids[s]);
  }
  return out;
}

Result<std::vector<float>> HNSW::distances(const float* query, std::size_t len, const uint32_t* ids,
                                           std::size_t n) const {
  const Impl& x = *impl_;
  Status st = x.validate_vector(query, len, "distances: query");
  if (!st.ok()) return st;
  const float* q = x.prepare_query(query);
  const void* qq = x.query_form(q, x.query_code.data());
  std::vector<float> out(n, kInf);
  for (std::size_t i = 0; i < n; ++i) {
    const uint32_t slot = x.slot_of.find(ids[i]);
    if (slot == detail::FlatIdMap::kNone) continue;
    out[i] = x.has_exact() ? x.dist(q, x.exact_vec(slot)) : x.dist(qq, x.code(slot));
  }
  return out;
}

Status HNSW::check_vector(const float* vector, std::size_t len, const std::string& what) const {
  return impl_->validate_vector(vector, len, what, std::string::npos, true);
}

Result<HnswBatchResult> HNSW::search_batch(const float* queries, std::size_t len, uint32_t k, uint32_t ef) const {
  return search_batch(queries, len, k, ef, IdFilter::all(), FilterPlan::graph);
}

Result<HnswBatchResult> HNSW::search_batch(const float* queries, std::size_t len, uint32_t k, uint32_t ef,
                                           const IdFilter& filter, FilterPlan plan) const {
  const Impl& x = *impl_;
  if (k == 0 || k > kMaxK) return invalid_argument("searchBatch: k must be an integer in [1, 1048576], got " + u(k));
  if (ef > kMaxEf) return invalid_argument("searchBatch: efSearch must be an integer in [1, 1048576], got " + u(ef));
  if (len % x.dim != 0) {
    return dimension_mismatch("searchBatch: queries has " + u(len) + " elements, not a multiple of dim " + u(x.dim));
  }
  const std::size_t n = len / x.dim;
  if (static_cast<uint64_t>(n) * k > kMaxBatchResults) {
    return invalid_argument("searchBatch: " + u(n) + " queries × k " + u(k) + " exceeds the limit of " +
                            u(kMaxBatchResults) + " results per call");
  }
  for (std::size_t i = 0; i < n; ++i) {
    Status st = x.validate_vector(queries + i * x.dim, x.dim, "searchBatch: query " + u(i));
    if (!st.ok()) return st;
  }
  HnswBatchResult r;
  r.ids.assign(n * k, -1);
  r.distances.assign(n * k, kInf);
  std::vector<Cand> found;
  const bool filtered = !filter.is_all();
  const uint32_t allowed = filtered ? x.compile_filter(filter) : 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float* q = queries + i * x.dim;
    const uint32_t beam = ef == 0 ? x.ef_search : ef;
    if (filtered) {
      x.knn_filtered(q, k, beam, allowed, plan, found);
    } else {
      x.knn(q, k, beam, found);
    }
    for (std::size_t j = 0; j < found.size(); ++j) {
      r.ids[i * k + j] = static_cast<int32_t>(x.ext_ids[found[j].slot]);
      r.distances[i * k + j] = found[j].d;
    }
  }
  return r;
}

Status HNSW::set_ef_search(uint32_t ef) {
  if (ef == 0 || ef > kMaxEf) return invalid_argument("efSearch must be an integer in [1, 1048576], got " + u(ef));
  impl_->ef_search = ef;
  return Status::success();
}

Status HNSW::set_compact_threshold(double threshold) {
  if (!(threshold >= 0.0 && threshold < 1.0)) {
    return invalid_argument("compactThreshold must be a number in [0, 1), got " + std::to_string(threshold));
  }
  impl_->compact_threshold = threshold;
  return Status::success();
}

double HNSW::compact_threshold() const noexcept { return impl_->compact_threshold; }

uint32_t HNSW::dim() const noexcept { return impl_->dim; }
uint32_t HNSW::m() const noexcept { return impl_->m; }
uint32_t HNSW::ef_construction() const noexcept { return impl_->ef_construction; }
uint32_t HNSW::ef_search() const noexcept { return impl_->ef_search; }
Metric HNSW::metric() const noexcept { return impl_->metric; }
uint64_t HNSW::seed() const noexcept { return impl_->seed; }
Quantization HNSW::quantization() const noexcept { return impl_->quant; }
uint32_t HNSW::rescore() const noexcept { return impl_->rescore; }

std::size_t HNSW::memory_bytes() const noexcept {
  const Impl& x = *impl_;
  std::size_t b = sizeof(Impl);
  b += x.rows.bytes() + x.exact.bytes() + x.insert_code.capacity() + x.query_code.capacity() +
       (x.base_f32.capacity() + x.cand_f32.capacity() + x.insert_f32.capacity()) * 4 + x.ext_ids.capacity() * 4 + x.levels.capacity() + x.deleted.capacity() +
       x.upper.capacity() * sizeof(x.upper[0]) + x.upper_words * 4 + x.visited.capacity() * 4 +
       (x.cand_heap.capacity() + x.result_heap.capacity() + x.prune_buf.capacity() + x.found_buf.capacity()) *
           sizeof(Cand) +
       (x.query_buf.capacity() + x.select_buf.capacity() + x.keep_buf.capacity() + x.pruned_buf.capacity()) * 4 +
       x.filter_mask.capacity() * 8;
  // unordered_map: one node (key, value, next pointer, cached hash) per entry plus the buckets.
  b += x.slot_of.memory_bytes() + (x.insert_query.capacity() + x.plan_buf.capacity() + x.batch_ids.capacity()) * 4 +
       x.pending_upper.capacity() * sizeof(x.pending_upper[0]);
  return b;
}

HnswStats HNSW::stats() const noexcept {
  const Impl& x = *impl_;
  HnswStats s;
  s.size = x.live();
  s.nodes = x.slots();
  s.tombstones = s.nodes - s.size;
  s.levels = x.entry == kNone ? 0 : x.max_level + 1;
  s.entry_point = x.entry == kNone ? -1 : static_cast<int64_t>(x.ext_ids[x.entry]);
  uint64_t base_edges = 0;
  for (uint32_t n = 0; n < x.slots(); ++n) {
    base_edges += x.links(n, 0)[0];
    for (uint32_t lev = 1; lev <= x.levels[n]; ++lev) s.edges += x.links(n, lev)[0];
  }
  s.edges += base_edges;
  s.avg_degree = s.nodes == 0 ? 0.0 : static_cast<double>(base_edges) / static_cast<double>(s.nodes);
  s.bytes = memory_bytes();
  s.rescore_bytes = x.exact.bytes();
  return s;
}

// ---------------------------------------------------------------------------------------------
// Serialization. Payload (format version 1), little-endian:
//   u32 dim, u32 M, u32 efConstruction, u32 efSearch, u8 metric, u8 keepPruned, u16 reserved (0),
//   u64 seed, u32 node count N, u32 entry slot (0xFFFFFFFF = none),
//   u32 ids[N], u8 levels[N], u8 deleted[N], f32 vectors[N × dim],
//   then per node in slot order, per layer 0..level: u32 count, u32 targets[count].
// The RNG state is not stored: it is the seed advanced by exactly N draws (one per node).
//
// Format version 2 (written only for a quantized index, so that an index without quantization
// keeps format 1's bytes and loads in older versions): the same layout, except that
//   - the u16 after keepPruned is u8 quantization, u8 reserved (0);
//   - a u32 rescore follows the seed;
//   - the vectors section is u8 codes[N × code bytes] (no padding: f16 as u16 LE, i8 as its
//     16-byte header {f32 scale, f32 offset, i32 sum, i32 sum of squares} + int8 × dim, b1 as
//     (dim + 7) / 8 bytes), followed by f32 vectors[N × dim] when rescore > 0.

std::vector<uint8_t> HNSW::serialize() const {
  const Impl& x = *impl_;
  ByteWriter w;
  const uint32_t n = x.slots();
  std::size_t links_words = 0;
  for (uint32_t s = 0; s < n; ++s) {
    for (uint32_t lev = 0; lev <= x.levels[s]; ++lev) links_words += 1 + x.links(s, lev)[0];
  }
  w.reserve(kEnvelopeHeaderBytes + 48 + static_cast<std::size_t>(n) * 6 + static_cast<std::size_t>(n) * x.dim * 4 +
            links_words * 4 + kEnvelopeTrailerBytes);
  const bool quantized = x.quant != Quantization::none;
  begin_envelope(w, kMagic, quantized ? kFormatVersion : 1);
  w.put_u32(x.dim);
  w.put_u32(x.m);
  w.put_u32(x.ef_construction);
  w.put_u32(x.ef_search);
  w.put_u8(static_cast<uint8_t>(x.metric));
  w.put_u8(x.keep_pruned ? 1 : 0);
  w.put_u8(static_cast<uint8_t>(x.quant));
  w.put_u8(0);
  w.put_u64(x.seed);
  if (quantized) w.put_u32(x.rescore);
  w.put_u32(n);
  w.put_u32(x.entry);
  w.put_u32_array(x.ext_ids.data(), n);
  w.put_bytes(x.levels.data(), n);
  w.put_bytes(x.deleted.data(), n);
  if (quantized) {
    for (uint32_t s = 0; s < n; ++s) x.put_code(w, s);
    if (x.keep_exact) {
      for (uint32_t s = 0; s < n; ++s) w.put_f32_array(x.exact_vec(s), x.dim);
    }
  } else {
    for (uint32_t s = 0; s < n; ++s) w.put_f32_array(x.vec(s), x.dim);
  }
  for (uint32_t s = 0; s < n; ++s) {
    for (uint32_t lev = 0; lev <= x.levels[s]; ++lev) {
      const uint32_t* l = x.links(s, lev);
      w.put_u32_array(l, 1 + l[0]);
    }
  }
  return finish_envelope(std::move(w));
}

Result<HNSW> HNSW::deserialize(const uint8_t* data, std::size_t size) {
  // Format 1 (no quantization) and 2 both load: peek at the version, then let the envelope
  // check everything (a flipped version bit fails its checksum).
  uint32_t version = kFormatVersion;
  if (size >= 12 && data[8] == 1 && data[9] == 0 && data[10] == 0 && data[11] == 0) version = 1;
  auto env = open_envelope(data, size, kMagic, version, "HNSW");
  if (!env.ok()) return env.status();
  ByteReader r(env->data, env->size);
  auto bad = [](const std::string& what) { return corrupt_data("HNSW.deserialize: " + what); };

  HnswOptions o;
  uint8_t metric = 0, keep = 0, quant = 0, reserved = 0;
  uint32_t n = 0, entry = 0, rescore = 0;
  if (!r.get_u32(o.dim) || !r.get_u32(o.m) || !r.get_u32(o.ef_construction) || !r.get_u32(o.ef_search) ||
      !r.get_u8(metric) || !r.get_u8(keep) || !r.get_u8(quant) || !r.get_u8(reserved) || !r.get_u64(o.seed) ||
      (version >= 2 && !r.get_u32(rescore)) || !r.get_u32(n) || !r.get_u32(entry)) {
    return bad("header truncated");
  }
  if (metric > 2) return bad("unknown metric " + u(metric));
  if (keep > 1 || reserved != 0) return bad("invalid flag bytes");
  if (version == 1 ? quant != 0 : (quant == 0 || quant > 3)) return bad("invalid quantization " + u(quant));
  o.metric = static_cast<Metric>(metric);
  o.keep_pruned_connections = keep != 0;
  o.quantization = static_cast<Quantization>(quant);
  o.rescore = rescore;
  Status st = validate_options(o);
  if (!st.ok()) return bad("invalid options: " + st.message());
  // Each node needs at least its id, level, deleted flag, code (or vector), f32 vector when
  // kept, and layer-0 count.
  uint64_t code_bytes = 4ull * o.dim;
  switch (o.quantization) {
    case Quantization::none: break;
    case Quantization::f16: code_bytes = 2ull * o.dim; break;
    case Quantization::i8: code_bytes = simd::kI8Header + o.dim; break;
    case Quantization::b1: code_bytes = (o.dim + 7ull) / 8; break;
  }
  if (o.quantization != Quantization::none && rescore > 0) code_bytes += 4ull * o.dim;
  if (n > kMaxNodes || !r.fits(n, 4 + 1 + 1 + code_bytes + 4)) {
    return bad("node count " + u(n) + " does not fit in the remaining " + u(r.remaining()) + " bytes");
  }
  if (entry != kNone && entry >= n) return bad("entry point " + u(entry) + " out of range");

  auto res = create(o);
  if (!res.ok()) return bad(res.status().message());
  HNSW index = std::move(res).value();
  Impl& x = *index.impl_;
  x.ext_ids.resize(n);
  x.levels.resize(n);
  x.deleted.resize(n);
  x.rows.reserve(n);
  for (uint32_t s = 0; s < n; ++s) x.rows.push();
  if (x.keep_exact) {
    x.exact.reserve(n);
    for (uint32_t s = 0; s < n; ++s) x.exact.push();
  }
  bool vectors_ok = r.get_u32_array(x.ext_ids.data(), n) && r.get_bytes(x.levels.data(), n) &&
                    r.get_bytes(x.deleted.data(), n);
  if (!vectors_ok) return bad("node arrays truncated");
  if (x.quant == Quantization::none) {
    for (uint32_t s = 0; s < n && vectors_ok; ++s) vectors_ok = r.get_f32_array(x.vec(s), o.dim);
    if (!vectors_ok) return bad("node arrays truncated");
  } else {
    for (uint32_t s = 0; s < n; ++s) {
      if (!x.get_code(r, s)) return bad("node " + u(s) + " has a truncated or invalid " + quantization_name(x.quant) + " code");
    }
    for (uint32_t s = 0; s < n && x.keep_exact && vectors_ok; ++s) {
      vectors_ok = r.get_f32_array(reinterpret_cast<float*>(x.exact.row(s)), o.dim);
    }
    if (!vectors_ok) return bad("node arrays truncated");
  }
  uint64_t upper_layers = 0;
  x.slot_of.reserve(n);
  for (uint32_t s = 0; s < n; ++s) {
    if (x.levels[s] > kMaxLevel) return bad("node " + u(s) + " has level " + u(x.levels[s]));
    if (x.deleted[s] > 1) return bad("node " + u(s) + " has an invalid deleted flag");
    upper_layers += x.levels[s];
    if (x.deleted[s]) continue;
    if (x.ext_ids[s] > kMaxId) return bad("node " + u(s) + " has id " + u(x.ext_ids[s]) + " out of range");
    if (x.has(x.ext_ids[s])) return bad("id " + u(x.ext_ids[s]) + " appears twice");
    x.slot_of.insert(x.ext_ids[s], s);
  }
  for (uint32_t s = 0; s < n && x.has_exact(); ++s) {
    if (first_non_finite(x.exact_vec(s), o.dim) >= 0) return bad("non-finite vector element");
  }
  // Entry point invariant: a live node of maximal level among live nodes, none iff no live node.
  if ((entry == kNone) != (x.slot_of.size() == 0)) return bad("entry point inconsistent with the live node count");
  if (entry != kNone) {
    if (x.deleted[entry]) return bad("entry point is a removed node");
    for (uint32_t s = 0; s < n; ++s) {
      if (!x.deleted[s] && x.levels[s] > x.levels[entry]) return bad("entry point is not on the top layer");
    }
  }
  // Every node then has at least one u32 (its count) per layer left to read.
  if (!r.fits(static_cast<uint64_t>(n) + upper_layers, 4)) return bad("link section truncated");
  x.upper.resize(n);
  for (uint32_t s = 0; s < n; ++s) {
    if (x.levels[s] == 0) continue;
    const std::size_t words = static_cast<std::size_t>(x.levels[s]) * (x.m + 1);
    x.upper[s].reset(new uint32_t[words]());
    x.upper_words += words;
  }
  for (uint32_t s = 0; s < n; ++s) {
    for (uint32_t lev = 0; lev <= x.levels[s]; ++lev) {
      uint32_t* l = x.links(s, lev);
      uint32_t count = 0;
      if (!r.get_u32(count)) return bad("link section truncated");
      if (count > x.capacity(lev)) return bad("node " + u(s) + " has " + u(count) + " links on layer " + u(lev));
      if (!r.get_u32_array(l + 1, count)) return bad("link section truncated");
      l[0] = count;
      for (uint32_t i = 1; i <= count; ++i) {
        // A target must exist on this layer, or following it would read another node's links.
        if (l[i] >= n || x.levels[l[i]] < lev) {
          return bad("node " + u(s) + " links to " + u(l[i]) + " on layer " + u(lev));
        }
      }
    }
  }
  if (!r.at_end()) return bad(u(r.remaining()) + " unexpected trailing bytes");
  x.entry = entry;
  x.max_level = entry == kNone ? 0 : x.levels[entry];
  x.rng.seed(o.seed);
  x.rng.discard(n);
  return index;
}

}  // namespace llmds
