#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/sdk/run.sh - the SDK benchmarks (bench/README.md, "bench/sdk"):
# commands/s end to end through cairn_handle() with 16 caller threads
# (bench_sdk_commands) on the file backend with 1,000 hot and 100,000 cold
# accounts and on the mock Kafka cluster with 1,000 hot accounts; then the
# serde benchmark (bench_sdk_serde; a failure when it is not built).
# Starts a registry (`cairn registry serve`) and one cairn-mock-kafka, and
# stops both by PID. Medians of 3 rounds; --smoke: one short round with
# small counts (CI runs it to prove the script works).
#
#   bench/sdk/run.sh [--smoke] [--keep] [--no-kafka]
#
# Environment: CAIRN_BUILD_DIR (default build-example-rel: a Release build
# without sanitizers), CAIRN_TOOLS_DIR (where cairn-mock-kafka is; default
# $CAIRN_BUILD_DIR/tests, else the first build-*/tests/cairn-mock-kafka of the
# tree, since Release builds made with -DCAIRN_TESTS=OFF have none),
# BENCH_TMPDIR (default /var/tmp; tmpfs is refused: it makes fdatasync
# free). Prints `name=sdk.<case> key=value ...` lines (`#` lines are single
# rounds) and exits 1 when a case failed (not when a target is missed:
# met=no says that).
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${CAIRN_BUILD_DIR:-$src/build-example-rel}
bench=$build/bench/bench_sdk_commands
serde=$build/bench/bench_sdk_serde
cairn=$build/cli/cairn

. "$src/bench/lib.sh"
bench_options "$@"

if [ "$smoke" = 1 ]; then
    rounds=1 secs=1 hot=200 cold=2000
else
    rounds=3 secs=5 hot=1000 cold=100000
fi
threads=16
partitions=16 # Kafka: ~5 s of hot commands spread over 16 partitions stays far under 5 MiB each

mock=${CAIRN_TOOLS_DIR:+$CAIRN_TOOLS_DIR/cairn-mock-kafka}
if [ -z "$mock" ]; then
    mock=$build/tests/cairn-mock-kafka
    if [ ! -x "$mock" ]; then
        for m in "$src"/build-*/tests/cairn-mock-kafka; do
            [ -x "$m" ] && { mock=$m; break; }
        done
    fi
fi
for f in "$bench" "$cairn"; do
    [ -x "$f" ] || { echo "missing $f: cmake --build $build --target bench_sdk_commands cairn" >&2; exit 2; }
done
if [ "$kafka" = 1 ] && [ ! -x "$mock" ]; then
    echo "missing cairn-mock-kafka (set CAIRN_TOOLS_DIR, or build the target in a build with tests, or --no-kafka)" >&2
    exit 2
fi

bench_tmpdir cairn-bench-sdk
reg_pid= mock_pid=
cleanup() {
    stop "$reg_pid"
    stop "$mock_pid"
    bench_rmtmp
}
trap cleanup EXIT

# The registry, on its own data directory.
mkdir "$tmp/registry"
"$cairn" registry serve --listen 127.0.0.1:0 --data "$tmp/registry" >"$tmp/registry.log" 2>&1 </dev/null &
reg_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/.*msg="registry listening" listen="[^"]*:\([0-9][0-9]*\)".*/\1/p' "$tmp/registry.log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/registry.log" >&2; echo "# FAILED: the registry did not start" >&2; exit 1; }
registry=http://127.0.0.1:$port

echo "# $(date -u +%FT%TZ) $(nproc) cpus, $base on $fstype, $rounds round(s), ${secs}s each, $threads callers"

# ---- file backend ----------------------------------------------------------
for r in $(seq "$rounds"); do
    run --seconds "$secs" --threads "$threads" --aggregates "$hot" --name file.hot \
        "$registry" "file:$tmp/hot-$r"
    run --seconds "$((secs * 6))" --threads "$threads" --aggregates "$cold" --cold --name file.cold \
        "$registry" "file:$tmp/cold-$r"
    rm -rf "$tmp/hot-$r" "$tmp/cold-$r"
done
h=$(med sdk.commands.file.hot commands_per_s)
c=$(med sdk.commands.file.cold commands_per_s)
echo "name=sdk.commands.file.hot threads=$threads aggregates=$hot commands_per_s=$h rounds=$(all sdk.commands.file.hot commands_per_s) p50_us=$(med sdk.commands.file.hot p50_us) p99_us=$(med sdk.commands.file.hot p99_us) target=20000 met=$(ge "$h" 20000)"
echo "name=sdk.commands.file.cold threads=$threads aggregates=$cold commands_per_s=$c rounds=$(all sdk.commands.file.cold commands_per_s) p50_us=$(med sdk.commands.file.cold p50_us) p99_us=$(med sdk.commands.file.cold p99_us) cache_misses=$(med sdk.commands.file.cold cache_misses)"

# ---- Kafka backend against the mock cluster --------------------------------
if [ "$kafka" = 1 ]; then
    args=()
    for r in $(seq "$rounds"); do args+=(--topic "bench-sdk-$r:$partitions"); done
    bench_start_mock "$mock" "${args[@]}"
    echo "# mock cluster $bootstrap (pid $mock_pid), $partitions partitions per topic"
    for r in $(seq "$rounds"); do
        run --seconds "$secs" --threads "$threads" --aggregates "$hot" --name kafka.hot \
            "$registry" "kafka:$bootstrap?topic=bench-sdk-$r&partitions=$partitions"
    done
    stop "$mock_pid"
    mock_pid=
    k=$(med sdk.commands.kafka.hot commands_per_s)
    wm=$(grep '^name=sdk.commands.kafka.hot ' "$results" | sed -n 's/.* low_watermarks_zero=\([a-z]*\).*/\1/p' | sort -u | paste -sd/ -)
    echo "name=sdk.commands.kafka.hot threads=$threads aggregates=$hot partitions=$partitions commands_per_s=$k rounds=$(all sdk.commands.kafka.hot commands_per_s) p50_us=$(med sdk.commands.kafka.hot p50_us) p99_us=$(med sdk.commands.kafka.hot p99_us) low_watermarks_zero=${wm:-unknown}"
fi

# ---- serde: the SDK's codec next to avro-c --------------------------------
# A missing program is a failure (CI's smoke run must not pass without it).
if [ -x "$serde" ]; then
    sargs=()
    [ "$smoke" = 1 ] && sargs+=(--smoke)
    "$serde" "${sargs[@]}" || { echo "# FAILED: bench_sdk_serde"; failed=1; }
else
    echo "# FAILED: bench_sdk_serde is not built in $build (cmake --build $build --target bench_sdk_serde)"
    failed=1
fi

exit "$failed"
