#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh - the projections benchmark (issue 5): rebuild rates into PostgreSQL
# and Redis next to COPY and redis-benchmark, and the live projection lag.
# pbench.py does the work and says what each case measures; this wrapper
# finds the binaries. bench/README.md ("bench/projections") has figures and machine.
#
#   CAIRN_BIN=build-rel/cli/cairn BENCH_GEN=build-rel/bench/bench_projections_gen \
#       bench/projections/run.sh [--smoke] [--keep] [--only postgres|redis]
#
# CAIRN_BUILD_DIR=<build> may stand for both. Without BENCH_GEN, the
# generator is looked for in CAIRN_BIN's build (<build>/bench/...).
# BENCH_TMPDIR (default /var/tmp, not tmpfs) holds the log and the servers'
# data; BENCH_BATCH (default 500) is the projectors' batch_size;
# BENCH_BASE_BIN=<another cairn> (e.g. a build of HEAD) adds that binary's
# rebuild to every round, for side-by-side rates. --smoke
# (20,000 events, 1 round, 2 s of live appends) checks the whole pipeline,
# read models compared with the expected ones, in about 10 s: CI can run it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${CAIRN_BIN:-}" ] && [ -n "${CAIRN_BUILD_DIR:-}" ]; then
    CAIRN_BIN=$CAIRN_BUILD_DIR/cli/cairn
fi
: "${CAIRN_BIN:?CAIRN_BIN (or CAIRN_BUILD_DIR) must name the built cairn binary}"
if [ -z "${BENCH_GEN:-}" ]; then
    BENCH_GEN=$(dirname "$(dirname "$CAIRN_BIN")")/bench/bench_projections_gen
fi
export CAIRN_BIN BENCH_GEN
for tool in redis-server redis-benchmark psql; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 2; }
done
exec /usr/bin/python3 "$here/pbench.py" "$@"
