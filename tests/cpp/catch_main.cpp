// SPDX-License-Identifier: MIT
// Catch2's main lives alone in this translation unit: it is slow to compile and never changes.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
