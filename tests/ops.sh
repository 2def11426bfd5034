#!/usr/bin/env bash
# tests/ops.sh — the operations side end to end, run by `make check`.
#
# Starts the database (the dev DB, or a replica set of its own with
# PARLEY_TEST_MONGOD), `parley serve` (3 workers, log_level info) and nginx
# with the repo's snippets for the public server plus the internal metrics
# server of nginx/site.conf.example (on a free loopback port), then checks:
#
#   - /metrics is refused on the public server (also as /metrics/ and
#     percent-encoded) and served on the internal one, as Prometheus text;
#   - requests count by route pattern, method and status, exactly, summed
#     over all workers, with a latency histogram that agrees with them;
#   - the counters survive a SIGHUP reload (every worker replaced) and a
#     killed worker; parley_workers follows the supervisor;
#   - with the database gone, requests answer 503 and the DB retry and
#     error counters move;
#   - X-Request-Id equals the "req" of the request's log line, and every
#     log line is one JSON object with ts, level, pid, req, msg;
#   - the log holds no token, secret or message content;
#   - SIGTERM drains and stops.
#
# Exits 0 (pass), 1 (fail); nginx, node or curl missing is a failure.
# Environment as for tests/e2e.sh (top_srcdir, top_builddir, NGINX, NODE,
# PARLEY_DEVDB_HOME, PARLEY_KEEP_TMP).
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init ops
lib_require_tools
test_need_tools curl
test_need_built "$bin"

fail() {
    lib_fail "$*"
    exit 1
}

marker=PARLEY-SECRET-CONTENT-MARKER

# Its own: the database is stopped under parley below.
testdb_start --own
testdb_name parley_ops

secret=$(random_hex 48)
conf=$PARLEY_TMP/parley.conf
(
    umask 077
    cat >"$conf" <<EOF
# Written by tests/ops.sh
listen = unix:$PARLEY_TMP/parley.sock
socket_mode = 0666
workers = 3
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
log_level = info
request_deadline_ms = 3000
db_retry_base_ms = 50
# No sweeper child and no conversation pool (tests/conversation.sh runs
# that): the test counts the supervisor's children as workers.
cleanup_interval = 0
conversation_workers = 0
EOF
)
log=$PARLEY_TMP/parley.log
parley_start "$bin" "$conf" "$log"

# The public server with the repo's snippets, plus the internal metrics
# server exactly as nginx/site.conf.example has it, on a free port.
port=$(free_port)
mport=$(free_port)
nginx_conf_write "$PARLEY_TMP" "$port" "$PARLEY_SOCKET" "" "" "$PARLEY_SOCKET"
awk '/^# Prometheus metrics/ { f = 1 } f && /^server \{/ { p = 1 } p { print } p && /^\}/ { exit }' \
    "$PARLEY_SRCDIR/nginx/site.conf.example" |
    sed "s/listen 127\.0\.0\.1:9180;/listen 127.0.0.1:$mport;/" >"$PARLEY_TMP/metrics-server.conf"
grep -q "listen 127.0.0.1:$mport;" "$PARLEY_TMP/metrics-server.conf" ||
    fail "no metrics server on 127.0.0.1:9180 in nginx/site.conf.example"
sed -i '$d' "$PARLEY_TMP/nginx.conf" # the http block's closing brace
printf '    include %s;\n}\n' "$PARLEY_TMP/metrics-server.conf" >>"$PARLEY_TMP/nginx.conf"
nginx_test "$PARLEY_TMP"
nginx_start "$PARLEY_TMP"
url=http://127.0.0.1:$port
murl=http://127.0.0.1:$mport
wait_http "$url/healthz" 15

token=$("$bin" token --sub ops-user -c "$conf")
[ -n "$token" ] || fail "parley token printed nothing"
auth="Authorization: Bearer $token"

# req METHOD PATH [BODY]: prints the status; the body goes to $PARLEY_TMP/body
# and the headers to $PARLEY_TMP/headers.
req() {
    local args=(-s -o "$PARLEY_TMP/body" -D "$PARLEY_TMP/headers" -w '%{http_code}'
        -X "$1" -H "$auth")
    [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "$url$2"
}

expect() {
    local want=$1 got
    shift
    got=$(req "$@")
    [ "$got" = "$want" ] || fail "$1 $2 answered $got, not $want: $(cat "$PARLEY_TMP/body")"
}

scrape() {
    curl -sf "$murl/metrics" >"$PARLEY_TMP/metrics" || fail "GET $murl/metrics failed"
}

# metric SERIES: its value in the last scrape, 0 when absent.
metric() {
    awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' "$PARLEY_TMP/metrics"
}

# metric_becomes SERIES VALUE: scrapes until SERIES equals VALUE (5 s).
# Requests are counted just after their response is sent, so the last one
# may be a moment late; a value past VALUE fails at once.
metric_is() {
    local v
    scrape
    v=$(metric "$1")
    [ "$v" = "$2" ] && return 0
    awk -v a="$v" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }' && return 2
    return 1
}
metric_becomes() {
    lib_poll 5 metric_is "$1" "$2" ||
        fail "$1 is $(metric "$1"), want $2"
}

healthz='parley_http_requests_total{route="/healthz",method="GET",status="200"}'
healthz_count='parley_http_request_duration_seconds_count{route="/healthz",method="GET"}'

# --- /metrics is private ---------------------------------------------------

for path in /metrics /metrics/ /%6detrics /metrics?x=1; do
    status=$(req GET "$path")
    [ "$status" = 404 ] || fail "public GET $path answered $status, not 404"
    grep -q '"code":"not_found"' "$PARLEY_TMP/body" || fail "public GET $path: not the JSON 404"
    ! grep -q parley_ "$PARLEY_TMP/body" || fail "public GET $path leaked metrics"
done
status=$(curl -s -o /dev/null -w '%{http_code}' "$murl/healthz")
[ "$status" = 404 ] || fail "the metrics server passed /healthz on ($status)"

ctype=$(curl -s -o "$PARLEY_TMP/metrics" -D - "$murl/metrics" | tr -d '\r' |
    sed -n 's/^[Cc]ontent-[Tt]ype: //p')
[ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "metrics Content-Type: $ctype"
for line in '# TYPE parley_http_requests_total counter' \
    '# TYPE parley_http_request_duration_seconds histogram' \
    '# TYPE parley_db_retries_total counter' \
    '# TYPE parley_db_errors_total counter' \
    '# TYPE parley_workers gauge' \
    '# TYPE process_start_time_seconds gauge'; do
    grep -qxF "$line" "$PARLEY_TMP/metrics" || fail "metrics lack: $line"
done
metric_becomes parley_workers 3

# --- counts, summed over the workers -----------------------------------------

scrape
before=$(metric "$healthz")
for _ in $(seq 30); do
    expect 200 GET /healthz
done
metric_becomes "$healthz" $((before + 30))
[ "$(metric "$healthz_count")" = "$(metric "$healthz")" ] ||
    fail "histogram count $(metric "$healthz_count") != requests $(metric "$healthz")"
inf=$(metric 'parley_http_request_duration_seconds_bucket{route="/healthz",method="GET",le="+Inf"}')
[ "$inf" = "$(metric "$healthz_count")" ] || fail "+Inf bucket $inf != count"
pids=$(grep -F '"msg":"GET /healthz 200 ' "$log" | sed -n 's/.*"pid":\([0-9]*\),.*/\1/p' | sort -u | wc -l)
lib_log "healthz served by $pids distinct workers"

one='/api/agent-sessions/{session_id}'
expect 201 POST /api/agent-sessions '{"session_id":"ops-1","session_name":"ops"}'
expect 200 GET /api/agent-sessions/ops-1
expect 200 GET /api/agent-sessions/ops-1
expect 404 GET /api/agent-sessions/ops-missing
expect 201 POST /api/agent-sessions/ops-1/messages "{\"role\":\"user\",\"content\":\"$marker in a message\"}"
expect 404 GET /no/such/path
metric_becomes "parley_http_requests_total{route=\"$one\",method=\"GET\",status=\"200\"}" 2
metric_becomes "parley_http_requests_total{route=\"$one\",method=\"GET\",status=\"404\"}" 1
metric_becomes 'parley_http_requests_total{route="/api/agent-sessions",method="POST",status="201"}' 1
metric_becomes "parley_http_requests_total{route=\"$one/messages\",method=\"POST\",status=\"201\"}" 1
metric_becomes 'parley_http_requests_total{route="unmatched",method="GET",status="404"}' 1
! grep -q 'ops-1\|ops-missing' "$PARLEY_TMP/metrics" || fail "a raw path reached the metrics"
calls=$(metric parley_db_calls_total)
[ "$calls" -gt 0 ] || fail "parley_db_calls_total is $calls after database requests"

# --- request ids -------------------------------------------------------------

# log_line_has ID TEXT: the log has a line with "req":"ID" and TEXT.
log_line_has() {
    grep -F "\"req\":\"$1\"" "$log" | grep -qF "$2"
}
for path in /healthz /api/agent-sessions/ops-missing; do
    req GET "$path" >/dev/null
    id=$(tr -d '\r' <"$PARLEY_TMP/headers" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p')
    [[ $id =~ ^[0-9a-f]{32}$ ]] || fail "GET $path: X-Request-Id '$id' is not nginx's \$request_id"
    lib_poll 5 log_line_has "$id" "\"msg\":\"GET $path " ||
        fail "no log line with \"req\":\"$id\" for GET $path"
done

# --- the counters outlive the workers ------------------------------------------

workers_of() {
    lib_descendants "$PARLEY_PID" | sort
}
old=$(workers_of)
[ "$(wc -l <<<"$old")" = 3 ] || fail "expected 3 workers, found: $old"
scrape
kept=$(metric "$healthz")
kill -HUP "$PARLEY_PID"
# The old generation is gone once none of its pids is left.
# shellcheck disable=SC2086 # $old is a list of pids
lib_poll 15 lib_all_gone $old || fail "old workers still running 15 s after SIGHUP"
metric_becomes parley_workers 3
new=$(workers_of)
[ -z "$(comm -12 <(echo "$old") <(echo "$new"))" ] || fail "a worker survived the reload"
scrape
[ "$(metric "$healthz")" -ge "$kept" ] || fail "the reload reset the counters"
for _ in $(seq 5); do
    expect 200 GET /healthz
done
metric_becomes "$healthz" $((kept + 5))

# A worker killed outright: replaced, and nothing it counted is lost.
victim=$(head -n 1 <<<"$new")
sleep 2.1 # older than the 2 s "quick death" rule, so it is replaced at once
kill -KILL "$victim"
replaced() {
    ! lib_alive "$victim" && [ "$(workers_of | wc -l)" = 3 ]
}
lib_poll 10 replaced || fail "the killed worker was not replaced"
metric_becomes parley_workers 3
metric_becomes "$healthz" $((kept + 5))

# --- the database goes away --------------------------------------------------

testdb_signal TERM || fail "the database did not stop"
scrape
errors_before=$(metric 'parley_db_errors_total{kind="unavailable"}')
retries_before=$(metric parley_db_retries_total)
expect 503 GET /api/agent-sessions/ops-1
grep -qi '^retry-after: 1' "$PARLEY_TMP/headers" || fail "503 without Retry-After"
metric_becomes "parley_http_requests_total{route=\"$one\",method=\"GET\",status=\"503\"}" 1
scrape
[ "$(metric 'parley_db_errors_total{kind="unavailable"}')" -gt "$errors_before" ] ||
    fail "parley_db_errors_total{kind=\"unavailable\"} did not grow"
[ "$(metric parley_db_retries_total)" -gt "$retries_before" ] ||
    fail "parley_db_retries_total did not grow"

# --- drain -------------------------------------------------------------------

kill -TERM "$PARLEY_PID"
lib_poll 15 lib_all_gone "$PARLEY_PID" || fail "parley did not stop within 15 s of SIGTERM"
grep -qF '"msg":"draining: ' "$log" || fail "no draining line in the log"
grep -qF '"msg":"stopped"' "$log" || fail "no stopped line in the log"

# --- the log itself ----------------------------------------------------------

# Every line one JSON object with exactly ts, level, pid, req, msg.
"$NODE" -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
    let n = 0;
    for (const line of lines) {
        if (line === "") continue;
        let o;
        try { o = JSON.parse(line); } catch (e) {
            console.error("not JSON: " + line); process.exit(1);
        }
        if (Object.keys(o).join() !== "ts,level,pid,req,msg") {
            console.error("fields: " + line); process.exit(1);
        }
        n++;
    }
    if (n < 40) { console.error("only " + n + " lines"); process.exit(1); }' "$log" ||
    fail "parley.log is not JSON lines"

# No secret, token or message content, in any form.
sig=${token##*.}
for bad in "$secret" "$marker" "$sig" eyJ; do
    ! grep -qF -- "$bad" "$log" || fail "parley.log contains a secret or content (${bad:0:12}...)"
done
lib_log "ok"
