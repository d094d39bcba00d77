// SPDX-License-Identifier: MIT
#include "common.hpp"

#include "llmds/version.hpp"

namespace llmds::wasm {
namespace {
std::string last_error;  // wasm runs one thread per module instance
int32_t last_code = 0;
}

int32_t report(const Status& status) {
  if (!status.ok()) {
    last_error = status.message();
    last_code = static_cast<int32_t>(status.code());
  }
  return static_cast<int32_t>(status.code());
}

std::string last_error_message() { return last_error; }
int32_t last_error_code() { return last_code; }

std::string version() { return kVersion; }

bool simd_build() {
#ifdef __wasm_simd128__
  return true;
#else
  return false;
#endif
}

}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_common) {
  emscripten::function("lastErrorMessage", &llmds::wasm::last_error_message);
  emscripten::function("lastErrorCode", &llmds::wasm::last_error_code);
  emscripten::function("version", &llmds::wasm::version);
  emscripten::function("simdBuild", &llmds::wasm::simd_build);
}
