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
# Afterwards: no server died, parley's log holds neither the key, nor the
# JWT secret, nor a token, and parley logged both pools.  About 90 s.
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
conversation_deadline_ms = 12000
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
"$bin" check-config -c "$conf" >"$PARLEY_TMP/check-config.out" 2>&1 || {
    cat "$PARLEY_TMP/check-config.out" >&2
    lib_fail "parley check-config rejected $conf"
    exit 1
}
if grep -qF -- "$key" "$PARLEY_TMP/check-config.out"; then
    lib_fail "check-config shows the model's API key"
    exit 1
fi

parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
conv_socket=$(conversation_socket "$PARLEY_SOCKET")
lib_poll 15 unix_accepts "$conv_socket" "$PARLEY_PID" ||
    lib_fail "the conversation pool does not accept on $conv_socket" || exit 1

port=$(free_port)
nginx_conf_write "$PARLEY_TMP" "$port" "$PARLEY_SOCKET"
nginx_test "$PARLEY_TMP"
nginx_start "$PARLEY_TMP"
url=http://127.0.0.1:$port
wait_http "$url/healthz" 15

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
