#!/usr/bin/env bash
# tests/conversation.sh — the conversation endpoint with a model behind it,
# end to end, run by `make check`.
#
# Starts, on loopback, each in one temp dir: the database (the dev DB, or a
# real replica set with PARLEY_TEST_MONGOD), the scripted model server
# (tests/model_server.mjs), parley with agent_backend = openai pointed at
# it (an API key file and an extra-headers file, a conversation pool of 8
# workers next to 4 main ones), and nginx with the repo's
# nginx/parley-http.conf and nginx/parley.conf, which send the
# conversation route to the conversation pool.  Then runs
# tests/check_conversation (see there for the cases) with
#
#   PARLEY_E2E_URL, _SECRET, _BIN, _CONFIG, _DEVDB_URI   as check_e2e has them
#   PARLEY_MODEL_URL   the model server's control URL (http://127.0.0.1:PORT)
#   PARLEY_LLM_KEY     the API key parley sends, which no answer and no log
#                      line may hold
#
# Afterwards: no server died; nginx sent every conversation to the
# conversation pool and every other request to the main one (which worker
# holds which socket, and which served what); the supervisor runs both
# pools: a conversation worker killed is replaced in its pool, SIGHUP
# replaces both pools, and SIGTERM drains a turn in flight to its end
# although it outlasts shutdown_timeout, the pool's socket gone at once;
# parley's log holds neither the key, nor the JWT secret, nor a token, and
# parley logged both pools.  About 2 minutes.
#
# node and nginx missing is a failure (scripts/setup installs them).  make
# check sets top_srcdir, top_builddir, NGINX and NODE.  PARLEY_KEEP_TMP=1
# keeps the temp dir.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init conversation
lib_require_tools
check=$top_builddir/tests/check_conversation
test_need_built "$bin" "$check"
TEST_LOGS=(parley.log:80 nginx-error.log:30 model.log:30)

model_ready() {
    grep -q '^model_server ready http' "$1" && return 0
    lib_alive "$2" || return 2
    return 1
}

"$NODE" "$top_srcdir/tests/model_server.mjs" --port 0 \
    </dev/null >"$PARLEY_TMP/model.out" 2>>"$PARLEY_TMP/model.log" &
LIB_PIDS+=("$!")
LIB_NAMES+=(model)
lib_poll 10 model_ready "$PARLEY_TMP/model.out" "$!" ||
    lib_fail "the model server did not become ready within 10 s" || exit 1
model_url=$(sed -n 's/^model_server ready //p' "$PARLEY_TMP/model.out" | head -n 1)

testdb_start
testdb_name parley_conv

secret=$(random_hex 48)
key=sk-test-$(random_hex 32)
conf=$PARLEY_TMP/parley.conf
(
    umask 077
    printf '%s\n' "$key" >"$PARLEY_TMP/llm.key"
    printf '# extra headers for the model server\nX-Test-Header: from-headers-file\n' \
        >"$PARLEY_TMP/llm.headers"
    cat >"$conf" <<EOF
# Written by tests/conversation.sh
listen = unix:$PARLEY_TMP/parley.sock
socket_mode = 0666
workers = 4
conversation_workers = 8
# One user keeps every conversation worker busy on purpose (the pools
# under load): no per-user limit below the pool here (tests/limits.sh).
user_max_inflight = 8
conversation_deadline_ms = 12000
# Shorter than a turn: a drain must still wait for the conversation pool.
shutdown_timeout = 2
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
log_level = info
agent_backend = openai
llm_base_url = $model_url/v1
llm_model = test-model
llm_api_key_file = $PARLEY_TMP/llm.key
llm_headers_file = $PARLEY_TMP/llm.headers
llm_timeout_ms = 8000
llm_max_output_tokens = 256
llm_context_messages = 6
llm_context_tokens = 40
llm_retry_max_attempts = 3
EOF
)
config_check "$conf"
if grep -qF -- "$key" "$PARLEY_TMP/check-config.out"; then
    lib_fail "check-config shows the model's API key"
    exit 1
fi

parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
conv_socket=$(conversation_socket "$PARLEY_SOCKET")
lib_poll 15 unix_accepts "$conv_socket" "$PARLEY_PID" ||
    lib_fail "the conversation pool does not accept on $conv_socket" || exit 1

nginx_serve "$PARLEY_SOCKET"

rc=0
PARLEY_E2E_URL=$url \
    PARLEY_E2E_SECRET=$secret \
    PARLEY_E2E_BIN=$bin \
    PARLEY_E2E_CONFIG=$conf \
    PARLEY_E2E_DEVDB_URI=$TESTDB_URI \
    PARLEY_MODEL_URL=$model_url \
    PARLEY_LLM_KEY=$key \
    "$check" || rc=$?

if [ "$rc" -eq 0 ] && ! lib_check_children; then
    lib_fail "a server exited during the suite"
    rc=1
fi
# nginx sent every conversation to the conversation pool, every other
# request to the main one.
if [ "$rc" -eq 0 ] &&
    ! pools_served "$PARLEY_TMP/parley.log" "$PARLEY_PID" "$PARLEY_SOCKET" "$conv_socket"; then
    lib_fail "a request was served by the wrong pool"
    rc=1
fi
# --- the pools' lifecycle ------------------------------------------------------
token=$("$bin" token --sub pools -c "$conf")
# model_script JSON: replaces the model server's script.
model_script() {
    curl -sSf -o /dev/null -X POST "$model_url/_reset" &&
        curl -sSf -o /dev/null -H 'Content-Type: application/json' -d "$1" \
            "$model_url/_script"
}
# conv_turn OUT CONTENT: one turn in session "pools"; prints the status.
conv_turn() {
    curl -s -o "$1" -w '%{http_code}' -m 30 -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d "{\"session_id\":\"pools\",\"messages\":[{\"role\":\"user\",\"content\":\"$2\"}]}" \
        "$url/api/agent-sessions/conversation" || true
}
# pool_size SOCKET N [NOT_PID]: the pool on SOCKET has N workers (none of
# them NOT_PID).
pool_size() {
    local pids
    pids=$(pool_pids "$PARLEY_PID" "$1")
    [ "$(grep -c . <<<"$pids")" = "$2" ] && ! grep -qx "${3:-none}" <<<"$pids"
}
if [ "$rc" -eq 0 ]; then
    model_script '{"default":{"content":"ok"}}'
    # respawn: a conversation worker killed is replaced in its own pool
    victim=$(pool_pids "$PARLEY_PID" "$conv_socket" | sed -n 1p)
    kill -KILL "$victim"
    if lib_poll 10 pool_size "$conv_socket" 8 "$victim" &&
        pool_size "$PARLEY_SOCKET" 4 &&
        [ "$(conv_turn "$PARLEY_TMP/t1.json" respawned)" = 200 ]; then
        lib_log "ok: conversation worker $victim killed, replaced in its pool"
    else
        lib_fail "the conversation pool did not replace worker $victim"
        rc=1
    fi
fi
if [ "$rc" -eq 0 ]; then
    # reload: both pools replaced by a new generation
    old=$( (pool_pids "$PARLEY_PID" "$PARLEY_SOCKET"; pool_pids "$PARLEY_PID" "$conv_socket") | sort)
    kill -HUP "$PARLEY_PID"
    new_generation() {
        local now
        now=$( (pool_pids "$PARLEY_PID" "$PARLEY_SOCKET"; pool_pids "$PARLEY_PID" "$conv_socket") | sort)
        [ -z "$(comm -12 <(echo "$old") <(echo "$now"))" ] &&
            pool_size "$PARLEY_SOCKET" 4 && pool_size "$conv_socket" 8
    }
    if lib_poll 20 new_generation &&
        [ "$(conv_turn "$PARLEY_TMP/t2.json" reloaded)" = 200 ]; then
        lib_log "ok: SIGHUP replaced both pools"
    else
        lib_fail "SIGHUP did not replace both pools"
        rc=1
    fi
fi
if [ "$rc" -eq 0 ]; then
    # drain: a turn of 4 s in flight ends with its answer although
    # shutdown_timeout is 2 s; the pool's socket goes at once
    model_script '{"default":{"content":"drained","delay_ms":4000}}'
    conv_turn "$PARLEY_TMP/t3.json" draining >"$PARLEY_TMP/t3.status" &
    turn_pid=$!
    sleep 1
    kill -TERM "$PARLEY_PID"
    gone_at_once=no
    lib_poll 2 test ! -S "$conv_socket" && gone_at_once=yes
    wait "$turn_pid" || true
    if [ "$(cat "$PARLEY_TMP/t3.status")" = 200 ] &&
        grep -q '"response":"drained"' "$PARLEY_TMP/t3.json" &&
        [ "$gone_at_once" = yes ] && lib_poll 15 lib_all_gone "$PARLEY_PID"; then
        lib_log "ok: SIGTERM drained the conversation in flight, then parley exited"
    else
        lib_fail "drain: turn $(cat "$PARLEY_TMP/t3.status") $(head -c 200 "$PARLEY_TMP/t3.json"), socket removed at once: $gone_at_once"
        rc=1
    fi
fi

if [ "$rc" -eq 0 ]; then
    for bad in "$key" "$secret" eyJ; do
        if grep -qF -- "$bad" "$PARLEY_TMP/parley.log"; then
            lib_fail "parley.log holds the API key, the secret or a token (${bad:0:12}...)"
            rc=1
        fi
    done
    grep -q '"conversations on unix:.*with 8 workers (agent backend openai)"' \
        "$PARLEY_TMP/parley.log" ||
        { lib_fail "parley did not log its conversation pool"; rc=1; }
fi
exit "$rc"
