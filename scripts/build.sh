#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds everything: the native library, tests and benchmark (build-native/), the wasm modules
# and the wasm test runners (build-wasm/, modules into dist/), then the TypeScript wrapper (dist/).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${LLMDS_JOBS:-2}
cmake -S . -B build-native -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-native -j "$jobs"
# The same suite with clang under AddressSanitizer + UndefinedBehaviorSanitizer.
cmake -S . -B build-native-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
  -DLLMDS_SANITIZE=ON -DLLMDS_BUILD_BENCH=OFF >/dev/null
cmake --build build-native-asan -j "$jobs"
emcmake cmake -S . -B build-wasm -G Ninja >/dev/null
cmake --build build-wasm -j "$jobs"
npx tsc -p js/tsconfig.json
node scripts/inline-wasm.mjs
npx tsc -p demo/decoder/tsconfig.json
