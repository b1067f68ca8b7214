#!/usr/bin/env bash
# Stops the test S3 service that tests/s3/start.sh STATE_DIR started: the front, then s3rver,
# each by the pid recorded in STATE_DIR, and removes s3rver's data directory. Logs stay.
#
# Usage: tests/s3/stop.sh STATE_DIR
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
state="$1"

# Sends TERM to the recorded pid if it is still the process we started (its command line names
# WHAT), waits up to five seconds, then sends KILL.
stop_pid() {
    local file="$1" what="$2" pid tries=0
    [ -s "$file" ] || return 0
    pid="$(cat "$file")"
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$file"
        return 0
    fi
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$what"; then
        echo "$0: pid $pid is no longer $what; leaving it alone" >&2
        rm -f "$file"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

stop_pid "$state/front.pid" front.js
stop_pid "$state/s3rver.pid" s3rver

for data in "$state"/data.*; do
    if [ -d "$data" ]; then
        rm -rf -- "$data"
    fi
done
exit 0
