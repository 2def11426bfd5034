#!/usr/bin/env bash
# tests/noisy.sh — the noisy-neighbour test (tests/noisy.c).
#
# Starts the database, parley with its default limits (four workers, so
# user_max_inflight is 2) and nginx with the repo's snippets, and runs
# tests/noisy: for 20 s user A does the worst it can (abandoned exports of
# a 20 000-message session, imports, batch appends at the quota, memory
# floods, 2 000 idle connections) while user B's GETs and appends are
# timed.  B must see no error at all; on a real replica set
# (PARLEY_TEST_MONGOD, tests/lib.sh) B's p99 must also stay under 500 ms.  The dev DB runs
# every query on one JavaScript thread that scans whole collections, so
# there B's latency is only printed.  A's and B's figures are printed
# either way (in the suite's .log).
#
# When this parley has quota_messages_per_session, it is set to 20 000, so
# A's session is at its quota and A's batch appends are refused (403);
# before quotas exist they are stored.
#
# PARLEY_TEST_QUICK=1 (make distcheck) skips it; NOISY_SECONDS changes the
# 20 s, NOISY_A picks A's loads (tests/noisy.c); PARLEY_KEEP_TMP=1 keeps the
# temp dir.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init noisy --slow
lib_require_tools
noisy=$top_builddir/tests/noisy
test_need_built "$bin" "$noisy"
TEST_LOGS=(parley.log:40 nginx-error.log:20)

testdb_start
testdb_name parley_noisy
p99=()
if [ "$TESTDB_KIND" = devdb ]; then
    lib_log "database: the dev DB (B's latency is only printed)"
else
    # -B: an import of 20 000 messages takes longer than its deadline on
    # the test machines' unoptimised mongod
    p99=(-p 500 -B)
    lib_log "database: $(testdb_describe) (B's p99 must stay under 500 ms)"
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
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
log_level = warn
EOF
)
# The quota, when this parley has it (the quotas arrive separately).
if "$bin" check-config -c "$conf" 2>/dev/null | grep -q '^quota_messages_per_session '; then
    echo "quota_messages_per_session = 20000" >>"$conf"
    lib_log "quota_messages_per_session = 20000: A's batch appends are at the quota"
fi
config_check "$conf"

parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
nginx_serve "$PARLEY_SOCKET"

rc=0
PARLEY_E2E_CONFIG=$conf PARLEY_E2E_SECRET=$secret \
    "$noisy" -s "${NOISY_SECONDS:-20}" "${p99[@]}" "$url" || rc=$?
if [ "$rc" -eq 0 ] && ! lib_check_children; then
    lib_fail "a server exited during the test"
    rc=1
fi
exit "$rc"
