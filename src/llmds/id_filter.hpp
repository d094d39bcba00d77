// SPDX-License-Identifier: MIT
/// @file id_filter.hpp
/// @brief Which ids a filtered search may return: every id, the ids of a list, or those a
/// predicate accepts.
///
/// A filtered search returns the k best results among the allowed ids (not the allowed part of
/// an unfiltered top k): HNSW::search, InvertedIndex::search and RetrievalPipeline::search
/// take an IdFilter. The filter is a view: the list or the predicate's context must outlive the
/// call, and nothing is copied until the search compiles it into a per-index mask.
///
/// - `IdFilter()` (or `all()`) allows every id: an unfiltered search.
/// - `ids(list, n)`: the ids of `list`, in any order, repeats allowed; ids that are not in the
///   index are ignored. Costs one id lookup per listed id per search.
/// - `predicate(fn, context)` / `of(callable)`: the ids for which the function returns true. A
///   search calls it once per live id of the index (in insertion order), before it reads
///   anything else, so the predicate sees a consistent index and can know nothing of the search.
///   It must not change the index it filters.
#pragma once

#include <cstddef>
#include <cstdint>

namespace llmds {

class IdFilter {
 public:
  using Predicate = bool (*)(void* context, uint32_t id);
  enum class Kind : uint8_t { all = 0, ids = 1, predicate = 2 };

  /// Allows every id.
  constexpr IdFilter() noexcept = default;
  static constexpr IdFilter all() noexcept { return IdFilter(); }
  /// The ids of `list[0..n)` (a view; any order, repeats allowed).
  static constexpr IdFilter ids(const uint32_t* list, std::size_t n) noexcept {
    IdFilter f;
    f.kind_ = Kind::ids;
    f.list_ = list;
    f.n_ = n;
    return f;
  }
  /// The ids for which `fn(context, id)` is true.
  static constexpr IdFilter predicate(Predicate fn, void* context) noexcept {
    IdFilter f;
    f.kind_ = Kind::predicate;
    f.fn_ = fn;
    f.context_ = context;
    return f;
  }
  /// The ids for which `callable(id)` is true; `callable` (a lambda, a function object) is
  /// referenced, not copied.
  template <class F>
  static IdFilter of(F& callable) noexcept {
    return predicate([](void* c, uint32_t id) { return static_cast<bool>((*static_cast<F*>(c))(id)); },
                     static_cast<void*>(&callable));
  }

  constexpr Kind kind() const noexcept { return kind_; }
  constexpr bool is_all() const noexcept { return kind_ == Kind::all; }
  constexpr const uint32_t* list() const noexcept { return list_; }
  constexpr std::size_t size() const noexcept { return n_; }
  bool call(uint32_t id) const { return fn_(context_, id); }

 private:
  Kind kind_ = Kind::all;
  const uint32_t* list_ = nullptr;
  std::size_t n_ = 0;
  Predicate fn_ = nullptr;
  void* context_ = nullptr;
};

}  // namespace llmds
