#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/eventstore/run.sh - the event-store benchmark of bench/README.md
# ("Event store"): file-backend durable appends (16 appenders, single events
# and batches of 100) next to the disk's fdatasync rate in the same directory,
# file replay next to `cat` of the same segments, and Kafka-backend pipelined
# and single appends next to a plain idempotent librdkafka producer, all
# against one cairn-mock-kafka process this script starts and stops by PID.
# Medians of 3 rounds; --smoke: one 1-second round with small counts.
#
#   bench/eventstore/run.sh [--smoke] [--keep] [--no-kafka]
#
# Environment: CAIRN_BUILD_DIR (default build-bench: a Release build without
# sanitizers), BENCH_TMPDIR (default /var/tmp; tmpfs is refused: it makes
# fdatasync free). Prints `name=eventstore.<case> key=value ...` lines (`#`
# lines are single rounds) and exits 1 when a case failed (not when a target
# is missed: met=no says that).
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${CAIRN_BUILD_DIR:-$src/build-bench}
bench=$build/bench/bench_eventstore_append
mock=${CAIRN_TOOLS_DIR:-$build/tests}/cairn-mock-kafka

. "$src/bench/lib.sh"
bench_options "$@"

if [ "$smoke" = 1 ]; then
    rounds=1 secs=1 replay_events=200000 kafka_events=20000
else
    rounds=3 secs=3 replay_events=2000000 kafka_events=200000
fi
threads=16
partitions=32 # Kafka: 200k events over 32 partitions stay far under 5 MiB each
window=512     # outstanding appends per pipelining thread (16 x 512 in flight)

for f in "$bench" "$mock"; do
    [ -x "$f" ] || { echo "missing $f: cmake --build $build --target bench_eventstore_append cairn-mock-kafka" >&2; exit 2; }
done

bench_tmpdir cairn-bench-es
mock_pid=
cleanup() {
    stop "$mock_pid"
    bench_rmtmp
}
trap cleanup EXIT

echo "# $(date -u +%FT%TZ) $(nproc) cpus, $base on $fstype, $rounds round(s), ${secs}s each"

# ---- file backend ----------------------------------------------------------
for r in $(seq "$rounds"); do
    run --seconds "$secs" fsync "$tmp"
    run --seconds "$secs" --threads "$threads" file-append "$tmp" 1
    run --seconds "$secs" --threads "$threads" file-append "$tmp" 100
    run --seconds "$secs" fsync "$tmp"
done
# Replay: the log is filled once, then each round reopens and replays it and
# cats the same segments; nothing is dropped from the page cache either way.
for r in $(seq "$rounds"); do
    run --events "$replay_events" file-replay "$tmp"
done

fs=$(med eventstore.fsync fsyncs_per_s)
single=$(med eventstore.file.append.single events_per_s)
batch=$(med eventstore.file.append.batch events_per_s)
replay=$(med eventstore.file.replay events_per_s)
echo "name=eventstore.fsync fsyncs_per_s=$fs rounds=$(all eventstore.fsync fsyncs_per_s) p99_us=$(med eventstore.fsync p99_us)"
echo "name=eventstore.file.append.single threads=$threads events_per_s=$single rounds=$(all eventstore.file.append.single events_per_s) p99_us=$(med eventstore.file.append.single p99_us) events_per_fsync=$(med eventstore.file.append.single events_per_fsync) vs_fsync=$(ratio "$single" "$fs")"
echo "name=eventstore.file.append.batch threads=$threads batch=100 events_per_s=$batch rounds=$(all eventstore.file.append.batch events_per_s) p99_us=$(med eventstore.file.append.batch p99_us) events_per_fsync=$(med eventstore.file.append.batch events_per_fsync) target=500000 met=$(ge "$batch" 500000)"
echo "name=eventstore.file.replay events=$replay_events events_per_s=$replay rounds=$(all eventstore.file.replay events_per_s) mb_per_s=$(med eventstore.file.replay mb_per_s) cat_mb_per_s=$(med eventstore.file.replay cat_mb_per_s) open_ms=$(med eventstore.file.replay open_ms) cache=warm target=2000000 met=$(ge "$replay" 2000000)"

# ---- Kafka backend against the mock cluster --------------------------------
if [ "$kafka" = 1 ]; then
    topics=()
    args=()
    for r in $(seq "$rounds"); do
        for k in plain plainh cairn single; do
            topics+=("bench-$k-$r")
            args+=(--topic "bench-$k-$r:$partitions")
        done
    done
    bench_start_mock "$mock" "${args[@]}"
    echo "# mock cluster $bootstrap (pid $mock_pid), $partitions partitions per topic"
    for r in $(seq "$rounds"); do
        run --events "$kafka_events" kafka-plain "$bootstrap" "bench-plain-$r"
        run --events "$kafka_events" --plain-headers 1 kafka-plain "$bootstrap" "bench-plainh-$r"
        run --events "$kafka_events" --threads "$threads" --window "$window" kafka-pipelined "$bootstrap" "bench-cairn-$r"
        run --seconds "$secs" --events 100000 kafka-single "$bootstrap" "bench-single-$r"
    done
    run kafka-watermarks "$bootstrap" "${topics[@]}"
    stop "$mock_pid"
    mock_rc=$?
    mock_pid=
    [ "$mock_rc" = 0 ] || { echo "# cairn-mock-kafka exited $mock_rc" >&2; failed=1; }

    plain=$(med eventstore.kafka.plain events_per_s)
    plainh=$(med eventstore.kafka.plain_headers events_per_s)
    piped=$(med eventstore.kafka.pipelined events_per_s)
    p99=$(med eventstore.kafka.single p99_us)
    rat=$(ratio "$piped" "$plain")
    wm=$(grep '^name=eventstore.kafka.watermarks ' "$results" | sed -n 's/.* ok=\([a-z]*\).*/\1/p')
    echo "name=eventstore.kafka.plain events=$kafka_events events_per_s=$plain rounds=$(all eventstore.kafka.plain events_per_s)"
    echo "name=eventstore.kafka.plain_headers events=$kafka_events events_per_s=$plainh rounds=$(all eventstore.kafka.plain_headers events_per_s) note=with_cairn's_event_header"
    echo "name=eventstore.kafka.pipelined threads=$threads window=$window events=$kafka_events events_per_s=$piped rounds=$(all eventstore.kafka.pipelined events_per_s) ratio=$rat ratio_vs_headers=$(ratio "$piped" "$plainh") target=0.4 met=$(ge "$rat" 0.4)"
    echo "name=eventstore.kafka.single p50_us=$(med eventstore.kafka.single p50_us) p99_us=$p99 rounds=$(all eventstore.kafka.single p99_us) target_p99_us=10000 met=$(lt "$p99" 10000)"
    echo "name=eventstore.kafka.watermarks low_all_zero=${wm:-unknown}"
fi

exit "$failed"
