#!/usr/bin/env bash
# tests/faults.sh — the fault tests, run by `make check`: the real nginx,
# parley and database on loopback (the dev DB, or with PARLEY_TEST_MONGOD a
# 3-member replica set of its own whose members are all killed, paused and
# restarted together), under a load from tests/loadgen (which
# records how every single request ended), while the pieces are killed,
# paused and restarted.  In order:
#
#   a. no database when parley starts: /readyz and the API answer 503 with
#      Retry-After: 1 (/v1 in OpenAI's error shape) and nothing crashes;
#      the database then starts on the same port(s), parley makes its
#      indexes (within 10 s of the database taking writes) and serves
#      (/readyz 200, a create 201) within 2 s of that, same supervisor,
#      same workers;
#   b. the database (persisting on disk) is SIGKILLed under a load of
#      keyed appends and restarted on its data: every append answered 201
#      is listed exactly once, the others got 503 (no 500, nothing else);
#      resent with their Idempotency-Key, each is then stored exactly once;
#   c. the database is paused (SIGSTOP): requests answer 503 within the
#      deadline plus the longest one database try can wait (a call that
#      started before the deadline is not interrupted), measured one by
#      one; after SIGCONT they succeed again within 3 s;
#   d. a worker is SIGKILLed under load: its replacement starts and takes a
#      request within 1 s, and at most the one request it held fails (the
#      one nginx saw dropped);
#   e. SIGHUP to parley and `nginx -s reload` under load: 0 failed
#      requests; then SIGTERM to parley under a load that goes on: every
#      request nginx had passed to parley completes (nginx's error log tells
#      a dropped request from a refused connection), only refused ones get
#      502, and parley exits 0 without killing a worker; then nginx's 502
#      for /v1 is in OpenAI's error shape.
#
# Each step is bounded in time (the whole run takes 1-2 minutes on 2 cores);
# everything started here is stopped at exit.  Exit status for automake: 0
# pass, 1 fail (each failed check is printed, then the ends of the logs), 77
# skip when PARLEY_TEST_QUICK=1 (make distcheck).  A missing tool (node,
# nginx, curl, pgrep) is a failure: scripts/setup installs them.
#
# make check sets top_srcdir, top_builddir, NGINX and NODE.  PARLEY_KEEP_TMP=1
# keeps the temp dir (logs, the load records *.tsv); PARLEY_DEVDB_HOME says
# where the dev DB is installed.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init faults --slow
loadgen=$top_builddir/tests/loadgen
lib_require_tools
test_need_built "$bin" "$loadgen"
test_need_tools curl pgrep

FAILED=()

now_ms() {
    date +%s%3N
}

pass() {
    lib_log "ok   $*"
}

fail() {
    lib_log "FAIL $*"
    FAILED+=("$*")
}

expect_le() { # expect_le WHAT VALUE LIMIT UNIT
    if [ "$2" -le "$3" ]; then
        pass "$1: $2 $4 (limit $3)"
    else
        fail "$1: $2 $4, over the limit of $3"
    fi
}

expect_eq() { # expect_eq WHAT GOT WANT
    if [ "$2" = "$3" ]; then
        pass "$1: $2"
    else
        fail "$1: got $2, want $3"
    fi
}

# --- the servers -------------------------------------------------------------

deadline_ms=4000
workers=4
# The database is this test's own, on disk (it is killed and restarted on
# its data), and not started yet: (a) starts it under parley.
testdb_prepare --own --persist
testdb_name parley_faults
secret=$(random_hex 48)
conf=$PARLEY_TMP/parley.conf
(
    umask 077
    cat >"$conf" <<EOF
# Written by tests/faults.sh
listen = unix:$PARLEY_TMP/parley.sock
socket_mode = 0666
workers = $workers
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
log_level = info
request_deadline_ms = $deadline_ms
shutdown_timeout = 10
# The load is one user's, many clients at once (twice the workers during
# a reload): no per-user limit here (tests/limits.sh tests it).
user_max_inflight = 1024
user_max_bulk = 1024
# No sweeper child: it would come a minute after start, in the middle of
# (d), as one more child of the supervisor.
cleanup_interval = 0
# The supervisor's children are counted as the workers below; the
# conversation pool is tests/conversation.sh's.
conversation_workers = 0
EOF
)
# All the load comes from 127.0.0.1: the real per-client limits (100 r/s,
# 32 at once) would answer much of it 429.  Same zone names, a rate no test
# reaches, and a connection key unique to each request.
cat >"$PARLEY_TMP/http.conf" <<EOF
limit_req_zone \$binary_remote_addr zone=parley_per_client:1m rate=100000r/s;
limit_conn_zone \$request_id zone=parley_conn_per_client:1m;
EOF

parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
supervisor=$PARLEY_PID
port=$(free_port)
nginx_conf_write "$PARLEY_TMP" "$port" "$PARLEY_SOCKET" "$PARLEY_TMP/http.conf" "" "$PARLEY_SOCKET"
nginx_test "$PARLEY_TMP"
nginx_start "$PARLEY_TMP"
url=http://127.0.0.1:$port
wait_http "$url/healthz" 15

user=faults-$(random_hex 8)
token=$("$bin" token --sub "$user" --ttl 3600 -c "$conf")
auth="Authorization: Bearer $token"

# req METHOD PATH [BODY [HEADER]]: one request with the user's token; sets
# R_STATUS (000: no response), R_MS (its time), R_BODY and R_RETRY_AFTER.
req() {
    local method=$1 path=$2 body=${3:-} header=${4:-}
    local args=(-s -m 20 -X "$method" -H "$auth" -o "$PARLEY_TMP/r.body"
        -D "$PARLEY_TMP/r.head" -w '%{http_code} %{time_total}')
    local out t
    [ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
    [ -z "$header" ] || args+=(-H "$header")
    : >"$PARLEY_TMP/r.body"
    : >"$PARLEY_TMP/r.head"
    out=$(curl "${args[@]}" "$url$path" || true)
    R_STATUS=${out%% *}
    t=${out#* }
    R_MS=$(awk -v t="$t" 'BEGIN { printf "%d", t * 1000 }')
    R_BODY=$(cat "$PARLEY_TMP/r.body")
    R_RETRY_AFTER=$(sed -n 's/^[Rr]etry-[Aa]fter: *\([^[:space:]]*\).*/\1/p' "$PARLEY_TMP/r.head")
}

# load NAME ARGS...: starts tests/loadgen in the background against nginx
# with the user's token, records to $PARLEY_TMP/NAME.tsv; sets LOAD_PID.
load() {
    local name=$1
    shift
    lib_spawn "loadgen $name" "$PARLEY_TMP/loadgen.log" \
        "$loadgen" -H "$auth" -o "$PARLEY_TMP/$name.tsv" "$@" "$url"
    LOAD_PID=$LIB_LAST_PID
}

# load_wait: waits for the last load to end (it is bounded by its -d/-n).
load_wait() {
    local rc=0
    wait "$LOAD_PID" || rc=$?
    [ "$rc" -eq 0 ] || lib_fail "loadgen exited with $rc" || exit 1
}

# statuses FILE [AWK_COND]: "201:40 503:12" for the records matching COND.
statuses() {
    awk -F'\t' "${2:-1} { n[\$5]++ } END { for (s in n) printf \"%s:%d \", s, n[s] }" "$1" |
        tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ *$//'
}

count() { # count FILE AWK_COND
    awk -F'\t' "$2 { n++ } END { print n + 0 }" "$1"
}

# The supervisor's children but its indexer (which makes the indexes
# when the database was not there at start, then exits).
worker_pids() {
    local p
    for p in $(pgrep -P "$supervisor"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = parley-indexer ] || echo "$p"
    done | sort -n | tr '\n' ' ' | sed 's/ *$//'
}

# first_served PID: the wall-clock ms at which process PID took its first
# request that succeeded (2xx), and at which it answered it, from parley's
# log; nothing if there is none.
first_served() {
    "$NODE" -e '
        const fs = require("fs");
        const pid = Number(process.argv[2]);
        for (const line of fs.readFileSync(process.argv[1], "utf8").split("\n")) {
            let e;
            try { e = JSON.parse(line); } catch { continue; }
            const m = / 2\d\d ([0-9.]+) ms$/.exec(e.msg || "");
            if (e.pid === pid && m) {
                const end = Date.parse(e.ts);
                console.log(Math.round(end - Number(m[1])), end);
                break;
            }
        }' "$PARLEY_TMP/parley.log" "$1"
}

nginx_lines() {
    wc -l <"$PARLEY_TMP/nginx-error.log"
}

# upstream_errors FROM: nginx's complaints about parley since line FROM of
# its error log, by kind, counted.
upstream_errors() {
    tail -n +"$(($1 + 1))" "$PARLEY_TMP/nginx-error.log" | grep upstream |
        sed -e 's/^.*\*[0-9]* //' -e 's/, client: .*//' -e 's/unix:[^ ]*/SOCKET/' |
        sort | uniq -c || true
}

# handed_over_failures FROM: how many requests nginx had passed to parley
# (it connected) and then lost (reset, closed, timed out) since line FROM.
# A failed connect() is a request parley never had.
handed_over_failures() {
    tail -n +"$(($1 + 1))" "$PARLEY_TMP/nginx-error.log" | grep upstream |
        grep -vc 'connect() to' || true
}

# refused_connects FROM: how many requests nginx could not pass to parley
# since line FROM.
refused_connects() {
    tail -n +"$(($1 + 1))" "$PARLEY_TMP/nginx-error.log" | grep upstream |
        grep -c 'connect() to' || true
}

# =============================================================================
lib_log "a. database not running when parley starts"

start_workers=$(worker_pids)
expect_eq "a: workers at start" "$(wc -w <<<"$start_workers")" "$workers"

req GET /readyz
expect_eq "a: /readyz without a database" "$R_STATUS" 503
expect_eq "a: /readyz Retry-After" "$R_RETRY_AFTER" 1
expect_le "a: /readyz answered in" "$R_MS" $((deadline_ms + 1000)) ms
req POST /api/agent-sessions '{"session_id":"a-early"}'
expect_eq "a: create without a database" "$R_STATUS" 503
expect_eq "a: create Retry-After" "$R_RETRY_AFTER" 1
expect_le "a: create answered in" "$R_MS" $((deadline_ms + 1000)) ms
req GET /api/agent-sessions
expect_eq "a: list without a database" "$R_STATUS" 503
# /v1 says so in OpenAI's error shape.
req POST /v1/conversations '{}'
expect_eq "a: /v1 create without a database" "$R_STATUS" 503
expect_eq "a: /v1 create Retry-After" "$R_RETRY_AFTER" 1
expect_eq "a: /v1 503 body" "$R_BODY" \
    '{"error":{"message":"the database is unavailable; try again later","type":"server_error","param":null,"code":"service_unavailable"}}'
req GET /healthz
expect_eq "a: /healthz without a database" "$R_STATUS" 200

# Every worker sees the missing database at once.
load a-down -c $((2 * workers)) -n 1 -r "POST /api/agent-sessions {\"session_id\":\"a-{c}\"}"
load_wait
expect_eq "a: concurrent creates without a database" "$(statuses "$PARLEY_TMP/a-down.tsv")" "503:$((2 * workers))"
expect_eq "a: all with Retry-After: 1" "$(count "$PARLEY_TMP/a-down.tsv" '$6 == "1"')" $((2 * workers))
if lib_alive "$supervisor"; then pass "a: supervisor alive"; else fail "a: supervisor died"; fi
expect_eq "a: same workers (none crashed or respawned)" "$(worker_pids)" "$start_workers"

# The database comes up on the port(s) parley was given, while probes ask
# for /readyz and try creates, each client again 50 ms after its last
# answer.  It is up when it can take a write: the dev DB accepts
# connections, a replica set has elected a primary (TESTDB_UP_MS).
load a-probe -c 6 -w 50 -d 30000 \
    -r "GET /readyz" \
    -r "POST /api/agent-sessions {\"session_id\":\"a-probe-{c}-{i}\"}" \
    -r "POST /api/agent-sessions {\"session_id\":\"a-probe-{c}-{i}\"}"
probe=$LOAD_PID
testdb_up
db_up_ms=$TESTDB_UP_MS
lib_log "a: $(testdb_describe) up"
a=$PARLEY_TMP/a-probe.tsv
deadline=$(($(now_ms) + 10000))
until [ "$(count "$a" '$5 == 201')" -gt 0 ] && [ "$(count "$a" '$5 == 200')" -gt 0 ] ||
    [ "$(now_ms)" -ge "$deadline" ]; do
    sleep 0.1
done
kill -USR1 "$probe"
load_wait
first_ok() { # first_ok STATUS: when the first answer with STATUS came, after the database started
    awk -F'\t' -v s="$1" -v up="$db_up_ms" '$5 == s { if (!m || $4 < m) m = $4 } END { print m ? m - up : "never" }' "$a"
}
# The indexes are made first (503 until then): on a replica set every
# member builds each of them, which on the team's unoptimised mongod takes
# a few seconds by itself.  The probes' first success is timed from when
# parley logged them ready, and the indexes from when the database was up.
indexes_ms=$(node -e '
    const fs = require("fs");
    for (const line of fs.readFileSync(process.argv[1], "utf8").split("\n")) {
        let e;
        try { e = JSON.parse(line); } catch { continue; }
        if (e.msg === "indexes ready") { console.log(Date.parse(e.ts)); process.exit(0); }
    }
    console.log(0);' "$PARLEY_TMP/parley.log")
if [ "$indexes_ms" -gt 0 ]; then
    expect_le "a: indexes ready after the database started" $((indexes_ms - db_up_ms)) 10000 ms
    [ "$indexes_ms" -gt "$db_up_ms" ] && db_up_ms=$indexes_ms
else
    fail "a: parley never logged its indexes ready"
fi
ready_after=$(first_ok 200)
create_after=$(first_ok 201)
lib_log "a: probes: $(statuses "$a")"
if [ "$ready_after" != never ] && [ "$create_after" != never ]; then
    expect_le "a: first /readyz 200 after the database and indexes were ready" "$ready_after" 2000 ms
    expect_le "a: first create 201 after the database and indexes were ready" "$create_after" 2000 ms
else
    fail "a: parley did not serve within 10 s of the database starting (readyz: $ready_after, create: $create_after)"
fi
expect_eq "a: probe answers other than 200/201/503" "$(count "$a" '$5 != 200 && $5 != 201 && $5 != 503')" 0
# Every worker serves, not just the first one asked.
burst_ms=$(now_ms)
load a-up -c $((2 * workers)) -n 1 -r "POST /api/agent-sessions {\"session_id\":\"a-up-{c}\"}"
load_wait
burst_ms=$(($(now_ms) - burst_ms))
expect_eq "a: concurrent creates once it is up" "$(statuses "$PARLEY_TMP/a-up.tsv")" "201:$((2 * workers))"
expect_eq "a: no restart: same supervisor and workers" "$(worker_pids)" "$start_workers"
lib_log "a: a burst of $((2 * workers)) concurrent creates took ${burst_ms} ms"

# =============================================================================
lib_log "b. database SIGKILLed under a load of appends, restarted on its data"

nb=3
for g in $(seq 0 $((nb - 1))); do
    req POST /api/agent-sessions "{\"session_id\":\"b$g\"}"
    expect_eq "b: create session b$g" "$R_STATUS" 201
done
load b -c 6 -g "$nb" -d 60000 -H "Idempotency-Key: b-{c}-{i}" \
    -r "POST /api/agent-sessions/b{g}/messages {\"role\":\"user\",\"content\":\"b-{c}-{i}\"}"
b_pid=$LOAD_PID
sleep 1.5
# (every member of a replica set at once: the whole database goes)
testdb_signal KILL
b_kill_ms=$TESTDB_SIGNALLED_MS
sleep 3
testdb_up
b_up_ms=$TESTDB_UP_MS
sleep 2
kill -USR1 "$b_pid"
load_wait
b=$PARLEY_TMP/b.tsv
lib_log "b: $(count "$b" 1) appends: $(statuses "$b"); database down $((b_up_ms - b_kill_ms)) ms"
lib_log "b: while it was down: $(statuses "$b" "\$3 >= $b_kill_ms && \$4 <= $b_up_ms")"
expect_eq "b: answers other than 201 or 503" "$(count "$b" '$5 != 201 && $5 != 503')" 0
expect_eq "b: 503s without Retry-After: 1" "$(count "$b" '$5 == 503 && $6 != "1"')" 0
if [ "$(count "$b" "\$3 < $b_kill_ms && \$4 > $b_kill_ms")" -gt 0 ]; then
    pass "b: $(count "$b" "\$3 < $b_kill_ms && \$4 > $b_kill_ms") appends under way when the database was killed"
else
    fail "b: no append was under way when the database was killed"
fi
if [ "$(count "$b" "\$5 == 201 && \$3 > $b_up_ms")" -gt 0 ]; then
    pass "b: appends sent after the restart succeed"
else
    fail "b: no append sent after the restart succeeded"
fi

# Every append that failed is sent again with its key until it is stored
# (a key whose first writer failed mid-way answers 409 until it is taken
# over, within twice the deadline).
: >"$PARLEY_TMP/b-retry.tsv"
deadline=$(($(now_ms) + 30000))
while IFS=$'\t' read -r c i _ _ status _; do
    [ "$status" != 201 ] || continue
    key=b-$c-$i
    while :; do
        req POST "/api/agent-sessions/b$((c % nb))/messages" \
            "{\"role\":\"user\",\"content\":\"$key\"}" "Idempotency-Key: $key"
        case $R_STATUS in
        200 | 201) break ;;
        esac
        if [ "$(now_ms)" -ge "$deadline" ]; then
            fail "b: resending $key still answers $R_STATUS"
            break
        fi
        sleep 0.25
    done
    id=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' <<<"$R_BODY")
    printf '%s\t%s\t%s\t%s\n' "$key" "$R_STATUS" "${id:--}" "$((c % nb))" >>"$PARLEY_TMP/b-retry.tsv"
done <"$b"
lib_log "b: resent $(wc -l <"$PARLEY_TMP/b-retry.tsv") appends: $(awk -F'\t' '{ n[$2]++ } END { for (s in n) printf "%s:%d ", s, n[s] }' "$PARLEY_TMP/b-retry.tsv")"

# Everything stored, page by page.
: >"$PARLEY_TMP/b-stored.jsonl"
for g in $(seq 0 $((nb - 1))); do
    offset=0
    while :; do
        req GET "/api/agent-sessions/b$g/messages?limit=200&offset=$offset"
        if [ "$R_STATUS" != 200 ]; then
            fail "b: listing b$g at offset $offset answered $R_STATUS"
            break
        fi
        printf '%s\n' "$R_BODY" >>"$PARLEY_TMP/b-stored.jsonl"
        grep -q '"has_more":true' <<<"$R_BODY" || break
        offset=$((offset + 200))
    done
done
b_report=$("$NODE" -e '
    const fs = require("fs");
    const [acked, retried, stored] = process.argv.slice(1).map((f) => fs.readFileSync(f, "utf8"));
    const byId = new Map(), byContent = new Map(), problems = [];
    for (const page of stored.split("\n").filter(Boolean))
        for (const m of JSON.parse(page).items) {
            byId.set(m.id, (byId.get(m.id) || 0) + 1);
            byContent.set(m.content, (byContent.get(m.content) || 0) + 1);
        }
    const keys = new Map(); // key -> id acknowledged for it
    for (const line of acked.split("\n").filter(Boolean)) {
        const f = line.split("\t");
        if (f[4] === "201") keys.set(`b-${f[0]}-${f[1]}`, f[6]);
        else keys.set(`b-${f[0]}-${f[1]}`, null);
    }
    let first = 0;
    for (const v of keys.values()) if (v) first++;
    for (const line of retried.split("\n").filter(Boolean)) {
        const [key, status, id] = line.split("\t");
        if (status === "200" || status === "201") keys.set(key, id);
    }
    for (const [key, id] of keys) {
        if (!id) { problems.push(`${key}: never acknowledged`); continue; }
        const n = byId.get(id) || 0;
        if (n !== 1) problems.push(`${key}: acknowledged id ${id} listed ${n} times`);
        const c = byContent.get(key) || 0;
        if (c !== 1) problems.push(`${key}: stored ${c} times`);
    }
    for (const [id, n] of byId) if (n > 1) problems.push(`id ${id} listed ${n} times`);
    for (const [content] of byContent)
        if (!keys.has(content)) problems.push(`stored message ${content} was never sent`);
    console.log(`${keys.size} keys, ${first} acknowledged first time, ${byId.size} messages stored`);
    for (const p of problems.slice(0, 20)) console.log(`PROBLEM ${p}`);
    if (problems.length > 20) console.log(`PROBLEM ... ${problems.length} in all`);
' "$b" "$PARLEY_TMP/b-retry.tsv" "$PARLEY_TMP/b-stored.jsonl")
lib_log "b: ${b_report%%$'\n'*}"
if grep -q '^PROBLEM' <<<"$b_report"; then
    while read -r line; do fail "b: ${line#PROBLEM }"; done < <(grep '^PROBLEM' <<<"$b_report")
else
    pass "b: every acknowledged append listed exactly once, every key stored exactly once"
fi

# =============================================================================
lib_log "c. database paused (SIGSTOP)"

req POST /api/agent-sessions '{"session_id":"c"}'
expect_eq "c: create session" "$R_STATUS" 201
# Each request is timed from the moment it is sent, so none may wait in the
# accept queue: half as many clients as workers leaves a worker free even
# while others finish a request's metrics write after the response.
load c -c $((workers / 2)) -d 12000 \
    -r "POST /api/agent-sessions/c/messages {\"role\":\"user\",\"content\":\"c-{c}-{i}\"}" \
    -r "GET /api/agent-sessions/c" \
    -r "GET /api/agent-sessions?limit=5" \
    -r "GET /api/agent-sessions/c/messages?limit=20"
sleep 1.5
# The pause begins once kill has returned: a request sent between reading
# the clock and the signal could still be answered, so the clock is read
# after it.
testdb_signal STOP
stop_ms=$TESTDB_SIGNALLED_MS
sleep 8
cont_ms=$(now_ms)
testdb_signal CONT
load_wait
c=$PARLEY_TMP/c.tsv
lib_log "c: $(count "$c" 1) requests: $(statuses "$c"); paused $((cont_ms - stop_ms)) ms"
during="\$3 >= $stop_ms && \$4 <= $cont_ms"
expect_eq "c: statuses of requests sent and answered during the pause" \
    "$(statuses "$c" "$during" | sed 's/:[0-9]*//g')" 503
if [ "$(count "$c" "$during")" -gt 0 ]; then
    pass "c: $(count "$c" "$during") requests answered during the pause"
else
    fail "c: no request was answered during the pause"
fi
expect_eq "c: 503s without Retry-After: 1" "$(count "$c" '$5 == 503 && $6 != "1"')" 0
expect_eq "c: answers other than 2xx or 503" "$(count "$c" '$5 !~ /^2/ && $5 != 503')" 0
c_max=$(awk -F'\t' -v s="$stop_ms" '$4 > s { d = $4 - $3; if (d > m) m = d } END { print m + 0 }' "$c")
# A database call already running when the deadline passes is not
# interrupted (libmongoc 1.23 has no client-side timeout per operation):
# a try of a write may wait out socketTimeoutMS (half the deadline), a new
# server selection (the deadline over the 3 attempts) and socketTimeoutMS
# again (libmongoc's retryable write), and one may start just before the
# deadline.  docs/storage.md ("Retries") says so.
c_limit=$((deadline_ms + deadline_ms / 2 + deadline_ms / 3 + deadline_ms / 2 + 500))
expect_le "c: slowest answer of a request open during the pause" "$c_max" "$c_limit" ms
c_late=$(awk -F'\t' -v s="$stop_ms" -v d="$deadline_ms" '$4 > s && $4 - $3 > d + 1000 { n++ } END { print n + 0 }' "$c")
lib_log "c: answers later than the deadline + 1 s: $c_late of $(count "$c" "\$4 > $stop_ms")"
c_back=$(awk -F'\t' -v t="$cont_ms" '$3 >= t && $5 ~ /^2/ { if (!m || $4 < m) m = $4 } END { print m ? m - t : -1 }' "$c")
if [ "$c_back" -ge 0 ]; then
    expect_le "c: first 2xx after SIGCONT" "$c_back" 3000 ms
else
    fail "c: no request succeeded after SIGCONT"
fi

# =============================================================================
lib_log "d. a worker SIGKILLed under load"

req POST /api/agent-sessions '{"session_id":"d"}'
expect_eq "d: create session" "$R_STATUS" 201
for i in 1 2 3; do
    req POST /api/agent-sessions/d/messages "{\"role\":\"user\",\"content\":\"d$i\"}"
done
ngx0=$(nginx_lines)
before=$(worker_pids)
load d -c $((2 * workers)) -d 4000 \
    -r "GET /api/agent-sessions/d/messages?limit=50" \
    -r "GET /api/agent-sessions/d" \
    -r "GET /api/agent-sessions?limit=20" \
    -r "GET /healthz"
sleep 1.5
# A worker that holds a request, if one can be seen: an idle worker waits
# in ppoll(2) (syscall 271 on x86-64) for the listening socket.
victim=${before%% *}
for p in $before; do
    read -r nr _ </proc/"$p"/syscall 2>/dev/null || continue
    if [ "$nr" != 271 ]; then
        victim=$p
        break
    fi
done
read -r kill_uptime _ </proc/uptime
kill_ms=$(now_ms)
kill -KILL "$victim"
load_wait
after=$(worker_pids)
new_pid=
for p in $after; do
    case " $before " in *" $p "*) ;; *) new_pid=$p ;; esac
done
expect_eq "d: workers after the kill" "$(wc -w <<<"$after")" "$workers"
if [ -n "$new_pid" ]; then
    # When the kernel started it, against the kill, both since boot.
    read -r line </proc/"$new_pid"/stat
    read -ra fields <<<"${line##*) }"
    started=$(awk -v t="${fields[19]}" -v hz="$(getconf CLK_TCK)" -v k="$kill_uptime" \
        'BEGIN { printf "%d", (t / hz - k) * 1000 }')
    expect_le "d: new worker $new_pid started after the kill" "$started" 1000 ms
    read -r taken answered < <(first_served "$new_pid") || true
    if [ -n "${taken:-}" ]; then
        expect_le "d: new worker took its first request after the kill" $((taken - kill_ms)) 1000 ms
        lib_log "d: and answered it $((answered - kill_ms)) ms after the kill"
    else
        fail "d: new worker $new_pid served nothing"
    fi
else
    fail "d: no new worker after SIGKILL to $victim"
fi
d_bad=$(count "$PARLEY_TMP/d.tsv" '$5 !~ /^2/')
lib_log "d: $(count "$PARLEY_TMP/d.tsv" 1) requests: $(statuses "$PARLEY_TMP/d.tsv")"
expect_le "d: failed requests (only the one the worker held)" "$d_bad" 1 ""
expect_eq "d: failures that nginx saw the worker drop" "$(handed_over_failures "$ngx0")" "$d_bad"

# =============================================================================
lib_log "e. SIGHUP and nginx -s reload under load"

req POST /api/agent-sessions '{"session_id":"e"}'
expect_eq "e: create session" "$R_STATUS" 201
mixed=(
    -r "POST /api/agent-sessions/e/messages {\"role\":\"user\",\"content\":\"e-{c}-{i}\"}"
    -r "GET /api/agent-sessions/e/messages?limit=50&order=desc"
    -r "GET /api/agent-sessions/e"
    -r "GET /healthz"
)
before=$(worker_pids)
load e-hup -c $((2 * workers)) -d 4000 "${mixed[@]}"
sleep 1
kill -HUP "$supervisor"
sleep 1.5
kill -HUP "$supervisor"
load_wait
lib_log "e: SIGHUP x2: $(count "$PARLEY_TMP/e-hup.tsv" 1) requests: $(statuses "$PARLEY_TMP/e-hup.tsv")"
expect_eq "e: failed requests across two SIGHUPs" "$(count "$PARLEY_TMP/e-hup.tsv" '$5 !~ /^2/')" 0
# The retired workers finish what they hold and go; the new ones stay.
hup_ms=$(now_ms)
deadline=$((hup_ms + 5000))
while [ "$(wc -w <<<"$(worker_pids)")" -ne "$workers" ] && [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.05
done
after=$(worker_pids)
expect_eq "e: workers after SIGHUP" "$(wc -w <<<"$after")" "$workers"
for p in $after; do
    case " $before " in *" $p "*) fail "e: worker $p survived SIGHUP" ;; esac
done

nginx_workers() {
    pgrep -P "$NGINX_PID" | sort -n | tr '\n' ' '
}
before=$(nginx_workers)
load e-reload -c $((2 * workers)) -d 4000 "${mixed[@]}"
sleep 1
nginx_exec -p "$PARLEY_TMP/" -e "$PARLEY_TMP/nginx-error.log" -c "$PARLEY_TMP/nginx.conf" -s reload
sleep 1.5
nginx_exec -p "$PARLEY_TMP/" -e "$PARLEY_TMP/nginx-error.log" -c "$PARLEY_TMP/nginx.conf" -s reload
load_wait
lib_log "e: nginx -s reload x2: $(count "$PARLEY_TMP/e-reload.tsv" 1) requests: $(statuses "$PARLEY_TMP/e-reload.tsv")"
expect_eq "e: failed requests across two nginx reloads" "$(count "$PARLEY_TMP/e-reload.tsv" '$5 !~ /^2/')" 0
if [ "$(nginx_workers)" != "$before" ]; then
    pass "e: nginx workers replaced"
else
    fail "e: nginx workers not replaced by reload"
fi

# =============================================================================
lib_log "e. SIGTERM to parley under load"

req POST /api/agent-sessions '{"session_id":"t"}'
expect_eq "e: create session" "$R_STATUS" 201
# Slow requests: batches of 100 messages of 1000 bytes (the body is one
# argument of loadgen's, under Linux's 128 KiB limit), and pages of 200.
text=$(head -c 1000 /dev/zero | tr '\0' x)
batch=$(for k in $(seq 1 100); do printf '{"role":"user","content":"t-{c}-{i}-%d %s"},' "$k" "$text"; done)
batch="{\"messages\":[${batch%,}]}"
load term -c $((2 * workers)) -d 60000 \
    -r "POST /api/agent-sessions/t/messages $batch" \
    -r "GET /api/agent-sessions/t/messages?limit=200&order=desc" \
    -r "GET /api/agent-sessions/t" \
    -r "GET /healthz"
term_load=$LOAD_PID
ngx0=$(nginx_lines)
sleep 2
# The load goes on through the shutdown: a request nginx passes to parley
# must complete, one it cannot pass (the socket is gone) gets nginx's 502.
term_ms=$(now_ms)
kill -TERM "$supervisor"
rc=0
wait "$supervisor" || rc=$?
gone_ms=$(now_ms)
sleep 0.3
kill -USR1 "$term_load"
load_wait
t=$PARLEY_TMP/term.tsv
lib_log "e: $(count "$t" 1) requests: $(statuses "$t"); $(count "$t" "\$3 < $term_ms && \$4 > $term_ms") under way at SIGTERM: $(statuses "$t" "\$3 < $term_ms && \$4 > $term_ms")"
lib_log "e: nginx: $(upstream_errors "$ngx0" | tr -s ' \n' ' ')"
if [ "$(count "$t" "\$3 < $term_ms && \$4 > $term_ms")" -gt 0 ]; then
    pass "e: requests were under way at SIGTERM"
else
    fail "e: no request was under way at SIGTERM: the check proved nothing"
fi
expect_eq "e: requests parley had and did not complete (nginx's log)" "$(handed_over_failures "$ngx0")" 0
expect_eq "e: answers other than 2xx or 502" "$(count "$t" '$5 !~ /^2/ && $5 != 502')" 0
expect_eq "e: connections nginx found refused, one per 502" "$(refused_connects "$ngx0")" "$(count "$t" '$5 == 502')"
expect_eq "e: parley's exit status after SIGTERM" "$rc" 0
expect_le "e: parley gone after SIGTERM in" $((gone_ms - term_ms)) 10000 ms
if grep -q 'shutdown timeout' "$PARLEY_TMP/parley.log"; then
    fail "e: workers had to be killed at the shutdown timeout"
else
    pass "e: every worker left on its own"
fi
if [ -e "$PARLEY_SOCKET" ]; then fail "e: socket $PARLEY_SOCKET left behind"; else pass "e: socket removed"; fi
# nginx's own 502 with parley gone: under /v1 in OpenAI's shape.
req GET /v1/conversations/conv_x
expect_eq "e: /v1 with parley gone" "$R_STATUS" 502
expect_eq "e: /v1 502 Retry-After" "$R_RETRY_AFTER" 1
expect_eq "e: /v1 502 body" "$R_BODY" \
    '{"error":{"message":"the application is not reachable","type":"server_error","param":null,"code":"bad_gateway"}}'

if [ "${#FAILED[@]}" -gt 0 ]; then
    lib_log "${#FAILED[@]} checks failed:"
    for f in "${FAILED[@]}"; do
        printf '  %s\n' "$f" >&2
    done
    exit 1
fi
lib_log "all fault checks passed"
