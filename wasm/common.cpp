// SPDX-License-Identifier: MIT
#include "common.hpp"

#include <emscripten/em_js.h>
#include <emscripten/emscripten.h>

#include "llmds/version.hpp"

// Module.makeError is installed by the JS loader (init.mts) and builds an LlmdsError.
EM_JS(void, llmds_throw_error, (int code, const char* message), {
  throw Module['makeError'](code, UTF8ToString(message));
});

using emscripten::val;

namespace llmds::wasm {
namespace {
std::string last_error;  // wasm runs one thread per module instance
int32_t last_code = 0;
}

int32_t report(const Status& status) {
  if (status.ok()) return 0;
  last_error = status.message();
  last_code = static_cast<int32_t>(status.code());
  return kFailed;
}

void throw_to_js(Errc code, const char* message) {
  last_error = message;
  last_code = static_cast<int32_t>(code);
  llmds_throw_error(static_cast<int>(code), message);
  __builtin_unreachable();
}

std::string last_error_message() { return last_error; }
int32_t last_error_code() { return last_code; }

/// Every Errc name indexed by its value: JS maps recorded codes through this table, so the
/// codes are defined once, in status.hpp.
val error_names() {
  val names = val::array();
  for (int32_t code = 0;; ++code) {
    const std::string_view name = errc_name(static_cast<Errc>(code));
    if (name == "unknown") break;
    names.call<void>("push", std::string(name));
  }
  return names;
}

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
  emscripten::function("errorNames", &llmds::wasm::error_names);
  emscripten::function("version", &llmds::wasm::version);
  emscripten::function("simdBuild", &llmds::wasm::simd_build);
}
