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

}  // namespace llmds::wasm
