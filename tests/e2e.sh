#!/usr/bin/env bash
# tests/e2e.sh — the end-to-end suite's harness, run by `make check`.
#
# Starts the real pieces on loopback, each in one temp dir: the database
# (the dev DB, or a real replica set with PARLEY_TEST_MONGOD: testdb_start in
# scripts/lib.sh), parley (src/parley serve) on a unix socket, and nginx with
# the repo's nginx/parley-http.conf and nginx/parley.conf on a free port.
# Then runs tests/check_e2e against http://127.0.0.1:PORT with
#
#   PARLEY_E2E_URL        base URL (nginx)
#   PARLEY_E2E_SECRET     the HS256 secret parley checks tokens with
#   PARLEY_E2E_BIN        src/parley (for `parley token`, `check-config`)
#   PARLEY_E2E_CONFIG     parley's config file
#   PARLEY_E2E_DEVDB_URI  the database's URI
#
# and exits with its status (automake: 0 pass, 1 fail, 77 skip).  nginx and
# node missing is a failure, not a skip: CI must have them.  On failure the
# ends of parley's, nginx's and the database's logs are printed (tests/lib.sh).
#
# make check sets top_srcdir, top_builddir, NGINX and NODE; the source tree
# is only read (make distcheck has it read-only).  PARLEY_KEEP_TMP=1 keeps the
# temp dir; PARLEY_DEVDB_HOME says where the dev DB is installed (default
# scripts/devdb, installed on first use).
#
# On a real mongod the suite's database is profiled ({profile: 2}) and,
# after a passing run, every operation parley issued is checked: none may
# scan a collection or sort in memory (tests/profile_check.mjs; the one
# allowed scan is the admin's GET /stats?all=true, which reads every
# session by design).  tests/explain.sh checks each shape in detail.
#
# nginx applies its real per-client rate limit (100 r/s, burst 200) to the
# suite too, since all of it comes from 127.0.0.1.  PARLEY_E2E_HTTP_SNIPPET
# may name another http-context snippet defining zone parley_per_client.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init e2e --keep PARLEY_E2E_HTTP_SNIPPET
lib_require_tools
test_need_built "$bin" "$check"
TEST_LOGS=(parley.log:60 nginx-error.log:30)

testdb_start
testdb_name parley_e2e
if [ "$TESTDB_KIND" != devdb ]; then
    testdb_profile_on "$TESTDB_NAME" || exit 1
fi

secret=$(random_hex 48)
conf=$PARLEY_TMP/parley.conf
(
    umask 077
    cat >"$conf" <<EOF
# Written by tests/e2e.sh
listen = unix:$PARLEY_TMP/parley.sock
socket_mode = 0666
workers = 4
# The suite sends one user's requests at once on purpose (races on seq,
# idempotency keys): no per-user limit below the workers here.  tests/
# limits.sh checks the limit itself.
user_max_inflight = 4
user_max_bulk = 4
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
log_level = info
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
    PARLEY_E2E_DEVDB_URI=$TESTDB_URI \
    "$check" || rc=$?

# The suite passing with a server that died under it would hide a crash.
if [ "$rc" -eq 0 ] && ! lib_check_children; then
    lib_fail "a server exited during the suite"
    rc=1
fi

if [ "$rc" -eq 0 ] && [ "$TESTDB_KIND" != devdb ]; then
    testdb_profile_check "$TESTDB_NAME" || rc=1
fi

# Logs never hold a token, the secret or message content.  The suite sends
# all three (log_level info logs every request; check_e2e_messages.c sends
# the marker as content); "eyJ" starts every JWT's header.
if [ "$rc" -eq 0 ]; then
    for bad in "$secret" PARLEY-SECRET-CONTENT-MARKER eyJ; do
        if grep -qF -- "$bad" "$PARLEY_TMP/parley.log"; then
            lib_fail "parley.log holds a secret, a token or content (${bad:0:12}...)"
            rc=1
        fi
    done
fi
exit "$rc"
