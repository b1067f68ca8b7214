#!/usr/bin/env bash
# Starts the test S3 service: s3rver on a fresh data directory, with the SigV4-checking front
# (front.js) in front of it, both on 127.0.0.1 and free ports.
#
# Usage: tests/s3/start.sh STATE_DIR [BUCKET]
#
# STATE_DIR is created if needed and receives:
#   s3rver.pid, front.pid  the two process ids (tests/s3/stop.sh STATE_DIR stops both)
#   ports.json             the front's ready line plus bucket, region and credentials
#   env                    the same as shell assignments (S3_PORT, S3_CONTROL_PORT, ...)
#   s3rver.log, front.log  their output
#   data.XXXXXX/           s3rver's bucket storage, fresh for this run
# The ready line from ports.json is also printed on stdout.
#
# Environment: S3_BUCKET (default garden-orchestrator; the argument wins), S3_ACCESS_KEY
# (default garden-test), S3_SECRET_KEY (default garden-test-secret), S3_REGION (default
# us-east-1), S3_FRONT_PORT and S3_FRONT_CONTROL_PORT (default 0: free ports; named apart from
# the S3_PORT the env file sets, so a sourced env never pins the next run), S3_FRONT_ARGS (extra
# front.js options, such as --verbose).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 STATE_DIR [BUCKET]" >&2
    exit 2
fi
state="$1"
bucket="${2:-${S3_BUCKET:-garden-orchestrator}}"
access_key="${S3_ACCESS_KEY:-garden-test}"
secret_key="${S3_SECRET_KEY:-garden-test-secret}"
region="${S3_REGION:-us-east-1}"

mkdir -p "$state"
state="$(cd "$state" && pwd)"
for name in s3rver.pid front.pid; do
    if [ -s "$state/$name" ] && kill -0 "$(cat "$state/$name")" 2>/dev/null; then
        echo "$0: $state already has a running service; stop it first" >&2
        exit 1
    fi
done
rm -f "$state/s3rver.pid" "$state/front.pid" "$state/ports.json" "$state/env" \
    "$state/s3rver.out" "$state/front.out"

if [ ! -x "$here/node_modules/.bin/s3rver" ]; then
    echo "$0: installing s3rver (npm ci) in $here" >&2
    (cd "$here" && npm ci --no-audit --no-fund >&2)
fi

# Waits until FILE has a line matching PATTERN while PID lives; prints that line.
wait_for_line() {
    local file="$1" pattern="$2" pid="$3" tries=0 line
    while [ "$tries" -lt 300 ]; do
        line="$(grep -m1 -E "$pattern" "$file" 2>/dev/null || true)"
        if [ -n "$line" ]; then
            printf '%s\n' "$line"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
        tries=$((tries + 1))
    done
    return 1
}

data="$(mktemp -d "$state/data.XXXXXX")"

# Without the legacy provider, s3rver's continuation tokens (des-cbc) fail and any listing that
# needs one answers 500.
NODE_OPTIONS=--openssl-legacy-provider \
    "$here/node_modules/.bin/s3rver" --directory "$data" --address 127.0.0.1 --port 0 \
    --silent --configure-bucket "$bucket" \
    </dev/null >"$state/s3rver.out" 2>"$state/s3rver.log" &
s3rver_pid=$!
echo "$s3rver_pid" >"$state/s3rver.pid"

listening='listening on 127\.0\.0\.1:[0-9]+'
if ! line="$(wait_for_line "$state/s3rver.out" "$listening" "$s3rver_pid")"; then
    echo "$0: s3rver did not start; its log:" >&2
    cat "$state/s3rver.out" "$state/s3rver.log" >&2 || true
    kill "$s3rver_pid" 2>/dev/null || true
    exit 1
fi
s3rver_port="${line##*:}"

# shellcheck disable=SC2086 # S3_FRONT_ARGS is a list of options on purpose.
S3_ACCESS_KEY="$access_key" S3_SECRET_KEY="$secret_key" S3_REGION="$region" \
    node "$here/front.js" --s3rver-port "$s3rver_port" \
    --port "${S3_FRONT_PORT:-0}" --control-port "${S3_FRONT_CONTROL_PORT:-0}" ${S3_FRONT_ARGS:-} \
    </dev/null >"$state/front.out" 2>"$state/front.log" &
front_pid=$!
echo "$front_pid" >"$state/front.pid"

if ! ready="$(wait_for_line "$state/front.out" '^\{"s3_port"' "$front_pid")"; then
    echo "$0: front.js did not start; its log:" >&2
    cat "$state/front.log" >&2 || true
    kill "$front_pid" "$s3rver_pid" 2>/dev/null || true
    exit 1
fi

# The ready line is {"s3_port":N,"control_port":M,"s3rver_port":K}; take the numbers out.
s3_port="$(printf '%s' "$ready" | sed -E 's/.*"s3_port":([0-9]+).*/\1/')"
control_port="$(printf '%s' "$ready" | sed -E 's/.*"control_port":([0-9]+).*/\1/')"

printf '{"s3_port":%s,"control_port":%s,"s3rver_port":%s,"bucket":"%s","region":"%s",' \
    "$s3_port" "$control_port" "$s3rver_port" "$bucket" "$region" >"$state/ports.json"
printf '"access_key":"%s","secret_key":"%s","front_pid":%s,"s3rver_pid":%s}\n' \
    "$access_key" "$secret_key" "$front_pid" "$s3rver_pid" >>"$state/ports.json"

{
    printf 'S3_PORT=%s\n' "$s3_port"
    printf 'S3_CONTROL_PORT=%s\n' "$control_port"
    printf 'S3RVER_PORT=%s\n' "$s3rver_port"
    printf 'S3_ENDPOINT=127.0.0.1:%s\n' "$s3_port"
    printf 'S3_BUCKET=%q\n' "$bucket"
    printf 'S3_REGION=%q\n' "$region"
    printf 'S3_ACCESS_KEY=%q\n' "$access_key"
    printf 'S3_SECRET_KEY=%q\n' "$secret_key"
    printf 'S3_FRONT_PID=%s\n' "$front_pid"
    printf 'S3RVER_PID=%s\n' "$s3rver_pid"
    printf 'S3_DATA_DIR=%q\n' "$data"
} >"$state/env"

cat "$state/ports.json"
