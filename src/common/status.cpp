// SPDX-License-Identifier: MIT
#include "llmds/status.hpp"

namespace llmds {

const char* errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::out_of_memory: return "out_of_memory";
    case Errc::capacity_exceeded: return "capacity_exceeded";
    case Errc::not_found: return "not_found";
    case Errc::duplicate_id: return "duplicate_id";
    case Errc::dimension_mismatch: return "dimension_mismatch";
    case Errc::corrupt_data: return "corrupt_data";
    case Errc::version_mismatch: return "version_mismatch";
  }
  return "unknown";
}

}  // namespace llmds
