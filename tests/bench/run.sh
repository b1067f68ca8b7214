#!/bin/bash
# Runs the lifecycle benchmark against a Release build of the server on this machine.
#
# It starts one server on 127.0.0.1, on a free port, with a fresh data directory (the journal
# syncs every commit, as always), then for HTTP/1.1 and for HTTP/2 runs the GET /health baseline
# and the task lifecycle with bench_lifecycle, and prints the figures and the cost of one
# lifecycle request in /health requests. Raw /health figures from wrk and h2load follow when
# those tools exist. The server is stopped by its pid on exit, whatever happens.
#
# Settings (environment):
#   BUILD_DIR       a build tree to use; default: a Release tree in $TMPDIR, built if needed
#   DURATION        measured seconds per run [10]
#   WARMUP          unmeasured seconds before each run [1]
#   CLIENTS_H1      HTTP/1.1 clients, one keep-alive connection each [64]
#   CLIENTS_H2      HTTP/2 clients (streams) [64]
#   CONNECTIONS_H2  HTTP/2 connections the streams are multiplexed over [4]
#   SERVER_THREADS  the server's --threads [nproc]
#   DATA_PARENT     where the fresh data directory is made [$TMPDIR or /tmp]
#   KEEP_DATA       1 keeps the data directory after the run [0]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=${TMPDIR:-/tmp}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
CLIENTS_H1=${CLIENTS_H1:-64}
CLIENTS_H2=${CLIENTS_H2:-64}
CONNECTIONS_H2=${CONNECTIONS_H2:-4}
SERVER_THREADS=${SERVER_THREADS:-$(nproc)}
DATA_PARENT=${DATA_PARENT:-$TMP}
KEEP_DATA=${KEEP_DATA:-0}

server_pid=""
data_dir=""
work_dir=$(mktemp -d "$TMP/gdn-bench.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/tests/bench/lib.sh"

cleanup() {
    bench_stop_server
    if [ "$KEEP_DATA" != 1 ]; then
        bench_remove_data_dir
    fi
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build() {
    BUILD_DIR=${BUILD_DIR:-$TMP/gdn-bench-build-$(id -u)}
    bench_build "$BUILD_DIR" "$work_dir" bench_lifecycle
}

start_server() {
    bench_start_server "$DATA_PARENT" gdn-bench "$work_dir/server.log" --threads "$SERVER_THREADS"
}

print_machine() {
    local device
    device=$(findmnt -n -o SOURCE -T "$data_dir" || echo unknown)
    bench_print_machine "$data_dir" "$SERVER_THREADS"
    echo "data dir:   $data_dir"
    if [ -n "$device" ] && command -v lsblk >/dev/null; then
        echo "disk:       $(lsblk -d -n -o NAME,SIZE,ROTA,MODEL "$device" 2>/dev/null |
            awk '{ $3 = "rota=" $3; print }') (rota as the device reports it)"
    fi
    echo
}

# Runs bench_lifecycle with the given options, shows its report and leaves its RESULT line in
# $result.
run_bench() {
    local out="$work_dir/bench.out"
    echo "\$ bench_lifecycle $*"
    "$BENCH" --url "$url" --duration "$DURATION" --warmup "$WARMUP" "$@" >"$out" ||
        { cat "$out"; echo "bench_lifecycle failed" >&2; exit 1; }
    grep -v '^RESULT' "$out"
    result=$(grep '^RESULT' "$out")
    echo
}

field() {
    echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

journal_size() {
    du -sh "$data_dir" | cut -f1
}

# One protocol: the /health baseline, then the lifecycle, then the ratio of the two.
run_protocol() {
    local name=$1
    shift
    echo "== $name"
    run_bench --mode health "$@"
    local health=$result
    echo "journal before the lifecycle run: $(journal_size)"
    run_bench --mode lifecycle "$@"
    local lifecycle=$result
    local health_rps lifecycle_rps errors
    health_rps=$(field "$health" req_per_s)
    lifecycle_rps=$(field "$lifecycle" req_per_s)
    errors=$(( $(field "$health" errors) + $(field "$lifecycle" errors) ))
    summary+=$(printf '%-10s %12s %12s %10s %8s %8s %6s' "$name" "$health_rps" \
        "$lifecycle_rps" "$(field "$lifecycle" tasks_per_s)" \
        "$(field "$health" client_cpu_pct)%" "$(field "$lifecycle" client_cpu_pct)%" "$errors")
    summary+=$(awk -v h="$health_rps" -v l="$lifecycle_rps" \
        'BEGIN { printf " %8.2f\n", (l > 0 ? h / l : 0) }')
    summary+=$'\n'
}

run_reference_tools() {
    echo "== raw GET /health, for reference"
    if command -v wrk >/dev/null; then
        echo "\$ wrk -t 2 -c 50 -d ${DURATION}s $url/health"
        wrk -t 2 -c 50 -d "${DURATION}s" "$url/health" | grep -E 'Latency|Requests/sec'
    else
        echo "wrk: not installed"
    fi
    if command -v h2load >/dev/null; then
        # h2load takes whole numbers or a unit: give it milliseconds.
        local duration_ms warmup_ms
        duration_ms=$(awk -v s="$DURATION" 'BEGIN { printf "%dms", s * 1000 }')
        warmup_ms=$(awk -v s="$WARMUP" 'BEGIN { printf "%dms", s * 1000 }')
        echo "\$ h2load -c $CONNECTIONS_H2 -m 10 -D $duration_ms --warm-up-time $warmup_ms" \
            "$url/health"
        h2load -c "$CONNECTIONS_H2" -m 10 -D "$duration_ms" --warm-up-time "$warmup_ms" \
            "$url/health" | grep -E '^finished|^requests:|^time for request:'
    else
        echo "h2load: not installed"
    fi
    echo
}

build
start_server
print_machine

summary=""
run_protocol HTTP/1.1 --clients "$CLIENTS_H1"
run_protocol HTTP/2 --http2 --clients "$CLIENTS_H2" --connections "$CONNECTIONS_H2"
run_reference_tools

echo "== server /stats after the runs"
curl -fs "$url/stats"
echo
echo "journal: $(journal_size)"
echo "load:    $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) after the runs"
echo
echo "== summary (cost of a lifecycle request = health req/s / lifecycle req/s, all endpoints)"
printf '%-10s %12s %12s %10s %8s %8s %6s %8s\n' protocol "health r/s" "lifecycle r/s" tasks/s \
    "cpu(h)" "cpu(l)" errors cost
printf '%s' "$summary"
echo "cpu(h), cpu(l): the load generator's own CPU, in % of one core, in each run"
