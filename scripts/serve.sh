#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# serve.sh - installs the dependencies, builds Cairn (Release) and starts the
# schema registry on its embedded store, in the foreground:
#   listening on 127.0.0.1:8081 (CAIRN_LISTEN), data in ./cairn-data (CAIRN_DATA).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" "$top/build" -DCMAKE_BUILD_TYPE=Release -DCAIRN_TESTS=OFF
listen=${CAIRN_LISTEN:-127.0.0.1:8081}
data=${CAIRN_DATA:-$top/cairn-data}
echo "serve: registry on http://$listen with data in $data (Ctrl-C stops it)"
exec "$top/build/cli/cairn" registry serve --listen "$listen" --data "$data" "$@"
