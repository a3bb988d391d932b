#!/bin/bash
# SPDX-License-Identifier: MIT
# test_sdk_kafkajs.sh - libcairn's events against clients nobody here wrote.
#
# Forward: the bank example (examples/bank, `cairn-bank`, one writer) runs
# commands against a topic of cairn-mock-kafka through the SDK and prints the
# JSON of every event it built; kafkajs (2.2.4) consumes the topic and
# @kafkajs/confluent-schema-registry (3.9.0) decodes each value: both must be
# equal (node/sdk_kafkajs_test.js, which converts only what
# docs/JSON-FORM.md says differs: Buffers for Avro bytes).
# Reverse: the npm package registers the same schemas under the same subjects
# (TopicRecordNameStrategy) and encodes values; `cairn-bank decode` (the SDK's
# serde) must decode the wire bytes to the same JSON.
#
# Starts `$CAIRN_BIN registry serve` and cairn-mock-kafka and stops both by
# PID. A missing prerequisite (CAIRN_BIN, the tools, node, npm, the npm
# registry) is a failure that names it, never a skip.
set -u

fail() { echo "FAIL: $*" >&2; echo "summary: test_sdk_kafkajs.sh -> FAIL"; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
[ -n "${CAIRN_BIN:-}" ] || fail "CAIRN_BIN is not set (the built cairn binary)"
[ -x "$CAIRN_BIN" ] || fail "CAIRN_BIN=$CAIRN_BIN is not executable"
[ -n "${CAIRN_BUILD_DIR:-}" ] || fail "CAIRN_BUILD_DIR is not set (the build holding examples/bank/cairn-bank)"
bank="$CAIRN_BUILD_DIR/examples/bank/cairn-bank"
mock="${CAIRN_TOOLS_DIR:-$CAIRN_BUILD_DIR/tests}/cairn-mock-kafka"
[ -x "$bank" ] || fail "no executable $bank: build the cairn-bank target"
[ -x "$mock" ] || fail "no executable $mock: build the cairn-mock-kafka target"
. "$here/node_env.sh"
node_setup sdk_kafkajs

tmp=$(mktemp -d)
reg_pid=""
mock_pid=""
stop() { # stop PID: SIGTERM, then SIGKILL after 5 s
    local p=$1
    [ -n "$p" ] || return 0
    if kill -0 "$p" 2>/dev/null; then
        kill -TERM "$p"
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p"
    fi
    wait "$p" 2>/dev/null
}
cleanup() {
    stop "$reg_pid"
    stop "$mock_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT

mkdir "$tmp/registry"
"$CAIRN_BIN" registry serve --listen 127.0.0.1:0 --data "$tmp/registry" >"$tmp/registry.log" 2>&1 </dev/null &
reg_pid=$!
port=""
for _ in $(seq 200); do
    port=$(sed -n 's/.*msg="registry listening" listen="[^"]*:\([0-9][0-9]*\)".*/\1/p' "$tmp/registry.log" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$reg_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/registry.log" >&2; fail "cairn registry serve did not report 'registry listening'"; }
registry="http://127.0.0.1:$port"

topic=bank-rt
"$mock" --brokers 1 --topic "$topic:3" >"$tmp/mock.out" 2>"$tmp/mock.err" </dev/null &
mock_pid=$!
for _ in $(seq 100); do
    [ -s "$tmp/mock.out" ] && break
    kill -0 "$mock_pid" 2>/dev/null || break
    sleep 0.1
done
brokers=$(head -n 1 "$tmp/mock.out")
[ -n "$brokers" ] || { cat "$tmp/mock.err" >&2; fail "cairn-mock-kafka printed no bootstrap address"; }
log="kafka:$brokers?topic=$topic&partitions=3"
echo "registry $registry, mock cluster $brokers"

# ---- forward: the SDK writes, kafkajs reads ---------------------------------
bank_run() { # bank_run ARGS...: one command, events appended to built.jsonl
    "$bank" --log "$log" --registry "$registry" --print-events "$@" >>"$tmp/built.jsonl" 2>>"$tmp/bank.err" ||
        { tail -n 20 "$tmp/bank.err" >&2; fail "cairn-bank $* exited $?"; }
}
: >"$tmp/built.jsonl"
bank_run open acc-1 "Zoë Ødegård" EUR
bank_run open acc-2 "Bob" GBP --overdraft 5000
bank_run open acc-3 "C" USD
bank_run deposit acc-1 1500 --memo "salary ☕ 𝄞"
bank_run deposit acc-1 4294967296 --reference "$(printf 'ref-\303\251\303\277')"
bank_run withdraw acc-1 200 --memo rent
bank_run withdraw acc-2 4000
bank_run deposit acc-2 1
bank_run deposit acc-3 9007199254740000
bank_run withdraw acc-3 1 --memo ""
# A refused command (beyond the overdraft) builds no event and exits 1.
"$bank" --log "$log" --registry "$registry" --print-events withdraw acc-2 999999 >>"$tmp/built.jsonl" 2>>"$tmp/bank.err"
rc=$?
[ $rc -eq 1 ] || fail "a withdrawal beyond the overdraft exited $rc, expected 1 (rejected)"
n=$(grep -c . "$tmp/built.jsonl")
[ "$n" -eq 10 ] || { cat "$tmp/built.jsonl" >&2; fail "cairn-bank printed $n events, expected 10"; }

node "$node_dir/sdk_kafkajs_test.js" consume "$brokers" "$topic" "$registry" "$tmp/built.jsonl" ||
    fail "events appended by the SDK do not read back equal through kafkajs"

# ---- reverse: the npm client encodes, the SDK decodes ------------------------
node "$node_dir/sdk_kafkajs_test.js" produce "$registry" "$topic" "$src/examples/bank/schemas" \
    "$tmp/wire.hex" "$tmp/expected.jsonl" || fail "@kafkajs/confluent-schema-registry could not encode"
"$bank" --registry "$registry" decode <"$tmp/wire.hex" >"$tmp/decoded.jsonl" 2>>"$tmp/bank.err" ||
    { tail -n 20 "$tmp/bank.err" >&2; fail "cairn-bank decode exited $?"; }
node "$node_dir/sdk_kafkajs_test.js" compare "$tmp/expected.jsonl" "$tmp/decoded.jsonl" ||
    fail "values encoded by the npm client decode differently in libcairn"

# A value whose schema id the registry does not know fails to decode (exit 2).
echo "00000f423f02" | "$bank" --registry "$registry" decode >/dev/null 2>>"$tmp/bank.err"
rc=$?
[ $rc -eq 2 ] || fail "decoding an unknown schema id exited $rc, expected 2"

for p in "$reg_pid" "$mock_pid"; do
    kill -0 "$p" 2>/dev/null || fail "a server (pid $p) died during the test"
done
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/bank.err" "$tmp/registry.log"; then
    grep -E -A5 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/bank.err" "$tmp/registry.log" >&2
    fail "a sanitizer report"
fi
echo "summary: test_sdk_kafkajs.sh -> OK"
