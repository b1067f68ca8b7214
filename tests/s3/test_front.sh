#!/usr/bin/env bash
# Proves that the test S3 front checks signatures as S3 does, forwards valid requests to s3rver,
# counts them, and injects each fault it offers. Requests are signed by curl's own SigV4 code
# (--aws-sigv4), the same code the server under test uses through libcurl.
#
# Usage: tests/s3/test_front.sh
# Starts its own s3rver and front on free ports in a temp directory and stops both by pid.
# Prints "N passed, M failed" last and exits non-zero if anything failed.
# shellcheck disable=SC2317 # helpers run through check and trap, which shellcheck cannot see
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/s3front-test.XXXXXX")"
passed=0
failed=0

cleanup() {
    "$here/stop.sh" "$work/state" >/dev/null 2>&1
    rm -rf -- "$work"
}
trap cleanup EXIT

check() {
    local name="$1"
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   - $name"
    else
        failed=$((failed + 1))
        echo "FAIL - $name"
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    if [ "$failed" -ne 0 ]; then
        echo "front log:" >&2
        tail -n 40 "$work/state/front.log" >&2 2>/dev/null
        exit 1
    fi
    exit 0
}

for tool in curl jq openssl sha256sum node; do
    if ! command -v "$tool" >/dev/null; then
        echo "missing tool: $tool"
        failed=$((failed + 1))
        finish
    fi
done

# --- Part 1: the verifier against AWS's published SigV4 examples for S3 --------------------------
# These are independent of curl: if both curl and the front were wrong the same way, the
# round trips below would still pass, but these examples would not.
vector_output="$(node - "$here/front.js" <<'EOF'
const { verifyRequest } = require(process.argv[2]);
const crypto = require('crypto');
const config = {
    accessKey: 'AKIAIOSFODNN7EXAMPLE',
    secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    region: 'us-east-1',
};
const now = Date.UTC(2013, 4, 24, 0, 5, 0);
const empty = crypto.createHash('sha256').update('').digest('hex');
const putBody = 'Welcome to Amazon S3.';
const host = 'examplebucket.s3.amazonaws.com';
const vectors = [
    ['GET object with a range', 'GET', '/test.txt', '', '',
        { Host: host, Range: 'bytes=0-9', 'x-amz-content-sha256': empty },
        'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'],
    ['PUT object with an encoded key', 'PUT', '/test%24file.text', '', putBody,
        { Host: host, Date: 'Fri, 24 May 2013 00:00:00 GMT',
          'x-amz-storage-class': 'REDUCED_REDUNDANCY',
          'x-amz-content-sha256': crypto.createHash('sha256').update(putBody).digest('hex') },
        '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd'],
    ['GET a bucket sub-resource flag', 'GET', '/', 'lifecycle', '',
        { Host: host, 'x-amz-content-sha256': empty },
        'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543'],
    ['GET a listing with two parameters', 'GET', '/', 'max-keys=2&prefix=J', '',
        { Host: host, 'x-amz-content-sha256': empty },
        '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7'],
];
function verify(method, path, query, body, headers, signature) {
    const rawHeaders = [];
    for (const [name, value] of Object.entries(headers)) {
        rawHeaders.push(name, value);
    }
    rawHeaders.push('x-amz-date', '20130524T000000Z');
    const signed = Object.keys(headers).concat('x-amz-date').map((name) => name.toLowerCase());
    rawHeaders.push('Authorization',
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,' +
        `SignedHeaders=${signed.sort().join(';')},Signature=${signature}`);
    return verifyRequest({ method, path, query, rawHeaders, body: Buffer.from(body) }, config, now);
}
for (const [name, method, path, query, body, headers, signature] of vectors) {
    const good = verify(method, path, query, body, headers, signature);
    console.log(`${good === null ? 'ok' : 'FAIL'} ${name}: accepted`);
    const flipped = signature.slice(0, 63) + (signature[63] === '0' ? '1' : '0');
    const bad = verify(method, path, query, body, headers, flipped);
    const refused = bad !== null && bad.code === 'SignatureDoesNotMatch';
    console.log(`${refused ? 'ok' : 'FAIL'} ${name}: one changed signature digit refused`);
}
EOF
)"
while IFS= read -r line; do
    check "AWS example, ${line#* }" test "${line%% *}" = ok
done <<<"$vector_output"

# --- Part 2: start s3rver and the front ----------------------------------------------------------
bucket=front-test-bucket
if ! S3_ACCESS_KEY=test-key S3_SECRET_KEY=test-secret \
    "$here/start.sh" "$work/state" "$bucket" >"$work/start.out" 2>"$work/start.err"; then
    cat "$work/start.err"
    check "the service starts" false
    finish
fi
# shellcheck source=/dev/null
. "$work/state/env"
check "start.sh records both pids and the ports" \
    test -n "$S3_FRONT_PID" -a -n "$S3RVER_PID" -a -n "$S3_PORT" -a -n "$S3_CONTROL_PORT"
check "the front listens on 127.0.0.1 only" \
    bash -c "ss -ltnH 'sport = :$S3_PORT' | awk '{print \$4}' | grep -qx '127.0.0.1:$S3_PORT'"

base="http://127.0.0.1:$S3_PORT/$bucket"
control="http://127.0.0.1:$S3_CONTROL_PORT"
empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# s3_as CREDENTIALS PAYLOAD_SHA URL [curl options...]: one signed request (s3: the same with
# the valid key pair). Sets $code (the HTTP status, 000 when there was no answer) and $rc
# (curl's exit code), and leaves the body in $work/body.
s3_as() {
    local credentials="$1" sha="$2" url="$3"
    shift 3
    code="$(curl -sS --max-time 30 -o "$work/body" -w '%{http_code}' \
        --aws-sigv4 "aws:amz:us-east-1:s3" --user "$credentials" \
        -H "x-amz-content-sha256: $sha" "$@" "$url" 2>"$work/curl.err")"
    rc=$?
}
s3() {
    s3_as test-key:test-secret "$@"
}
# get_object KEY [curl options...] and get_bucket QUERY: signed requests without a body.
get_object() {
    local key="$1"
    shift
    s3 "$empty_sha" "$base/$key" "$@"
}
get_bucket() {
    s3 "$empty_sha" "$base?$1"
}
# The task object written first, read again wherever a test needs any successful request.
get_task() {
    get_object "task%3A$task_id"
}
sha_of() {
    printf '%s' "$1" | sha256sum | cut -d' ' -f1
}
md5_of() {
    printf '%s' "$1" | openssl dgst -md5 -binary | base64
}
error_code() {
    sed -n 's:.*<Code>\([^<]*\)</Code>.*:\1:p' "$work/body" | head -n1
}
put_object() {
    local key="$1" body="$2"
    shift 2
    s3 "$(sha_of "$body")" "$base/$key" -X PUT --data-binary "$body" \
        -H "Content-Type: application/json" "$@"
}
ctl() {
    local method="$1" path="$2" body="${3:-}"
    curl -sS --max-time 30 -X "$method" -H "Content-Type: application/json" \
        ${body:+--data-binary "$body"} "$control$path"
}
stat_value() {
    ctl GET /stats | jq -r "$1"
}
new_id() {
    cat /proc/sys/kernel/random/uuid
}
is() {
    [ "$1" = "$2" ] || {
        echo "     expected '$2', got '$1'"
        return 1
    }
}
# True for curl's exit codes that mean the connection failed: refused (7), closed with no
# answer (52), reset while sending (55) or while receiving (56).
connection_error() {
    case "$1" in
    7 | 52 | 55 | 56) return 0 ;;
    *)
        echo "     curl exit code $1 is not a connection error"
        return 1
        ;;
    esac
}

check "the control API answers /health" is "$(ctl GET /health | jq -r .status)" ok

# --- Part 3: signatures --------------------------------------------------------------------------
task_id="$(new_id)"
task_body="{\"id\":\"$task_id\",\"status\":\"pending\"}"
put_object "task%3A$task_id" "$task_body" -H "x-amz-meta-created_at: 2026-01-01T00:00:00Z"
check "a correctly signed PutObject to task%3A<uuid> succeeds" is "$code" 200

get_task
check "GetObject returns it" is "$code $(cat "$work/body")" "200 $task_body"

get_object "task%3A$task_id" -I -D "$work/headers"
check "HeadObject shows the user metadata and the content type" \
    grep -qi '^x-amz-meta-created_at: 2026-01-01T00:00:00Z' "$work/headers"

other_id="$(new_id)"
s3_as test-key:wrong-secret "$(sha_of "$task_body")" "$base/task%3A$other_id" -X PUT \
    --data-binary "$task_body" -H "Content-Type: application/json"
check "a PutObject signed with a wrong secret gets 403 SignatureDoesNotMatch" \
    is "$code $(error_code)" "403 SignatureDoesNotMatch"
get_object "task%3A$other_id"
check "and the badly signed object never reached s3rver" is "$code $(error_code)" "404 NoSuchKey"

s3_as test-key:wrong-secret "$empty_sha" "$base/task%3A$task_id"
check "a GetObject signed with a wrong secret gets 403 SignatureDoesNotMatch" \
    is "$code $(error_code)" "403 SignatureDoesNotMatch"
check "the refusal explains the canonical request" grep -q '<CanonicalRequest>' "$work/body"

s3 "$(sha_of "$task_body")" "$base/task%3A$other_id" -X PUT --data-binary "${task_body}x"
check "a tampered body gets 400 XAmzContentSHA256Mismatch" \
    is "$code $(error_code)" "400 XAmzContentSHA256Mismatch"
get_object "task%3A$other_id"
check "and the tampered object never reached s3rver" is "$code" 404

s3_as stranger:test-secret "$empty_sha" "$base/task%3A$task_id"
check "an unknown access key gets 403 InvalidAccessKeyId" \
    is "$code $(error_code)" "403 InvalidAccessKeyId"

code="$(curl -sS --max-time 30 -o "$work/body" -w '%{http_code}' "$base/task%3A$task_id")"
check "an unsigned request gets 403 AccessDenied" is "$code $(error_code)" "403 AccessDenied"

code="$(curl -sS --max-time 30 -o "$work/body" -w '%{http_code}' \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user test-key:test-secret "$base/task%3A$task_id")"
check "a request without x-amz-content-sha256 is refused" \
    is "$code $(error_code)" "400 InvalidRequest"

# curl takes a caller's x-amz-date as its signing time, then sends the header twice.
get_object "task%3A$task_id" -H "x-amz-date: 20200101T000000Z"
check "an x-amz-date far from now gets 403 RequestTimeTooSkewed" \
    is "$code $(error_code)" "403 RequestTimeTooSkewed"
get_object "task%3A$task_id" -H "x-amz-date: $(date -u +%Y%m%dT%H%M%SZ)"
check "a caller-set x-amz-date, which curl 7.88 then sends twice, fails as on MinIO" \
    is "$code $(error_code)" "403 SignatureDoesNotMatch"

code="$(curl -sS --max-time 30 -o "$work/body" -w '%{http_code}' \
    --aws-sigv4 "aws:amz:eu-west-1:s3" --user test-key:test-secret \
    -H "x-amz-content-sha256: $empty_sha" "$base/task%3A$task_id")"
check "a credential scope with the wrong region is refused" \
    is "$code $(error_code)" "400 AuthorizationHeaderMalformed"

# curl 7.88 signs the path and query as written; S3 canonicalises them. Requests that are not
# already canonical must fail here as they would against S3 or MinIO.
get_object "task:$task_id"
check "a key with a raw ':' in the path fails as on S3 (canonical form is %3A)" \
    is "$code $(error_code)" "403 SignatureDoesNotMatch"
get_bucket "max-keys=2&list-type=2"
check "an unsorted query string fails as on S3" is "$code $(error_code)" "403 SignatureDoesNotMatch"
get_bucket "list-type=2&prefix=a+b"
check "a '+' for a space in the query fails as on S3 (canonical form is %20)" \
    is "$code $(error_code)" "403 SignatureDoesNotMatch"
get_object "task%3A$task_id" -H "x-amz-meta-a: 1" -H "x-amz-meta-a-b: 2"
check "a signed header name that prefixes another one fails (curl 7.88 sorts them wrongly)" \
    is "$code $(error_code)" "403 SignatureDoesNotMatch"
get_bucket "list-type=2&max-keys=1&prefix=task%3A"
check "a sorted, RFC 3986-encoded query string passes" is "$code" 200

# --- Part 4: listing with continuation tokens, DeleteObjects -------------------------------------
page_keys=()
for _ in 1 2 3 4 5; do
    key="page:$(new_id)"
    page_keys+=("$key")
    put_object "${key/:/%3A}" '{"page":true}'
done
listed=0
pages=0
token=""
while :; do
    query="list-type=2&max-keys=2&prefix=page%3A"
    if [ -n "$token" ]; then
        query="continuation-token=$(jq -rn --arg t "$token" '$t|@uri')&$query"
    fi
    get_bucket "$query"
    [ "$code" = 200 ] || break
    pages=$((pages + 1))
    listed=$((listed + $(grep -o '<Key>' "$work/body" | wc -l)))
    token="$(sed -n 's:.*<NextContinuationToken>\([^<]*\)</NextContinuationToken>.*:\1:p' \
        "$work/body")"
    if ! grep -q '<IsTruncated>true</IsTruncated>' "$work/body" || [ "$pages" -ge 10 ]; then
        break
    fi
done
check "ListObjectsV2 pages through 5 keys, 2 per page, with continuation tokens" \
    is "$code $pages $listed" "200 3 5"

delete_body='<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>false</Quiet>'
for key in "${page_keys[@]}"; do
    delete_body+="<Object><Key>$key</Key></Object>"
done
delete_body+='</Delete>'
s3 "$(sha_of "$delete_body")" "$base?delete=" -X POST --data-binary "$delete_body" \
    -H "Content-Type: application/xml" -H "Content-MD5: $(md5_of "x$delete_body")"
check "DeleteObjects with a wrong Content-MD5 gets 400 BadDigest" \
    is "$code $(error_code)" "400 BadDigest"
s3 "$(sha_of "$delete_body")" "$base?delete=" -X POST --data-binary "$delete_body" \
    -H "Content-Type: application/xml" -H "Content-MD5: $(md5_of "$delete_body")"
check "DeleteObjects with a correct Content-MD5 succeeds" \
    is "$code $(grep -o '<Deleted>' "$work/body" | wc -l)" "200 5"
get_bucket "list-type=2&prefix=page%3A"
check "and the deleted keys are gone" is "$code $(grep -c '<Key>' "$work/body")" "200 0"

# --- Part 5: counters ----------------------------------------------------------------------------
check "POST /reset-stats clears the counters" \
    is "$(ctl POST /reset-stats | jq -r .status) $(stat_value .requests)" "ok 0"
put_object "task%3A$(new_id)" '{}'
put_object "task%3A$(new_id)" '{}'
put_object "completed%3A$(new_id)" '{}'
get_object "worker%3A$(new_id)"
s3_as test-key:wrong-secret "$empty_sha" "$base/worker%3A$(new_id)"
delete_body="<Delete><Object><Key>task:$(new_id)</Key></Object><Object><Key>task:$(new_id)</Key>"
delete_body+="</Object><Object><Key>worker:$(new_id)</Key></Object></Delete>"
s3 "$(sha_of "$delete_body")" "$base?delete=" -X POST --data-binary "$delete_body" \
    -H "Content-Type: application/xml" -H "Content-MD5: $(md5_of "$delete_body")"
ctl GET /stats >"$work/stats.json"
stat() {
    jq -r "$1" "$work/stats.json"
}
check "counters: requests by method" \
    is "$(stat '[.requests, .by_method.PUT, .by_method.GET, .by_method.POST] | @tsv')" \
    "$(printf '6\t3\t2\t1')"
check "counters: PUT task, PUT completed, GET worker" \
    is "$(stat '[.by_key["PUT task"], .by_key["PUT completed"], .by_key["GET worker"]] | @tsv')" \
    "$(printf '2\t1\t2')"
check "counters: successful writes by key prefix" \
    is "$(stat '[.by_key_ok["PUT task"], .by_key_ok["PUT completed"], .by_key_ok["GET worker"]]
        | map(. // 0) | @tsv')" "$(printf '2\t1\t0')"
check "counters: DeleteObjects per request and per key" \
    is "$(stat '.delete_objects | [.requests, .keys, .by_prefix.task, .by_prefix.worker] | @tsv')" \
    "$(printf '1\t3\t2\t1')"
check "counters: outcomes and refusals" \
    is "$(stat '[.outcomes.forwarded, .outcomes.rejected, .rejected.SignatureDoesNotMatch]
        | @tsv')" "$(printf '5\t1\t1')"
check "counters: answers by status" \
    is "$(stat '[.by_status["200"], .by_status["404"], .by_status["403"]] | @tsv')" \
    "$(printf '4\t1\t1')"

# --- Part 6: faults ------------------------------------------------------------------------------
ctl POST /reset-stats >/dev/null
ctl POST /fault '{"mode":"slowdown","count":2}' >/dev/null
get_task
first="$code $(error_code)"
get_task
second="$code $(error_code)"
get_task
check "slowdown: 503 SlowDown for the counted requests, then normal answers" \
    is "$first / $second / $code" "503 SlowDown / 503 SlowDown / 200"
check "slowdown: counted, and the spent fault is gone" \
    is "$(stat_value '[.faults.slowdown, (.active_faults | length)] | @tsv')" "$(printf '2\t0')"

ctl POST /fault '{"mode":"slowdown","share":0.5}' >/dev/null
answers=""
for _ in 1 2 3 4 5 6; do
    get_task
    answers+="$code "
done
ctl DELETE /fault >/dev/null
check "slowdown: a share of 0.5 hits exactly every second request" \
    is "$answers" "503 200 503 200 503 200 "

ctl POST /fault '{"mode":"slowdown","method":"PUT","prefix":"completed"}' >/dev/null
put_object "task%3A$(new_id)" '{}'
task_answer="$code"
put_object "completed%3A$(new_id)" '{}'
ctl DELETE /fault >/dev/null
check "slowdown: a fault limited to PUT completed spares PUT task" \
    is "$task_answer $code" "200 503"

ctl POST /fault '{"mode":"reset","count":1}' >/dev/null
get_task
reset_rc="$rc"
get_task
check "reset: curl sees a connection error" connection_error "$reset_rc"
check "reset: the next request works" is "$code" 200

head -c 200000 /dev/zero | tr '\0' 'a' >"$work/big"
big_id="$(new_id)"
ctl POST /fault '{"mode":"reset","after_bytes":1000,"count":1}' >/dev/null
s3 "$(sha256sum "$work/big" | cut -d' ' -f1)" "$base/task%3A$big_id" -X PUT \
    --data-binary "@$work/big" -H "Content-Type: application/json"
reset_rc="$rc"
get_object "task%3A$big_id"
check "reset after part of an upload body: curl sees a connection error" \
    connection_error "$reset_rc"
check "reset after part of an upload body: nothing was stored" is "$code" 404

after_id="$(new_id)"
ctl POST /fault '{"mode":"reset","when":"after","count":1}' >/dev/null
put_object "task%3A$after_id" '{"after":true}'
reset_rc="$rc"
get_object "task%3A$after_id"
check "reset after forwarding: the client sees a connection error" connection_error "$reset_rc"
check "reset after forwarding: the write took effect all the same" is "$code" 200
check "reset: counted" is "$(stat_value .faults.reset)" 3

ctl POST /fault '{"mode":"delay","ms":1500,"count":1}' >/dev/null
started="$(date +%s%N)"
get_task
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
check "delay: the request still succeeds, at least 1 s later, and is counted" \
    bash -c "[ '$code' = 200 ] && [ '$elapsed_ms' -ge 1000 ] && \
        [ \"\$(curl -s '$control/stats' | jq .faults.delay)\" = 1 ]"

ctl POST /fault '{"mode":"outage"}' >/dev/null
get_task
check "outage (refuse): connections are refused" is "$rc $code" "7 000"
check "outage (refuse): /health says the port is closed" \
    is "$(ctl GET /health | jq -r .listening)" false
ctl DELETE /fault >/dev/null
get_task
check "outage cleared: the same port serves again" is "$code" 200

ctl POST /fault '{"mode":"outage","how":"reset","count":2}' >/dev/null
get_task
first_rc="$rc"
get_task
second_rc="$rc"
get_task
check "outage (reset): the first new connection is reset" connection_error "$first_rc"
check "outage (reset): the second new connection is reset" connection_error "$second_rc"
check "outage (reset): the third is served once the count is spent" is "$code" 200
check "outage (reset): the resets are counted" is "$(stat_value .outage_resets)" 2

ctl POST /fault '{"mode":"outage","duration_ms":500}' >/dev/null
get_task
during="$rc"
for _ in $(seq 1 100); do
    [ "$(ctl GET /health | jq -r .listening)" = true ] && break
    sleep 0.1
done
get_task
check "outage with duration_ms: refused during, served again after it ends" \
    is "$during $code" "7 200"

# --- Part 7: the control API refuses what it does not understand ---------------------------------
status="$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '{"mode":"flood"}' \
    "$control/fault")"
check "control: an unknown fault mode is a 400" is "$status" 400
status="$(curl -s -o /dev/null -w '%{http_code}' -X POST \
    --data-binary '{"mode":"outage","count":1}' "$control/fault")"
check "control: a refusing outage with a count is a 400" is "$status" 400
status="$(curl -s -o /dev/null -w '%{http_code}' "$control/nothing")"
check "control: an unknown route is a 404" is "$status" 404
check "control: no fault is left active" is "$(ctl GET /fault | jq '.faults | length')" 0

# --- Part 8: stop by pid -------------------------------------------------------------------------
"$here/stop.sh" "$work/state"
check "stop.sh ends both processes" \
    bash -c "! kill -0 $S3_FRONT_PID 2>/dev/null && ! kill -0 $S3RVER_PID 2>/dev/null"
check "stop.sh removes s3rver's data directory" test ! -e "$S3_DATA_DIR"

finish
