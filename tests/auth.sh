#!/usr/bin/env bash
# tests/auth.sh — parley on a replica set that requires authentication:
# 3 members started with --auth and a --keyFile (the members authenticate
# to each other with it), a SCRAM-SHA-256 user made through the localhost
# exception, and that user named in mongodb_uri with its password.  Needs a
# real mongod (PARLEY_TEST_MONGOD; skipped, 77, on the dev DB, which has no
# authentication).
#
#   1. check-config prints the settings and the database settings without
#      the password (and without the URI's user information);
#   2. parley serves: the sessions and messages end-to-end suites
#      (tests/check_e2e, CK_RUN_SUITE) pass through nginx, and the indexes
#      are made (listIndexes as the user);
#   3. the password appears nowhere in parley's log;
#   4. a wrong password: parley starts (and stays up), its log says clearly
#      that the database refused the credentials, /readyz answers 503 and
#      an API request 503 with Retry-After: 1, never 500; the password
#      given appears in no log either.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init auth --slow
if [ -z "${PARLEY_TEST_MONGOD:-}" ]; then
    echo "auth: skipped: needs a real mongod (set PARLEY_TEST_MONGOD)"
    exit 77
fi
lib_require_tools
test_need_built "$bin" "$check"
test_need_tools curl
TEST_LOGS=(parley.log:40 parley-wrong.log:20 nginx-error.log:10)
TEST_PARLEY_LOGS=(parley.log parley-wrong.log)

FAILED=()
pass() { lib_log "ok   $*"; }
fail() {
    lib_log "FAIL $*"
    FAILED+=("$*")
}

# The replica set, by hand: with --auth only the localhost exception may
# act before the first user exists (replSetInitiate, createUser).
keyfile=$PARLEY_TMP/keyfile
(
    umask 077
    head -c 96 /dev/urandom | base64 -w 0 >"$keyfile"
)
chmod 0400 "$keyfile"
RS_ARGS=(--auth --keyFile "$keyfile")
rs_prepare "$PARLEY_TMP" 3
for i in "${!RS_PORTS[@]}"; do
    rs_member_start "$i"
done
for i in "${!RS_PORTS[@]}"; do
    lib_poll 60 tcp_accepts "$RS_HOST" "${RS_PORTS[i]}" "${RS_PIDS[i]}" ||
        { lib_fail "member $i did not accept"; exit 1; }
done
members=()
for i in "${!RS_PORTS[@]}"; do
    members+=("{\"_id\":$i,\"host\":\"$RS_HOST:${RS_PORTS[i]}\"}")
done
config="{\"_id\":\"$RS_NAME\",\"members\":[$(
    IFS=,
    echo "${members[*]}"
)],\"settings\":{\"electionTimeoutMillis\":2000,\"heartbeatIntervalMillis\":500}}"
mongo_cmd "$RS_HOST:${RS_PORTS[0]}" admin "{\"replSetInitiate\":$config}" >/dev/null ||
    { lib_fail "replSetInitiate refused"; exit 1; }
lib_poll 90 rs_has_primary || { lib_fail "no primary"; exit 1; }
primary=$RS_HOST:${RS_PORTS[$RS_PRIMARY]}

admin_pw=Adm-$(random_hex 24)
password=Pw-$(random_hex 24)
wrong=Wrong-$(random_hex 24)
db=parley_auth
mongo_cmd "$primary" admin "{\"createUser\":\"root\",\"pwd\":\"$admin_pw\",\"roles\":[\"root\"],\"mechanisms\":[\"SCRAM-SHA-256\"]}" >/dev/null ||
    { lib_fail "createUser root (localhost exception) refused"; exit 1; }
admin_uri="mongodb://root:$admin_pw@${RS_URI#mongodb://}&authSource=admin"
mongo_cmd "$admin_uri" admin "{\"createUser\":\"parley\",\"pwd\":\"$password\",\"roles\":[{\"role\":\"readWrite\",\"db\":\"$db\"}],\"mechanisms\":[\"SCRAM-SHA-256\"]}" >/dev/null ||
    { lib_fail "createUser parley refused"; exit 1; }
# Without credentials the set refuses (so the suite below proves the
# user's).
if mongo_cmd "$RS_URI" "$db" '{"find":"sessions"}' >/dev/null 2>&1; then
    fail "the set answers a find without credentials: --auth is not in force"
else
    pass "the set refuses a find without credentials"
fi

uri="mongodb://parley:$password@${RS_URI#mongodb://}&authSource=admin&authMechanism=SCRAM-SHA-256"
secret=$(random_hex 48)
write_conf() { # write_conf FILE URI SOCKET
    (
        umask 077
        cat >"$1" <<EOF
# Written by tests/auth.sh
listen = unix:$3
socket_mode = 0666
workers = 4
mongodb_uri = $2
mongodb_database = $db
jwt_secret = $secret
log_level = info
EOF
    )
}
conf=$PARLEY_TMP/parley.conf
write_conf "$conf" "$uri" "$PARLEY_TMP/parley.sock"

# 1. check-config
"$bin" check-config -c "$conf" >"$PARLEY_TMP/check-config.out" 2>&1 ||
    fail "check-config refused the configuration: $(cat "$PARLEY_TMP/check-config.out")"
if grep -qF -- "$password" "$PARLEY_TMP/check-config.out"; then
    fail "check-config prints the password"
else
    pass "check-config does not print the password"
fi
grep -q '^mongodb_uri = (set)$' "$PARLEY_TMP/check-config.out" &&
    grep -q '^# database settings: hosts=.* w=majority journal=true ' "$PARLEY_TMP/check-config.out" &&
    ! grep -q 'parley:' "$PARLEY_TMP/check-config.out" &&
    pass "check-config: mongodb_uri (set), the database settings without credentials" ||
    fail "check-config output: $(grep -E 'mongodb_uri|database settings' "$PARLEY_TMP/check-config.out")"

# 2. parley serves
parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
port=$(free_port)
nginx_conf_write "$PARLEY_TMP" "$port" "$PARLEY_SOCKET"
nginx_test "$PARLEY_TMP"
nginx_start "$PARLEY_TMP"
url=http://127.0.0.1:$port
if wait_http "$url/readyz" 30; then pass "/readyz 200 with the user's credentials"; else fail "/readyz not 200"; fi
# (logged by the supervisor, or when its indexer child is reaped, a moment
# after the workers see the shared flag)
if lib_poll 10 grep -q '"indexes ready"' "$PARLEY_TMP/parley.log"; then
    pass "indexes made as the user"
else
    fail "no 'indexes ready' in parley's log"
fi
indexes=$(mongo_cmd "$admin_uri" "$db" '{"listIndexes":"messages"}' || true)
grep -q user_session_role_seq <<<"$indexes" && pass "the messages indexes exist" ||
    fail "messages indexes: $indexes"
rc=0
CK_RUN_SUITE=e2e CK_EXCLUDE_TAGS=nginx PARLEY_E2E_URL=$url PARLEY_E2E_SECRET=$secret \
    PARLEY_E2E_BIN=$bin PARLEY_E2E_CONFIG=$conf PARLEY_E2E_DEVDB_URI=$RS_URI \
    "$check" >"$PARLEY_TMP/e2e.out" 2>&1 || rc=$?
grep -E '^[0-9]+%: Checks' "$PARLEY_TMP/e2e.out" >&2 || true
if [ "$rc" -eq 0 ]; then
    pass "the sessions end-to-end suite passes as the user"
else
    tail -n 30 "$PARLEY_TMP/e2e.out" >&2
    fail "the sessions end-to-end suite failed ($rc)"
fi

# 3. no password in the log
lib_stop "$PARLEY_PID"
for p in "$password" "$admin_pw"; do
    if grep -qF -- "$p" "$PARLEY_TMP/parley.log"; then
        fail "parley.log holds a password"
    fi
done
pass "parley.log holds no password ($(wc -l <"$PARLEY_TMP/parley.log") lines)"

# 4. a wrong password: a clear error at start, 503s, no 500, still up
wrong_uri="mongodb://parley:$wrong@${RS_URI#mongodb://}&authSource=admin&authMechanism=SCRAM-SHA-256"
write_conf "$conf" "$wrong_uri" "$PARLEY_TMP/parley.sock"
parley_start "$bin" "$conf" "$PARLEY_TMP/parley-wrong.log"
wrong_pid=$PARLEY_PID
status=$(http_status "$url/readyz")
[ "$status" = 503 ] && pass "/readyz 503 with a wrong password" || fail "/readyz answered $status with a wrong password"
token=$("$bin" token --sub auth-user -c "$conf")
out=$(curl -s -D - -o /dev/null -m 20 -H "Authorization: Bearer $token" "$url/api/agent-sessions")
code=$(sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p' <<<"$out")
ra=$(sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p' <<<"$out")
[ "$code" = 503 ] && [ "$ra" = 1 ] && pass "an API request: 503 with Retry-After: 1" ||
    fail "an API request answered $code (Retry-After: $ra) with a wrong password"
if grep -q 'refused our credentials' "$PARLEY_TMP/parley-wrong.log"; then
    pass "the log says: $(grep -o 'indexes not made yet ([^)]*)' "$PARLEY_TMP/parley-wrong.log" | head -n 1)"
else
    fail "the log does not say the credentials were refused"
fi
lib_alive "$wrong_pid" && pass "parley still runs" || fail "parley exited with a wrong password"
lib_stop "$wrong_pid"
if grep -qF -- "$wrong" "$PARLEY_TMP/parley-wrong.log"; then
    fail "parley-wrong.log holds the password given"
fi
if grep -qE '"msg":"[A-Z]+ [^ ]+ 500 ' "$PARLEY_TMP/parley-wrong.log"; then
    fail "a 500 with a wrong password"
fi

if [ "${#FAILED[@]}" -gt 0 ]; then
    lib_log "${#FAILED[@]} checks failed:"
    printf '  %s\n' "${FAILED[@]}" >&2
    exit 1
fi
lib_log "all authentication checks passed"
