// SPDX-License-Identifier: MIT
/// @file token_lru.hpp
/// @brief Least-recently-used cache bounded by a token budget rather than an entry count.
///
/// Each entry carries a token cost given at `put`; the cache keeps the sum of costs within
/// `token_budget` by evicting least-recently-used entries. An entry whose cost alone exceeds
/// the budget is refused (`put` returns false) without evicting anything, and an existing
/// entry under that key is left as it was. `get` refreshes recency; `peek` / `has` do
/// not. All operations are O(1) on average (hash map + intrusive recency list).
///
/// This is the C++ core version (used by RetrievalPipeline's result cache). The JS `TokenLRU`
/// holds arbitrary JS values, so it is written in TypeScript and does not use this class.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llmds/status.hpp"

namespace llmds {

template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class TokenLRU {
 public:
  using Item = std::pair<Key, Value>;

  /// invalid_argument when `token_budget` is 0.
  static Result<TokenLRU> create(uint64_t token_budget) {
    if (token_budget == 0) return invalid_argument("tokenBudget must be > 0, got 0");
    return TokenLRU(token_budget);
  }

  /// Inserts or replaces `key` as the most recently used entry, then evicts least-recently-used
  /// entries until the budget holds (appending them, oldest first, to `evicted` when given).
  /// Returns false, changing nothing, when `tokens` alone exceeds the budget.
  ///
  /// Out of memory: strong guarantee (the cache and `evicted` are unchanged if it throws; only
  /// `evicted`'s capacity may have grown). Room for the evicted items is reserved first.
  bool put(const Key& key, Value value, uint64_t tokens, std::vector<Item>* evicted = nullptr) {
    if (tokens > budget_) return false;
    auto found = index_.find(key);
    if (evicted) {
      // Count what shrink_to() will evict (the entry being put ends up most recent, so it is
      // never among them) and make room for it before anything changes.
      uint64_t total = total_ - (found != index_.end() ? found->second->tokens : 0) + tokens;
      std::size_t count = 0;
      for (auto it = order_.begin(); total > budget_ && it != order_.end(); ++it) {
        if (found != index_.end() && it == found->second) continue;
        total -= it->tokens;
        ++count;
      }
      evicted->reserve(evicted->size() + count);
    }
    if (found != index_.end()) {
      auto it = found->second;
      total_ -= it->tokens;
      it->value = std::move(value);
      it->tokens = tokens;
      order_.splice(order_.end(), order_, it);
    } else {
      order_.push_back(Entry{key, std::move(value), tokens});
      auto it = std::prev(order_.end());
      try {
        index_.emplace(key, it);
      } catch (...) {
        order_.pop_back();
        throw;
      }
    }
    total_ += tokens;
    shrink_to(budget_, evicted);
    return true;
  }

  /// The value, refreshed to most recently used; nullptr when absent. The pointer stays valid
  /// until the entry is replaced, erased or evicted.
  Value* get(const Key& key) {
    auto found = index_.find(key);
    if (found == index_.end()) return nullptr;
    order_.splice(order_.end(), order_, found->second);
    return &found->second->value;
  }
  /// The value without refreshing recency; nullptr when absent.
  const Value* peek(const Key& key) const {
    auto found = index_.find(key);
    return found == index_.end() ? nullptr : &found->second->value;
  }
  bool has(const Key& key) const { return index_.find(key) != index_.end(); }
  /// The token cost recorded for `key`, or 0 when absent.
  uint64_t tokens_of(const Key& key) const {
    auto found = index_.find(key);
    return found == index_.end() ? 0 : found->second->tokens;
  }
  /// Removes `key`; false when absent.
  bool erase(const Key& key) {
    auto found = index_.find(key);
    if (found == index_.end()) return false;
    total_ -= found->second->tokens;
    order_.erase(found->second);
    index_.erase(found);
    return true;
  }
  /// Evicts least-recently-used entries until total_tokens() <= target; returns them oldest first.
  std::vector<Item> evict_until_budget(uint64_t target) {
    std::vector<Item> out;
    std::size_t count = 0;  // room first, so that a bad_alloc evicts nothing
    uint64_t total = total_;
    for (auto it = order_.begin(); total > target && it != order_.end(); ++it, ++count) total -= it->tokens;
    out.reserve(count);
    shrink_to(target, &out);
    return out;
  }
  void clear() noexcept {
    index_.clear();
    order_.clear();
    total_ = 0;
  }

  uint64_t total_tokens() const noexcept { return total_; }
  std::size_t size() const noexcept { return index_.size(); }
  bool empty() const noexcept { return index_.empty(); }
  uint64_t token_budget() const noexcept { return budget_; }

  /// Visits entries from least to most recently used without changing recency.
  template <class F>
  void for_each(F&& f) const {
    for (const Entry& e : order_) f(e.key, e.value, e.tokens);
  }

 private:
  struct Entry {
    Key key;
    Value value;
    uint64_t tokens;
  };
  using List = std::list<Entry>;

  explicit TokenLRU(uint64_t budget) : budget_(budget) {}

  void shrink_to(uint64_t target, std::vector<Item>* evicted) {
    while (total_ > target && !order_.empty()) {
      Entry& e = order_.front();
      total_ -= e.tokens;
      index_.erase(e.key);
      if (evicted) evicted->emplace_back(std::move(e.key), std::move(e.value));
      order_.pop_front();
    }
  }

  uint64_t budget_;
  uint64_t total_ = 0;
  List order_;  // front = least recently used
  std::unordered_map<Key, typename List::iterator, Hash, KeyEqual> index_;
};

}  // namespace llmds
