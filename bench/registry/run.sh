#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - the registry benchmark, run by hand (and by CI with --smoke, which
# is not a timed test). In one run it starts `cairn registry serve` on fresh
# data directories on real disk (never tmpfs, where fsync is free), nginx as
# the static-file reference, wrk as the load, and prints one line per case:
#
#   name=registry.get_by_id   GET /schemas/ids/{id}, cairn vs nginx, wrk -t2 -c64
#   name=registry.lookup      POST /subjects/{s} (schema already registered), wrk -t2 -c64
#   name=registry.compat      POST /compatibility/subjects/{s}/versions, 50-field record
#                             against 20 versions, BACKWARD_TRANSITIVE, wrk -t1 -c4
#   name=registry.register    durable registrations, every request a new schema,
#                             wrk -t2 -c16, next to the disk's fdatasync rate
#   name=registry.rss         VmRSS before and after 10,000 distinct 10-field records
#
# Throughput cases run ROUNDS times, interleaved (cairn, nginx, cairn, ...),
# and report medians: the machine is small and noisy. Every wrk script counts
# answers that are not 200 (or whose body does not look right) and socket
# errors; a case with any of them is reported valid=no and the script exits 1.
# Missing a target is reported (met=no) but is not an error.
#
# usage: bench/registry/run.sh [--smoke] [--keep] [--duration SECONDS] [--rounds N]
#   CAIRN_BIN    the cairn binary (default build/cli/cairn, relative to the repo);
#                use a Release build without sanitizers:
#                  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release
#                  cmake --build build-bench -j2 --target cairn
#   BENCH_TMPDIR where the temp dir goes (default /var/tmp; must not be tmpfs)
#   BENCH_SERVE_ARGS  extra arguments for every `cairn registry serve` (e.g. --threads 4)
set -u
set -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

SMOKE=0
KEEP=0
DURATION=10
ROUNDS=3
FSYNC_SECS=3
RSS_COUNT=10000
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) SMOKE=1 ;;
    --keep) KEEP=1 ;;
    --duration) DURATION=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$SMOKE" = 1 ]; then
    DURATION=1
    ROUNDS=1
    FSYNC_SECS=1
    RSS_COUNT=1000
fi

CAIRN_BIN=${CAIRN_BIN:-build/cli/cairn}
case "$CAIRN_BIN" in /*) ;; *) CAIRN_BIN="$REPO/$CAIRN_BIN" ;; esac
PY=/usr/bin/python3
for tool in wrk nginx curl "$PY"; do
    command -v "$tool" >/dev/null || { echo "run.sh: '$tool' is not installed" >&2; exit 2; }
done
[ -x "$CAIRN_BIN" ] || { echo "run.sh: no cairn binary at $CAIRN_BIN (set CAIRN_BIN)" >&2; exit 2; }

BASE=${BENCH_TMPDIR:-/var/tmp}
if [ "$(stat -f -c %T "$BASE")" = tmpfs ]; then
    echo "run.sh: $BASE is tmpfs, where fdatasync is free; set BENCH_TMPDIR to real disk" >&2
    exit 2
fi
WORK=$(mktemp -d "$BASE/cairn-bench.XXXXXX") || exit 2
chmod 755 "$WORK" # nginx workers run as this user but must traverse it
LOGS="$WORK/logs"
mkdir -p "$LOGS" "$WORK/nginx-tmp"

PIDS=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [ "$KEEP" = 1 ]; then
        echo "# kept $WORK (logs in $LOGS)" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "run.sh: $*" >&2
    exit 1
}

# stop_pid PID: TERM, up to 10 s for a clean stop, then KILL. Only our PIDs.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local keep=()
    for i in "${PIDS[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
    PIDS=("${keep[@]}")
    return 0
}

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_cairn DATADIR NAME: sets CAIRN_PID and CAIRN_URL, the log in $LOGS/NAME.log.
start_cairn() {
    local data=$1 name=$2 port i
    port=$(free_port)
    # shellcheck disable=SC2086 # BENCH_SERVE_ARGS is split on purpose
    "$CAIRN_BIN" registry serve --listen "127.0.0.1:$port" --data "$data" ${BENCH_SERVE_ARGS:-} \
        >"$LOGS/$name.log" 2>&1 &
    CAIRN_PID=$!
    PIDS+=("$CAIRN_PID")
    CAIRN_URL="http://127.0.0.1:$port"
    for i in $(seq 200); do
        if curl -s -o /dev/null "$CAIRN_URL/config"; then
            return 0
        fi
        kill -0 "$CAIRN_PID" 2>/dev/null || {
            tail -20 "$LOGS/$name.log" >&2
            die "cairn ($name) exited at start"
        }
        sleep 0.1
    done
    die "cairn ($name) does not answer on $CAIRN_URL"
}

start_nginx() {
    local port i
    port=$(free_port)
    sed -e "s#@PREFIX@#$WORK#g" -e "s#@ROOT@#$WORK/www#g" -e "s#@PORT@#$port#g" \
        -e "s#@USER@#$(id -un)#g" -e "s#@GROUP@#$(id -gn)#g" \
        "$HERE/nginx.conf.in" >"$WORK/nginx.conf"
    nginx -c "$WORK/nginx.conf" -p "$WORK" >"$LOGS/nginx.log" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    NGINX_URL="http://127.0.0.1:$port"
    for i in $(seq 100); do
        curl -s -o /dev/null "$NGINX_URL/" && return 0
        kill -0 "$NGINX_PID" 2>/dev/null || {
            cat "$LOGS/nginx.log" "$WORK/nginx-error.log" >&2 2>/dev/null
            die "nginx exited at start"
        }
        sleep 0.1
    done
    die "nginx does not answer on $NGINX_URL"
}

vm_kib() { # vm_kib PID FIELD -> kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# kv KEY LINE: the value of KEY in a `key=value ...` line.
kv() {
    local k=$1 line=" $2"
    line=${line#* "$k"=}
    [ "$line" = " $2" ] && { echo ""; return; }
    echo "${line%% *}"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

calc() { # calc AWK-EXPRESSION
    awk "BEGIN { printf \"%.6f\", $1 }"
}

ms() { # microseconds -> milliseconds, 3 decimals
    awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'
}

INVALID=0
# run_wrk LOGNAME PID-OF-SERVER [ENV=VALUE...] -- WRK-ARGS: sets W (the
# script's result line); checks wrk's own errors and that the server lived.
run_wrk() {
    local log="$LOGS/$1.txt" pid=$2
    shift 2
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" wrk "$@" >"$log" 2>&1 || { cat "$log" >&2; die "wrk failed ($log)"; }
    W=$(grep '^wrk requests=' "$log" | tail -1)
    [ -n "$W" ] || { cat "$log" >&2; die "wrk printed no result line ($log)"; }
    kill -0 "$pid" 2>/dev/null || die "the server died during $log"
    local errs
    errs=$(($(kv non200 "$W") + $(kv bad_body "$W") + $(kv connect_errors "$W") + \
        $(kv read_errors "$W") + $(kv write_errors "$W") + $(kv timeouts "$W")))
    WRK_ERRORS=$errs
    if [ "$errs" -ne 0 ] || [ "$(kv requests "$W")" -eq 0 ]; then
        INVALID=1
        echo "# errors in $log: $W" >&2
    fi
}

errsum() { # the error count of a result line
    echo $(($(kv non200 "$1") + $(kv bad_body "$1") + $(kv connect_errors "$1") + \
        $(kv read_errors "$1") + $(kv write_errors "$1") + $(kv timeouts "$1")))
}

met() { # met CONDITION-AWK-EXPRESSION ERRORS
    if [ "$2" -ne 0 ]; then echo no; elif awk "BEGIN { exit !($1) }"; then echo yes; else echo no; fi
}

D="${DURATION}s"
echo "name=registry.env date=$(date -u +%Y-%m-%dT%H:%M:%SZ) host=$(hostname) cores=$(nproc)" \
    "cpu=\"$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)\"" \
    "kernel=$(uname -r) fs=$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || stat -f -c %T "$WORK") dir=$WORK smoke=$SMOKE" \
    "duration_s=$DURATION rounds=$ROUNDS wrk=\"$(wrk -v 2>&1 | head -1 | awk '{ print $2 }')\"" \
    "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')"

# ---- 1. GET /schemas/ids/{id}: cairn vs nginx static file ---------------------
start_cairn "$WORK/data-read" read
READ_PID=$CAIRN_PID
READ_URL=$CAIRN_URL
out=$("$PY" "$HERE/registry_setup.py" get "$READ_URL" "$WORK") || die "preparing case 1 failed"
GET_PATH=$(kv path "$out")
start_nginx
cmp -s <(curl -s "$READ_URL$GET_PATH") <(curl -s "$NGINX_URL$GET_PATH") ||
    die "nginx does not serve the same body as cairn for $GET_PATH"
c_rps=() n_rps=() errs=0
for r in $(seq "$ROUNDS"); do
    run_wrk "get-cairn-$r" "$READ_PID" 'BENCH_EXPECT="schema"' -- \
        -t2 -c64 -d"$D" -s "$HERE/get.lua" "$READ_URL$GET_PATH"
    c_rps+=("$(kv rps "$W")"); errs=$((errs + WRK_ERRORS))
    echo "# get_by_id round=$r server=cairn $W"
    run_wrk "get-nginx-$r" "$NGINX_PID" 'BENCH_EXPECT="schema"' -- \
        -t2 -c64 -d"$D" -s "$HERE/get.lua" "$NGINX_URL$GET_PATH"
    n_rps+=("$(kv rps "$W")"); errs=$((errs + WRK_ERRORS))
    echo "# get_by_id round=$r server=nginx $W"
done
stop_pid "$NGINX_PID"
cm=$(median "${c_rps[@]}")
nm=$(median "${n_rps[@]}")
echo "name=registry.get_by_id wrk=\"-t2 -c64 -d$D\" body_bytes=$(kv bytes "$out")" \
    "cairn_rps=$cm nginx_rps=$nm ratio=$(calc "$cm / $nm" | awk '{ printf "%.2f", $1 }')" \
    "cairn_rounds=$(IFS=,; echo "${c_rps[*]}") nginx_rounds=$(IFS=,; echo "${n_rps[*]}") errors=$errs"

# ---- 2. POST /subjects/{s}: look-up of a registered schema --------------------
l_rps=() l_p99=() errs=0
for r in $(seq "$ROUNDS"); do
    run_wrk "lookup-$r" "$READ_PID" "BENCH_BODY_FILE=$WORK/lookup.json" 'BENCH_EXPECT="id"%s*:%s*%d' -- \
        -t2 -c64 -d"$D" -s "$HERE/post.lua" "$READ_URL/subjects/bench-get"
    l_rps+=("$(kv rps "$W")"); l_p99+=("$(kv p99_us "$W")"); errs=$((errs + WRK_ERRORS))
    echo "# lookup round=$r $W"
done
lm=$(median "${l_rps[@]}")
echo "name=registry.lookup wrk=\"-t2 -c64 -d$D\" rps=$lm p99_ms=$(ms "$(median "${l_p99[@]}")")" \
    "ratio_to_nginx_get=$(calc "$lm / $nm" | awk '{ printf "%.2f", $1 }')" \
    "rounds=$(IFS=,; echo "${l_rps[*]}") errors=$errs"

# ---- 3. compatibility: 50 fields against 20 versions, BACKWARD_TRANSITIVE ----
out=$("$PY" "$HERE/registry_setup.py" compat "$READ_URL" bench-compat "$WORK/compat.json") ||
    die "preparing case 3 failed"
x_rps=() x_p50=() x_p90=() x_p99=() errs=0
for r in $(seq "$ROUNDS"); do
    run_wrk "compat-$r" "$READ_PID" "BENCH_BODY_FILE=$WORK/compat.json" \
        'BENCH_EXPECT="is_compatible"%s*:%s*true' -- \
        -t1 -c4 -d"$D" --latency -s "$HERE/post.lua" \
        "$READ_URL/compatibility/subjects/bench-compat/versions"
    x_rps+=("$(kv rps "$W")"); x_p50+=("$(kv p50_us "$W")"); x_p90+=("$(kv p90_us "$W")")
    x_p99+=("$(kv p99_us "$W")"); errs=$((errs + WRK_ERRORS))
    echo "# compat round=$r $W"
done
p99=$(ms "$(median "${x_p99[@]}")")
echo "name=registry.compat wrk=\"-t1 -c4 -d$D --latency\" $out rps=$(median "${x_rps[@]}")" \
    "p50_ms=$(ms "$(median "${x_p50[@]}")") p90_ms=$(ms "$(median "${x_p90[@]}")") p99_ms=$p99" \
    "target_p99_ms=2 met=$(met "$p99 < 2" "$errs") p99_rounds_ms=$(for v in "${x_p99[@]}"; do
        printf '%s,' "$(ms "$v")"; done | sed 's/,$//') errors=$errs"
READ_RSS=$(vm_kib "$READ_PID" VmRSS)
stop_pid "$READ_PID"

# ---- 4. durable registrations, 16 clients, next to the disk's fdatasync rate --
start_cairn "$WORK/data-write" write
WRITE_PID=$CAIRN_PID
mkdir -p "$WORK/data-write" # the probe runs in the registry's own directory
fs=$("$PY" "$HERE/fsync_rate.py" "$WORK/data-write" "$FSYNC_SECS") || die "fsync_rate.py failed"
echo "# $fs"
w_rps=() w_p99=() ok=0 errs=0
for r in $(seq "$ROUNDS"); do
    run_wrk "register-$r" "$WRITE_PID" "BENCH_TAG=r$r" 'BENCH_EXPECT="id"%s*:%s*%d' -- \
        -t2 -c16 -d"$D" -s "$HERE/register.lua" "$CAIRN_URL"
    w_rps+=("$(kv rps "$W")"); w_p99+=("$(kv p99_us "$W")"); errs=$((errs + WRK_ERRORS))
    ok=$((ok + $(kv requests "$W") - $(errsum "$W")))
    echo "# register round=$r $W"
done
fs_after=$("$PY" "$HERE/fsync_rate.py" "$WORK/data-write" "$FSYNC_SECS") || die "fsync_rate.py failed"
echo "# after: $fs_after"
# Durability check: a restart on the same directory must know every id that was
# acknowledged (plus at most the requests in flight when wrk stopped).
stop_pid "$WRITE_PID"
start_cairn "$WORK/data-write" write-restart
max_id=$(curl -s "$CAIRN_URL/schemas/ids/$ok" -o /dev/null -w '%{http_code}')
max_id_line=$(sed -n 's/.*max_id=\([0-9-]*\).*/\1/p' "$LOGS/write-restart.log" | head -1)
recovered=yes
[ "$max_id" = 200 ] || recovered=no
if [ -n "$max_id_line" ] && [ "$max_id_line" -lt "$ok" ]; then recovered=no; fi
[ "$recovered" = yes ] || { INVALID=1; echo "# restart lost acknowledged ids: ok=$ok max_id=$max_id_line" >&2; }
stop_pid "$CAIRN_PID"
wm=$(median "${w_rps[@]}")
fsm=$(median "$(kv ops_per_s "$fs")" "$(kv ops_per_s "$fs_after")")
echo "name=registry.register wrk=\"-t2 -c16 -d$D\" rps=$wm p99_ms=$(ms "$(median "${w_p99[@]}")")" \
    "fdatasync_per_s=$fsm fdatasync_mean_ms=$(kv mean_ms "$fs"),$(kv mean_ms "$fs_after")" \
    "regs_per_fdatasync=$(calc "$wm / $fsm" | awk '{ printf "%.2f", $1 }') target_rps=5000" \
    "met=$(met "$wm >= 5000" "$errs") rounds=$(IFS=,; echo "${w_rps[*]}") acknowledged=$ok" \
    "restart_max_id=${max_id_line:-?} recovered=$recovered errors=$errs"

# ---- 5. RSS after 10,000 distinct 10-field records ------------------------------
start_cairn "$WORK/data-rss" rss
rss0=$(vm_kib "$CAIRN_PID" VmRSS)
out=$("$PY" "$HERE/registry_setup.py" load "$CAIRN_URL" "$RSS_COUNT" 16) || die "loading case 5 failed"
echo "# rss load: $out"
sleep 1
rss1=$(vm_kib "$CAIRN_PID" VmRSS)
hwm=$(vm_kib "$CAIRN_PID" VmHWM)
mib=$(calc "$rss1 / 1024" | awk '{ printf "%.1f", $1 }')
echo "name=registry.rss schemas=$RSS_COUNT fields=10 rss_before_kib=$rss0 rss_after_kib=$rss1" \
    "rss_after_mib=$mib hwm_kib=$hwm kib_per_schema=$(calc "($rss1 - $rss0) / $RSS_COUNT" |
        awk '{ printf "%.2f", $1 }') load_rps=$(kv rps "$out") target_mib=64" \
    "met=$(met "$rss1 < 64 * 1024" 0) read_server_rss_kib=$READ_RSS"
stop_pid "$CAIRN_PID"

if [ "$INVALID" != 0 ]; then
    echo "run.sh: some requests or checks failed (see the lines above); the figures are not valid" >&2
    exit 1
fi
exit 0
