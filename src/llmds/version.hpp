// SPDX-License-Identifier: MIT
/// @file version.hpp
/// @brief The library version; package.json carries the same string (a JS test checks it).
#pragma once

namespace llmds {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace llmds
