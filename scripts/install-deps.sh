#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what Cairn builds with and what its tests start, from Debian 12's
# packages only (no vendored copies). Idempotent: installs only what is
# missing, so a second run costs a second. Run as root.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
  libmicrohttpd-dev libjansson-dev libavro-dev libprotobuf-c-dev protobuf-c-compiler
  libprotobuf-dev protobuf-compiler librdkafka-dev libhiredis-dev libpq-dev
  libcurl4-openssl-dev libcmocka-dev
  postgresql redis-server redis-tools kcat wrk nginx-light curl jq
  python3 python3-confluent-kafka python3-requests
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get install)" >&2
  exit 2
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js: the machine's own (20.x) when present, else Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all dependencies present"
