// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <set>

#include "llmds/paged_allocator.hpp"

using namespace llmds;

TEST_CASE("paged_allocator: alloc and free are all-or-nothing", "[paged_allocator]") {
  auto a = PagedAllocator::create({16, 8});
  REQUIRE(a);
  auto first = a->alloc(5);
  REQUIRE(first);
  CHECK(first->size() == 5);
  CHECK(std::set<PageId>(first->begin(), first->end()).size() == 5);

  auto too_many = a->alloc(4);
  REQUIRE_FALSE(too_many);
  CHECK(too_many.status().code() == Errc::capacity_exceeded);
  CHECK(a->stats().allocated_pages == 5);

  // A free that names one bad id frees nothing.
  std::vector<PageId> mixed = {(*first)[0], (*first)[1], 7};
  CHECK(a->free(mixed.data(), mixed.size()).code() == Errc::invalid_argument);
  CHECK(a->stats().allocated_pages == 5);

  std::vector<PageId> repeated = {(*first)[0], (*first)[0]};
  CHECK(a->free(repeated.data(), repeated.size()).code() == Errc::invalid_argument);
  CHECK(a->stats().allocated_pages == 5);

  std::vector<PageId> out_of_range = {-1};
  CHECK(a->free(out_of_range.data(), 1).code() == Errc::invalid_argument);
  out_of_range = {1000};
  CHECK(a->free(out_of_range.data(), 1).code() == Errc::invalid_argument);

  REQUIRE(a->free(first->data(), 2).ok());
  CHECK(a->free(first->data(), 1).code() == Errc::invalid_argument);  // double free
  auto stats = a->stats();
  CHECK(stats.allocated_pages == 3);
  CHECK(stats.free_pages == 5);
  CHECK(stats.total_pages == 8);
  CHECK(stats.utilization == Approx(3.0 / 8.0));
  CHECK(stats.allocation_count == 5);
  CHECK(stats.free_count == 2);
}

TEST_CASE("paged_allocator: freed pages are reused before fresh ones", "[paged_allocator]") {
  auto a = PagedAllocator::create({4, 100});
  REQUIRE(a);
  auto pages = a->alloc(3).value();
  REQUIRE(a->free(&pages[1], 1).ok());
  auto again = a->alloc(1).value();
  CHECK(again[0] == pages[1]);
  CHECK(a->high_water() == 3);
  auto all = a->alloc(97);
  REQUIRE(all);
  CHECK(a->available() == 0);
  CHECK(a->high_water() == 100);
}

TEST_CASE("paged_allocator: rejects bad options", "[paged_allocator]") {
  CHECK(PagedAllocator::create({0, 10}).status().code() == Errc::invalid_argument);
  CHECK(PagedAllocator::create({16, 0}).status().code() == Errc::invalid_argument);
  CHECK(PagedAllocator::create({16, PagedAllocator::kMaxPages + 1}).status().code() == Errc::invalid_argument);
  auto bad = PagedAllocator::create({0, 10});
  CHECK(bad.status().message().find("pageSize") != std::string::npos);
}
