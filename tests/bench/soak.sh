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
#      ended tasks are removed while the run goes on and the journal's size levels off;
#   3. the same short retention with write-behind to the project's test S3 service (tests/s3:
#      s3rver behind the SigV4-checking front, started on free ports and stopped by pid) for
#      SOAK_BUCKET_SECONDS at SOAK_BUCKET_RATE, so that the flusher uploads every task and
#      deletes the removed ones while the run goes on; after it, the time the backlog takes to
#      drain and the S3 requests by kind.
# What would show a leak is the server's anonymous memory (RssAnon): LMDB's map is file-backed,
# so VmRSS also counts the journal pages the server has touched, and those grow with the journal.
#
# Settings (environment):
#   BUILD_DIR           a build tree to use; default: build-bench in the source tree
#   SOAK_SECONDS        seconds of load in the default run; 0 skips it [300]
#   SOAK_SHORT_SECONDS  seconds of load in the short-retention run; 0 skips it [180]
#   SOAK_RETENTION_S    task_retention_s and completed_ttl_s of runs 2 and 3 [60]
#   SOAK_BUCKET_SECONDS seconds of load in the run with a bucket; 0 skips it [180]
#   SOAK_BUCKET_RATE    tasks created per second in that run [200]: s3rver stores each object
#                       as files through Node.js, far slower than MinIO, and the run is about
#                       the server's memory with the flusher busy, not about s3rver's speed
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
SOAK_BUCKET_SECONDS=${SOAK_BUCKET_SECONDS:-180}
SOAK_BUCKET_RATE=${SOAK_BUCKET_RATE:-200}
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
    if [ -f "$work_dir/s3/env" ]; then
        "$ROOT/tests/s3/stop.sh" "$work_dir/s3" >/dev/null 2>&1 || true
    fi
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
# With SOAK_WITH_BUCKET=1 it also waits for the upload backlog to drain before the stop.
soak() {
    local name=$1 seconds=$2 rate=$3
    shift 3
    start_server "$@"
    echo "== $name: $seconds s, $WORKERS workers, $PRODUCERS producers, rate $rate/s"
    echo "\$ bench_soak --seconds $seconds --workers $WORKERS --producers $PRODUCERS" \
        "--rate $rate --pid PID --data-dir DIR"
    "$BENCH" --url "$url" --seconds "$seconds" --workers "$WORKERS" --producers "$PRODUCERS" \
        --rate "$rate" --pid "$server_pid" --data-dir "$data_dir" ||
        echo "bench_soak failed (status $?)"
    if [ "${SOAK_WITH_BUCKET:-0}" = 1 ]; then
        report_drain
    fi
    echo "/stats after the run: $(curl -fs "$url/stats" || echo unavailable)"
    echo "data directory: $(du -sh "$data_dir" | cut -f1)"
    bench_stop_server_reporting
    echo "load: $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) after the run"
    bench_remove_data_dir
    echo
}

# The upload backlog (changes not yet in the bucket) from /stats, or "unknown".
backlog() {
    curl -fs "$url/stats" | python3 -c \
        'import json, sys; print(json.load(sys.stdin)["dirty_records"])' 2>/dev/null ||
        echo unknown
}

# After a run with a bucket: how long the backlog took to drain (at most ten minutes), and the
# S3 requests the test front answered during the run, by method and object kind.
report_drain() {
    local started left waited
    started=$(date +%s.%N)
    left=$(backlog)
    for _ in $(seq 1 6000); do
        [ "$left" = 0 ] && break
        sleep 0.1
        left=$(backlog)
    done
    waited=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    echo "upload backlog after the run: $left, $waited s after the workers stopped"
    curl -fs "http://127.0.0.1:$S3_CONTROL_PORT/stats" | python3 -c '
import json, sys
stats = json.load(sys.stdin)
kinds = ", ".join("%s %d" % item for item in sorted(stats["by_key_ok"].items()))
print("S3 requests answered: %d in all; succeeded by kind: %s; DeleteObjects calls: %d; "
      "rejected: %s" % (stats["requests"], kinds, stats["by_operation"].get("DeleteObjects", 0),
                        stats["rejected"] or "none"))'
}

build
print_machine
if [ "$SOAK_SECONDS" != 0 ]; then
    soak "default settings (task_retention_s 2592000, completed_ttl_s 604800)" "$SOAK_SECONDS" \
        "$RATE"
fi
printf 'task_retention_s = %s\ncompleted_ttl_s = %s\n' "$SOAK_RETENTION_S" \
    "$SOAK_RETENTION_S" >"$work_dir/short-retention.conf"
short="task_retention_s $SOAK_RETENTION_S, completed_ttl_s $SOAK_RETENTION_S"
if [ "$SOAK_SHORT_SECONDS" != 0 ]; then
    soak "short retention ($short)" "$SOAK_SHORT_SECONDS" "$RATE" \
        --config "$work_dir/short-retention.conf"
fi
if [ "$SOAK_BUCKET_SECONDS" != 0 ]; then
    "$ROOT/tests/s3/start.sh" "$work_dir/s3" >/dev/null
    # shellcheck disable=SC1091
    . "$work_dir/s3/env"
    export MINIO_ENDPOINT=$S3_ENDPOINT MINIO_ACCESS_KEY=$S3_ACCESS_KEY
    export MINIO_SECRET_KEY=$S3_SECRET_KEY MINIO_BUCKET=$S3_BUCKET
    SOAK_WITH_BUCKET=1 soak "short retention ($short), write-behind to the test S3 service" \
        "$SOAK_BUCKET_SECONDS" "$SOAK_BUCKET_RATE" --config "$work_dir/short-retention.conf"
fi
