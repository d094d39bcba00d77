// SPDX-License-Identifier: MIT
#include "llmds/paged_allocator.hpp"

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

PageId PagedAllocator::alloc_one() noexcept {
  PageId id;
  if (!free_list_.empty()) {
    id = free_list_.back();
    free_list_.pop_back();
  } else {
    id = static_cast<PageId>(next_fresh_++);
    allocated_flag_.push_back(0);
  }
  allocated_flag_[static_cast<std::size_t>(id)] = 1;
  ++allocated_;
  ++allocation_count_;
  return id;
}

Result<std::vector<PageId>> PagedAllocator::alloc(uint32_t n) {
  if (n > available()) {
    return capacity_exceeded("alloc(" + std::to_string(n) + ") needs " + std::to_string(n) + " pages but only " +
                             std::to_string(available()) + " are free");
  }
  std::vector<PageId> ids;
  ids.reserve(n);
  for (uint32_t i = 0; i < n; ++i) ids.push_back(alloc_one());
  return ids;
}

bool PagedAllocator::is_allocated(PageId id) const noexcept {
  return id >= 0 && static_cast<uint32_t>(id) < next_fresh_ && allocated_flag_[static_cast<std::size_t>(id)] != 0;
}

Status PagedAllocator::free(const PageId* ids, std::size_t n) {
  // Validate everything before touching anything; flip flags to catch repeats within the call,
  // then restore them so the check itself leaves no trace.
  std::size_t checked = 0;
  Status status;
  for (; checked < n; ++checked) {
    const PageId id = ids[checked];
    if (!is_allocated(id)) {
      status = invalid_argument("free: page id " + std::to_string(id) +
                                (id < 0 || static_cast<uint32_t>(id) >= max_pages_ ? " is out of range"
                                                                                   : " is not allocated (double free?)"));
      break;
    }
    allocated_flag_[static_cast<std::size_t>(id)] = 0;
  }
  for (std::size_t i = 0; i < checked; ++i) allocated_flag_[static_cast<std::size_t>(ids[i])] = 1;
  if (!status.ok()) return status;
  for (std::size_t i = 0; i < n; ++i) free_one(ids[i]);
  return Status::success();
}

void PagedAllocator::free_one(PageId id) noexcept {
  allocated_flag_[static_cast<std::size_t>(id)] = 0;
  free_list_.push_back(id);
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
  return free_list_.capacity() * sizeof(PageId) + allocated_flag_.capacity();
}

}  // namespace llmds
