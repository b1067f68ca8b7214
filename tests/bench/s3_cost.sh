#!/bin/bash
# Measures what the bucket costs: S3 requests per task lifecycle and per worker heartbeat under
# steady load, beside the previous design's cost, and the time to restore a journal of many
# records from the bucket. Prints figures; asserts nothing.
#
# It starts the project's test S3 service (tests/s3: s3rver behind the SigV4-checking front,
# whose counters are read here) and a Release server with write-behind to it, on 127.0.0.1 and
# free ports, and stops both by pid at the end.
#
# Settings (environment):
#   BUILD_DIR        a Release build tree with garden-orchestrator [a temp tree, built if needed]
#   DURATION         seconds of steady lifecycle load [10]
#   CLIENTS          lifecycle clients [16]
#   WORKERS          workers heartbeating during the load [20]
#   HEARTBEAT_MS     milliseconds between a worker's heartbeats [500]
#   RESTORE_RECORDS  tasks created for the restore measurement [100000]
#   RESTORE_CONCURRENCY  GETs in flight during the restore (flush_concurrency) [32]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=${TMPDIR:-/tmp}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-16}
WORKERS=${WORKERS:-20}
HEARTBEAT_MS=${HEARTBEAT_MS:-500}
RESTORE_RECORDS=${RESTORE_RECORDS:-100000}
RESTORE_CONCURRENCY=${RESTORE_CONCURRENCY:-32}

work=$(mktemp -d "$TMP/gdn-s3cost.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/tests/bench/lib.sh"
server_pid=""
heartbeat_pid=""

cleanup() {
    if [ -n "$heartbeat_pid" ] && kill -0 "$heartbeat_pid" 2>/dev/null; then
        kill -TERM "$heartbeat_pid"
        wait "$heartbeat_pid" 2>/dev/null || true
    fi
    bench_stop_server
    [ -f "$work/s3/env" ] && "$ROOT/tests/s3/stop.sh" "$work/s3" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build() {
    BUILD_DIR=${BUILD_DIR:-$TMP/gdn-bench-build-$(id -u)}
    bench_build "$BUILD_DIR" "$work" bench_lifecycle
}

# The front's counter for "METHOD prefix", or 0.
count() {
    curl -s "http://127.0.0.1:$S3_CONTROL_PORT/stats" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['by_key_ok'].get('$1', 0))"
}

# Waits for the flusher to upload everything: at most ten minutes.
wait_backlog_empty() {
    for _ in $(seq 1 6000); do
        backlog=$(curl -s "$url/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["backlog"])')
        [ "$backlog" = 0 ] && return 0
        sleep 0.1
    done
    echo "backlog did not drain: $backlog" >&2
    return 1
}

# Starts a server that writes behind to the test S3 service, with a fresh data directory in
# $work and the arguments given.
start_server() {
    bench_start_server "$work" server "$work/server.log" "$@"
}

stop_server() {
    bench_stop_server
}

# Every worker heartbeats every HEARTBEAT_MS until killed; each round adds a line to a file.
heartbeats() {
    local interval
    interval=$(python3 -c "print($HEARTBEAT_MS / 1000)")
    while :; do
        for w in $(seq 1 "$WORKERS"); do
            curl -s -o /dev/null -X POST "$url/poll/heartbeat" -d "{\"worker_id\":\"bench-$w\"}" &
        done
        wait
        echo >>"$work/heartbeat-rounds"
        sleep "$interval"
    done
}

build
"$ROOT/tests/s3/start.sh" "$work/s3" >/dev/null
# shellcheck disable=SC1091
. "$work/s3/env"
export MINIO_ENDPOINT=$S3_ENDPOINT MINIO_ACCESS_KEY=$S3_ACCESS_KEY MINIO_SECRET_KEY=$S3_SECRET_KEY

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== steady load: $CLIENTS lifecycle clients for ${DURATION}s, $WORKERS workers heartbeating every ${HEARTBEAT_MS} ms, flush_interval_ms 1000"

start_server
for w in $(seq 1 "$WORKERS"); do
    curl -s -o /dev/null -X POST "$url/poll/register" -d "{\"worker_id\":\"bench-$w\",\"capabilities\":[]}"
done
wait_backlog_empty
curl -s -X POST "http://127.0.0.1:$S3_CONTROL_PORT/reset-stats" >/dev/null

heartbeats &
heartbeat_pid=$!
hb_start=$(date +%s.%N)
"$BENCH" --url "$url" --clients "$CLIENTS" --duration "$DURATION" --warmup 0 \
    >"$work/lifecycle.txt"
kill "$heartbeat_pid" 2>/dev/null || true
wait "$heartbeat_pid" 2>/dev/null || true
heartbeat_pid=""
hb_seconds=$(python3 -c "import time; print(time.time() - $hb_start)")
wait_backlog_empty

tasks=$(curl -s "$url/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["completed_tasks"])')
put_task=$(count "PUT task")
put_completed=$(count "PUT completed")
put_worker=$(count "PUT worker")
heartbeats_sent=$(($(wc -l <"$work/heartbeat-rounds") * WORKERS))
python3 - "$tasks" "$put_task" "$put_completed" "$put_worker" "$WORKERS" "$hb_seconds" <<'EOF'
import sys
tasks, put_task, put_completed, put_worker, workers, seconds = (
    int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
    float(sys.argv[6]))
writes = put_task + put_completed
print(f"tasks completed:              {tasks}")
print(f"PUT task / PUT completed:     {put_task} / {put_completed}")
print(f"S3 writes per lifecycle:      {writes / max(tasks, 1):.3f}   (previous design: 6)")
print(f"worker PUTs in {seconds:.1f} s:        {put_worker} for {workers} workers")
EOF
echo "heartbeats sent:              $heartbeats_sent   (previous design: one PUT each)"
grep -E "tasks/s|RESULT" "$work/lifecycle.txt" | head -5 || true
stop_server

echo "== restore: $RESTORE_RECORDS tasks"
# A bucket of its own, so that the new server does not restore the first run's records.
export MINIO_BUCKET=restore-bench
start_server --threads 2
printf '{"task_type":"bench","role":"restore","input_data":{"text":"restore me"}}' >"$work/body.json"
h2load -n "$RESTORE_RECORDS" -c 8 -m 16 -d "$work/body.json" \
    -H 'content-type: application/json' "$url/tasks" >"$work/h2load.txt" 2>&1 || true
grep -E "^requests:|status codes" "$work/h2load.txt"
wait_backlog_empty
stop_server
echo "flush_concurrency = $RESTORE_CONCURRENCY" >"$work/restore.conf"
start=$(date +%s.%N)
"$SERVER" restore --config "$work/restore.conf" \
    --data-dir "$work/data-restored" 2>/dev/null
end=$(date +%s.%N)
python3 -c "print(f'restore took {$end - $start:.1f} s with $RESTORE_CONCURRENCY GETs in flight')"
