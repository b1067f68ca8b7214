#!/usr/bin/env bash
# The Debian package's test: builds the .deb, checks it with lintian and systemd-analyze,
# installs it, runs the installed server as its service user through the README's "Try it"
# examples, stops it with SIGTERM, installs it again over an edited configuration, then removes
# and purges the package, checking what each step leaves behind.
#
# Usage: tests/package/test_package.sh   (as root, on Debian; tests/run.sh runs it through ctest)
#
# It changes the machine: it installs and purges garden-orchestrator, and the package creates
# the garden-orchestrator system user, which stays (as it does after any purge). It refuses to
# run when the package is installed or its configuration is left from a removal. When
# /var/lib/garden-orchestrator exists already (a journal kept by an earlier purge), the server
# runs on a temporary data directory instead and the existing one is not touched; otherwise the
# test uses the real state directory and deletes it at the end.
# The server listens on 127.0.0.1 and a free port only, and is stopped by its pid.
set -eu
set -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
pkg=garden-orchestrator
user=garden-orchestrator
state=/var/lib/garden-orchestrator
conf=/etc/garden-orchestrator/garden-orchestrator.conf
defaults=/etc/default/garden-orchestrator
unit=/lib/systemd/system/garden-orchestrator.service
work=$(mktemp -d "${TMPDIR:-/tmp}/gdn-package-test.XXXXXX")
server_pid=""
installed=0
remove_state=0

cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$installed" -eq 1 ]; then
        dpkg --purge "$pkg" >/dev/null 2>&1 || true
    fi
    if [ "$remove_state" -eq 1 ]; then
        rm -rf -- "$state"
    fi
    rm -rf -- "$work"
}
trap cleanup EXIT

ok() { echo "ok   - $*"; }

fail() {
    echo "FAIL - $*" >&2
    exit 1
}

# Prints "OWNER:GROUP MODE" of a path.
owner_mode() { stat -c '%U:%G %a' "$1"; }

# dpkg's view of the package: empty or "not-installed" when it is absent.
package_status() { dpkg-query -W -f='${db:Status-Abbrev} ${Status}' "$pkg" 2>/dev/null || true; }

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

[ "$(id -u)" -eq 0 ] || fail "the package test must run as root"
for tool in dpkg-buildpackage lintian systemd-analyze setpriv curl jq python3 man; do
    command -v "$tool" >/dev/null || fail "missing tool: $tool"
done
case "$(package_status)" in
"" | *not-installed*) ;;
*) fail "$pkg is installed or its configuration is left: refusing to purge it" ;;
esac

version=$(sed -n 's/^project(garden-orchestrator VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="$work/out/${pkg}_${version}_${arch}.deb"

# --- build and static checks ---------------------------------------------------------------

"$root/packaging/build-deb.sh" "$work/out" >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; fail "packaging/build-deb.sh failed"; }
[ -f "$deb" ] || fail "build-deb.sh did not produce $(basename "$deb")"
ok "packaging/build-deb.sh built $(basename "$deb")"

# lintian refuses nothing but errors here; its warnings are printed for the log.
lintian_rc=0
lintian --fail-on error "$deb" >"$work/lintian.log" 2>&1 || lintian_rc=$?
grep -v 'running with root privileges' "$work/lintian.log" || true
[ "$lintian_rc" -eq 0 ] || fail "lintian reports errors"
ok "lintian reports no errors"

listing=$(dpkg-deb -c "$deb")
for path in ./usr/bin/garden-orchestrator ./usr/share/man/man8/garden-orchestrator.8.gz \
    ./lib/systemd/system/garden-orchestrator.service ./etc/default/garden-orchestrator \
    ./etc/garden-orchestrator/garden-orchestrator.conf; do
    grep -q " $path\$" <<<"$listing" || fail "the package does not hold $path"
done
if grep -q ' \./var/lib/garden-orchestrator' <<<"$listing"; then
    fail "the package must not own the journal directory: dpkg would remove it"
fi
ok "the package holds the binary, man page, unit and both configuration files"

# --- install -------------------------------------------------------------------------------

state_existed=0
[ -e "$state" ] && state_existed=1
installed=1
dpkg -i "$deb" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "dpkg -i failed"; }
[ "$state_existed" -eq 1 ] || remove_state=1
case "$(package_status)" in
ii*) ok "dpkg -i installed $pkg $version" ;;
*) fail "after dpkg -i the package status is '$(package_status)'" ;;
esac

# systemd-analyze verify loads the unit into an offline manager: no running systemd is needed.
# It checks the syntax of every setting, that ExecStart's binary exists and is executable, and
# that the man page named by Documentation= is found.
verify_rc=0
systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || verify_rc=$?
if [ "$verify_rc" -ne 0 ] || [ -s "$work/verify.log" ]; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify rejects $unit"
fi
ok "systemd-analyze verify accepts the installed unit"
# The exposure is printed from 0.0 to 10.0 but the threshold counts tenths: 30 means 3.0.
exposure=$(systemd-analyze security --offline=true --threshold=30 "$unit" 2>&1 | tail -n 1) ||
    fail "the unit's exposure is above 3.0: $exposure"
ok "systemd-analyze security: ${exposure#→ }"
for setting in User=garden-orchestrator Group=garden-orchestrator \
    EnvironmentFile=-/etc/default/garden-orchestrator StateDirectory=garden-orchestrator \
    ProtectSystem=strict NoNewPrivileges=yes KillSignal=SIGTERM; do
    grep -qx "$setting" "$unit" || fail "the unit lacks $setting"
done
grep -qx "ExecStart=/usr/bin/garden-orchestrator --config $conf" "$unit" ||
    fail "the unit does not start the server with the packaged configuration"
ok "the unit runs the server as $user with the packaged configuration"

[ "$(owner_mode /usr/bin/garden-orchestrator)" = "root:root 755" ] ||
    fail "/usr/bin/garden-orchestrator is $(owner_mode /usr/bin/garden-orchestrator)"
[ "$(/usr/bin/garden-orchestrator --version)" = "garden-orchestrator $version" ] ||
    fail "--version does not print $version"
ok "/usr/bin/garden-orchestrator is installed, root:root 755, version $version"

[ "$(man -w garden-orchestrator)" = /usr/share/man/man8/garden-orchestrator.8.gz ] ||
    fail "man -w does not find garden-orchestrator(8)"
MANWIDTH=100 man garden-orchestrator >"$work/man.txt" 2>/dev/null
grep -q 'import-kv FILE' "$work/man.txt" || fail "the man page does not render"
ok "man garden-orchestrator finds and renders garden-orchestrator(8)"

conffiles=$(dpkg-query -W -f='${Conffiles}' "$pkg")
for file in "$conf" "$defaults"; do
    grep -q "^ $file " <<<"$conffiles" || fail "$file is not a conffile"
    [ "$(owner_mode "$file")" = "root:$user 640" ] || fail "$file is $(owner_mode "$file")"
done
ok "both configuration files are conffiles, root:$user 640"

passwd=$(getent passwd "$user") || fail "the system user $user does not exist"
uid=$(cut -d: -f3 <<<"$passwd")
[ "$uid" -lt 1000 ] || fail "$user is not a system user (uid $uid)"
[ "$(cut -d: -f6 <<<"$passwd")" = "$state" ] || fail "$user's home is not $state"
getent group "$user" >/dev/null || fail "the group $user does not exist"
if [ "$state_existed" -eq 0 ]; then
    [ "$(owner_mode "$state")" = "$user:$user 750" ] || fail "$state is $(owner_mode "$state")"
fi
ok "the system user and group $user exist, uid $uid, home $state"

if setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$conf" >/dev/null 2>&1; then
    fail "a user outside the group can read $conf"
fi
setpriv --reuid="$user" --regid="$user" --init-groups cat "$conf" "$defaults" >/dev/null ||
    fail "the service user cannot read its configuration"
for name in ENDPOINT ACCESS_KEY SECRET_KEY BUCKET REGION SECURE; do
    grep -q "^#MINIO_$name=" "$defaults" || fail "$defaults has no commented MINIO_$name line"
done
ok "the configuration is readable by the service group only; $defaults lists MINIO_*"

setpriv --reuid="$user" --regid="$user" --init-groups env -i PATH=/usr/bin:/bin \
    /usr/bin/garden-orchestrator --check-config --config "$conf" >"$work/check.out" ||
    fail "--check-config rejects the packaged configuration"
grep -qx 'host = 127.0.0.1' "$work/check.out" || fail "the packaged host is not 127.0.0.1"
grep -qx "data_dir = $state" "$work/check.out" || fail "the packaged data_dir is not $state"
ok "--check-config accepts the packaged configuration (127.0.0.1, $state)"

# --- run the installed server as its service user ------------------------------------------

data_args=()
data=$state
if [ "$state_existed" -eq 1 ]; then
    chmod 0711 "$work"
    data="$work/data"
    install -d -o "$user" -g "$user" -m 0750 "$data"
    data_args=(--data-dir "$data")
fi
# Starts the installed server as the service user on a free port and waits for /health. The
# environment is emptied as systemd does, so that HOST, PORT or MINIO_* of the caller do not
# leak in; the packaged defaults file sets nothing until the administrator edits it.
start_server() {
    port=$(free_port)
    base="http://127.0.0.1:$port"
    setpriv --reuid="$user" --regid="$user" --init-groups env -i PATH=/usr/bin:/bin \
        /usr/bin/garden-orchestrator --config "$conf" --listen "127.0.0.1:$port" \
        "${data_args[@]}" 2>"$work/server.log" &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "$base/health" >/dev/null 2>&1 && break
        kill -0 "$server_pid" 2>/dev/null ||
            { cat "$work/server.log" >&2; fail "the server exited"; }
        sleep 0.1
    done
    curl -fsS "$base/health" >/dev/null || { cat "$work/server.log" >&2; fail "no /health answer"; }
    [ "$(stat -c %U "/proc/$server_pid")" = "$user" ] || fail "the server does not run as $user"
}

# Stops the server with SIGTERM; it must exit 0.
stop_server() {
    kill -TERM "$server_pid"
    server_rc=0
    wait "$server_pid" || server_rc=$?
    server_pid=""
    if [ "$server_rc" -ne 0 ]; then
        cat "$work/server.log" >&2
        fail "SIGTERM: exit $server_rc, not 0"
    fi
}

start_server
ok "the installed server answers /health on 127.0.0.1:$port, running as $user"

# The README's "Try it" block, run as written but for the base URL and THE_TASK_ID: each
# backslash-continued line is joined, and curl is wrapped to record the status and body.
awk '/^## Try it/ { section = 1; next }
     section && /^## / { exit }
     section && /^```/ { if (block) exit; block = 1; next }
     block { print }' "$root/README.md" |
    sed -e ':join' -e '/\\$/ { N; s/\\\n//; b join' -e '}' >"$work/try-it.sh"
[ -s "$work/try-it.sh" ] || fail "README.md has no command block under '## Try it'"

# shellcheck disable=SC2317 # called through eval
curl() { command curl -sS -o "$work/body" -w '%{http_code}' "$@"; }
body() { jq -r "$1" "$work/body"; }
task_id=""
seen=""
while IFS= read -r command; do
    [ -n "$command" ] || continue
    command=${command//http:\/\/localhost:5000/$base}
    command=${command//THE_TASK_ID/$task_id}
    code=$(eval "$command") || fail "README command failed: $command"
    [ "$code" = 200 ] || fail "README command answered $code: $command: $(cat "$work/body")"
    case "$command" in
    *"$base/health"*)
        answer="$(body .status)/$(body .service)/$(body .version)"
        [ "$answer" = "ok/garden-orchestrator/$version" ] || fail "/health answered $answer"
        seen="$seen health" ;;
    *"$base/stats"*)
        [ "$(body '.pending_tasks | type')/$(body .version)" = "number/$version" ] ||
            fail "/stats answered $(cat "$work/body")"
        seen="$seen stats" ;;
    *"-X POST $base/tasks "*)
        task_id=$(body .task_id)
        [[ "$(body .status) $task_id" =~ ^created\ [0-9a-f-]{36}$ ]] ||
            fail "POST /tasks answered $(cat "$work/body")"
        seen="$seen create" ;;
    *"$base/poll/next?"*)
        [ "$(body .task.id)/$(body .task.status)" = "$task_id/processing" ] ||
            fail "/poll/next answered $(cat "$work/body")"
        seen="$seen claim" ;;
    *"$base/poll/complete "*)
        [ "$(body .status)/$(body .task_id)" = "completed/$task_id" ] ||
            fail "/poll/complete answered $(cat "$work/body")"
        seen="$seen complete" ;;
    *) fail "README's 'Try it' has a command this test does not check: $command" ;;
    esac
    ok "README: ${command:0:90}"
done <"$work/try-it.sh"
[ "$seen" = " health stats create claim complete" ] ||
    fail "README's 'Try it' ran$seen instead of health stats create claim complete"
unset -f curl

answer=$(command curl -fsS "$base/tasks/$task_id")
[ "$(jq -r .status <<<"$answer")" = completed ] || fail "the task is not completed: $answer"
answer=$(command curl -fsS --http2-prior-knowledge "$base/stats")
[ "$(jq -r .completed_tasks <<<"$answer")" = 1 ] || fail "/stats over HTTP/2 answered $answer"
ok "the task is stored as completed; /stats over HTTP/2 counts it"

stop_server
[ "$(owner_mode "$data/data.mdb" | cut -d' ' -f1)" = "$user:$user" ] ||
    fail "the journal is not owned by $user"
ok "SIGTERM stopped the server with exit 0; the journal in $data is owned by $user"

# --- install again over an edited configuration --------------------------------------------

# dpkg runs the same maintainer scripts for a reinstall as for an upgrade (preinst upgrade,
# postinst configure with the installed version): an edited conffile must survive it with its
# owner and mode, and the journal with its tasks.
echo "# edited by the administrator" >>"$conf"
dpkg -i "$deb" >"$work/reinstall.log" 2>&1 ||
    { cat "$work/reinstall.log" >&2; fail "dpkg -i over the installed package failed"; }
case "$(package_status)" in
ii*) ;;
*) fail "after the second dpkg -i the package status is '$(package_status)'" ;;
esac
[ "$(tail -n 1 "$conf")" = "# edited by the administrator" ] ||
    fail "installing again replaced the edited $conf"
[ ! -e "$conf.dpkg-dist" ] || fail "installing again left $conf.dpkg-dist"
[ "$(owner_mode "$conf")" = "root:$user 640" ] ||
    fail "after installing again $conf is $(owner_mode "$conf")"
start_server
answer=$(command curl -fsS "$base/tasks/$task_id")
[ "$(jq -r .status <<<"$answer")" = completed ] ||
    fail "after installing again the task is not completed: $answer"
stop_server
ok "installing again kept the edited configuration (root:$user 640) and the journal's task"

# --- remove, then purge --------------------------------------------------------------------

dpkg --remove "$pkg" >"$work/remove.log" 2>&1 ||
    { cat "$work/remove.log" >&2; fail "dpkg --remove failed"; }
case "$(package_status)" in
rc*) ;;
*) fail "after dpkg --remove the status is '$(package_status)'" ;;
esac
[ ! -e /usr/bin/garden-orchestrator ] || fail "dpkg --remove left the binary"
[ ! -e "$unit" ] || fail "dpkg --remove left the unit"
[ -f "$conf" ] || fail "dpkg --remove deleted $conf"
[ -f "$defaults" ] || fail "dpkg --remove deleted $defaults"
[ -f "$data/data.mdb" ] || fail "dpkg --remove deleted the journal"
ok "dpkg --remove removed the program and kept the configuration and the journal"

dpkg --purge "$pkg" >"$work/purge.log" 2>&1 ||
    { cat "$work/purge.log" >&2; fail "dpkg --purge failed"; }
installed=0
case "$(package_status)" in
"" | *not-installed*) ;;
*) fail "after dpkg --purge the status is '$(package_status)'" ;;
esac
[ ! -e /etc/garden-orchestrator ] || fail "dpkg --purge left /etc/garden-orchestrator"
[ ! -e "$defaults" ] || fail "dpkg --purge left $defaults"
[ ! -e /etc/systemd/system/multi-user.target.wants/garden-orchestrator.service ] ||
    fail "dpkg --purge left the unit enabled"
[ -d "$state" ] || fail "dpkg --purge deleted $state"
[ -f "$data/data.mdb" ] || fail "dpkg --purge deleted the journal"
grep -q "journal in $state was kept.*rm -rf $state" "$work/purge.log" ||
    { cat "$work/purge.log" >&2; fail "dpkg --purge did not say that the journal was kept"; }
getent passwd "$user" >/dev/null || fail "dpkg --purge deleted the system user"
ok "dpkg --purge removed the configuration, kept $state and said so"

echo "package test passed in ${SECONDS}s"
