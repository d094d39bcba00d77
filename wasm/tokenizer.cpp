// SPDX-License-Identifier: MIT
// embind surface of Tokenizer: UTF-8 bytes in (JS encodes with TextEncoder), copies out.
#include <memory>
#include <string_view>

#include "common.hpp"
#include "llmds/tokenizer.hpp"

using emscripten::val;

namespace llmds::wasm {
namespace {

class RawTokenizer {
 public:
  static std::unique_ptr<RawTokenizer> create() { return std::make_unique<RawTokenizer>(); }

  /// Int32Array of ids, or null when the vocabulary is full.
  val encode(uintptr_t text, uint32_t n) {
    ids_.clear();
    const Status st = tok_.encode_into(text_at(text, n), ids_);
    if (!st.ok()) {
      report(st);
      return val::null();
    }
    return copy_out(ids_);
  }
  /// The UTF-8 bytes of the decoded text (JS decodes them), or null for an unknown id.
  val decode(uintptr_t ids, uint32_t n) const {
    auto text = tok_.decode(heap_ptr<TermId>(ids), n);
    if (!text) {
      report(text.status());
      return val::null();
    }
    return copy_out(reinterpret_cast<const uint8_t*>(text->data()), text->size());
  }
  uint32_t count_tokens(uintptr_t text, uint32_t n) const {
    return static_cast<uint32_t>(tok_.count_tokens(text_at(text, n)));
  }
  uint32_t vocab_size() const { return tok_.vocab_size(); }

 private:
  Tokenizer tok_;
  std::vector<TermId> ids_;
};

}  // namespace
}  // namespace llmds::wasm

EMSCRIPTEN_BINDINGS(llmds_tokenizer) {
  using namespace llmds::wasm;
  emscripten::class_<RawTokenizer>("RawTokenizer")
      .class_function("create", LLMDS_GUARD(&RawTokenizer::create))
      .function("encode", LLMDS_GUARD(&RawTokenizer::encode))
      .function("decode", LLMDS_GUARD(&RawTokenizer::decode))
      .function("countTokens", LLMDS_GUARD(&RawTokenizer::count_tokens))
      .function("vocabSize", LLMDS_GUARD(&RawTokenizer::vocab_size));
}
