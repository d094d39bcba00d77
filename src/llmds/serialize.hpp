// SPDX-License-Identifier: MIT
/// @file serialize.hpp
/// @brief Little-endian byte writer/reader, CRC-32 and a checksummed, versioned envelope.
///
/// Shared by every component with `serialize()` / `deserialize()` (HNSW, BM25 index, retrieval
/// pipeline). The format never contains size_t or host-endian data, so the bytes are the same
/// natively and in wasm32.
///
/// Envelope layout (all integers little-endian):
///
///     offset  size  field
///     0       8     magic, 8 ASCII bytes chosen per component (e.g. "LLMDSHNW")
///     8       4     u32 format version of the payload
///     12      8     u64 payload length in bytes
///     20      len   payload (component-defined)
///     20+len  4     u32 CRC-32 (IEEE 802.3 / zlib polynomial) of bytes [0, 20+len)
///
/// open_envelope() checks, in this order: size, magic, length, checksum (corrupt_data), then
/// version (version_mismatch). The checksum is verified before the version so that a flipped bit
/// in the version field reads as corruption, while a genuine file from another format version
/// (valid checksum) reads as version_mismatch.
///
/// Reading: ByteReader never reads past its end. Every get_* returns false (and latches ok() to
/// false) instead of reading out of bounds, and fits(count, elem_size) lets a parser check a
/// count against the remaining bytes *before* allocating anything proportional to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "llmds/status.hpp"

namespace llmds {

/// CRC-32 (reflected, polynomial 0xEDB88320, init/xorout 0xFFFFFFFF): the zlib/PNG/gzip CRC.
/// Pass the previous result as `crc` to checksum data in pieces.
uint32_t crc32(const uint8_t* data, std::size_t n, uint32_t crc = 0) noexcept;

/// Appends little-endian values to a growing byte buffer.
class ByteWriter {
 public:
  void put_u8(uint8_t v) { buf_.push_back(v); }
  void put_u16(uint16_t v);
  void put_u32(uint32_t v);
  void put_u64(uint64_t v);
  void put_i32(int32_t v) { put_u32(static_cast<uint32_t>(v)); }
  void put_f32(float v);
  void put_f64(double v);
  void put_bytes(const void* data, std::size_t n);
  /// u32 length + bytes.
  void put_string(const std::string& s);
  void put_u32_array(const uint32_t* v, std::size_t n);
  void put_f32_array(const float* v, std::size_t n);

  /// Overwrites 4 bytes at `offset` (for lengths known only at the end).
  void patch_u32(std::size_t offset, uint32_t v);
  void patch_u64(std::size_t offset, uint64_t v);

  void reserve(std::size_t n) { buf_.reserve(n); }
  std::size_t size() const noexcept { return buf_.size(); }
  const std::vector<uint8_t>& bytes() const noexcept { return buf_; }
  std::vector<uint8_t> take() noexcept { return std::move(buf_); }

 private:
  std::vector<uint8_t> buf_;
};

/// Reads little-endian values from a borrowed byte range; never reads out of bounds.
/// After the first failed read ok() is false and every later read fails too.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}

  bool get_u8(uint8_t& v) noexcept;
  bool get_u16(uint16_t& v) noexcept;
  bool get_u32(uint32_t& v) noexcept;
  bool get_u64(uint64_t& v) noexcept;
  bool get_i32(int32_t& v) noexcept;
  bool get_f32(float& v) noexcept;
  bool get_f64(double& v) noexcept;
  bool get_bytes(void* out, std::size_t n) noexcept;
  /// u32 length + bytes; the length is checked against the remaining bytes before allocating.
  bool get_string(std::string& s);
  bool get_u32_array(uint32_t* out, std::size_t n) noexcept;
  bool get_f32_array(float* out, std::size_t n) noexcept;
  bool skip(std::size_t n) noexcept;

  /// True when `count` elements of `elem_size` bytes can still be read (overflow-safe). Call it
  /// before reserving/resizing anything by a count that came from the input.
  bool fits(uint64_t count, uint64_t elem_size) const noexcept;
  std::size_t remaining() const noexcept { return size_ - pos_; }
  std::size_t position() const noexcept { return pos_; }
  bool at_end() const noexcept { return pos_ == size_; }
  bool ok() const noexcept { return ok_; }

 private:
  bool take(std::size_t n, const uint8_t*& p) noexcept;
  /// n little-endian 32-bit words (u32 or f32 bit patterns) into out.
  bool get_le32_words(void* out, std::size_t n) noexcept;

  const uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

/// Size of the envelope around a payload: 20-byte header + 4-byte checksum.
constexpr std::size_t kEnvelopeHeaderBytes = 20;
constexpr std::size_t kEnvelopeTrailerBytes = 4;

/// Writes the envelope header into an empty writer; write the payload next, then call
/// finish_envelope(). `magic` must point to at least 8 bytes (only 8 are used).
void begin_envelope(ByteWriter& w, const char* magic, uint32_t version);
/// Patches the payload length, appends the CRC-32 and returns the finished bytes.
std::vector<uint8_t> finish_envelope(ByteWriter&& w);

/// A borrowed byte range (the payload inside an envelope).
struct ByteSpan {
  const uint8_t* data = nullptr;
  std::size_t size = 0;
};

/// Validates the envelope and returns the payload range (borrowed from `data`).
/// `what` names the format in messages ("HNSW").
Result<ByteSpan> open_envelope(const uint8_t* data, std::size_t size, const char* magic, uint32_t version,
                               const char* what);

}  // namespace llmds
