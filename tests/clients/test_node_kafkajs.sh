#!/bin/bash
# SPDX-License-Identifier: MIT
# test_node_kafkajs.sh - @kafkajs/confluent-schema-registry 3.9.0 (Node) against
# a started cairn registry. Installs the pinned package into the build tree
# (node_env.sh: $CAIRN_BUILD_DIR/node-clients/, npm cache in ~/.npm), starts
# `$CAIRN_BIN registry serve` on a free port over a temporary data dir, runs
# kafkajs_test.js against it and stops the server by PID. A missing
# prerequisite (CAIRN_BIN, node, npm, the npm registry) is a failure that
# names it, never a skip.
set -u

fail() { echo "FAIL: $*" >&2; echo "summary: test_node_kafkajs.sh -> FAIL"; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
[ -n "${CAIRN_BIN:-}" ] || fail "CAIRN_BIN is not set (the built cairn binary)"
[ -x "$CAIRN_BIN" ] || fail "CAIRN_BIN=$CAIRN_BIN is not executable"
. "$here/node_env.sh"
node_setup node_kafkajs

data=$(mktemp -d)
log="$data.log"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$data" "$log"
}
trap cleanup EXIT

"$CAIRN_BIN" registry serve --listen 127.0.0.1:0 --data "$data" >"$log" 2>&1 </dev/null &
pid=$!
port=""
for _ in $(seq 200); do
    port=$(sed -n 's/.*msg="registry listening" listen="[^"]*:\([0-9][0-9]*\)".*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || { cat "$log" >&2; fail "cairn registry serve did not report 'registry listening'"; }

node "$node_dir/kafkajs_test.js" "http://127.0.0.1:$port"
rc=$?
kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "the server died during the test"; }
# Stop it ourselves: a clean exit 0 on SIGTERM (no crash, no sanitizer report).
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
if [ $status -ne 0 ] || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
    tail -n 30 "$log" >&2
    fail "the server exited with status $status on SIGTERM or printed a sanitizer report"
fi
[ $rc -eq 0 ] || { tail -n 20 "$log" >&2; echo "summary: test_node_kafkajs.sh -> FAIL"; exit 1; }
echo "summary: test_node_kafkajs.sh -> OK"
