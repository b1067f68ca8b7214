#!/bin/sh
# Builds the request fuzz target with clang in build-fuzz/ and runs it for SECONDS (default 600).
#   tests/fuzz/run.sh [SECONDS]
# The working corpus is build-fuzz/fuzz-corpus/: it starts from the seeds in tests/fuzz/corpus/
# and keeps what earlier runs found. A crashing input is written to build-fuzz/fuzz-artifacts/;
# reproduce it with `build-fuzz/tests/fuzz/fuzz_request FILE`, and once it is fixed, copy it to
# tests/fuzz/corpus/ as a regression seed. Exits non-zero if the fuzzer found a failure.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-600}
build=$root/build-fuzz

cd "$root"
CC=clang cmake -S . -B "$build" -DGDN_BUILD_FUZZ=ON -DGDN_BUILD_TESTS=ON >/dev/null
cmake --build "$build" --target fuzz_request -j 2

mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts"
cp "$root"/tests/fuzz/corpus/* "$build/fuzz-corpus/"
exec "$build/tests/fuzz/fuzz_request" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -print_final_stats=1 -dict="$root/tests/fuzz/request.dict" \
    -artifact_prefix="$build/fuzz-artifacts/" "$build/fuzz-corpus"
