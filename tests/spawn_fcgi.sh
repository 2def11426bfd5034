#!/usr/bin/env bash
# tests/spawn_fcgi.sh — parley started by spawn-fcgi on the socket it
# inherits as fd 0 (`listen` empty), behind the test nginx, run by
# `make check`.
#
#   1. `spawn-fcgi -n -s SOCKET -M 0666 -- parley serve -c CONF`: spawn-fcgi
#      makes the socket, puts it on fd 0 and execs parley in its place, so
#      the process this script started is parley's supervisor.  nginx (the
#      repo's snippets, scripts/lib.sh's nginx_conf_write) passes to the
#      socket; tests/check_e2e's sessions suite ("e2e") runs through it, or
#      with PARLEY_TEST_QUICK=1 (make distcheck) only its "create" case.
#      Then SIGTERM: parley drains, exits 0 and logs "stopped", and no
#      worker is left.
#   2. The way docs/deployment.md starts it, as a daemon: `spawn-fcgi -s SOCKET
#      -P PIDFILE -- parley serve -c CONF` forks parley off and exits 0;
#      the pid file names parley, which serves through nginx; SIGTERM stops
#      it cleanly.
#
# Exit status for automake: 0 pass, 1 fail, 77 skip (never: spawn-fcgi,
# nginx, node and curl missing is a failure; scripts/setup installs them).
# PARLEY_KEEP_TMP=1 keeps the temp dir.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init spawn-fcgi
SPAWN_FCGI=${SPAWN_FCGI:-$(PATH="$PATH:/usr/sbin:/sbin" command -v spawn-fcgi || true)}
lib_require_tools
test_need_built "$bin" "$check"
[ -n "$SPAWN_FCGI" ] ||
    lib_fail "spawn-fcgi not found (scripts/setup installs Debian's spawn-fcgi)" || exit 1
TEST_LOGS=(parley.log:40 parley-daemon.log:20 nginx-error.log:20)
TEST_PARLEY_LOGS=(parley.log parley-daemon.log)

failures=0
fail() {
    lib_log "FAIL: $*"
    failures=$((failures + 1))
}
pass() {
    printf 'spawn-fcgi: ok: %s\n' "$*"
}

testdb_start
testdb_name parley_spawn

secret=$(random_hex 48)
conf=$PARLEY_TMP/parley.conf
sock=$PARLEY_TMP/parley.sock
(
    umask 077
    cat >"$conf" <<EOF
# Written by tests/spawn_fcgi.sh.  listen is empty: serve on the socket
# spawn-fcgi hands over as fd 0.
listen =
workers = 4
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
log_level = info
EOF
)

# --- 1. spawn-fcgi -n: parley in spawn-fcgi's place ------------------------------

lib_spawn parley "$PARLEY_TMP/parley.log" \
    "$SPAWN_FCGI" -n -s "$sock" -M 0666 -- "$bin" serve -c "$conf"
parley_pid=$LIB_LAST_PID

# serving LOG PID: parley has said it serves on fd 0 with 4 workers.  (The
# socket itself accepts connections as soon as spawn-fcgi has made it,
# before parley runs.)
serving() {
    grep -q '"msg":"parley [^ ]* serving on fd 0 with 4 workers"' "$1" && return 0
    lib_alive "$2" || return 2
    return 1
}
if lib_poll 15 serving "$PARLEY_TMP/parley.log" "$parley_pid"; then
    pass "parley serves on fd 0 with 4 workers"
else
    lib_fail "parley under spawn-fcgi did not start serving within 15 s"
    exit 1
fi
if [ "$(readlink "/proc/$parley_pid/exe")" = "$(readlink -f "$bin")" ]; then
    pass "spawn-fcgi -n exec'd parley (pid $parley_pid)"
else
    fail "pid $parley_pid runs $(readlink "/proc/$parley_pid/exe"), not parley"
fi

port=$(free_port)
nginx_conf_write "$PARLEY_TMP" "$port" "$sock" "" "" "$sock"
nginx_test "$PARLEY_TMP"
nginx_start "$PARLEY_TMP"
url=http://127.0.0.1:$port
wait_http "$url/healthz" 15

rc=0
if [ "${PARLEY_TEST_QUICK:-0}" = 1 ]; then
    export CK_RUN_CASE=create
fi
PARLEY_E2E_URL=$url \
    PARLEY_E2E_SECRET=$secret \
    PARLEY_E2E_BIN=$bin \
    PARLEY_E2E_CONFIG=$conf \
    PARLEY_E2E_DEVDB_URI=$TESTDB_URI \
    CK_RUN_SUITE=e2e \
    "$check" || rc=$?
unset CK_RUN_CASE
[ "$rc" -eq 0 ] || fail "check_e2e suite e2e through nginx and spawn-fcgi'd parley exited $rc"

workers=$(lib_descendants "$parley_pid" | wc -l)
kill -TERM "$parley_pid"
if lib_poll 15 lib_all_gone "$parley_pid"; then
    status=0
    wait "$parley_pid" || status=$?
    if [ "$status" -eq 0 ] && grep -q '"msg":"stopped"' "$PARLEY_TMP/parley.log"; then
        pass "SIGTERM: parley drained $workers workers and exited 0"
    else
        fail "SIGTERM: parley exited $status (log says stopped: $(grep -c '"msg":"stopped"' "$PARLEY_TMP/parley.log"))"
    fi
else
    fail "parley still running 15 s after SIGTERM"
fi
stray=$(pgrep -f -- "$bin serve -c $conf" || true)
[ -z "$stray" ] || fail "parley processes left after SIGTERM: $stray"

# --- 2. spawn-fcgi as a daemon, as docs/deployment.md runs it -----------------------------

pidfile=$PARLEY_TMP/parley.pid
rm -f "$sock"
# spawn-fcgi points a daemon's stdout and stderr at /dev/null: a shell in
# between sends parley's log to a file and execs it (same pid).
# shellcheck disable=SC2016 # $0..$2 are the inner shell's
if "$SPAWN_FCGI" -s "$sock" -M 0666 -P "$pidfile" -- \
    /bin/sh -c 'exec "$0" serve -c "$1" 2>>"$2"' "$bin" "$conf" "$PARLEY_TMP/parley-daemon.log" \
    </dev/null >>"$PARLEY_TMP/spawn-fcgi.out" 2>&1; then
    pass "spawn-fcgi forked parley off and exited 0"
else
    fail "spawn-fcgi exited non-zero"
fi
daemon_pid=$(cat "$pidfile" 2>/dev/null || true)
if [ -n "$daemon_pid" ]; then
    # Not our child: stop_processes (at exit) stops it and its workers.
    LIB_PIDS+=("$daemon_pid")
    LIB_NAMES+=(parley-daemon)
fi
if [ -n "$daemon_pid" ] && lib_poll 15 serving "$PARLEY_TMP/parley-daemon.log" "$daemon_pid"; then
    [ "$(readlink "/proc/$daemon_pid/exe")" = "$(readlink -f "$bin")" ] ||
        fail "the pid file names $daemon_pid, which is not parley"
    if wait_http "$url/healthz" 15; then
        pass "the daemonised parley (pid $daemon_pid) serves through nginx"
    else
        fail "the daemonised parley does not answer through nginx"
    fi
    kill -TERM "$daemon_pid"
    if lib_poll 15 lib_all_gone "$daemon_pid" &&
        grep -q '"msg":"stopped"' "$PARLEY_TMP/parley-daemon.log"; then
        pass "SIGTERM: the daemonised parley drained and exited"
    else
        fail "the daemonised parley still runs 15 s after SIGTERM"
    fi
else
    fail "no daemonised parley serving on $sock (pid file: '$daemon_pid')"
fi

lib_alive "$NGINX_PID" || fail "nginx exited during the test"
if [ "$failures" -ne 0 ]; then
    lib_log "$failures check(s) failed"
    exit 1
fi
echo "spawn-fcgi: all checks passed"
