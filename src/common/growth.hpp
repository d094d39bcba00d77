// SPDX-License-Identifier: MIT
// Internal: growing vectors in two steps, for operations that must give the strong guarantee
// under std::bad_alloc (see the "Out of memory" notes in the public headers). Step one
// allocates a larger copy and changes nothing; step two, after every other allocation of the
// operation has succeeded, installs it without allocating. A failure in between therefore
// leaves even the capacities (and so the reported byte counts) as they were.
#pragma once

#include <cstddef>
#include <vector>

namespace llmds::detail {

/// A copy of `v` with room for `want` elements (growing geometrically, at least `min_cap`), or
/// an empty vector when `v` already has room. Changes nothing.
template <class T>
std::vector<T> grown_copy(const std::vector<T>& v, std::size_t want, std::size_t min_cap = 8) {
  std::vector<T> out;
  if (want <= v.capacity()) return out;
  const std::size_t geometric = v.capacity() < min_cap ? min_cap : 2 * v.capacity();
  out.reserve(want > geometric ? want : geometric);
  out.assign(v.begin(), v.end());
  return out;
}

/// Installs a grown_copy() of `v` (no-op for an empty one). Never allocates.
template <class T>
void adopt_grown(std::vector<T>& v, std::vector<T>& grown) noexcept {
  if (grown.capacity() > v.capacity()) v.swap(grown);
}

}  // namespace llmds::detail
