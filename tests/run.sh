#!/bin/sh
# Installs what the tests need, builds, and runs the whole test suite:
#   1. a warnings-as-errors build and every ctest test (unit and integration), and, as root,
#      the Debian package test (tests/package/test_package.sh), which needs no sanitizer run;
#   2. the same tests again under AddressSanitizer and UndefinedBehaviorSanitizer;
#   3. the same tests again under ThreadSanitizer (servers, writer, flusher and the tests'
#      own client threads), halting on the first report.
#   4. the request fuzz target (tests/fuzz), built with clang, for a minute on its seed corpus.
# Build trees go to build-test/, build-asan/, build-tsan/ and build-fuzz/ beside the sources
# (git ignores them).
# Exits non-zero if anything fails.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

packaging/install-deps.sh --test
(cd tests/s3 && [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error)

run_suite() {
    dir=$1
    shift
    cmake -S . -B "$dir" -DGDN_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
    ctest --test-dir "$dir" --output-on-failure --no-tests=error -j 1
}

echo "== build with warnings as errors, all tests"
run_suite build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGDN_PACKAGE_TEST=ON

echo "== AddressSanitizer + UndefinedBehaviorSanitizer, all tests"
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$root/tests/lsan.supp \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DGDN_SANITIZE=ON

echo "== ThreadSanitizer, all tests"
TSAN_OPTIONS=halt_on_error=1 run_suite build-tsan -DCMAKE_BUILD_TYPE=Debug -DGDN_TSAN=ON

echo "== libFuzzer on the request parsers, one minute"
CC=clang cmake -S . -B build-fuzz -DGDN_BUILD_FUZZ=ON -DGDN_BUILD_TESTS=ON >/dev/null
cmake --build build-fuzz --target fuzz_request -j "$jobs"
ctest --test-dir build-fuzz -L fuzz --output-on-failure --no-tests=error
