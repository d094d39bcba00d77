#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What `npm run bench` needs beyond the test setup: the Debian data sets and each comparison
# benchmark's own npm dependencies (kept out of the root install). Idempotent and quick when
# everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

data=(fortunes fortunes-min dataset-fashion-mnist)
missing=()
for p in "${data[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "== installing benchmark data: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for dir in bench/*/; do
  [ -f "$dir/package-lock.json" ] || continue
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    echo "== installing $dir dependencies"
    # hnswlib-node compiles with node-gyp, which must use the installed Node headers: the
    # registry of Node's own header tarballs is not reachable here.
    (cd "$dir" && npm_config_nodedir=/usr npm ci --no-audit --no-fund >/dev/null)
  fi
done
# The native CLI gives every figure its wasm/native ratio.
[ -x build-native/llmds_bench ] || bash scripts/build.sh
