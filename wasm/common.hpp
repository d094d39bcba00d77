// SPDX-License-Identifier: MIT
// Helpers shared by every binding. Every binding follows one boundary convention, so adding a
// class is filling in this pattern (README "The wasm boundary"):
//
// - Errors: a fallible call records its Status here (code + message) and returns a sentinel:
//   kFailed (-1) from calls that return a number (0 on success for status-only calls, a
//   count or an id otherwise), null from calls that return an object, nullptr from factories.
//   JS turns a sentinel into LlmdsError with the recorded code and message (engine.mts check /
//   checked), and has no other source of engine errors; the one exception is a failed
//   allocation, which Guard raises as an LlmdsError thrown straight into JS. Status codes are
//   never returned to JS by value and JS hard-codes none: it reads their names from errorNames().
// - In: JS copies arrays and UTF-8 text into its arena in the wasm heap (memory.mts withHeap)
//   and passes (address, length) pairs, read here with heap_ptr / text_at.
// - Out: fresh JS typed arrays (copy_out) and plain objects built here, never views into the
//   heap; the hot paths that return a few numbers per call (HNSW search, Scheduler getBatch,
//   IndexedHeap pop) write them into the object's ResultSlot instead, which JS copies out right
//   after the call.
// - Limits: each Raw class has a static limits() built from the core's constants; JS
//   validates against those values, so no limit is written twice.
// - Persistence: a static deserialize(address, length) factory next to create().
#pragma once

#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmds/status.hpp"

namespace llmds::wasm {

/// What a fallible call that returns a number returns when it failed.
inline constexpr int32_t kFailed = -1;

/// Records a failed status (code and message, read by JS) and returns kFailed; 0 when ok.
int32_t report(const Status& status);

/// A result's value as a JS number, or kFailed after recording why there is none.
template <class T>
double value_or_failed(const Result<T>& r) {
  if (!r) return report(r.status());
  return static_cast<double>(r.value());
}

/// Owns a factory's result for embind, or returns nullptr after recording why there is none.
template <class Raw, class T>
std::unique_ptr<Raw> adopt(Result<T> r) {
  if (!r) {
    report(r.status());
    return nullptr;
  }
  return std::make_unique<Raw>(std::move(r.value()));
}

/// Pointer into the wasm heap handed over by JS (it wrote the data at that address).
template <class T>
const T* heap_ptr(uintptr_t address) {
  return reinterpret_cast<const T*>(address);
}

/// UTF-8 text that JS wrote into the heap.
inline std::string_view text_at(uintptr_t address, uint32_t bytes) { return {heap_ptr<char>(address), bytes}; }

/// A fresh JS typed array owned by JS: safe across later calls and memory growth.
template <class T>
emscripten::val copy_out(const T* data, std::size_t n) {
  return emscripten::val(emscripten::typed_memory_view(n, data)).call<emscripten::val>("slice");
}

template <class T>
emscripten::val copy_out(const std::vector<T>& v) {
  return copy_out(v.data(), v.size());
}

/// `{ ids, scores }` as fresh typed arrays from a ranked result, or null after recording why
/// there is none.
template <class Hits>
emscripten::val ranked_or_null(const Result<Hits>& hits) {
  if (!hits) {
    report(hits.status());
    return emscripten::val::null();
  }
  emscripten::val out = emscripten::val::object();
  out.set("ids", copy_out(hits->ids));
  out.set("scores", copy_out(hits->scores));
  return out;
}

/// A value as a JS typed array, or null after recording why there is none.
template <class T>
emscripten::val array_or_null(const Result<std::vector<T>>& r) {
  if (!r) {
    report(r.status());
    return emscripten::val::null();
  }
  return copy_out(r.value());
}

/// Where a hot-path call leaves its numbers for JS to copy out right after the call: no JS
/// object is built on the C++ side. 8-byte aligned, so JS may read it as f64, u32 or i32.
class ResultSlot {
 public:
  /// Room for `bytes`. It never shrinks and moves only when a call needs more room than any
  /// call before, so JS may keep the address while it asks for no more than it did then.
  void* reserve(std::size_t bytes) {
    const std::size_t words = (bytes + 7) / 8;
    if (words > words_.size()) words_.resize(words);
    return words_.data();
  }
  template <class T>
  T* as(std::size_t count) {
    return static_cast<T*>(reserve(count * sizeof(T)));
  }
  uintptr_t address() const { return reinterpret_cast<uintptr_t>(words_.data()); }

 private:
  std::vector<uint64_t> words_ = std::vector<uint64_t>(4);
};

/// Raises an LlmdsError in JS (out_of_memory / capacity_exceeded) for a C++ allocation failure
/// caught by Guard. Never returns.
[[noreturn]] void throw_to_js(Errc code, const char* message);

/// Wraps a bound method or static function so that a failed allocation (the module is built
/// with -fwasm-exceptions and ABORTING_MALLOC=0, so malloc returns null and operator new throws)
/// unwinds the C++ frames with their destructors and reaches JS as LlmdsError instead of
/// aborting the whole module. Bind with LLMDS_GUARD(&RawX::method).
template <auto F, class T = decltype(F)>
struct Guard;

#define LLMDS_GUARD_BODY(call)                                                                  \
  try {                                                                                         \
    return call;                                                                                \
  } catch (const std::bad_alloc&) {                                                             \
    throw_to_js(Errc::out_of_memory, "the wasm heap is exhausted (4 GiB limit or no more memory)"); \
  } catch (const std::length_error&) {                                                          \
    throw_to_js(Errc::capacity_exceeded, "a container would exceed its maximum size");          \
  }

template <auto F, class R, class C, class... A>
struct Guard<F, R (C::*)(A...)> {
  static R call(C& self, A... args) { LLMDS_GUARD_BODY((self.*F)(args...)) }
};
template <auto F, class R, class C, class... A>
struct Guard<F, R (C::*)(A...) const> {
  static R call(const C& self, A... args) { LLMDS_GUARD_BODY((self.*F)(args...)) }
};
template <auto F, class R, class... A>
struct Guard<F, R (*)(A...)> {
  static R call(A... args) { LLMDS_GUARD_BODY(F(args...)) }
};

#undef LLMDS_GUARD_BODY

}  // namespace llmds::wasm

#define LLMDS_GUARD(f) (&::llmds::wasm::Guard<f>::call)
