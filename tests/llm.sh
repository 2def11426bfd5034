#!/usr/bin/env bash
# tests/llm.sh — the model client (src/llm.c) against the scripted model
# server (tests/model_server.mjs) over real sockets, run by `make check`.
#
# Starts two model servers on free loopback ports: a plain one and one
# behind a self-signed certificate made here with openssl (given a default
# reply through its control endpoint), then runs tests/check_llm against
# them (see tests/check_llm.c for the cases), then runs it again in one
# process under valgrind: no invalid access, no use of uninitialised
# memory, no definite leak (skipped under PARLEY_TEST_QUICK=1, as make
# distcheck sets).  About 20 s, and about a minute more under valgrind.
#
# node, openssl, curl and valgrind missing is a failure: scripts/setup
# installs them.  make check sets top_srcdir, top_builddir and NODE.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init llm
bin=$top_builddir/tests/check_llm
[ -n "$NODE" ] && command -v "$NODE" >/dev/null || lib_fail "node not found" || exit 1
test_need_tools openssl curl
quick=${PARLEY_TEST_QUICK:-0}
[ "$quick" = 1 ] || test_need_tools valgrind
test_need_built "$bin"
TEST_LOGS=(model.log:30 model-tls.log:30)
TEST_PARLEY_LOGS=()

model_ready() {
    grep -q '^model_server ready http' "$1" && return 0
    lib_alive "$2" || return 2
    return 1
}

# model_start NAME [ARGS...]: starts tests/model_server.mjs on a free port
# and sets MODEL_URL to its URL (stdout carries only the ready line).
model_start() {
    local name=$1 out=$PARLEY_TMP/$1.out
    shift
    "$NODE" "$top_srcdir/tests/model_server.mjs" --port 0 "$@" \
        </dev/null >"$out" 2>>"$PARLEY_TMP/$name.log" &
    LIB_PIDS+=("$!")
    LIB_NAMES+=("$name")
    lib_poll 10 model_ready "$out" "$!" ||
        lib_fail "$name did not become ready within 10 s" || return 1
    MODEL_URL=$(sed -n 's/^model_server ready //p' "$out" | head -n 1)
}

model_start model
PARLEY_MODEL_URL=$MODEL_URL

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$PARLEY_TMP/tls.key" -out "$PARLEY_TMP/tls.crt" 2>"$PARLEY_TMP/openssl.log" ||
    { lib_tail "$PARLEY_TMP/openssl.log"; lib_fail "openssl req failed"; exit 1; }
model_start model-tls --tls-cert "$PARLEY_TMP/tls.crt" --tls-key "$PARLEY_TMP/tls.key"
PARLEY_MODEL_TLS_URL=$MODEL_URL
curl -sSf --noproxy '*' --cacert "$PARLEY_TMP/tls.crt" -o /dev/null \
    -H 'Content-Type: application/json' \
    -d '{"default": {"content": "over TLS"}}' "$PARLEY_MODEL_TLS_URL/_script" ||
    lib_fail "could not script the TLS model server" || exit 1

mkdir -p "$PARLEY_TMP/files"
export PARLEY_MODEL_URL PARLEY_MODEL_TLS_URL
export PARLEY_MODEL_CA=$PARLEY_TMP/tls.crt
export PARLEY_TEST_TMP=$PARLEY_TMP/files

"$bin"
if [ "$quick" = 1 ]; then
    echo "llm: valgrind run skipped (PARLEY_TEST_QUICK=1)"
    exit 0
fi
CK_FORK=no CK_TIMEOUT_MULTIPLIER=20 \
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
    --error-exitcode=1 "$bin" >"$PARLEY_TMP/valgrind.log" 2>&1 || {
    tail -n 100 "$PARLEY_TMP/valgrind.log"
    lib_fail "check_llm under valgrind failed"
    exit 1
}
grep -E "^[0-9]+%: Checks" "$PARLEY_TMP/valgrind.log" | sed 's/^/valgrind: /'
