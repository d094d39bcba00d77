// SPDX-License-Identifier: MIT
// Helpers shared by every binding: status codes out, typed arrays in and out.
//
// Errors cross the boundary as an int32 code (llmds::Errc) plus a message kept here until the
// next failure; JS reads it with lastErrorMessage() and throws LlmdsError. Throwing through wasm
// frames instead would drift the wasm stack pointer on every failed call.
#pragma once

#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "llmds/status.hpp"

namespace llmds::wasm {

/// Records a failed status' message and returns its code (0 for ok).
int32_t report(const Status& status);

/// Pointer into the wasm heap handed over by JS (it malloc'ed and filled it).
template <class T>
const T* heap_ptr(uintptr_t address) {
  return reinterpret_cast<const T*>(address);
}

/// A fresh JS typed array owned by JS: safe across later calls and memory growth.
template <class T>
emscripten::val copy_out(const T* data, std::size_t n) {
  return emscripten::val(emscripten::typed_memory_view(n, data)).call<emscripten::val>("slice");
}

template <class T>
emscripten::val copy_out(const std::vector<T>& v) {
  return copy_out(v.data(), v.size());
}

/// `{ ids, scores }` as fresh typed arrays from a ranked result, or null after reporting why
/// there is none (JS then throws the last error).
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
