// SPDX-License-Identifier: MIT
// Must NOT compile against llmds::llmds alone: text/ is private to llmds.
#include "text/unicode.hpp"

int main() { return 0; }
