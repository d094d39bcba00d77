// SPDX-License-Identifier: MIT
// Allocation fault injection for the tests, in the spirit of SQLite's malloc tests.
//
// alloc_fault.cpp replaces every global operator new / new[] (plain, nothrow, aligned) and the
// matching deletes in the test executable. The replacements call malloc / posix_memalign /
// free, so they coexist with ASan. While a FailAfter guard is armed, the n-th allocation from
// its construction fails: the throwing variants throw std::bad_alloc, the nothrow ones return
// nullptr. Only that one allocation fails (the guard then disarms itself), so the unwinding
// code and whatever the caller does next allocate normally. Disarmed by default: the rest of
// the suite never sees a failure.
#pragma once

#include <cstdint>

namespace llmds_test {

/// Arms the allocation hook for its lifetime: allocation number `n` (1-based) from now fails.
class FailAfter {
 public:
  explicit FailAfter(uint64_t n) noexcept;
  ~FailAfter();
  FailAfter(const FailAfter&) = delete;
  FailAfter& operator=(const FailAfter&) = delete;
  /// Whether the armed allocation was reached (and failed).
  bool fired() const noexcept;
};

/// Disarms the hook now (a test calls it right after the operation under test, so that
/// describing the outcome cannot trip the injected failure).
void disarm_alloc_faults() noexcept;
/// Allocations through the replaced operators since the program started (armed or not).
uint64_t allocation_count() noexcept;
/// Whether this build replaces operator new (false would make FailAfter a no-op).
bool alloc_fault_enabled() noexcept;

}  // namespace llmds_test
