#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds, then runs every test: Catch2 natively and in wasm (ctest), then the JS suites
# (node --test: Node API, browsers, edge runtimes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build-native --output-on-failure
ctest --test-dir build-native-asan --output-on-failure
ctest --test-dir build-wasm --output-on-failure
node --test tests/
