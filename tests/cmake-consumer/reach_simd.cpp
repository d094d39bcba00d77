// SPDX-License-Identifier: MIT
// Must NOT compile against llmds::llmds alone: simd/ is private to llmds.
#include "simd/kernels.hpp"

int main() { return 0; }
