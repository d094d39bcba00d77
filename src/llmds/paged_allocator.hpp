// SPDX-License-Identifier: MIT
/// @file paged_allocator.hpp
/// @brief Fixed-size page allocator: O(1) per page, all-or-nothing batches, double-free checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "llmds/status.hpp"

namespace llmds {

using PageId = int32_t;

struct PagedAllocatorOptions {
  uint32_t page_size = 512;   ///< tokens per page (reported, not used for storage here)
  uint32_t max_pages = 10000; ///< pages the allocator may ever hand out
};

struct PagedAllocatorStats {
  uint32_t total_pages = 0;
  uint32_t allocated_pages = 0;
  uint32_t free_pages = 0;
  double utilization = 0.0;       ///< allocated / total
  uint64_t allocation_count = 0;  ///< pages handed out over the allocator's life
  uint64_t free_count = 0;        ///< pages returned over the allocator's life
};

/// Hands out page ids 0..max_pages-1. Never-used ids come from a counter and returned ones
/// from a LIFO free list, so nothing proportional to max_pages is touched up front. The free
/// list is threaded through the per-id table, so returning a page never allocates.
///
/// Out of memory: every call gives the strong guarantee (std::bad_alloc leaves the allocator
/// as it was); free(), free_one() and an alloc_one() that has room (see grown_table()) never
/// allocate.
class PagedAllocator {
 public:
  static constexpr uint32_t kMaxPageSize = 1u << 24;
  static constexpr uint32_t kMaxPages = 1u << 30;

  static Result<PagedAllocator> create(const PagedAllocatorOptions& options);

  /// `n` page ids, or capacity_exceeded with nothing allocated.
  Result<std::vector<PageId>> alloc(uint32_t n);
  /// Allocates one page; the caller has checked available() first. Allocates memory only when
  /// it takes a never-used id and the per-id table is full (strong guarantee).
  PageId alloc_one();
  /// Returns the pages; any unknown, unallocated or repeated id rejects the whole call.
  Status free(const PageId* ids, std::size_t n);
  /// Returns one page the caller knows to be allocated.
  void free_one(PageId id) noexcept;

  /// How many never-used ids `n` alloc_one() calls would take if `extra_free` more pages
  /// were returned first.
  uint32_t fresh_needed(std::size_t n, std::size_t extra_free = 0) const noexcept;
  /// For callers that must not fail half-way: a copy of the per-id table with room for `fresh`
  /// more never-used ids, or an empty vector when it has room already. Changes nothing;
  /// adopt_table() installs it (noexcept), after which that many alloc_one() calls cannot throw.
  std::vector<PageId> grown_table(uint32_t fresh) const;
  void adopt_table(std::vector<PageId>&& table) noexcept;

  uint32_t available() const noexcept { return max_pages_ - allocated_; }
  bool is_allocated(PageId id) const noexcept;
  /// One past the highest id ever handed out: storage indexed by page id needs this many slots.
  uint32_t high_water() const noexcept { return next_fresh_; }
  uint32_t page_size() const noexcept { return page_size_; }
  uint32_t max_pages() const noexcept { return max_pages_; }
  PagedAllocatorStats stats() const noexcept;
  std::size_t memory_bytes() const noexcept;

 private:
  static constexpr PageId kEnd = -1;        // end of the free list
  static constexpr PageId kAllocated = -2;  // table entry of an allocated page

  PagedAllocator(uint32_t page_size, uint32_t max_pages) : page_size_(page_size), max_pages_(max_pages) {}

  uint32_t page_size_;
  uint32_t max_pages_;
  uint32_t next_fresh_ = 0;
  uint32_t allocated_ = 0;
  uint64_t allocation_count_ = 0;
  uint64_t free_count_ = 0;
  PageId free_head_ = kEnd;    // most recently returned page
  std::vector<PageId> table_;  // by page id: kAllocated, or the next page of the free list
};

}  // namespace llmds
