#!/bin/bash
# Measures long polling against a Release build of the server on this machine: how soon a new
# task reaches a waiting worker, and what idle workers cost in requests and in journal writes.
# Prints figures; asserts nothing.
#
# Each run gets its own server on 127.0.0.1, on a free port, with a fresh data directory, and
# that server is stopped by its pid when the run ends (and on exit, whatever happens):
#   1. idle: IDLE_WORKERS workers long-poll an empty queue for IDLE_SECONDS. The journal is read
#      before and after (/stats dirty_records, LMDB's last transaction id, the bytes the server
#      sent to storage, and with strace its sync and page-write calls).
#   2. latency: for each rate in RATES, REPEAT runs of WORKERS waiting workers and a producer
#      creating tasks at that rate for DURATION seconds; then the medians over the runs.
#
# Settings (environment):
#   BUILD_DIR       a build tree to use; default: a Release tree in $TMPDIR, built if needed
#   WORKERS         waiting workers in the latency runs [50]
#   RATES           tasks per second, one latency series each ["20 200"]
#   DURATION        seconds of task creation per latency run [20]
#   REPEAT          latency runs per rate [3]
#   IDLE_WORKERS    workers in the idle run [20]
#   IDLE_SECONDS    length of the idle run [65]
#   WAIT            the polls' wait in seconds [30]
#   COMPARE         short-poll intervals, in seconds, set beside the figures ["30,5"]
#   SERVER_THREADS  the server's --threads [nproc]
#   DATA_PARENT     where the fresh data directories are made [$TMPDIR or /tmp]
#   TRACE           1 counts the idle server's sync calls with strace when it exists [1]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=${TMPDIR:-/tmp}
WORKERS=${WORKERS:-50}
RATES=${RATES:-20 200}
DURATION=${DURATION:-20}
REPEAT=${REPEAT:-3}
IDLE_WORKERS=${IDLE_WORKERS:-20}
IDLE_SECONDS=${IDLE_SECONDS:-65}
WAIT=${WAIT:-30}
COMPARE=${COMPARE:-30,5}
SERVER_THREADS=${SERVER_THREADS:-$(nproc)}
DATA_PARENT=${DATA_PARENT:-$TMP}
TRACE=${TRACE:-1}

server_pid=""
trace_pid=""
data_dir=""
work_dir=$(mktemp -d "$TMP/gdn-longpoll.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/tests/bench/lib.sh"

stop_pid() {
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill "-$2" "$1"
        wait "$1" 2>/dev/null || true
    fi
}

stop_server() {
    stop_pid "$trace_pid" INT
    trace_pid=""
    bench_stop_server
    bench_remove_data_dir
}

cleanup() {
    stop_server
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build() {
    BUILD_DIR=${BUILD_DIR:-$TMP/gdn-bench-build-$(id -u)}
    bench_build "$BUILD_DIR" "$work_dir" bench_longpoll
}

start_server() {
    bench_start_server "$DATA_PARENT" gdn-longpoll "$work_dir/server.log" \
        --threads "$SERVER_THREADS"
}

print_machine() {
    bench_print_machine "$DATA_PARENT" "$SERVER_THREADS"
    echo
}

# The value of one numeric field of GET /stats.
stats_field() {
    curl -fs "$url/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"
}

last_txn() {
    if command -v mdb_stat >/dev/null; then
        mdb_stat -e "$data_dir" | sed -n 's/.*Last transaction ID: //p'
    else
        echo "?"
    fi
}

storage_bytes() {
    sed -n 's/^write_bytes: //p' "/proc/$server_pid/io"
}

# Attaches strace to the server to count the calls with which LMDB commits: pwrite64 (the meta
# page, single pages) and the syncs. Data page runs go out with writev, which the sockets use as
# well, so it is left out. epoll_wait is counted only to show that strace saw the loops work.
TRACED="pwrite64 fdatasync fsync msync epoll_wait"

start_trace() {
    if [ "$TRACE" != 1 ] || ! command -v strace >/dev/null; then
        return 0
    fi
    strace -f -c -e "trace=${TRACED// /,}" -o "$work_dir/trace.txt" -p "$server_pid" \
        2>"$work_dir/trace.err" &
    trace_pid=$!
    sleep 0.5
    if ! kill -0 "$trace_pid" 2>/dev/null; then
        echo "strace could not attach: $(head -c 200 "$work_dir/trace.err")" >&2
        trace_pid=""
    fi
}

print_trace() {
    if [ -z "$trace_pid" ]; then
        return 0
    fi
    stop_pid "$trace_pid" INT
    trace_pid=""
    local name calls line=""
    for name in $TRACED; do
        calls=$(awk -v name="$name" '$NF == name { print $4 }' "$work_dir/trace.txt")
        line+="$name ${calls:-0}, "
    done
    echo "strace calls:   ${line%, } (whole server, all threads)"
}

# The idle run. The storage counter brackets the generator alone: a /stats request may be the
# first read of a loop thread, which claims a reader slot in LMDB's lock file and so dirties a
# page there that is not the journal's.
run_idle() {
    echo "== idle workers: $IDLE_WORKERS workers, wait=$WAIT, ${IDLE_SECONDS} s, empty queue"
    start_server
    local dirty_before txn_before sum_before bytes
    dirty_before=$(stats_field dirty_records)
    txn_before=$(last_txn)
    sum_before=$(md5sum <"$data_dir/data.mdb" | cut -c1-12)
    start_trace
    echo "\$ bench_longpoll --mode idle --workers $IDLE_WORKERS --wait $WAIT" \
        "--duration $IDLE_SECONDS --compare $COMPARE"
    bytes=$(storage_bytes)
    "$BENCH" --url "$url" --mode idle --workers "$IDLE_WORKERS" --wait "$WAIT" \
        --duration "$IDLE_SECONDS" --compare "$COMPARE" | tee "$work_dir/idle.out" ||
        echo "bench_longpoll reported failures" >&2
    bytes=$(( $(storage_bytes) - bytes ))
    echo "-- the journal during the idle run"
    echo "dirty_records:  $dirty_before before, $(stats_field dirty_records) after"
    echo "last LMDB txn:  $txn_before before, $(last_txn) after"
    echo "data.mdb md5:   $sum_before before, $(md5sum <"$data_dir/data.mdb" | cut -c1-12) after"
    echo "storage writes: $bytes bytes sent to storage by the server during the run" \
        "(/proc/PID/io write_bytes: journal, lock file and log together)"
    print_trace
    stop_server
    echo
}

# One latency run on a fresh server; appends its RESULT line to $work_dir/latency.results.
run_latency() {
    local rate=$1 round=$2
    start_server
    echo "\$ bench_longpoll --mode latency --workers $WORKERS --rate $rate --duration $DURATION" \
        "--wait $WAIT --compare $COMPARE    # run $round of $REPEAT"
    "$BENCH" --url "$url" --mode latency --workers "$WORKERS" --rate "$rate" \
        --duration "$DURATION" --wait "$WAIT" --compare "$COMPARE" >"$work_dir/latency.out" ||
        echo "bench_longpoll reported failures" >&2
    if [ "$round" = 1 ]; then
        grep -v '^RESULT' "$work_dir/latency.out"
    else
        grep -E '^(tasks|delivery|POST|failures)' "$work_dir/latency.out"
    fi
    grep '^RESULT' "$work_dir/latency.out" | sed "s/^RESULT/RESULT round=$round/" \
        >>"$work_dir/latency.results"
    echo "server after:   processing_tasks $(stats_field processing_tasks)," \
        "pending_tasks $(stats_field pending_tasks)"
    stop_server
    echo
}

field() {
    echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
        else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

print_latency_summary() {
    echo "== delivery latency summary, ms (create sent -> task received by a waiting worker)"
    printf '%-8s %-7s %9s %9s %9s %9s %9s %11s %9s\n' rate run delivered p50 p90 p99 max \
        "create p50" failures
    local rate line key
    for rate in $RATES; do
        grep " rate=$rate\.0 \| rate=$rate " "$work_dir/latency.results" >"$work_dir/rate.txt" ||
            continue
        while read -r line; do
            printf '%-8s %-7s %9s' "$rate/s" "$(field "$line" round)" "$(field "$line" delivered)"
            for key in p50_us p90_us p99_us max_us create_p50_us; do
                printf ' %9.2f' "$(awk -v us="$(field "$line" $key)" 'BEGIN { print us / 1000 }')"
            done
            printf ' %9s\n' "$(field "$line" failures)"
        done <"$work_dir/rate.txt"
        printf '%-8s %-7s %9s' "$rate/s" median \
            "$(while read -r line; do field "$line" delivered; done <"$work_dir/rate.txt" | median)"
        for key in p50_us p90_us p99_us max_us create_p50_us; do
            printf ' %9.2f' "$(while read -r line; do field "$line" $key; done \
                <"$work_dir/rate.txt" | median | awk '{ print $1 / 1000 }')"
        done
        printf '\n'
    done
}

build
print_machine
run_idle
: >"$work_dir/latency.results"
for rate in $RATES; do
    echo "== latency: $WORKERS waiting workers, $rate tasks/s for $DURATION s, $REPEAT run(s)"
    for round in $(seq "$REPEAT"); do
        run_latency "$rate" "$round"
    done
done
print_latency_summary
echo "load:     $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) after the runs"
