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

stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
    if [ -n "$data_dir" ]; then
        rm -rf "$data_dir"
    fi
    data_dir=""
}

cleanup() {
    stop_server
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Configures the tree with the benchmarks unless it is configured already, then builds the
# server and bench_soak in it.
build() {
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] &&
        ! cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DGDN_BUILD_TESTS=OFF \
            -DGDN_BUILD_BENCH=ON >"$work_dir/build.log" 2>&1; then
        cat "$work_dir/build.log" >&2
        exit 1
    fi
    grep -q '^CMAKE_BUILD_TYPE:[A-Z]*=Release$' "$BUILD_DIR/CMakeCache.txt" ||
        echo "warning: $BUILD_DIR is not a Release build" >&2
    grep -q '^GDN_BUILD_BENCH:BOOL=ON$' "$BUILD_DIR/CMakeCache.txt" ||
        cmake -DGDN_BUILD_BENCH=ON "$BUILD_DIR" >>"$work_dir/build.log" 2>&1
    if ! cmake --build "$BUILD_DIR" -j"$(nproc)" --target garden-orchestrator bench_soak \
        >>"$work_dir/build.log" 2>&1; then
        cat "$work_dir/build.log" >&2
        exit 1
    fi
    SERVER="$BUILD_DIR/garden-orchestrator"
    BENCH="$BUILD_DIR/tests/bench/bench_soak"
    SOURCE_DIR=$(sed -n 's/^CMAKE_HOME_DIRECTORY:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0));
print(s.getsockname()[1]); s.close()'
}

# Starts a server with the config file given, if any, and waits until it answers.
start_server() {
    local config=("$@")
    local port
    data_dir=$(mktemp -d "$DATA_PARENT/gdn-soak-data.XXXXXX")
    port=$(free_port)
    url="http://127.0.0.1:$port"
    "$SERVER" "${config[@]}" --listen "127.0.0.1:$port" --data-dir "$data_dir" \
        --threads "$SERVER_THREADS" >"$work_dir/server.log" 2>&1 &
    server_pid=$!
    # Until the server listens, its port refuses connections, which curl retries.
    if ! curl -fs --retry 20 --retry-connrefused --retry-delay 1 --retry-max-time 20 \
        "$url/health" >/dev/null; then
        echo "the server did not start:" >&2
        cat "$work_dir/server.log" >&2
        exit 1
    fi
}

# Stops the server with SIGTERM and says how long it took and how it ended.
stop_server_timed() {
    local started ended status=0
    started=$(date +%s.%N)
    kill -TERM "$server_pid"
    wait "$server_pid" || status=$?
    ended=$(date +%s.%N)
    server_pid=""
    awk -v a="$started" -v b="$ended" -v s="$status" \
        'BEGIN { printf "server stopped by SIGTERM in %.2f s, exit status %d\n", b - a, s }'
}

print_machine() {
    local model revision
    model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    revision=$(git -C "$SOURCE_DIR" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
    if git -C "$SOURCE_DIR" status --porcelain -- src journal include CMakeLists.txt 2>/dev/null |
        grep -q .; then
        revision="$revision with uncommitted changes to the server"
    fi
    echo "== machine"
    echo "date:       $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "cpus:       $(nproc) x ${model:-unknown}"
    echo "kernel:     $(uname -sr)"
    echo "memory:     $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "filesystem: $(findmnt -n -o SOURCE,FSTYPE -T "$DATA_PARENT" || echo unknown)"
    echo "server:     $SERVER --threads $SERVER_THREADS"
    echo "source:     $SOURCE_DIR, $revision"
    echo "curl:       $(curl-config --version 2>/dev/null || echo unknown)"
    echo "load:       $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) before the runs"
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
    stop_server_timed
    echo "load: $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) after the run"
    stop_server
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
