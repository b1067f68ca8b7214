#!/bin/bash
# Soaks a Release build of the server on this machine: a busy frontend and long-polling workers
# for a bounded time, with the server's memory and journal size every 10 s (bench_soak). Prints
# figures; asserts nothing.
#
# Two runs, each on its own server on 127.0.0.1, on a free port, with a fresh data directory,
# stopped with SIGTERM by its pid at the end of the run (and on exit, whatever happens):
#   1. default settings for SOAK_SECONDS: ended tasks stay in the journal for task_retention_s
#      (30 days), so the journal grows with the tasks by design;
#   2. task_retention_s and completed_ttl_s of SOAK_RETENTION_S for SOAK_SHORT_SECONDS, so that
#      ended tasks are removed while the run goes on and the journal's size levels off.
# What would show a leak is the server's anonymous memory (RssAnon): LMDB's map is file-backed,
# so VmRSS also counts the journal pages the server has touched, and those grow with the journal.
#
# Settings (environment):
#   BUILD_DIR           a build tree to use; default: build-bench in the source tree
#   SOAK_SECONDS        seconds of load in the default run; 0 skips it [300]
#   SOAK_SHORT_SECONDS  seconds of load in the short-retention run; 0 skips it [180]
#   SOAK_RETENTION_S    task_retention_s and completed_ttl_s of that run [60]
#   WORKERS             long-polling workers [200]
#   PRODUCERS           frontend connections [8]
#   RATE                tasks created per second; 0 for as fast as the frontend can [1000]
#   SERVER_THREADS      the server's --threads [nproc]
#   DATA_PARENT         where the fresh data directories are made [$TMPDIR or /tmp]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=${TMPDIR:-/tmp}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
SOAK_SECONDS=${SOAK_SECONDS:-300}
SOAK_SHORT_SECONDS=${SOAK_SHORT_SECONDS:-180}
SOAK_RETENTION_S=${SOAK_RETENTION_S:-60}
WORKERS=${WORKERS:-200}
PRODUCERS=${PRODUCERS:-8}
RATE=${RATE:-1000}
SERVER_THREADS=${SERVER_THREADS:-$(nproc)}
DATA_PARENT=${DATA_PARENT:-$TMP}

server_pid=""
data_dir=""
work_dir=$(mktemp -d "$TMP/gdn-soak.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/tests/bench/lib.sh"

cleanup() {
    bench_stop_server
    bench_remove_data_dir
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build() {
    bench_build "$BUILD_DIR" "$work_dir" bench_soak
}

# Starts a server with the config file given, if any, and waits until it answers.
start_server() {
    bench_start_server "$DATA_PARENT" gdn-soak "$work_dir/server.log" --threads "$SERVER_THREADS" \
        "$@"
}

print_machine() {
    bench_print_machine "$DATA_PARENT" "$SERVER_THREADS"
    echo
}

# One run: a fresh server, bench_soak against it, then the server's own view and its stop.
soak() {
    local name=$1 seconds=$2
    shift 2
    start_server "$@"
    echo "== $name: $seconds s, $WORKERS workers, $PRODUCERS producers, rate $RATE/s"
    echo "\$ bench_soak --seconds $seconds --workers $WORKERS --producers $PRODUCERS" \
        "--rate $RATE --pid PID --data-dir DIR"
    "$BENCH" --url "$url" --seconds "$seconds" --workers "$WORKERS" --producers "$PRODUCERS" \
        --rate "$RATE" --pid "$server_pid" --data-dir "$data_dir" ||
        echo "bench_soak failed (status $?)"
    echo "/stats after the run: $(curl -fs "$url/stats" || echo unavailable)"
    echo "data directory: $(du -sh "$data_dir" | cut -f1)"
    bench_stop_server_reporting
    echo "load: $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) after the run"
    bench_remove_data_dir
    echo
}

build
print_machine
if [ "$SOAK_SECONDS" != 0 ]; then
    soak "default settings (task_retention_s 2592000, completed_ttl_s 604800)" "$SOAK_SECONDS"
fi
if [ "$SOAK_SHORT_SECONDS" != 0 ]; then
    printf 'task_retention_s = %s\ncompleted_ttl_s = %s\n' "$SOAK_RETENTION_S" \
        "$SOAK_RETENTION_S" >"$work_dir/short-retention.conf"
    soak "short retention (task_retention_s $SOAK_RETENTION_S, completed_ttl_s $SOAK_RETENTION_S)" \
        "$SOAK_SHORT_SECONDS" --config "$work_dir/short-retention.conf"
fi
