# shellcheck shell=sh
# What the benchmark scripts in tests/bench share: building the server and a load generator,
# picking a free port, and starting and stopping one server at a time on 127.0.0.1. Sourced,
# not run; plain POSIX sh, so that it does not depend on the shell of the script that sources it.
#
# The caller sets ROOT (the source tree) before it calls anything here. The functions keep their
# state in these variables, which the caller reads:
#   SERVER, BENCH, SOURCE_DIR  set by bench_build
#   server_pid, url, data_dir  the running server, set by bench_start_server
#   server_status              the exit status of the server bench_stop_server stopped
# The functions end the shell with status 1 where a benchmark cannot go on (a failed build, a
# server that does not start), after printing what went wrong on stderr.

# bench_build BUILD_DIR WORK_DIR GENERATOR
# Builds the server in BUILD_DIR, configuring a Release tree there first unless one exists, and
# the load generator GENERATOR (bench_lifecycle, bench_longpoll or bench_soak). The generator is
# built by CMake when the tree defines its target; in a tree configured without GDN_BUILD_BENCH
# it is compiled with cc into WORK_DIR instead, since it needs only libcurl. Logs go to
# WORK_DIR/build.log and are shown on failure. Sets SERVER, BENCH and SOURCE_DIR.
bench_build() {
    bench_build_dir=$1
    bench_work_dir=$2
    bench_generator=$3
    bench_log="$bench_work_dir/build.log"
    if [ ! -f "$bench_build_dir/CMakeCache.txt" ] &&
        ! cmake -S "$ROOT" -B "$bench_build_dir" -DCMAKE_BUILD_TYPE=Release \
            -DGDN_BUILD_TESTS=OFF -DGDN_BUILD_BENCH=ON >"$bench_log" 2>&1; then
        cat "$bench_log" >&2
        exit 1
    fi
    bench_build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$bench_build_dir/CMakeCache.txt")
    if [ "$bench_build_type" != Release ]; then
        echo "warning: $bench_build_dir is a '$bench_build_type' build, not Release" >&2
    fi
    if ! cmake --build "$bench_build_dir" -j"$(nproc)" --target garden-orchestrator \
        >>"$bench_log" 2>&1; then
        cat "$bench_log" >&2
        exit 1
    fi
    SERVER="$bench_build_dir/garden-orchestrator"
    # The scripts that source this file read it.
    # shellcheck disable=SC2034
    SOURCE_DIR=$(sed -n 's/^CMAKE_HOME_DIRECTORY:[A-Z]*=//p' "$bench_build_dir/CMakeCache.txt")
    BENCH="$bench_build_dir/tests/bench/$bench_generator"
    if cmake --build "$bench_build_dir" --target "$bench_generator" >>"$bench_log" 2>&1 &&
        [ -x "$BENCH" ]; then
        return 0
    fi
    BENCH="$bench_work_dir/$bench_generator"
    # The flags of libcurl are several words, which is what the unquoted expansion is for.
    # shellcheck disable=SC2046
    if ! cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -o "$BENCH" \
        "$ROOT/tests/bench/${bench_generator#bench_}.c" "$ROOT/tests/bench/bench_curl.c" \
        $(pkg-config --cflags --libs libcurl) -lm >>"$bench_log" 2>&1; then
        cat "$bench_log" >&2
        exit 1
    fi
}

# bench_free_port
# Prints a TCP port on 127.0.0.1 that was free a moment ago. The kernel picks it, so two
# scripts running at once do not pick the same one, although a port may still be taken before
# the server binds it; the server then fails to start and says so.
bench_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0));
print(s.getsockname()[1]); s.close()'
}

# bench_start_server PARENT NAME LOG [ARGUMENT...]
# Starts SERVER on 127.0.0.1 on a free port, with a fresh data directory made in PARENT (named
# after NAME) and the ARGUMENTs, its output in LOG, and waits up to 20 s until GET /health
# answers. Sets server_pid, url and data_dir. A server that exits or does not answer in time
# ends the shell, after its log is shown.
bench_start_server() {
    bench_parent=$1
    bench_name=$2
    bench_server_log=$3
    shift 3
    data_dir=$(mktemp -d "$bench_parent/$bench_name-data.XXXXXX")
    bench_port=$(bench_free_port)
    url="http://127.0.0.1:$bench_port"
    "$SERVER" --listen "127.0.0.1:$bench_port" --data-dir "$data_dir" "$@" \
        >"$bench_server_log" 2>&1 &
    server_pid=$!
    bench_tries=0
    while [ "$bench_tries" -lt 200 ]; do
        if curl -fs "$url/health" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
        bench_tries=$((bench_tries + 1))
    done
    echo "the server did not start:" >&2
    cat "$bench_server_log" >&2
    exit 1
}

# bench_stop_server
# Stops the server bench_start_server started, if it still runs, by its pid with SIGTERM, and
# waits for it to exit. Leaves its exit status in server_status and the seconds the stop took
# in server_stop_s (both 0 when none was running). The data directory is kept:
# bench_remove_data_dir removes it.
bench_stop_server() {
    server_status=0
    server_stop_s=0
    if [ -z "$server_pid" ] || ! kill -0 "$server_pid" 2>/dev/null; then
        server_pid=""
        return 0
    fi
    bench_started=$(date +%s.%N)
    kill -TERM "$server_pid"
    wait "$server_pid" || server_status=$?
    server_stop_s=$(awk -v a="$bench_started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    server_pid=""
}

# bench_stop_server_reporting
# Does what bench_stop_server does, then prints how long the stop took and how the server ended.
bench_stop_server_reporting() {
    bench_stop_server
    awk -v t="$server_stop_s" -v s="$server_status" \
        'BEGIN { printf "server stopped by SIGTERM in %.2f s, exit status %d\n", t, s }'
}

# bench_remove_data_dir
# Removes the data directory of the last server started, if there is one.
bench_remove_data_dir() {
    if [ -n "${data_dir:-}" ]; then
        rm -rf "$data_dir"
    fi
    data_dir=""
}

# bench_print_machine DATA_PATH SERVER_THREADS
# Prints the "== machine" block every benchmark report starts with: date, CPUs, kernel, memory,
# the load other work puts on the machine (it competes with the server and the generator), the
# file system DATA_PATH is on, the server command, the source revision (saying when the server's
# sources have uncommitted changes) and libcurl's version. The caller may print lines of its own
# after it, then an empty line.
bench_print_machine() {
    bench_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    if ! bench_revision=$(git -C "$SOURCE_DIR" rev-parse --short HEAD 2>/dev/null); then
        bench_revision="not a git checkout"
    elif git -C "$SOURCE_DIR" status --porcelain -- src journal include CMakeLists.txt |
        grep -q .; then
        bench_revision="revision $bench_revision with uncommitted changes to the server"
    else
        bench_revision="revision $bench_revision"
    fi
    echo "== machine"
    echo "date:       $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "cpus:       $(nproc) x ${bench_model:-unknown}"
    echo "kernel:     $(uname -sr)"
    echo "memory:     $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "load:       $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) before the runs"
    echo "filesystem: $(findmnt -n -o SOURCE,FSTYPE,OPTIONS -T "$1" || echo unknown)"
    echo "server:     $SERVER --threads $2"
    echo "source:     $SOURCE_DIR, $bench_revision"
    echo "curl:       $(curl-config --version 2>/dev/null || echo unknown)"
}
