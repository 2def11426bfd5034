#!/usr/bin/env bash
# tests/openai.sh — parley driven by real JavaScript clients, run by
# `make check`.
#
# Two npm projects, each with its own package.json and package-lock.json:
#
#   tests/openai/   the official `openai` client and `@openai/agents`
#                   (OpenAIConversationsSession), unchanged, against /v1
#   clients/js/     parley's own Agents SDK Session class (over /api) and
#                   its tests
#
# Starts the real pieces on loopback as tests/e2e.sh does (the database:
# the dev DB, or a replica set with PARLEY_TEST_MONGOD; parley on a unix
# socket, nginx with the repo's snippets on a free port),
# then runs both projects' node:test files against http://127.0.0.1:PORT
# with
#
#   PARLEY_URL     base URL (nginx), without /v1 or /api
#   PARLEY_BIN     src/parley, which the tests run as `parley token` to mint
#                  a token for each user they need
#   PARLEY_CONFIG  parley's config file (the token's secret is in it)
#
# Both projects are installed with `npm ci` from their lock files.  An
# install is reused while package.json and package-lock.json are unchanged
# (a stamp in node_modules records them), so a second run needs no network;
# npm's own cache is preferred over the registry.  With a read-only source
# tree (make distcheck), or PARLEY_NPM_HOME set, the install goes under
# PARLEY_NPM_HOME (default ~/.cache/parley/npm), one directory per lock
# file, and the tests run from a copy in the temp dir.
#
# Runs every test file of both projects, then exits 0 when all passed, 1
# otherwise (automake's convention; node, npm and nginx missing is a
# failure).  On failure the ends of parley's, nginx's and the database's
# logs are printed.  PARLEY_KEEP_TMP=1 keeps the temp dir; PARLEY_OPENAI_TESTS
# may name test files (paths relative to the source tree) to run only those.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init openai --keep PARLEY_NPM_HOME --keep PARLEY_OPENAI_TESTS
lib_require_tools
test_need_built "$bin"

# --- the npm projects ----------------------------------------------------------

# npm_project REL: installs the locked dependencies of the npm project at
# $top_srcdir/REL (unless the install there matches its lock file already)
# and sets NPM_DIR to the directory to run its tests in: the project itself
# or, when the source tree is read-only or PARLEY_NPM_HOME is set, a copy of
# it in the temp dir whose node_modules links to an install under
# PARLEY_NPM_HOME, one per lock file.
npm_project() {
    local rel=$1 src=$top_srcdir/$1 name=${1//\//_} home sum stamp
    [ -f "$src/package.json" ] && [ -f "$src/package-lock.json" ] ||
        lib_fail "$src: no package.json and package-lock.json" || return 1
    sum=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
    if [ -w "$src" ] && [ -z "${PARLEY_NPM_HOME:-}" ]; then
        home=$src
    else
        home=${PARLEY_NPM_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/parley/npm}/$name-${sum:0:16}
        mkdir -p "$home"
        # The directory is named by these two files' contents.
        if [ ! -f "$home/package-lock.json" ]; then
            cp "$src/package.json" "$src/package-lock.json" "$home/"
            chmod u+w "$home/package.json" "$home/package-lock.json"
        fi
    fi
    stamp=$home/node_modules/.parley-npm-lock
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        lib_log "$rel: node_modules matches the lock file"
    else
        command -v npm >/dev/null || lib_fail "npm not found (scripts/setup installs it)" || return 1
        lib_log "$rel: npm ci in $home"
        # engine-strict off: openai 7.x says node >= 22 and runs on Debian's
        # 20 (tests/openai/README.md says why these versions).
        (cd "$home" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline \
            --engine-strict=false --loglevel=error) >"$PARLEY_TMP/npm-$name.log" 2>&1 || {
            lib_tail "$PARLEY_TMP/npm-$name.log"
            lib_fail "$rel: npm ci failed"
            return 1
        }
        printf '%s\n' "$sum" >"$stamp"
    fi
    NPM_DIR=$src
    if [ "$home" != "$src" ]; then
        NPM_DIR=$PARLEY_TMP/$name
        mkdir -p "$NPM_DIR"
        (cd "$src" && tar cf - --exclude=./node_modules .) | (cd "$NPM_DIR" && tar xf - --no-same-owner)
        chmod -R u+w "$NPM_DIR"
        ln -s "$home/node_modules" "$NPM_DIR/node_modules"
    fi
}

npm_project tests/openai
sdk_dir=$NPM_DIR
npm_project clients/js
native_dir=$NPM_DIR

# --- the servers ---------------------------------------------------------------

testdb_start
testdb_name parley_openai

secret=$(random_hex 48)
conf=$PARLEY_TMP/parley.conf
(
    umask 077
    cat >"$conf" <<EOF
# Written by tests/openai.sh
listen = unix:$PARLEY_TMP/parley.sock
socket_mode = 0666
workers = 4
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
log_level = info
EOF
)
config_check "$conf"
parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"

nginx_serve "$PARLEY_SOCKET"

# --- the tests -----------------------------------------------------------------

# run_tests DIR FILE...: node's test runner on FILEs (relative to DIR), in
# DIR; one file at a time, since several count requests or time them.
run_tests() {
    local dir=$1
    shift
    [ "$#" -gt 0 ] || return 0
    (cd "$dir" && PARLEY_URL=$url PARLEY_BIN=$bin PARLEY_CONFIG=$conf \
        "$NODE" --test --test-concurrency=1 --test-reporter=spec "$@")
}

# tests_in REL DIR: the test files of the project at REL (as DIR sees
# them), or those of PARLEY_OPENAI_TESTS that are in it.
tests_in() {
    local rel=$1 f
    if [ -n "${PARLEY_OPENAI_TESTS:-}" ]; then
        for f in $PARLEY_OPENAI_TESTS; do
            case $f in "$rel"/*) printf '%s\n' "${f#"$rel"/}" ;; esac
        done
    else
        (cd "$top_srcdir/$rel" && find . -path ./node_modules -prune -o \
            -name '*.test.mjs' -print | sed 's|^\./||' | sort)
    fi
}

rc=0
mapfile -t sdk_tests < <(tests_in tests/openai)
mapfile -t native_tests < <(tests_in clients/js)
lib_log "tests/openai: ${#sdk_tests[@]} files; clients/js: ${#native_tests[@]} files"
echo "== tests/openai (the official openai and @openai/agents clients, /v1)"
run_tests "$sdk_dir" "${sdk_tests[@]}" || rc=1
echo "== clients/js (parley's native Session class, /api)"
run_tests "$native_dir" "${native_tests[@]}" || rc=1

if ! lib_check_children; then
    lib_fail "a server exited during the tests"
    rc=1
fi
# Logs never hold a token or the secret ("eyJ" starts every JWT).
for bad in "$secret" eyJ; do
    if grep -qF -- "$bad" "$PARLEY_TMP/parley.log"; then
        lib_fail "parley.log holds the secret or a token (${bad:0:12}...)"
        rc=1
    fi
done
exit "$rc"
