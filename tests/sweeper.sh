#!/usr/bin/env bash
# tests/sweeper.sh — the sweeper end to end with second-scale settings, run
# by `make check`.  The real database (the dev DB, or a replica set with
# PARLEY_TEST_MONGOD), real parley behind real nginx, curl.
#
# 1. The supervisor's own sweeps (cleanup_interval = 1, idle_timeout = 3,
#    max_inactive_time = 3): a session left alone becomes "expired" (version
#    + 1, its messages kept), then is deleted with its messages and memory
#    (the user's erasure afterwards finds nothing left), and so does a
#    conversation made through /v1; a session in use all the while stays
#    active; the sweeper child logs its counts.
# 2. `parley cleanup` (cron's way): two runs at once against one database,
#    each under its own lock file so that both really sweep, delete each
#    eligible session exactly once: their counts add up to the truth.  A
#    run whose lock is held exits 75 and touches nothing.
#
# Quick (about 15 s), so it runs under PARLEY_TEST_QUICK too.  node, nginx,
# curl and flock(1) missing is a failure: scripts/setup installs them.
# make check sets top_srcdir, top_builddir, NGINX and NODE.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init sweeper
lib_require_tools
test_need_tools curl flock
test_need_built "$bin"
TEST_LOGS=(parley.log:60 nginx-error.log:20)

fail() {
    lib_fail "$*"
    exit 1
}

testdb_start
secret=$(random_hex 48)
testdb_name parley_sweeper
db=$TESTDB_NAME

# write_conf FILE SETTINGS...: parley's config, one setting per argument.
write_conf() {
    local file=$1
    shift
    (
        umask 077
        {
            echo "# Written by tests/sweeper.sh"
            echo "listen = unix:$PARLEY_TMP/parley.sock"
            echo "socket_mode = 0666"
            echo "workers = 2"
            echo "mongodb_uri = $TESTDB_URI"
            echo "mongodb_database = $db"
            echo "jwt_secret = $secret"
            echo "log_level = info"
            printf '%s\n' "$@"
        } >"$file"
    )
}

conf=$PARLEY_TMP/parley.conf
write_conf "$conf" "cleanup_interval = 1" "idle_timeout = 3" \
    "max_inactive_time = 3" "max_session_age = 0"
parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
port=$(free_port)
nginx_conf_write "$PARLEY_TMP" "$port" "$PARLEY_SOCKET"
nginx_test "$PARLEY_TMP"
nginx_start "$PARLEY_TMP"
url=http://127.0.0.1:$port
wait_http "$url/healthz" 15

user=sweeper-$(random_hex 8)
token=$("$bin" token -c "$conf" --sub "$user")
admin_token=$("$bin" token -c "$conf" --sub "admin-$(random_hex 8)" --admin)

# call METHOD PATH [BODY] [TOKEN]: sets STATUS and BODY.
call() {
    local out args=(-s -m 10 -o - -w '\n%{http_code}' -X "$1"
        -H "Authorization: Bearer ${4:-$token}")
    if [ -n "${3:-}" ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$3")
    fi
    out=$(curl "${args[@]}" "$url$2") || fail "curl $1 $2 failed"
    STATUS=${out##*$'\n'}
    BODY=${out%$'\n'*}
}

# expect METHOD PATH BODY STATUS: call, and fail unless it answered STATUS.
expect() {
    call "$1" "$2" "$3"
    [ "$STATUS" = "$4" ] || fail "$1 $2 answered $STATUS, not $4: $BODY"
}

# field NAME: the first "NAME": number or string in BODY (the fields read
# here occur once, at the top level).  No JSON tool: a node per call would
# be too slow for the polling loops on a busy machine.
field() {
    printf '%s' "$BODY" | grep -oE "\"$1\":(\"[^\"]*\"|-?[0-9.]+)" | head -n 1 |
        sed -e "s/^\"$1\"://" -e 's/^"//' -e 's/"$//'
}

S=/api/agent-sessions

# --- 1. the supervisor's sweeps ---------------------------------------------

expect POST "$S" '{"session_id":"idle"}' 201
expect POST "$S/idle/messages" \
    '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}' 201
expect PUT "$S/idle/memory/note" '{"x":1}' 200
# A conversation made through /v1 is a session like the others: swept too.
expect POST /v1/conversations \
    '{"items":[{"role":"user","content":"c"},{"type":"reasoning","id":"rs_1"}]}' 200
conv=$(field id)
left_alone=$SECONDS
expect POST "$S" '{"session_id":"busy"}' 201

# Poll the idle one (a GET is not activity) while keeping the busy one busy.
expired_at=
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
    expect POST "$S/busy/messages" '{"role":"user","content":"still here"}' 201
    call GET "$S/idle"
    if [ "$STATUS" = 200 ] && [ "$(field status)" = expired ]; then
        expired_at=$SECONDS
        [ "$(field version)" = 2 ] || fail "expired session has version $(field version), not 2"
        [ "$(field message_count)" = 2 ] || fail "expiring lost messages: $BODY"
        break
    fi
    [ "$STATUS" = 200 ] || fail "GET idle answered $STATUS before it expired"
    sleep 0.3
done
[ -n "$expired_at" ] || fail "the idle session did not expire within 20 s"
[ $((expired_at - left_alone)) -ge 3 ] || fail "expired after less than idle_timeout"
call GET "$S/busy"
[ "$(field status)" = active ] || fail "a session in use was swept: $BODY"
call GET "$S/$conv"
[ "$STATUS" = 200 ] && [ "$(field status)" = expired ] ||
    fail "the /v1 conversation left alone did not expire with the idle session: $BODY"

deleted=
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
    expect POST "$S/busy/messages" '{"role":"user","content":"still here"}' 201
    call GET "$S/idle"
    if [ "$STATUS" = 404 ]; then
        deleted=yes
        break
    fi
    sleep 0.3
done
[ -n "$deleted" ] || fail "the expired session was not deleted within 20 s"
deadline=$((SECONDS + 10))
until call GET "/v1/conversations/$conv" && [ "$STATUS" = 404 ]; do
    [ "$STATUS" = 200 ] || fail "GET /v1/conversations/$conv answered $STATUS"
    [ "$SECONDS" -lt "$deadline" ] || fail "the /v1 conversation was not deleted"
    sleep 0.3
done
call GET "$S/busy"
[ "$(field status)" = active ] || fail "a session in use was swept: $BODY"

# Its messages and memory went with it: erasing the user finds only the
# busy session's.
call GET "$S/busy"
busy_messages=$(field message_count)
call DELETE "/api/admin/users/$user" "" "$admin_token"
[ "$STATUS" = 200 ] || fail "erasure answered $STATUS: $BODY"
want="{\"deleted_sessions\":1,\"deleted_messages\":$busy_messages,\"deleted_memory\":0}"
[ "$BODY" = "$want" ] || fail "erasure found leftovers: $BODY (want $want)"

# The sweeper child (not a request worker) logged what it did: over its
# passes, two sessions expired and then deleted with their 2 messages each
# (the idle session and the conversation, in one pass or two).
sweeps=$(grep -oE '"req":"sweeper","msg":"sweep: expired [0-9]+, deleted [0-9]+ sessions and [0-9]+ messages' \
    "$PARLEY_TMP/parley.log" |
    awk '{ e += $4; d += $6; m += $9 } END { printf "%d %d %d", e, d, m }' FS='[ ,]+')
[ "$sweeps" = "2 2 4" ] ||
    fail "the sweeps logged expired, deleted sessions, deleted messages: $sweeps, not 2 2 4"
lib_check_children || fail "a server exited"

# --- 2. parley cleanup, twice at once -----------------------------------------

# The server stops sweeping (cleanup_interval = 0) so that only the two
# command-line runs below touch the data, which starts afresh in a database
# of its own.
lib_stop "$NGINX_PID" "$PARLEY_PID"
testdb_name parley_sweeper
db=$TESTDB_NAME
write_conf "$conf" "cleanup_interval = 0"
parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
nginx_start "$PARLEY_TMP"
wait_http "$url/healthz" 15

n=24
for i in $(seq 1 "$n"); do
    expect POST "$S" "{\"session_id\":\"s$i\"}" 201
    expect POST "$S/s$i/messages" \
        '{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"user","content":"c"}]}' 201
    # every fourth stays active; the others are eligible once they are 1 s
    # old
    if [ $((i % 4)) -ne 0 ]; then
        expect PUT "$S/s$i/deactivate" "" 200
    fi
done
eligible=$((n - n / 4))
sleep 1.2

cli_conf() {
    write_conf "$1" "cleanup_interval = 0" "idle_timeout = 0" \
        "max_inactive_time = 1" "max_session_age = 0" "sweeper_lock_file = $2"
}
cli_conf "$PARLEY_TMP/a.conf" "$PARLEY_TMP/a.lock"
cli_conf "$PARLEY_TMP/b.conf" "$PARLEY_TMP/b.lock"

# A held lock: exit 75, nothing on stdout, nothing done.
flock -n "$PARLEY_TMP/a.lock" -c "
    rc=0; '$bin' cleanup -c '$PARLEY_TMP/a.conf' >'$PARLEY_TMP/busy.out' 2>'$PARLEY_TMP/busy.err' || rc=\$?
    echo \$rc >'$PARLEY_TMP/busy.rc'"
[ "$(cat "$PARLEY_TMP/busy.rc")" = 75 ] || fail "cleanup with its lock held exited $(cat "$PARLEY_TMP/busy.rc"), not 75"
[ ! -s "$PARLEY_TMP/busy.out" ] || fail "a refused cleanup printed $(cat "$PARLEY_TMP/busy.out")"
call GET "$S?limit=1"
[ "$(field total)" = "$n" ] || fail "a refused cleanup deleted sessions"

"$bin" cleanup -c "$PARLEY_TMP/a.conf" >"$PARLEY_TMP/a.out" 2>"$PARLEY_TMP/a.err" &
pid_a=$!
"$bin" cleanup -c "$PARLEY_TMP/b.conf" >"$PARLEY_TMP/b.out" 2>"$PARLEY_TMP/b.err" &
pid_b=$!
rc_a=0 rc_b=0
wait "$pid_a" || rc_a=$?
wait "$pid_b" || rc_b=$?
[ "$rc_a" = 0 ] && [ "$rc_b" = 0 ] ||
    fail "cleanup runs exited $rc_a and $rc_b: $(cat "$PARLEY_TMP/a.err" "$PARLEY_TMP/b.err")"

count() { # count FILE KEY
    grep -o "\"$2\":[0-9]*" "$1" | cut -d: -f2
}
for f in a b; do
    grep -qx '{"expired":[0-9]*,"deleted_sessions":[0-9]*,"deleted_messages":[0-9]*}' \
        "$PARLEY_TMP/$f.out" || fail "cleanup $f printed: $(cat "$PARLEY_TMP/$f.out")"
done
sessions=$(($(count "$PARLEY_TMP/a.out" deleted_sessions) + $(count "$PARLEY_TMP/b.out" deleted_sessions)))
messages=$(($(count "$PARLEY_TMP/a.out" deleted_messages) + $(count "$PARLEY_TMP/b.out" deleted_messages)))
lib_log "concurrent cleanups: a $(cat "$PARLEY_TMP/a.out"), b $(cat "$PARLEY_TMP/b.out")"
[ "$sessions" = "$eligible" ] || fail "the two runs deleted $sessions sessions together, not $eligible"
[ "$messages" = $((eligible * 3)) ] || fail "the two runs deleted $messages messages together, not $((eligible * 3))"

# What is left is exactly the active ones, with their messages.
call GET "$S?limit=1"
[ "$(field total)" = $((n / 4)) ] || fail "$(field total) sessions left, not $((n / 4))"
call DELETE "/api/admin/users/$user" "" "$admin_token"
want="{\"deleted_sessions\":$((n / 4)),\"deleted_messages\":$((n / 4 * 3)),\"deleted_memory\":0}"
[ "$BODY" = "$want" ] || fail "after the cleanups the user held $BODY (want $want)"

# A third run finds nothing.
"$bin" cleanup -c "$PARLEY_TMP/a.conf" >"$PARLEY_TMP/c.out" 2>/dev/null ||
    fail "a third cleanup failed"
[ "$(cat "$PARLEY_TMP/c.out")" = '{"expired":0,"deleted_sessions":0,"deleted_messages":0}' ] ||
    fail "a third cleanup did something: $(cat "$PARLEY_TMP/c.out")"
lib_check_children || fail "a server exited"
lib_log "ok"
