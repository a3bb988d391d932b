#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# build.sh DIR [cmake options...] - configures (once) and builds into DIR.
set -euo pipefail
dir=$1
shift
cmake -S "$(dirname "$0")/.." -B "$dir" "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
