#!/usr/bin/env bash
# tests/limits.sh — every fairness limit end to end (tests/check_e2e_limits).
#
# Starts the database (the dev DB, or a real replica set with
# PARLEY_TEST_MONGOD: tests/lib.sh), parley with small limits and nginx with
# the repo's snippets, all on loopback in one temp dir, and runs
# tests/check_e2e_limits against them.  parley runs with
#   workers = 4            so user_max_inflight's default is 2 (and
#                          user_max_bulk's is 1)
#   export_deadline_ms     4500, below request_deadline_ms + the time a test
#                          needs, so a test can make an export run into it
#   jwt_max_lifetime       3600
#   worker_max_rss_mb      what a warm worker peaks at plus 4 MiB, set once
#                          parley runs (measured, then a SIGHUP reload)
# Afterwards it checks what only the logs can tell: the user the erasure
# test erased is named in no log, and scripts/run's socket is not
# world-writable.
#
# make check sets top_srcdir, top_builddir, NGINX and NODE.  PARLEY_KEEP_TMP=1
# keeps the temp dir.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init limits
lib_require_tools
check=$top_builddir/tests/check_e2e_limits
test_need_built "$bin" "$check"
test_need_tools curl
TEST_LOGS=(parley.log:60 nginx-error.log:30)

fail() {
    lib_fail "$*"
    exit 1
}

# scripts/run's FastCGI socket: whoever can connect to it can send parley
# any parameter nginx would (the user's start time, a request id), so it
# is never world-writable.
run_mode=$(sed -n 's/^socket_mode = \(0[0-7]*\)$/\1/p' "$top_srcdir/scripts/run")
[ -n "$run_mode" ] || fail "scripts/run sets no socket_mode"
[ $((8#$run_mode & 8#002)) -eq 0 ] || fail "scripts/run's socket is world-writable ($run_mode)"

testdb_start
testdb_name parley_limits

secret=$(random_hex 48)
erase_id=erase-me-$(random_hex 12)
conf=$PARLEY_TMP/parley.conf
write_conf() {
    (
        umask 077
        cat >"$conf" <<EOF
# Written by tests/limits.sh
listen = unix:$PARLEY_TMP/parley.sock
socket_mode = 0666
workers = 4
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
jwt_max_lifetime = 3600
export_deadline_ms = 4500
worker_max_rss_mb = $1
log_level = info
EOF
    )
}
write_conf 0
config_check "$conf"
parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"

nginx_serve "$PARLEY_SOCKET"

# The memory ceiling: what a worker reaches serving ordinary requests, plus
# 4 MiB, so that one large request (check_e2e_limits parses a 1 MB import)
# crosses it.  Measured on warm workers, then set with a reload.
workers_of() {
    local f line fields
    for f in /proc/[0-9]*/stat; do
        read -r line <"$f" 2>/dev/null || continue
        read -ra fields <<<"${line##*) }"
        [ "${fields[1]}" = "$1" ] && echo "${f//[^0-9]/}"
    done
    return 0
}
token=$("$bin" token -c "$conf" --sub limits-warmup --ttl 600)
for _ in $(seq 1 20); do
    http_status "$url/readyz" >/dev/null
    curl -s -o /dev/null -m 5 -H "Authorization: Bearer $token" "$url/api/agent-sessions" || true
done
peak_kb=0
for w in $(workers_of "$PARLEY_PID"); do
    kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$w/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$peak_kb" ] && peak_kb=$kb
done
[ "$peak_kb" -gt 0 ] || fail "cannot read a worker's peak RSS"
ceiling=$(((peak_kb + 1023) / 1024 + 4))
write_conf "$ceiling"
old_workers=$(workers_of "$PARLEY_PID" | sort | tr '\n' ' ')
kill -HUP "$PARLEY_PID"
new_generation() {
    local now w
    now=$(workers_of "$PARLEY_PID" | sort | tr '\n' ' ')
    [ -n "$now" ] || return 1
    for w in $old_workers; do
        [[ " $now " == *" $w "* ]] && return 1
    done
    return 0
}
lib_poll 15 new_generation || fail "the reload did not replace the workers"
wait_http "$url/readyz" 15
lib_log "workers peak at ${peak_kb} KiB warm; worker_max_rss_mb = $ceiling"

rc=0
PARLEY_E2E_URL=$url \
    PARLEY_E2E_SECRET=$secret \
    PARLEY_E2E_BIN=$bin \
    PARLEY_E2E_CONFIG=$conf \
    PARLEY_E2E_SOCKET=$PARLEY_SOCKET \
    PARLEY_E2E_PID=$PARLEY_PID \
    PARLEY_E2E_ERASE=$erase_id \
    "$check" || rc=$?

if [ "$rc" -eq 0 ] && ! lib_check_children; then
    lib_fail "a server exited during the suite"
    rc=1
fi
# The erased user's id is in no log: parley's, nginx's error log (nginx's
# access log is the site's; parley.conf turns it off for erasures).
if [ "$rc" -eq 0 ]; then
    grep -q "erased a user" "$PARLEY_TMP/parley.log" ||
        { lib_fail "the erasure did not run"; rc=1; }
    for f in "$PARLEY_TMP/parley.log" "$PARLEY_TMP/nginx-error.log"; do
        if grep -qF -- "$erase_id" "$f"; then
            lib_fail "$f names the erased user"
            grep -F -- "$erase_id" "$f" | head -5 >&2
            rc=1
        fi
    done
fi
exit "$rc"
