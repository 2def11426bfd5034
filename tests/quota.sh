#!/usr/bin/env bash
# tests/quota.sh — the quotas and page byte caps end to end, run by `make
# check`.
#
# Starts the database (the dev DB, or with PARLEY_TEST_MONGOD a real
# replica set: tests/lib.sh), parley with small quotas and nginx with the
# repo's configuration, like tests/e2e.sh, and runs tests/check_e2e_quota
# against it with the e2e suite's environment plus PARLEY_QUOTA_DB_URI and
# PARLEY_QUOTA_MONGO_CMD (tests/mongo_cmd), with which its drift test
# pushes a session's counters off in the database before `parley cleanup`
# recounts them.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init quota --keep PARLEY_E2E_HTTP_SNIPPET
lib_require_tools
check=$top_builddir/tests/check_e2e_quota
test_need_built "$bin" "$check"
mongo_cmd_find
TEST_LOGS=(parley.log:60 nginx-error.log:30)

testdb_start
testdb_name parley_quota

secret=$(random_hex 48)
conf=$PARLEY_TMP/parley.conf
# Small enough to fill in a test, large enough for the page tests: the
# bytes quota holds more than page_max_bytes, a session's memory keys
# more than it too (at max_metadata_bytes each).
(
    umask 077
    cat >"$conf" <<EOF
# Written by tests/quota.sh
listen = unix:$PARLEY_TMP/parley.sock
socket_mode = 0666
workers = 4
# The counter tests send one user's requests at once on purpose (racing
# appends, deletes and memory PUTs against a quota): no per-user limit
# below the workers here.  tests/limits.sh checks the limit itself.
user_max_inflight = 4
user_max_bulk = 4
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
log_level = info
sweeper_lock_file = $PARLEY_TMP/sweeper.lock
quota_sessions_per_user = 5
quota_messages_per_session = 50
quota_bytes_per_session = 262144
quota_memory_keys_per_session = 10
page_max_bytes = 65536
EOF
)
config_check "$conf"

parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"

nginx_serve "$PARLEY_SOCKET" "${PARLEY_E2E_HTTP_SNIPPET:-}"

rc=0
PARLEY_E2E_URL=$url \
    PARLEY_E2E_SECRET=$secret \
    PARLEY_E2E_BIN=$bin \
    PARLEY_E2E_CONFIG=$conf \
    PARLEY_QUOTA_DB_URI=$TESTDB_URI \
    PARLEY_QUOTA_MONGO_CMD=$MONGO_CMD \
    "$check" || rc=$?

if [ "$rc" -eq 0 ] && ! lib_check_children; then
    lib_fail "a server exited during the suite"
    rc=1
fi
exit "$rc"
