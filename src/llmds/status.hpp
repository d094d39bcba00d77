// SPDX-License-Identifier: MIT
/// @file status.hpp
/// @brief Error codes, Status and Result<T>: how every fallible llmds call reports failure.
///
/// The core never throws across its public API: exceptions cannot cross the wasm boundary
/// cheaply (they drift the wasm stack pointer), so every fallible call returns a Status or a
/// Result<T>, and the JS layer turns a non-ok code into an LlmdsError with the same code name.
///
/// Out of memory: the core never throws on purpose, but any allocation may throw std::bad_alloc
/// (the wasm bindings catch it and report out_of_memory). Every mutating operation of every class
/// gives the strong guarantee: if it throws, the object is exactly as it was (contents, stats(),
/// serialize() bytes), so the caller can go on using it. One documented exception: the byte counts
/// of HNSW, InvertedIndex, Tokenizer and RetrievalPipeline (stats().bytes, memory_bytes()) may
/// include room that a failed call reserved ahead. tests/cpp/alloc_fault_test.cpp fails the 1st,
/// 2nd, 3rd, ... allocation of every operation and checks this.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace llmds {

/// Stable error codes. The numeric values are part of the wasm ABI (JS maps them to names):
/// append new codes at the end, never renumber.
enum class Errc : int32_t {
  ok = 0,
  invalid_argument = 1,
  out_of_memory = 2,
  capacity_exceeded = 3,
  not_found = 4,
  duplicate_id = 5,
  dimension_mismatch = 6,
  corrupt_data = 7,
  version_mismatch = 8,
};

/// The stable string name of a code, as JS reports it in `LlmdsError.code`.
const char* errc_name(Errc code) noexcept;

/// Outcome of a call that returns no value: a code plus a message naming the argument and value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status success() { return {}; }

  bool ok() const noexcept { return code_ == Errc::ok; }
  explicit operator bool() const noexcept { return ok(); }
  Errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

 private:
  Errc code_ = Errc::ok;
  std::string message_;
};

/// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose, like std::expected
  Result(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const Status& status() const noexcept { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

/// Shorthands that keep validation code on one line.
inline Status invalid_argument(std::string message) { return {Errc::invalid_argument, std::move(message)}; }
inline Status not_found(std::string message) { return {Errc::not_found, std::move(message)}; }
inline Status duplicate_id(std::string message) { return {Errc::duplicate_id, std::move(message)}; }
inline Status capacity_exceeded(std::string message) { return {Errc::capacity_exceeded, std::move(message)}; }
inline Status dimension_mismatch(std::string message) { return {Errc::dimension_mismatch, std::move(message)}; }
inline Status corrupt_data(std::string message) { return {Errc::corrupt_data, std::move(message)}; }
inline Status version_mismatch(std::string message) { return {Errc::version_mismatch, std::move(message)}; }

}  // namespace llmds
