// SPDX-License-Identifier: MIT
#include "llmds/paged_allocator.hpp"

#include <algorithm>
#include <string>

namespace llmds {

Result<PagedAllocator> PagedAllocator::create(const PagedAllocatorOptions& options) {
  if (options.page_size == 0 || options.page_size > kMaxPageSize) {
    return invalid_argument("pageSize must be an integer in [1, " + std::to_string(kMaxPageSize) + "], got " +
                            std::to_string(options.page_size));
  }
  if (options.max_pages == 0 || options.max_pages > kMaxPages) {
    return invalid_argument("maxPages must be an integer in [1, " + std::to_string(kMaxPages) + "], got " +
                            std::to_string(options.max_pages));
  }
  return PagedAllocator(options.page_size, options.max_pages);
}

PageId PagedAllocator::alloc_one() {
  PageId id;
  if (free_head_ != kEnd) {
    id = free_head_;
    free_head_ = table_[static_cast<std::size_t>(id)];
    table_[static_cast<std::size_t>(id)] = kAllocated;
  } else {
    table_.push_back(kAllocated);  // the only allocation; nothing has changed if it throws
    id = static_cast<PageId>(next_fresh_++);
  }
  ++allocated_;
  ++allocation_count_;
  return id;
}

uint32_t PagedAllocator::fresh_needed(std::size_t n, std::size_t extra_free) const noexcept {
  const std::size_t listed = static_cast<std::size_t>(next_fresh_ - allocated_) + extra_free;
  if (n <= listed) return 0;
  return static_cast<uint32_t>(std::min<std::size_t>(n - listed, max_pages_ - next_fresh_));
}

std::vector<PageId> PagedAllocator::grown_table(uint32_t fresh) const {
  const std::size_t want = static_cast<std::size_t>(next_fresh_) + fresh;
  std::vector<PageId> grown;
  if (want <= table_.capacity()) return grown;
  grown.reserve(std::min<std::size_t>(std::max(want, 2 * table_.capacity()), max_pages_));
  grown.assign(table_.begin(), table_.end());
  return grown;
}

void PagedAllocator::adopt_table(std::vector<PageId>&& table) noexcept {
  if (table.capacity() > table_.capacity()) table_.swap(table);
}

Result<std::vector<PageId>> PagedAllocator::alloc(uint32_t n) {
  if (n > available()) {
    return capacity_exceeded("alloc(" + std::to_string(n) + ") needs " + std::to_string(n) + " pages but only " +
                             std::to_string(available()) + " are free");
  }
  std::vector<PageId> ids;
  ids.reserve(n);
  adopt_table(grown_table(fresh_needed(n)));  // after this nothing below allocates
  for (uint32_t i = 0; i < n; ++i) ids.push_back(alloc_one());
  return ids;
}

bool PagedAllocator::is_allocated(PageId id) const noexcept {
  return id >= 0 && static_cast<uint32_t>(id) < next_fresh_ && table_[static_cast<std::size_t>(id)] == kAllocated;
}

Status PagedAllocator::free(const PageId* ids, std::size_t n) {
  // Validate everything before touching anything; mark ids to catch repeats within the call,
  // then restore them so the check itself leaves no trace. The error message (an allocation)
  // is built after the restore, so running out of memory there leaves no marks behind either.
  constexpr PageId kSeen = -3;
  std::size_t checked = 0;
  for (; checked < n && is_allocated(ids[checked]); ++checked) table_[static_cast<std::size_t>(ids[checked])] = kSeen;
  for (std::size_t i = 0; i < checked; ++i) table_[static_cast<std::size_t>(ids[i])] = kAllocated;
  if (checked < n) {
    const PageId id = ids[checked];
    return invalid_argument("free: page id " + std::to_string(id) +
                            (id < 0 || static_cast<uint32_t>(id) >= max_pages_ ? " is out of range"
                                                                               : " is not allocated (double free?)"));
  }
  for (std::size_t i = 0; i < n; ++i) free_one(ids[i]);
  return Status::success();
}

void PagedAllocator::free_one(PageId id) noexcept {
  table_[static_cast<std::size_t>(id)] = free_head_;
  free_head_ = id;
  --allocated_;
  ++free_count_;
}

PagedAllocatorStats PagedAllocator::stats() const noexcept {
  PagedAllocatorStats s;
  s.total_pages = max_pages_;
  s.allocated_pages = allocated_;
  s.free_pages = max_pages_ - allocated_;
  s.utilization = static_cast<double>(allocated_) / static_cast<double>(max_pages_);
  s.allocation_count = allocation_count_;
  s.free_count = free_count_;
  return s;
}

std::size_t PagedAllocator::memory_bytes() const noexcept {
  return table_.capacity() * sizeof(PageId);
}

}  // namespace llmds
