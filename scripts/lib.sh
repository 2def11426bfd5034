# shellcheck shell=bash
# scripts/lib.sh — shell functions shared by scripts/run, tests/e2e.sh and
# scripts/bench.  Source it from bash, then call lib_init:
#
#     . "$top_srcdir/scripts/lib.sh"
#     lib_init e2e              # temp dir + cleanup traps
#     devdb_start "$PARLEY_TMP"
#     ...
#
# Everything a script starts through these functions is recorded and stopped
# by stop_all (TERM, then KILL after PARLEY_STOP_TIMEOUT seconds, default 5),
# which lib_init arranges to run at exit.  Everything they write goes under
# one temp dir, $PARLEY_TMP, removed at exit unless PARLEY_KEEP_TMP=1.  Only
# loopback addresses are used.  Waits poll with a bound; nothing sleeps on a
# guess.
#
# Functions return non-zero (with a message on stderr) on failure, so they
# work under `set -e`; global results are set in variables because a function
# run in $(...) would start its processes in a subshell.
#
# Tools: NODE (default: node on PATH) and NGINX (default: nginx on PATH or in
# /usr/sbin); both may be set, as make check does.

# The source tree this file lives in; the nginx snippets and the dev DB
# launcher are read from it, never written.
PARLEY_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ -z "${NODE:-}" ]; then
    NODE=$(command -v node || true)
fi
if [ -z "${NGINX:-}" ]; then
    NGINX=$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx || true)
fi

PARLEY_TMP=${PARLEY_TMP:-}
LIB_PIDS=()   # every background process started, in start order
LIB_NAMES=()  # a name for each, for messages
LIB_TAG=parley

lib_log() {
    printf '%s: %s\n' "$LIB_TAG" "$*" >&2
}

lib_fail() {
    lib_log "error: $*"
    return 1
}

# lib_require_tools: fails unless node and nginx can be run.
lib_require_tools() {
    [ -n "$NODE" ] && [ -x "$(command -v "$NODE" || true)" ] ||
        lib_fail "node not found (set NODE=/path/to/node)" || return 1
    [ -n "$NGINX" ] && [ -x "$(command -v "$NGINX" || true)" ] ||
        lib_fail "nginx not found (set NGINX=/path/to/nginx)" || return 1
}

# lib_init [TAG]: makes $PARLEY_TMP and installs the cleanup traps (EXIT runs
# stop_all; INT and TERM exit 130/143, which runs it too).  A script that
# wants other signal behaviour sets its own INT/TERM traps afterwards.
lib_init() {
    LIB_TAG=${1:-parley}
    local base=${TMPDIR:-/tmp}
    # A unix socket path must stay under 108 bytes.
    [ "${#base}" -le 60 ] || base=/tmp
    PARLEY_TMP=$(mktemp -d "$base/parley-$LIB_TAG.XXXXXX") || return 1
    # nginx workers run as another user when nginx starts as root; they must
    # reach the sockets in here.  Nothing in here is secret from local users
    # but the config files, which are written 0600.
    chmod 0711 "$PARLEY_TMP"
    trap stop_all EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# random_hex N: N random lowercase hex characters (N even).
random_hex() {
    od -An -tx1 -N"$(($1 / 2))" /dev/urandom | tr -d ' \n'
}

# free_port: prints a TCP port on 127.0.0.1 that was free a moment ago (the
# kernel picks it).  Another process may take it before the caller binds it;
# on loopback in a test that is rare enough.
free_port() {
    "$NODE" -e '
        const s = require("net").createServer();
        s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# lib_spawn NAME LOG CMD...: starts CMD in the background with stdin from
# /dev/null and stdout+stderr appended to LOG; records it for stop_all and
# sets LIB_LAST_PID.
lib_spawn() {
    local name=$1 log=$2
    shift 2
    "$@" </dev/null >>"$log" 2>&1 &
    LIB_LAST_PID=$!
    LIB_PIDS+=("$LIB_LAST_PID")
    LIB_NAMES+=("$name")
}

lib_alive() {
    kill -0 "$1" 2>/dev/null
}

# lib_tail FILE [N]: the last N (default 40) lines of FILE to stderr, framed.
lib_tail() {
    local f=$1 n=${2:-40}
    [ -s "$f" ] || return 0
    printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2
    printf -- '----- end of %s -----\n' "$f" >&2
}

# lib_poll TIMEOUT CMD...: runs CMD every 0.1 s until it succeeds (0), it
# returns 2 (give up: what it waits for has died), or TIMEOUT seconds have
# passed.  Returns 0 on success, 1 otherwise.
lib_poll() {
    local timeout=$1 rc
    shift
    local deadline=$((SECONDS + timeout))
    while :; do
        rc=0
        "$@" || rc=$?
        [ "$rc" -eq 0 ] && return 0
        [ "$rc" -ne 2 ] || return 1
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# --- dev DB ----------------------------------------------------------------

# devdb_home: prints where the dev DB's node_modules/ and vendor/ live:
# $PARLEY_DEVDB_HOME, else scripts/devdb in the source tree, else (the tree
# is read-only and holds no install, as in make distcheck) a per-user cache.
devdb_home() {
    local home=${PARLEY_DEVDB_HOME:-$PARLEY_SRCDIR/scripts/devdb}
    if [ -z "${PARLEY_DEVDB_HOME:-}" ] && ! devdb_installed "$home" &&
        [ ! -w "$home" ]; then
        home=${XDG_CACHE_HOME:-$HOME/.cache}/parley/devdb
    fi
    printf '%s\n' "$home"
}

devdb_installed() {
    [ -d "$1/node_modules" ] && [ -n "$(ls -d "$1"/vendor/smartmongo-*/ 2>/dev/null)" ]
}

# devdb_install: runs scripts/devdb/install when the dev DB is not installed
# where devdb_home says (needs npm and the registry the first time only).
devdb_install() {
    local home
    home=$(devdb_home)
    devdb_installed "$home" && return 0
    lib_log "installing the dev DB into $home"
    PARLEY_DEVDB_HOME=$home "$PARLEY_SRCDIR/scripts/devdb/install" ||
        lib_fail "scripts/devdb/install failed"
}

# devdb_start DIR [--dbpath P]: starts the dev DB (in memory, or persisted
# under P) on a free loopback port, logging to DIR/devdb.log, and waits up to
# 15 s for its ready line.  Sets PARLEY_DEVDB_URI (mongodb://127.0.0.1:PORT)
# and PARLEY_DEVDB_PID.  DEVDB_HOST, when set, is the address to bind
# instead of 127.0.0.1 (tests/multihost.sh: an address of its own test
# network).
devdb_start() {
    local dir=$1
    shift
    local home out=$dir/devdb.out log=$dir/devdb.log
    home=$(devdb_home)
    devdb_installed "$home" ||
        lib_fail "dev DB not installed in $home (run scripts/devdb/install)" || return 1
    : >"$out"
    # stdout carries only the ready line; keep it apart from the log.
    PARLEY_DEVDB_HOME=$home "$NODE" "$PARLEY_SRCDIR/scripts/devdb/devdb.mjs" \
        --host "${DEVDB_HOST:-127.0.0.1}" --port 0 "$@" </dev/null >"$out" 2>>"$log" &
    PARLEY_DEVDB_PID=$!
    LIB_PIDS+=("$PARLEY_DEVDB_PID")
    LIB_NAMES+=(devdb)
    PARLEY_DEVDB_URI=
    if ! lib_poll 15 devdb_ready "$out" "$PARLEY_DEVDB_PID"; then
        lib_tail "$log"
        lib_fail "dev DB did not become ready within 15 s"
        return 1
    fi
    PARLEY_DEVDB_URI=$(sed -n 's/^devdb ready //p' "$out" | head -n 1)
    [ -n "$PARLEY_DEVDB_URI" ] || lib_fail "dev DB printed no URI" || return 1
}

devdb_ready() {
    grep -q '^devdb ready mongodb://' "$1" && return 0
    lib_alive "$2" || return 2
    return 1
}

# --- parley ------------------------------------------------------------------

# parley_socket CONFIG: prints the unix socket path parley will listen on
# (PARLEY_LISTEN overrides the file, as in parley itself).
parley_socket() {
    local listen=${PARLEY_LISTEN:-}
    if [ -z "$listen" ]; then
        listen=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*//p' "$1" |
            tail -n 1 | sed 's/[[:space:]]*$//')
    fi
    case $listen in
    unix:*) printf '%s\n' "${listen#unix:}" ;;
    *) lib_fail "$1: listen must be unix:/path here (got '$listen')" ;;
    esac
}

# parley_start BIN CONFIG [LOG]: starts `BIN serve -c CONFIG` (output to LOG,
# default $PARLEY_TMP/parley.log) and waits up to 15 s until its unix socket
# accepts a connection.  Sets PARLEY_PID and PARLEY_SOCKET.
parley_start() {
    local bin=$1 conf=$2 log=${3:-$PARLEY_TMP/parley.log}
    PARLEY_SOCKET=$(parley_socket "$conf") || return 1
    lib_spawn parley "$log" "$bin" serve -c "$conf"
    PARLEY_PID=$LIB_LAST_PID
    if ! lib_poll 15 unix_accepts "$PARLEY_SOCKET" "$PARLEY_PID"; then
        lib_tail "$log"
        lib_fail "parley did not accept on $PARLEY_SOCKET within 15 s"
        return 1
    fi
}

# unix_accepts PATH [PID]: succeeds when a connection to the unix socket PATH
# is accepted; returns 2 at once when process PID has exited.  Connecting and
# closing costs a FastCGI worker one empty accept.
unix_accepts() {
    if [ -n "${2:-}" ] && ! lib_alive "$2"; then
        return 2
    fi
    [ -S "$1" ] || return 1
    "$NODE" -e '
        const c = require("net").connect(process.argv[1]);
        c.on("connect", () => { c.destroy(); process.exit(0); });
        c.on("error", () => process.exit(1));' "$1"
}

# --- nginx -----------------------------------------------------------------

# nginx_conf_write DIR PORT SOCKET [HTTP_SNIPPET [SERVER_SNIPPET
# [CONVERSATION_SOCKET]]]: writes DIR/nginx.conf, a whole nginx config that
# serves 127.0.0.1:PORT with the repo's nginx/parley.conf (or
# SERVER_SNIPPET) in front of the FastCGI unix socket SOCKET, with the
# repo's nginx/parley-http.conf (or HTTP_SNIPPET) in the http context.  The
# conversation route goes to CONVERSATION_SOCKET (upstream
# parley_conversation), by default where parley puts its conversation pool
# next to SOCKET (conversation_socket); pass SOCKET itself for a parley
# without that pool.  Every path nginx writes is under DIR.
#
# When nginx starts as root its workers run as nobody; rather than `user
# root;` the sockets are made reachable: lib_init makes the temp dir 0711 and
# the test and dev configs give parley socket_mode 0666.
nginx_conf_write() {
    local dir=$1 port=$2 socket=$3
    local http_snippet=${4:-$PARLEY_SRCDIR/nginx/parley-http.conf}
    local server_snippet=${5:-$PARLEY_SRCDIR/nginx/parley.conf}
    local conv_socket=${6:-$(conversation_socket "$socket")}
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
# Written by scripts/lib.sh (nginx_conf_write); loopback only.
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
daemon off;

events {
    worker_connections 1024;
}

http {
    access_log off;
    keepalive_requests 10000;
    client_body_temp_path $dir/tmp/body;
    fastcgi_temp_path $dir/tmp/fastcgi;
    proxy_temp_path $dir/tmp/proxy;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    include $http_snippet;

    upstream parley {
        server unix:$socket;
    }

    upstream parley_conversation {
        server unix:$conv_socket;
    }

    server {
        listen 127.0.0.1:$port;
        include $server_snippet;
    }
}
EOF
}

# conversation_socket SOCKET: prints the path of the conversation pool's
# socket that parley makes next to the unix socket SOCKET when
# conversation_listen is not set (/x/parley.sock -> /x/parley-conversation.sock).
conversation_socket() {
    local s=${1%.sock}
    printf '%s-conversation.sock\n' "$s"
}

# nginx reads the environment variable NGINX as a list of inherited listening
# sockets (its binary upgrade), and make check exports NGINX as nginx's path:
# every nginx run here goes through nginx_exec, which clears it.
nginx_exec() {
    env -u NGINX "$NGINX" "$@"
}

# nginx_test DIR: `nginx -t` on DIR/nginx.conf.
nginx_test() {
    nginx_exec -q -t -p "$1/" -e "$1/nginx-error.log" -c "$1/nginx.conf"
}

# nginx_start DIR: starts nginx (foreground master, in the background here)
# on DIR/nginx.conf and waits up to 10 s for its port to accept.  Sets
# NGINX_PID and NGINX_PORT.
nginx_start() {
    local dir=$1
    NGINX_PORT=$(sed -n 's/^[[:space:]]*listen 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/nginx.conf" |
        head -n 1)
    [ -n "$NGINX_PORT" ] || lib_fail "$dir/nginx.conf: no listen 127.0.0.1:PORT" || return 1
    # Otherwise the wait below would take another server's port for ours.
    if tcp_accepts 127.0.0.1 "$NGINX_PORT"; then
        lib_fail "127.0.0.1:$NGINX_PORT is already in use"
        return 1
    fi
    # -e: the error log from the first line on, before the config is read.
    # Not through nginx_exec: a function in the background would be a
    # subshell with nginx as its child, and $! the subshell's pid.
    lib_spawn nginx "$dir/nginx-error.log" \
        env -u NGINX "$NGINX" -p "$dir/" -e "$dir/nginx-error.log" -c "$dir/nginx.conf"
    NGINX_PID=$LIB_LAST_PID
    if ! lib_poll 10 tcp_accepts 127.0.0.1 "$NGINX_PORT" "$NGINX_PID"; then
        lib_tail "$dir/nginx-error.log"
        lib_fail "nginx did not listen on 127.0.0.1:$NGINX_PORT within 10 s"
        return 1
    fi
}

# tcp_accepts HOST PORT [PID]: succeeds when HOST:PORT accepts a connection;
# returns 2 at once when process PID has exited.
tcp_accepts() {
    if [ -n "${3:-}" ] && ! lib_alive "$3"; then
        return 2
    fi
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# http_status URL: prints the HTTP status of GET URL (000 when nothing
# answered).
http_status() {
    if command -v curl >/dev/null; then
        curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true
    else
        "$NODE" -e '
            fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
                .then((r) => console.log(r.status), () => console.log("000"));' "$1"
    fi
}

# wait_http URL TIMEOUT [STATUS]: waits up to TIMEOUT seconds until GET URL
# answers STATUS (default 200).
wait_http() {
    local url=$1 timeout=$2 want=${3:-200}
    local deadline=$((SECONDS + timeout)) got
    while :; do
        got=$(http_status "$url")
        [ "$got" = "$want" ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            lib_fail "GET $url answered $got, not $want, within ${timeout} s"
            return 1
        fi
        sleep 0.1
    done
}

# --- cleanup -----------------------------------------------------------------

# lib_descendants PID: prints the pids of PID's children, grandchildren, ...
# (from /proc, so that a supervisor's workers are stopped even when the
# supervisor itself has to be killed).
lib_descendants() {
    local f line pid fields
    local -A kids=()
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        pid=${line%% *}
        # Fields after the command name, which may hold spaces and ')'.
        read -ra fields <<<"${line##*) }"
        kids[${fields[1]}]+=" $pid"
    done
    local todo=("$1") next
    while [ "${#todo[@]}" -gt 0 ]; do
        next=${todo[0]}
        todo=("${todo[@]:1}")
        for pid in ${kids[$next]:-}; do
            printf '%s\n' "$pid"
            todo+=("$pid")
        done
    done
}

# stop_processes: TERM to everything started, newest first (nginx before
# parley before the DB), then KILL whatever is left, descendants included,
# after PARLEY_STOP_TIMEOUT seconds (default 5).  Idempotent.
stop_processes() {
    local i pid all=() left
    local timeout=${PARLEY_STOP_TIMEOUT:-5}
    for ((i = ${#LIB_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${LIB_PIDS[i]}
        lib_alive "$pid" || continue
        all+=("$pid")
        mapfile -t -O "${#all[@]}" all < <(lib_descendants "$pid")
        kill -TERM "$pid" 2>/dev/null || true
    done
    local deadline=$((SECONDS + timeout))
    while :; do
        left=()
        for pid in "${all[@]}"; do
            lib_alive "$pid" && left+=("$pid")
        done
        [ "${#left[@]}" -eq 0 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            lib_log "killing ${left[*]} (still running ${timeout} s after SIGTERM)"
            kill -KILL "${left[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    # Reap our own children so bash prints no job messages later.
    for pid in "${LIB_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    LIB_PIDS=()
    LIB_NAMES=()
}

# remove_tmp: removes $PARLEY_TMP unless PARLEY_KEEP_TMP=1.
remove_tmp() {
    [ -n "$PARLEY_TMP" ] && [ -d "$PARLEY_TMP" ] || return 0
    if [ "${PARLEY_KEEP_TMP:-0}" = 1 ]; then
        lib_log "kept $PARLEY_TMP"
    else
        rm -rf "$PARLEY_TMP"
    fi
    PARLEY_TMP=
}

# stop_all: stop_processes, then remove_tmp; the EXIT trap lib_init sets.
# Keeps the exit status it was called with.
stop_all() {
    local rc=$?
    stop_processes
    remove_tmp
    return "$rc"
}

# lib_check_children: fails (naming it) when a process started here has
# exited; for scripts that watch their children.
lib_check_children() {
    local i
    for i in "${!LIB_PIDS[@]}"; do
        if ! lib_alive "${LIB_PIDS[i]}"; then
            lib_log "${LIB_NAMES[i]} (pid ${LIB_PIDS[i]}) exited"
            return 1
        fi
    done
}
