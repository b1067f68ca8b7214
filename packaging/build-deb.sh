#!/bin/sh
# Builds the Debian package of Garden Orchestrator.
#
#   packaging/build-deb.sh [OUTPUT_DIR]
#
# The Debian sources live in packaging/debian/ so that the repository has no top-level debian/.
# This script copies the source tree (the files git tracks plus new ones it does not ignore, or
# without git the working tree minus build*/ directories) to a temporary directory, places
# packaging/debian there as debian/, runs `dpkg-buildpackage -us -uc -b`, and copies
# garden-orchestrator_VERSION_ARCH.deb to OUTPUT_DIR (default: the current directory). The
# temporary directory is removed afterwards. The version is the CMake project version, which
# packaging/debian/changelog must match.
#
# Needs debhelper, dpkg-dev and fakeroot (packaging/install-deps.sh --test installs them) and
# the build dependencies listed in packaging/debian/control. Honours DEB_BUILD_OPTIONS; without
# it the build runs one job per core.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-.}
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(sed -n 's/^project(garden-orchestrator VERSION \([0-9.]*\).*/\1/p' \
    "$root/CMakeLists.txt")
changelog=$(dpkg-parsechangelog -l "$root/packaging/debian/changelog" -S Version)
if [ -z "$version" ] || [ "$version" != "$changelog" ]; then
    echo "build-deb: CMake project version '$version' differs from" \
        "packaging/debian/changelog '$changelog'" >&2
    exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="garden-orchestrator_${version}_${arch}.deb"

work=$(mktemp -d "${TMPDIR:-/tmp}/garden-orchestrator-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/garden-orchestrator-$version"
mkdir "$src"

# Copy what a commit would hold: the files git tracks and the new files it does not ignore
# (build trees, node_modules and data directories are ignored). A tracked file deleted from the
# working tree is skipped with a warning.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$root" ls-files -z --cached --others --exclude-standard >"$work/files"
    (cd "$root" && tar --null --files-from="$work/files" --ignore-failed-read -cf -) |
        tar -xf - -C "$src"
else
    (cd "$root" && tar --exclude='./build*' --exclude='./debian' --exclude='./.git' \
        --exclude='node_modules' -cf - .) | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -R "$root/packaging/debian" "$src/debian"

jobs=$(nproc 2>/dev/null || echo 1)
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$jobs}"
(cd "$src" && dpkg-buildpackage -us -uc -b)

cp "$work/$deb" "$out/$deb"
echo "build-deb: $out/$deb"
