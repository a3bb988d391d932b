# SPDX-License-Identifier: MIT
#
# bench/lib.sh - what the benchmark drivers share (bench/sdk/run.sh,
# bench/eventstore/run.sh), sourced after they set $bench (the benchmark
# executable): the --smoke/--keep/--no-kafka options, a scratch directory on
# a real disk (tmpfs is refused: it makes fdatasync free), rounds collected
# in $results with their medians, and cairn-mock-kafka started and stopped by
# PID. The caller's `cleanup` (an EXIT trap) stops what it started and calls
# bench_rmtmp.

# bench_options "$@": sets smoke, keep and kafka (0/1); exits 2 on anything else.
bench_options() {
    smoke=0 keep=0 kafka=1
    for a in "$@"; do
        case "$a" in
        --smoke) smoke=1 ;;
        --keep) keep=1 ;;
        --no-kafka) kafka=0 ;;
        *) echo "usage: $0 [--smoke] [--keep] [--no-kafka]" >&2; exit 2 ;;
        esac
    done
}

# bench_tmpdir NAME: sets base, fstype, tmp (a new $base/NAME.XXXXXX), failed=0
# and an empty $results.
bench_tmpdir() {
    base=${BENCH_TMPDIR:-/var/tmp}
    fstype=$(stat -f -c %T "$base")
    if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
        echo "$base is $fstype: fdatasync is free there; set BENCH_TMPDIR to a real disk" >&2
        exit 2
    fi
    tmp=$(mktemp -d "$base/$1.XXXXXX")
    failed=0
    results=$tmp/results.txt
    : >"$results"
}

# bench_rmtmp: removes $tmp, or keeps it with --keep.
bench_rmtmp() {
    if [ "$keep" = 1 ]; then echo "# kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# stop PID: SIGTERM and reap (nothing when PID is empty); returns its status.
stop() {
    local p=$1
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}

# run ARGS...: one round of $bench; its line goes to stdout as a comment and
# to $results, its `#` lines on stderr to stdout; a failure sets failed=1.
run() {
    local line
    if line=$("$bench" "$@" 2>"$tmp/last.err"); then
        echo "# $line"
        echo "$line" >>"$results"
    else
        echo "# FAILED: $*"
        echo "# $line"
        tail -n 5 "$tmp/last.err" | sed 's/^/#   /'
        failed=1
    fi
    grep -h '^#' "$tmp/last.err" || true
    cat "$tmp/last.err" >>"$tmp/bench.err"
}

# med NAME KEY: the median of KEY over the rounds of case NAME.
med() {
    grep "^name=$1 " "$results" | sed -n "s/.* $2=\([^ ]*\).*/\1/p" | sort -g |
        awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "nan"}'
}
# all NAME KEY: every round's KEY, a/b/c.
all() {
    grep "^name=$1 " "$results" | sed -n "s/.* $2=\([^ ]*\).*/\1/p" | paste -sd/ -
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN {print (a != "nan" && a + 0 >= b + 0) ? "yes" : "no"}'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {print (a != "nan" && a + 0 < b + 0) ? "yes" : "no"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "nan" || b == "nan" || b + 0 == 0) print "nan"; else printf "%.2f", a / b}'; }

# bench_start_mock MOCK ARGS...: starts MOCK --brokers 1 ARGS in the
# background; sets mock_pid and bootstrap, or exits 1 when it printed none.
bench_start_mock() {
    local m=$1
    shift
    "$m" --brokers 1 "$@" >"$tmp/mock.out" 2>"$tmp/mock.err" </dev/null &
    mock_pid=$!
    for _ in $(seq 100); do
        [ -s "$tmp/mock.out" ] && break
        sleep 0.1
    done
    bootstrap=$(head -n 1 "$tmp/mock.out")
    if [ -z "$bootstrap" ]; then
        echo "# FAILED: cairn-mock-kafka printed no bootstrap address" >&2
        cat "$tmp/mock.err" >&2
        exit 1
    fi
}
