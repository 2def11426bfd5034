#!/usr/bin/env bash
# tests/noisy.sh — the noisy-neighbour test (tests/noisy.c).
#
# Starts the database, parley with its default limits (four workers, so
# user_max_inflight is 2) and nginx with the repo's snippets, and runs
# tests/noisy: for 20 s user A does the worst it can (abandoned exports of
# a 20 000-message session, imports, batch appends at the quota, memory
# floods, 2 000 idle connections) while user B's GETs and appends are
# timed.  B must see no error at all; on a real replica set
# (PARLEY_TEST_MONGODB_URI, as scripts/test sets it with
# PARLEY_TEST_MONGOD) B's p99 must also stay under 500 ms.  The dev DB runs
# every query on one JavaScript thread that scans whole collections, so
# there B's latency is only printed.  A's and B's figures are printed
# either way (in the suite's .log).
#
# When this parley has quota_messages_per_session, it is set to 20 000, so
# A's session is at its quota and A's batch appends are refused (403);
# before quotas exist they are stored.
#
# PARLEY_TEST_QUICK=1 (make distcheck) skips it; NOISY_SECONDS changes the
# 20 s; PARLEY_KEEP_TMP=1 keeps the temp dir.
set -euo pipefail

if [ "${PARLEY_TEST_QUICK:-0}" = 1 ]; then
    echo "noisy: skipped (PARLEY_TEST_QUICK=1)"
    exit 77
fi
if [ -z "${top_srcdir:-}" ]; then
    top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
fi
top_builddir=${top_builddir:-$top_srcdir}

# shellcheck source=scripts/lib.sh
. "$top_srcdir/scripts/lib.sh"

db_uri=${PARLEY_TEST_MONGODB_URI:-}
while read -r var; do
    case $var in
    PARLEY_DEVDB_HOME | PARLEY_KEEP_TMP | PARLEY_STOP_TIMEOUT | PARLEY_TEST_*) ;;
    PARLEY_*) unset "$var" ;;
    esac
done < <(compgen -e)

bin=$top_builddir/src/parley
noisy=$top_builddir/tests/noisy
lib_init noisy
lib_require_tools
for f in "$bin" "$noisy"; do
    [ -x "$f" ] || lib_fail "$f not built" || exit 1
done

# shellcheck disable=SC2317 # runs from the EXIT trap
on_exit() {
    local rc=$?
    stop_processes
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$PARLEY_TMP" ]; then
        lib_log "failed ($rc); temp dir $PARLEY_TMP"
        lib_tail "$PARLEY_TMP/parley.log" 40
        lib_tail "$PARLEY_TMP/nginx-error.log" 20
        lib_tail "$PARLEY_TMP/devdb.log" 20
    fi
    remove_tmp
    exit "$rc"
}
trap on_exit EXIT

p99=()
if [ -n "$db_uri" ]; then
    # -B: an import of 20 000 messages takes longer than its deadline here
    p99=(-p 500 -B)
    lib_log "database: $db_uri (B's p99 must stay under 500 ms)"
else
    devdb_install
    devdb_start "$PARLEY_TMP"
    db_uri=$PARLEY_DEVDB_URI
    lib_log "database: the dev DB (B's latency is only printed)"
fi

secret=$(random_hex 48)
conf=$PARLEY_TMP/parley.conf
(
    umask 077
    cat >"$conf" <<EOF
# Written by tests/noisy.sh: parley's defaults but for these.
listen = unix:$PARLEY_TMP/parley.sock
socket_mode = 0666
workers = 4
mongodb_uri = $db_uri
mongodb_database = parley_noisy_$(random_hex 8)
jwt_secret = $secret
log_level = warn
EOF
)
# The quota, when this parley has it (the quotas arrive separately).
if "$bin" check-config -c "$conf" 2>/dev/null | grep -q '^quota_messages_per_session '; then
    echo "quota_messages_per_session = 20000" >>"$conf"
    lib_log "quota_messages_per_session = 20000: A's batch appends are at the quota"
fi
"$bin" check-config -c "$conf" >"$PARLEY_TMP/check-config.out" 2>&1 || {
    cat "$PARLEY_TMP/check-config.out" >&2
    lib_fail "parley check-config rejected $conf"
    exit 1
}

parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
port=$(free_port)
nginx_conf_write "$PARLEY_TMP" "$port" "$PARLEY_SOCKET"
nginx_test "$PARLEY_TMP"
nginx_start "$PARLEY_TMP"
url=http://127.0.0.1:$port
wait_http "$url/healthz" 15

rc=0
PARLEY_E2E_CONFIG=$conf PARLEY_E2E_SECRET=$secret \
    "$noisy" -s "${NOISY_SECONDS:-20}" "${p99[@]}" "$url" || rc=$?
if [ "$rc" -eq 0 ] && ! lib_check_children; then
    lib_fail "a server exited during the test"
    rc=1
fi
exit "$rc"
