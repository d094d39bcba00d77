#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a bounded time from its
# committed seed corpus, then replays every kept regression input.
#   scripts/fuzz.sh [seconds per target, default 6]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${LLMDS_FUZZ_SECONDS:-6}}
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DLLMDS_FUZZ=ON -DLLMDS_BUILD_TESTS=OFF -DLLMDS_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "${LLMDS_JOBS:-2}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
total_runs=0
for bin in build-fuzz/fuzz/*_fuzz; do
  name=$(basename "$bin" _fuzz)
  corpus="$work/$name"
  mkdir -p "$corpus"
  seeds=tests/fuzz/corpus/$name
  [ -d "$seeds" ] || seeds=""
  # New inputs go to a temporary corpus; the committed seeds are only read.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$corpus" $seeds >"$work/$name.log" 2>&1 || { tail -n 40 "$work/$name.log"; echo "fuzz: $name FAILED"; exit 1; }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
  total_runs=$((total_runs + runs))
  regressions=tests/fuzz/regressions/$name
  kept=0
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    "$bin" "$regressions"/* >"$work/$name.regress.log" 2>&1 || { tail -n 40 "$work/$name.regress.log"; echo "fuzz: $name regression FAILED"; exit 1; }
    kept=$(ls "$regressions" | wc -l)
  fi
  echo "fuzz: $name ok: $runs executions in ${seconds}s, $(ls "$corpus" | wc -l) new corpus inputs, $kept regression inputs replayed"
done
echo "fuzz: all targets ok, $total_runs executions in total"
