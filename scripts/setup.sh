#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sets up a fresh Debian 12 machine that has Node 20: the Debian toolchain, then the pinned npm
# devDependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-toolchain.sh
npm ci --no-audit --no-fund
