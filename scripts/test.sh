#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds, then runs every test: Catch2 natively (also under ASan/UBSan) and in wasm (ctest),
# a bounded libFuzzer run of every fuzz target, then the JS suites
# (node --test: Node API, browsers, edge runtimes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build-native --output-on-failure
ctest --test-dir build-native-asan --output-on-failure
ctest --test-dir build-wasm --output-on-failure
bash scripts/fuzz.sh
node --test tests/
