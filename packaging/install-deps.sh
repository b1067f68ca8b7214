#!/bin/sh
# Installs what Garden Orchestrator needs from Debian's packages.
#
#   packaging/install-deps.sh           build and run the server
#   packaging/install-deps.sh --test    also everything the test suite and benchmarks use
#
# Runs apt-get through sudo when not root. Does nothing but a dpkg query when everything is
# already installed.
set -eu

build="build-essential cmake pkg-config libh2o-evloop-dev libyajl-dev liblmdb-dev
libcurl4-openssl-dev libssl-dev"
test="libcunit1-dev curl openssl jq python3 nghttp2-client wrk lmdb-utils clang llvm
libclang-rt-14-dev debhelper dpkg-dev fakeroot lintian man-db systemd adduser prometheus"

wanted=$build
if [ "${1:-}" = "--test" ]; then
    wanted="$build $test"
    # The test S3 service runs on Node.js; the machine's own Node.js is used when present.
    command -v node >/dev/null 2>&1 || wanted="$wanted nodejs"
    command -v npm >/dev/null 2>&1 || wanted="$wanted npm"
fi

missing=""
for package in $wanted; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $package" ;;
    esac
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing:$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
