#!/usr/bin/env bash
# tests/apache.sh — the sessions and messages end-to-end suites through
# Debian's apache2, both ways the repo ships, run by `make check`:
#
#   proxy  apache/parley-proxy-fcgi.conf: mod_proxy_fcgi in front of
#          `parley serve` on a unix socket;
#   fcgid  apache/parley-fcgid.conf: mod_fcgid starting apache/parley.fcgi,
#          which runs parley on the socket it inherits as fd 0.
#
# Each way runs its own apache2 in the foreground on a free loopback port,
# from a whole httpd.conf written into the temp dir that loads the modules it
# needs from /usr/lib/apache2/modules and Includes the shipped file unchanged
# (only `Define`s point it at the temp dir); the system's /etc/apache2 and
# port 80 are never touched.  The database is scripts/lib.sh's (testdb_start:
# the dev DB, or a replica set with PARLEY_TEST_MONGOD).  Against each:
#
#   1. Apache's own answers, with curl: JSON error bodies with a JSON
#      Content-Type and one X-Request-Id for 400 (header line over 16 KiB),
#      414 (request line over 16 KiB), 413 (Content-Length over 1 MiB, and a
#      chunked body over it: nothing stored), 404 (paths not passed on,
#      /metrics among them); an 8 KiB bearer token reaches parley; the
#      client's X-Request-Id is replaced by Apache's, which parley logs;
#   2. tests/check_e2e's suites "e2e" (sessions), "e2e-messages" and
#      "e2e-openai" (/v1, whose Apache pages are OpenAI's shape), as
#      tests/e2e.sh runs them through nginx, less the cases tagged "nginx"
#      (CK_EXCLUDE_TAGS=nginx: nginx's rate limit; Apache has none);
#   3. proxy: a backend that never answers gives the JSON 504 (a test-only
#      ProxyPass with timeout=1, using the shipped error pages), and parley
#      stopped gives the JSON 503 with Retry-After;
#      fcgid: every process was started with workers = 1 on fd 0; idle ones
#      are stopped by mod_fcgid (SIGTERM, with FcgidIdleTimeout lowered
#      here) and drain and exit cleanly, and the next request starts a new
#      one.
#   4. parley's log lines never hold the secret, a token or message content.
#
# Exit status for automake: 0 pass, 1 fail, 77 skip.  PARLEY_TEST_QUICK=1
# (make distcheck) skips; otherwise apache2, mod_fcgid, node or curl missing
# is a failure (scripts/setup installs them).  PARLEY_KEEP_TMP=1 keeps the
# temp dir; APACHE2 may name the apache2 binary.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init apache --slow
modules=/usr/lib/apache2/modules
APACHE2=${APACHE2:-$(PATH="$PATH:/usr/sbin:/sbin" command -v apache2 || true)}
test_need_built "$bin" "$check"
[ -n "$NODE" ] || lib_fail "node not found (set NODE=/path/to/node)" || exit 1
test_need_tools curl
[ -n "$APACHE2" ] && [ -x "$APACHE2" ] ||
    lib_fail "apache2 not found (scripts/setup installs Debian's apache2)" || exit 1
for m in mpm_event authz_core headers unique_id alias setenvif proxy proxy_fcgi fcgid; do
    [ -f "$modules/mod_$m.so" ] ||
        lib_fail "$modules/mod_$m.so missing (scripts/setup installs apache2 and libapache2-mod-fcgid)" ||
        exit 1
done
# Where a failure's logs are: set per part.  mod_fcgid's parley logs to
# Apache's error log.
TEST_LOGS=()
TEST_PARLEY_LOGS=(parley.log fcgid/apache-error.log)

failures=0
fail() {
    lib_log "FAIL: $*"
    failures=$((failures + 1))
}
pass() {
    printf 'apache: ok: %s\n' "$*"
}

# stop_one PID: SIGTERM to a process started here, then waits up to 15 s
# for it (SIGKILL after that, and returns 1).
stop_one() {
    local rc=0
    kill -TERM "$1" 2>/dev/null || true
    if ! lib_poll 15 lib_all_gone "$1"; then
        kill -KILL "$1" 2>/dev/null || true
        rc=1
    fi
    wait "$1" 2>/dev/null || true
    return "$rc"
}

# exe_pids PATH: the processes running the binary PATH.
exe_pids() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/exe" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
    done
    return 0
}

# Apache's children run as www-data when this runs as root; the parley that
# mod_fcgid starts runs as that user too, so it gets its own readable copies
# of the binary and the config (the build tree may be under a private home).
run_user=
if [ "$(id -u)" -eq 0 ]; then
    run_user=www-data
    id "$run_user" >/dev/null 2>&1 || run_user=nobody
fi

testdb_start

secret=$(random_hex 48)
testdb_name parley_apache
database=$TESTDB_NAME
# write_conf FILE LISTEN: parley's config for this run.
write_conf() {
    (
        umask 077
        cat >"$1" <<EOF
# Written by tests/apache.sh
listen = $2
socket_mode = 0666
workers = 4
# check_e2e sends one user's requests at once on purpose (races).
user_max_inflight = 4
user_max_bulk = 4
mongodb_uri = $TESTDB_URI
mongodb_database = $database
jwt_secret = $secret
log_level = info
EOF
    )
}

# apache_conf_write DIR PORT MODE: DIR/httpd.conf, a whole Apache config on
# 127.0.0.1:PORT whose one virtual host Includes the shipped file for MODE
# (proxy or fcgid); the caller sets `defines` (Define lines before the
# virtual host), `pre` and `extra` (lines inside it, before and after the
# Include).
apache_conf_write() {
    local dir=$1 port=$2 mode=$3 m user_lines=
    mkdir -p "$dir/htdocs" "$dir/run"
    [ -z "$run_user" ] || user_lines="User $run_user
Group $(id -gn "$run_user")"
    {
        cat <<EOF
# Written by tests/apache.sh; loopback only.
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$dir/run/httpd.pid"
DefaultRuntimeDir "$dir/run"
Mutex file:$dir/run default
ErrorLog "$dir/apache-error.log"
LogLevel warn
DocumentRoot "$dir/htdocs"
$user_lines
EOF
        for m in mpm_event authz_core headers unique_id alias setenvif; do
            echo "LoadModule ${m}_module $modules/mod_$m.so"
        done
        case $mode in
        proxy)
            echo "LoadModule proxy_module $modules/mod_proxy.so"
            echo "LoadModule proxy_fcgi_module $modules/mod_proxy_fcgi.so"
            ;;
        fcgid)
            echo "LoadModule fcgid_module $modules/mod_fcgid.so"
            echo "FcgidIPCDir \"$dir/run/fcgid\""
            echo "FcgidProcessTableFile \"$dir/run/fcgid-shm\""
            ;;
        esac
        printf '%s\n' "$defines"
        echo "<VirtualHost 127.0.0.1:$port>"
        printf '%s\n' "$pre"
        echo "    Include \"$top_srcdir/apache/parley-$([ "$mode" = proxy ] && echo proxy-fcgi || echo fcgid).conf\""
        printf '%s\n' "$extra"
        echo "</VirtualHost>"
    } >"$dir/httpd.conf"
}

# apache_start DIR PORT: configtest, then apache2 in the foreground (in the
# background here); waits until PORT accepts.  Sets APACHE_PID.
apache_start() {
    local dir=$1 port=$2
    if ! "$APACHE2" -t -f "$dir/httpd.conf" >"$dir/configtest.out" 2>&1; then
        cat "$dir/configtest.out" >&2
        lib_fail "apache2 -t rejected $dir/httpd.conf"
        return 1
    fi
    if tcp_accepts 127.0.0.1 "$port"; then
        lib_fail "127.0.0.1:$port is already in use"
        return 1
    fi
    lib_spawn apache2 "$dir/apache-error.log" "$APACHE2" -f "$dir/httpd.conf" -DFOREGROUND
    APACHE_PID=$LIB_LAST_PID
    lib_poll 10 tcp_accepts 127.0.0.1 "$port" "$APACHE_PID" ||
        lib_fail "apache2 did not listen on 127.0.0.1:$port within 10 s"
}

# --- one response, checked ------------------------------------------------------

# fetch NAME CURL-ARGS...: one request with curl; sets got_status, got_body
# and got_headers (a file).
fetch() {
    local name=$1
    shift
    got_headers=$PARLEY_TMP/last.headers
    got_status=$(curl -s -m 20 -D "$got_headers" -o "$PARLEY_TMP/last.body" \
        -w '%{http_code}' "$@" || true)
    got_body=$(cat "$PARLEY_TMP/last.body" 2>/dev/null || true)
    got_name=$name
}

# header NAME: the value(s) of response header NAME in the last response.
header() {
    sed -n "s/^$1:[[:space:]]*//Ip" "$got_headers" | tr -d '\r'
}

# expect_error STATUS CODE [v1]: the last response is STATUS with the API's
# error body for CODE (with v1: OpenAI's, as /v1 answers), a JSON
# Content-Type, exactly one X-Request-Id and exactly one Cache-Control:
# no-store and X-Content-Type-Options: nosniff.
expect_error() {
    local want=$1 code=$2 ok=1 ids
    [ "$got_status" = "$want" ] || ok=0
    header Content-Type | grep -qi '^application/json' || ok=0
    ids=$(header X-Request-Id | grep -c . || true)
    [ "$ids" = 1 ] || ok=0
    [ "$(header Cache-Control)" = no-store ] || ok=0
    [ "$(header X-Content-Type-Options)" = nosniff ] || ok=0
    # Under /v1, OpenAI's shape: type in place of status.
    "$NODE" -e '
        const [body, status, code, v1] = process.argv.slice(1);
        const e = JSON.parse(body).error;
        const type = Number(status) >= 500 ? "server_error" : "invalid_request_error";
        if ((v1 ? e.type !== type || "status" in e : e.status !== Number(status)) ||
            e.code !== code || typeof e.message !== "string" || !("param" in e) ||
            Object.keys(e).length !== 4)
            process.exit(1);' "$got_body" "$want" "$code" "${3:-}" 2>/dev/null || ok=0
    if [ "$ok" = 1 ]; then
        pass "$got_name: $want $code"
    else
        fail "$got_name: want $want $code with JSON and one X-Request-Id; got $got_status" \
            "(Content-Type: $(header Content-Type), X-Request-Id: $(header X-Request-Id | tr '\n' ' '))" \
            "(Cache-Control: $(header Cache-Control | tr '\n' ' '), X-Content-Type-Options: $(header X-Content-Type-Options | tr '\n' ' '))" \
            "body: ${got_body:0:200}"
    fi
}

# front_checks URL TOKEN PARLEY_LOG MODE: Apache's own answers (see the top).
front_checks() {
    local url=$1 token=$2 plog=$3 mode=$4 long before after id

    fetch "GET /healthz" "$url/healthz"
    if [ "$got_status" = 200 ] && [ "$got_body" = '{"status":"ok"}' ] &&
        header Content-Type | grep -qi '^application/json'; then
        pass "GET /healthz"
    else
        fail "GET /healthz: $got_status $got_body"
    fi

    for path in / /api /metrics /metrics/ /index.html /api/../metrics; do
        fetch "GET $path" --path-as-is "$url$path"
        expect_error 404 not_found
    done

    # The request id is Apache's, not the client's, and parley logs it.
    fetch "X-Request-Id" -H 'X-Request-Id: chosen-by-the-client' \
        -H "Authorization: Bearer $token" "$url/api/agent-sessions?limit=1"
    id=$(header X-Request-Id)
    if [ "$got_status" = 200 ] && [ -n "$id" ] && [ "$id" != chosen-by-the-client ] &&
        [ "$(header X-Request-Id | grep -c .)" = 1 ]; then
        pass "X-Request-Id is Apache's ($id)"
    else
        fail "X-Request-Id: status $got_status, id '$id'"
    fi
    # parley's answer through Apache: its own Cache-Control and nosniff,
    # once each (Apache adds them only where they are missing).
    if [ "$(header Cache-Control)" = no-store ] &&
        [ "$(header X-Content-Type-Options)" = nosniff ]; then
        pass "parley's answer: one Cache-Control: no-store, one nosniff"
    else
        fail "parley's answer: Cache-Control '$(header Cache-Control | tr '\n' ' ')'," \
            "X-Content-Type-Options '$(header X-Content-Type-Options | tr '\n' ' ')'"
    fi
    if lib_poll 5 grep -qF "\"req\":\"$id\"" "$plog"; then
        pass "parley logged the request under $id"
    else
        fail "parley's log has no line with req $id"
    fi

    # An 8 KiB token passes Apache's limits and reaches parley (which
    # refuses it: it is no JWT).
    long=$(printf "%08192d" 0 | tr 0 a)
    fetch "8 KiB bearer token" -H "Authorization: Bearer $long" "$url/api/agent-sessions"
    expect_error 401 unauthorized
    [ "$(header WWW-Authenticate)" = 'Bearer error="invalid_token"' ] ||
        fail "8 KiB token: WWW-Authenticate is '$(header WWW-Authenticate)'"

    long=$(printf "%017000d" 0 | tr 0 a)
    fetch "header line over 16 KiB" -H "X-Long: $long" "$url/healthz"
    expect_error 400 bad_request
    fetch "request line over 16 KiB" "$url/api/$long"
    expect_error 414 uri_too_long

    # Bodies over 1 MiB: refused, nothing stored.
    fetch "list before" -H "Authorization: Bearer $token" "$url/api/agent-sessions?limit=1"
    before=$(printf '%s' "$got_body" | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
    "$NODE" -e '
        const pad = 1048577 - "{\"description\":\"\"}".length;
        process.stdout.write("{\"description\":\"" + "x".repeat(pad) + "\"}");' \
        >"$PARLEY_TMP/over.json"
    fetch "Content-Length over 1 MiB" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' --data-binary "@$PARLEY_TMP/over.json" \
        "$url/api/agent-sessions"
    expect_error 413 payload_too_large
    # Under /v1, Apache's own pages have OpenAI's shape.
    fetch "/v1 body over 1 MiB" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' --data-binary "@$PARLEY_TMP/over.json" \
        "$url/v1/conversations"
    expect_error 413 payload_too_large v1
    fetch "chunked body over 1 MiB" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
        --data-binary "@$PARLEY_TMP/over.json" "$url/api/agent-sessions"
    if [ "$mode" = proxy ]; then
        expect_error 413 payload_too_large
    else
        # mod_fcgid answers 500 for a body that grows past
        # FcgidMaxRequestLen (parley-fcgid.conf says so); what matters is
        # that the request never reaches parley cut short.
        expect_error 500 internal_error
    fi
    fetch "list after" -H "Authorization: Bearer $token" "$url/api/agent-sessions?limit=1"
    after=$(printf '%s' "$got_body" | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
    if [ -n "$before" ] && [ "$before" = "$after" ]; then
        pass "nothing stored from the bodies over 1 MiB ($after sessions)"
    else
        fail "sessions before/after the bodies over 1 MiB: '$before' / '$after'"
    fi
}

# run_suites URL LABEL: check_e2e's sessions and messages suites against URL.
run_suites() {
    local url=$1 label=$2 suite rc
    for suite in e2e e2e-messages e2e-openai; do
        lib_log "$label: check_e2e suite $suite through Apache"
        rc=0
        PARLEY_E2E_URL=$url \
            PARLEY_E2E_SECRET=$secret \
            PARLEY_E2E_BIN=$bin \
            PARLEY_E2E_CONFIG=$conf \
            PARLEY_E2E_DEVDB_URI=$TESTDB_URI \
            CK_RUN_SUITE=$suite CK_EXCLUDE_TAGS=nginx \
            "$check" || rc=$?
        [ "$rc" -eq 0 ] || fail "$label: check_e2e suite $suite exited $rc"
    done
}

# log_clean LOG: parley's lines in LOG hold no secret, token or content.
log_clean() {
    local bad
    for bad in "$secret" PARLEY-SECRET-CONTENT-MARKER eyJ; do
        if grep '^{' "$1" | grep -qF -- "$bad"; then
            fail "$1 holds a secret, a token or content (${bad:0:12}...)"
        fi
    done
}

conf=$PARLEY_TMP/parley.conf
write_conf "$conf" "unix:$PARLEY_TMP/parley.sock"
config_check "$conf"
token=$("$bin" token --sub apache-front-checks -c "$conf")

# === mod_proxy_fcgi ==============================================================

dir=$PARLEY_TMP/proxy
mkdir -p "$dir"
TEST_LOGS=("$PARLEY_TMP/parley.log:40" "$dir/apache-error.log:40")
parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
parley_pid=$PARLEY_PID

# A unix socket that accepts and never answers: the 504 page.
hang_sock=$dir/hang.sock
lib_spawn hang "$dir/hang.log" "$NODE" -e '
    const net = require("net");
    net.createServer((c) => { c.on("data", () => {}); c.on("error", () => {}); })
        .listen(process.argv[1], () => require("fs").chmodSync(process.argv[1], 0o666));' \
    "$hang_sock"
hang_pid=$LIB_LAST_PID
lib_poll 10 unix_accepts "$hang_sock" "$hang_pid" || lib_fail "test backend did not start" || exit 1

port=$(free_port)
defines="Define PARLEY_SOCKET $PARLEY_SOCKET
Define PARLEY_CONVERSATION_SOCKET $(conversation_socket "$PARLEY_SOCKET")"
# (first: the first ProxyPass that matches wins)
pre="    # test only: a backend that never answers, with a short timeout
    ProxyPass \"/api/_hang\" \"unix:$hang_sock|fcgi://hang/\" timeout=1"
extra=
apache_conf_write "$dir" "$port" proxy
apache_start "$dir" "$port"
url=http://127.0.0.1:$port
wait_http "$url/healthz" 15

front_checks "$url" "$token" "$PARLEY_TMP/parley.log" proxy

fetch "backend that never answers" "$url/api/_hang"
expect_error 504 gateway_timeout
[ "$(header Retry-After)" = 1 ] || fail "504: Retry-After is '$(header Retry-After)'"

run_suites "$url" proxy
if pools_served "$PARLEY_TMP/parley.log" "$parley_pid" "$PARLEY_SOCKET" \
    "$(conversation_socket "$PARLEY_SOCKET")"; then
    pass "conversations served by the conversation pool, the rest by the main one"
else
    fail "a request was served by the wrong pool"
fi

# parley gone: Apache's JSON 503.
stop_one "$parley_pid" || fail "parley did not stop on SIGTERM"
fetch "parley stopped" "$url/api/agent-sessions"
expect_error 503 service_unavailable
[ "$(header Retry-After)" = 1 ] || fail "503: Retry-After is '$(header Retry-After)'"
fetch "parley stopped, /v1" "$url/v1/conversations/conv_x"
expect_error 503 service_unavailable v1
[ "$(header Retry-After)" = 1 ] || fail "/v1 503: Retry-After is '$(header Retry-After)'"
log_clean "$PARLEY_TMP/parley.log"
stop_one "$APACHE_PID"
stop_one "$hang_pid"

# === mod_fcgid ===================================================================

dir=$PARLEY_TMP/fcgid
mkdir -p "$dir"
TEST_LOGS=("$dir/apache-error.log:40")
# What docs/deployment.md's install steps put in place, in the temp dir: the wrapper,
# the binary and the config, readable by the user Apache runs parley as.
install -m 0755 "$top_srcdir/apache/parley.fcgi" "$dir/parley.fcgi"
install -m 0755 "$bin" "$dir/parley"
fconf=$dir/parley.conf
write_conf "$fconf" "unix:/nonexistent/the-wrapper-overrides-this.sock"
[ -z "$run_user" ] || chown "$run_user" "$fconf"

port=$(free_port)
defines="Define PARLEY_FCGI $dir/parley.fcgi
Define PARLEY_BIN $dir/parley
Define PARLEY_CONFIG $fconf"
pre=
extra=
apache_conf_write "$dir" "$port" fcgid
apache_start "$dir" "$port"
url=http://127.0.0.1:$port
wait_http "$url/healthz" 20

front_checks "$url" "$token" "$dir/apache-error.log" fcgid
run_suites "$url" fcgid

# The conversation's processes are a class of their own: no process served
# both a conversation and anything else.
conv_served=$(grep -E '"msg":"[A-Z]+ /api/agent-sessions/conversation/? ' "$dir/apache-error.log" |
    sed -n 's/.*"pid":\([0-9]*\),.*/\1/p' | sort -u)
other_served=$(grep -E '"msg":"(GET|POST|PUT|PATCH|DELETE) /' "$dir/apache-error.log" |
    grep -vE '"msg":"[A-Z]+ /api/agent-sessions/conversation/? ' |
    sed -n 's/.*"pid":\([0-9]*\),.*/\1/p' | sort -u)
both=$(comm -12 <(echo "$conv_served") <(echo "$other_served") | grep -c . || true)
if [ -n "$conv_served" ] && [ "$both" = 0 ]; then
    pass "mod_fcgid ran conversations in processes of their own ($(echo $conv_served))"
else
    fail "conversations and other requests shared processes: conversations $(echo $conv_served), others $(echo $other_served)"
fi

# Every process mod_fcgid started served fd 0 with one worker.
started=$(grep -c '"msg":"parley [^ ]* serving on fd 0 with 1 workers"' "$dir/apache-error.log" || true)
others=$(grep '"msg":"parley [^ ]* serving on' "$dir/apache-error.log" | grep -vc 'on fd 0 with 1 workers' || true)
if [ "$started" -ge 1 ] && [ "$others" = 0 ]; then
    pass "mod_fcgid started $started parley processes, each on fd 0 with 1 worker"
else
    fail "mod_fcgid's parley processes: $started on fd 0 with 1 worker, $others otherwise"
fi
log_clean "$dir/apache-error.log"

# mod_fcgid stops its processes with SIGTERM: on a graceful restart, and
# when one has been idle for FcgidIdleTimeout.  The restart below loads the
# same config with the idle timeout lowered to seconds; then a request
# starts one process, which must be stopped when idle, drain and exit
# cleanly, and the next request must start a new one.
stopped() {
    grep -c '"msg":"stopped"' "$dir/apache-error.log" || true
}
no_parleys() {
    [ -z "$(exe_pids "$dir/parley")" ]
}
defines="$defines
# test only: idle processes are stopped within seconds, not minutes
FcgidIdleScanInterval 1"
extra="    # test only (see above)
    FcgidIdleTimeout 3
    FcgidMinProcessesPerClass 0"
apache_conf_write "$dir" "$port" fcgid
"$APACHE2" -t -f "$dir/httpd.conf" >"$dir/configtest.out" 2>&1 ||
    lib_fail "apache2 -t rejected the idle-test config" || exit 1
before=$(stopped)
kill -USR1 "$APACHE_PID"
if lib_poll 20 no_parleys; then
    pass "a graceful restart stopped mod_fcgid's processes ($(($(stopped) - before)) drained)"
else
    fail "parley processes still running 20 s after a graceful restart: $(exe_pids "$dir/parley" | tr '\n' ' ')"
fi
wait_http "$url/healthz" 20 || fail "no answer after the graceful restart"
before=$(stopped)
if lib_poll 30 no_parleys && [ "$(stopped)" -gt "$before" ]; then
    pass "an idle process was stopped by mod_fcgid, drained and exited"
else
    fail "idle process: still running or no clean drain ($(exe_pids "$dir/parley" | tr '\n' ' '))"
fi
fetch "first request after the idle stop" "$url/healthz"
if [ "$got_status" = 200 ]; then
    pass "a new process serves after the idle stop"
else
    fail "after the idle stop: $got_status $got_body"
fi
if grep -q 'killed by signal\|shutdown timeout' "$dir/apache-error.log"; then
    fail "a parley worker was killed instead of draining"
fi

# Apache's stop takes mod_fcgid's processes with it.
stop_one "$APACHE_PID"
if lib_poll 10 no_parleys; then
    pass "no parley process left after Apache stopped"
else
    fail "parley processes left after Apache stopped: $(exe_pids "$dir/parley" | tr '\n' ' ')"
fi

if [ "$failures" -ne 0 ]; then
    lib_log "$failures check(s) failed"
    exit 1
fi
echo "apache: all checks passed"
