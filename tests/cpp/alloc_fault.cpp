// SPDX-License-Identifier: MIT
// Replacement global operator new/delete with a fault-injection countdown (see alloc_fault.hpp).
// Linked into the native and the wasm Catch2 runners only, never into the library.
#include "alloc_fault.hpp"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

uint64_t g_countdown = 0;  // 0: disarmed; otherwise the allocation that reaches 0 fails
bool g_fired = false;
uint64_t g_count = 0;

/// True when this allocation is the one to fail.
bool inject() noexcept {
  ++g_count;
  if (g_countdown == 0 || --g_countdown != 0) return false;
  g_fired = true;
  return true;
}

void* raw_alloc(std::size_t size, std::size_t align) noexcept {
  if (size == 0) size = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(size);
  if (align < sizeof(void*)) align = sizeof(void*);
  void* p = nullptr;
  return posix_memalign(&p, align, size) == 0 ? p : nullptr;
}

void* alloc_or_throw(std::size_t size, std::size_t align) {
  if (inject()) throw std::bad_alloc();
  void* p = raw_alloc(size, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* alloc_or_null(std::size_t size, std::size_t align) noexcept {
  if (inject()) return nullptr;
  return raw_alloc(size, align);
}

}  // namespace

namespace llmds_test {

FailAfter::FailAfter(uint64_t n) noexcept {
  g_fired = false;
  g_countdown = n;
}
FailAfter::~FailAfter() { g_countdown = 0; }
bool FailAfter::fired() const noexcept { return g_fired; }
void disarm_alloc_faults() noexcept { g_countdown = 0; }
uint64_t allocation_count() noexcept { return g_count; }
bool alloc_fault_enabled() noexcept { return true; }

}  // namespace llmds_test

constexpr std::size_t kPlain = alignof(std::max_align_t);

void* operator new(std::size_t size) { return alloc_or_throw(size, kPlain); }
void* operator new[](std::size_t size) { return alloc_or_throw(size, kPlain); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return alloc_or_null(size, kPlain); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return alloc_or_null(size, kPlain); }
void* operator new(std::size_t size, std::align_val_t al) { return alloc_or_throw(size, static_cast<std::size_t>(al)); }
void* operator new[](std::size_t size, std::align_val_t al) {
  return alloc_or_throw(size, static_cast<std::size_t>(al));
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return alloc_or_null(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return alloc_or_null(size, static_cast<std::size_t>(al));
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
