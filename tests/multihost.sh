#!/usr/bin/env bash
# tests/multihost.sh — two parley hosts behind one nginx upstream, run by
# `make check`.
#
# Each "host" is a network namespace the test makes, with a veth pair to the
# root namespace and a private address of its own:
#
#   root namespace                         parley-mh-RUN-1 (host 1)
#     10.213.X.1/30 ── veth ──────────────── 10.213.X.2/30  parley :9000
#     10.213.X.5/30 ── veth ──────────────── 10.213.X.6/30  parley :9000
#                                          parley-mh-RUN-2 (host 2)
#     the database on 10.213.X.1 (both hosts reach it through their default
#     route): the dev DB, or with PARLEY_TEST_MONGOD a 3-member replica set
#     whose members are known by that address
#     nginx on 127.0.0.1: a balanced server (upstream of both hosts, with
#     the repo's nginx/parley.conf) and one server straight to each host
#
# X is picked per run among /24s of 10.213.0.0/16 that no interface or
# route uses; nothing else on the machine is touched.  The namespaces and
# links are deleted at exit, failure or not.
#
# Checks:
#   1. a session, a message and a memory entry written through host 1 are
#      read through host 2 and the other way round;
#   2. under load (tests/multihost-load.mjs: PUT/GET/DELETE memory, POST
#      messages with an Idempotency-Key, GET session, 12 clients), both hosts
#      serve; then host 1's supervisor and workers are SIGKILLed: every
#      idempotent request keeps succeeding (nginx passes it to host 2, even
#      one in flight), only POSTs in flight may fail (502, at most one per
#      client), and sent again with their key none is stored twice;
#   3. host 1 started again takes balanced traffic within fail_timeout (5 s)
#      plus a margin.
# It prints the numbers: requests, retries, failures, time to come back.
#
# Needs root (CAP_NET_ADMIN) and iproute2's `ip`, plus what tests/e2e.sh
# needs (nginx, node, curl).  PARLEY_TEST_QUICK=1 (make distcheck) skips it
# (77); otherwise a missing tool or an unusable `ip netns` is a failure.
#
# shellcheck disable=SC2317 # functions run through lib_poll and the trap
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init multihost --slow
loadjs=$top_srcdir/tests/multihost-load.mjs
clients=12
fail_timeout=5
lib_require_tools
test_need_built "$bin"
test_need_tools curl
IP=$(PATH="$PATH:/usr/sbin:/sbin" command -v ip || true)
[ -n "$IP" ] || lib_fail "ip not found: install iproute2 (scripts/setup does)" || exit 1
TEST_LOGS=(h1.log:30 h2.log:30 nginx-error.log:30 load.out:5)
TEST_PARLEY_LOGS=(h1.log h2.log)
TEST_CLEANUP=(net_down)

NETNS_MADE=()
LINKS_MADE=()

net_down() {
    local ns link pid
    for ns in "${NETNS_MADE[@]}"; do
        # Only what this run started can be in its own namespaces.
        for pid in $("$IP" netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
    done
    for link in "${LINKS_MADE[@]}"; do
        "$IP" link del "$link" 2>/dev/null || true
    done
    for ns in "${NETNS_MADE[@]}"; do
        "$IP" netns del "$ns" 2>/dev/null || true
    done
    NETNS_MADE=()
    LINKS_MADE=()
}


# --- the test network -----------------------------------------------------------

run=$(random_hex 4)
subnet=
for _ in $(seq 1 40); do
    x=$(($(od -An -tu1 -N1 /dev/urandom | tr -d ' ') % 254 + 1))
    # A wider route (a default, a 10/8) does not matter: the test's /30s
    # are more specific, and only the test's own addresses are used.
    if [ -z "$("$IP" -4 addr show to "10.213.$x.0/24")" ] &&
        [ -z "$("$IP" -4 route show root "10.213.$x.0/24")" ]; then
        subnet=10.213.$x
        break
    fi
done
[ -n "$subnet" ] || lib_fail "no free /24 in 10.213.0.0/16 for the test network" || exit 1

gw=("" "$subnet.1" "$subnet.5") # root-namespace side of host N's link
addr=("" "$subnet.2" "$subnet.6") # host N's own address
ns=("" "parley-mh-$run-1" "parley-mh-$run-2")

# net_host N: namespace N with a veth pair to the root namespace.
net_host() {
    local n=$1 outer=pm${run}r$1 inner=pm${run}h$1
    if ! "$IP" netns add "${ns[n]}" 2>"$PARLEY_TMP/ip.err"; then
        cat "$PARLEY_TMP/ip.err" >&2
        lib_fail "cannot make a network namespace (needs root or CAP_NET_ADMIN; PARLEY_TEST_QUICK=1 skips this test)"
        return 1
    fi
    NETNS_MADE+=("${ns[n]}")
    "$IP" link add "$outer" type veth peer name "$inner"
    LINKS_MADE+=("$outer")
    "$IP" link set "$inner" netns "${ns[n]}"
    "$IP" addr add "${gw[n]}/30" dev "$outer"
    "$IP" link set "$outer" up
    "$IP" -n "${ns[n]}" link set lo up
    "$IP" -n "${ns[n]}" addr add "${addr[n]}/30" dev "$inner"
    "$IP" -n "${ns[n]}" link set "$inner" up
    "$IP" -n "${ns[n]}" route add default via "${gw[n]}"
}
net_host 1
net_host 2
lib_log "hosts ${addr[1]} (${ns[1]}) and ${addr[2]} (${ns[2]})"

# --- the shared database -------------------------------------------------------

# On the root namespace's side of host 1's link, where both hosts reach it
# (a replica set's members are known to each other and to the hosts by
# that address); its own, since no shared set listens there.
testdb_start --own --host "${gw[1]}"
testdb_name parley_mh
lib_log "database: $(testdb_describe)"
for n in 1 2; do
    for hp in $(testdb_hostports); do
        "$IP" netns exec "${ns[n]}" bash -c "exec 3<>/dev/tcp/${hp%:*}/${hp##*:}" ||
            lib_fail "host $n cannot reach the database at $hp" || exit 1
    done
done

# --- two parley hosts --------------------------------------------------------------

secret=$(random_hex 48)
database=$TESTDB_NAME
for n in 1 2; do
    (
        umask 077
        cat >"$PARLEY_TMP/h$n.conf" <<EOF
# Written by tests/multihost.sh: host $n
listen = ${addr[n]}:9000
workers = 3
# The conversation pool on a port of its own (upstream parley_conversation).
conversation_listen = ${addr[n]}:9001
conversation_workers = 1
# Every host names the same database; the options are those of docs/deployment.md's
# replica-set URI that a single dev DB can honour too.
mongodb_uri = $(testdb_uri 'w=majority&journal=true&readPreference=primary&retryWrites=true')
mongodb_database = $database
jwt_secret = $secret
log_level = info
# Twice the default: the dev DB is one node process, and on a loaded CI
# machine a request may wait on it for seconds; that is not what this test
# is about.  nginx's fastcgi_read_timeout (10 s) is still longer.
request_deadline_ms = 8000
# The load is one user's, 12 clients at once: no per-user limit here.
user_max_inflight = 1024
user_max_bulk = 1024
EOF
    )
done

HOST_PID=("" "" "")
# host_start N: parley serve inside namespace N; waits until it accepts.
host_start() {
    local n=$1
    lib_spawn "parley-h$n" "$PARLEY_TMP/h$n.log" \
        "$IP" netns exec "${ns[n]}" "$bin" serve -c "$PARLEY_TMP/h$n.conf"
    HOST_PID[n]=$LIB_LAST_PID
    if ! lib_poll 15 tcp_accepts "${addr[n]}" 9000 "${HOST_PID[n]}"; then
        lib_tail "$PARLEY_TMP/h$n.log"
        lib_fail "host $n did not accept on ${addr[n]}:9000 within 15 s"
        return 1
    fi
}
host_start 1
host_start 2

# The URI's options reached the driver on both hosts.
for n in 1 2; do
    grep -q 'database settings: .*readPreference=primary w=majority journal=true .*retryWrites=true' \
        "$PARLEY_TMP/h$n.log" ||
        lib_fail "host $n does not log the URI's settings (readPreference, w, journal, retryWrites)" ||
        exit 1
done

# --- nginx -----------------------------------------------------------------------

port=$(free_port)
port1=$(free_port)
port2=$(free_port)
mkdir -p "$PARLEY_TMP/tmp"
# The direct servers pass just what parley reads; the balanced one is the
# shipped snippet, unchanged.
direct_location() {
    cat <<EOF
        location / {
            fastcgi_pass $1:9000;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param REQUEST_URI \$request_uri;
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param CONTENT_TYPE \$content_type;
            fastcgi_param CONTENT_LENGTH \$content_length;
            fastcgi_param PARLEY_REQUEST_ID \$request_id;
        }
EOF
}
cat >"$PARLEY_TMP/nginx.conf" <<EOF
# Written by tests/multihost.sh.
worker_processes 2;
pid $PARLEY_TMP/nginx.pid;
error_log $PARLEY_TMP/nginx-error.log warn;
daemon off;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path $PARLEY_TMP/tmp/body;
    fastcgi_temp_path $PARLEY_TMP/tmp/fastcgi;
    proxy_temp_path $PARLEY_TMP/tmp/proxy;
    uwsgi_temp_path $PARLEY_TMP/tmp/uwsgi;
    scgi_temp_path $PARLEY_TMP/tmp/scgi;

    # parley.conf's rate- and connection-limit zones, keyed on an empty
    # value: nginx counts no request, since all the load comes from one
    # loopback client.
    map \$request_id \$parley_mh_nobody {
        default "";
    }
    limit_req_zone \$parley_mh_nobody zone=parley_per_client:1m rate=100r/s;
    limit_conn_zone \$parley_mh_nobody zone=parley_conn_per_client:1m;

    log_format multihost '\$msec \$http_x_load_id \$request_method \$status "\$upstream_addr" "\$upstream_status"';

    # As docs/deployment.md's "Several hosts" section has it.
    upstream parley {
        zone parley_upstream 64k;
        server ${addr[1]}:9000 max_fails=1 fail_timeout=${fail_timeout}s;
        server ${addr[2]}:9000 max_fails=1 fail_timeout=${fail_timeout}s;
    }
    upstream parley_conversation {
        zone parley_conversation_upstream 64k;
        server ${addr[1]}:9001 max_fails=1 fail_timeout=${fail_timeout}s;
        server ${addr[2]}:9001 max_fails=1 fail_timeout=${fail_timeout}s;
    }

    server {
        listen 127.0.0.1:$port;
        access_log $PARLEY_TMP/access.log multihost;
        include $top_srcdir/nginx/parley.conf;
    }

    server {
        listen 127.0.0.1:$port1;
$(direct_location "${addr[1]}")
    }

    server {
        listen 127.0.0.1:$port2;
$(direct_location "${addr[2]}")
    }
}
EOF
nginx_test "$PARLEY_TMP"
nginx_start "$PARLEY_TMP"
url=http://127.0.0.1:$port
url1=http://127.0.0.1:$port1
url2=http://127.0.0.1:$port2
wait_http "$url/healthz" 15
wait_http "$url1/healthz" 15
wait_http "$url2/healthz" 15

token=$("$bin" token -c "$PARLEY_TMP/h1.conf" --sub multihost-user --ttl 3600)
session=mh-$(random_hex 6)

# req URL METHOD PATH [BODY]: the status on line 1, the body after it.
req() {
    local body=${4:-}
    local args=(-s -m 10 -X "$2" -H "Authorization: Bearer $token" -w '\n%{http_code}\n')
    [ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "$1/api/agent-sessions$3" >"$PARLEY_TMP/req.out" || true
    tail -n 1 "$PARLEY_TMP/req.out"
    sed '$d' "$PARLEY_TMP/req.out"
}

# expect WANT_STATUS WHAT OUTPUT_OF_REQ: fails unless the status matches.
expect() {
    local got
    got=$(head -n 1 <<<"$3")
    [ "$got" = "$1" ] || {
        lib_fail "$2: status $got, expected $1: $(tail -n +2 <<<"$3" | head -c 300)"
        return 1
    }
}

# field NAME OUTPUT_OF_REQ: a top-level field of the JSON body.
field() {
    tail -n +2 <<<"$2" | "$NODE" -e '
        let s = ""; process.stdin.on("data", (d) => (s += d));
        process.stdin.on("end", () => {
            const v = JSON.parse(s)[process.argv[1]];
            console.log(typeof v === "string" ? v : JSON.stringify(v));
        });' "$1"
}

# --- 1. written through one host, read through the other --------------------------

out=$(req "$url1" POST "" "{\"session_id\":\"$session\",\"session_name\":\"multi-host\"}")
expect 201 "create through host 1" "$out"
uuid=$(field id "$out")
out=$(req "$url2" GET "/$session")
expect 200 "read through host 2" "$out"
[ "$(field id "$out")" = "$uuid" ] && [ "$(field session_name "$out")" = multi-host ] ||
    lib_fail "host 2 sees another session than host 1 wrote" || exit 1

out=$(req "$url2" POST "/$session/messages" '{"role":"user","content":"from host 2"}')
expect 201 "append through host 2" "$out"
msg=$(field id "$out")
out=$(req "$url1" GET "/$session/messages/$msg")
expect 200 "read the message through host 1" "$out"
[ "$(field content "$out")" = "from host 2" ] ||
    lib_fail "host 1 reads another message than host 2 wrote" || exit 1

out=$(req "$url1" PUT "/$session/memory/plan" '{"step":3}')
expect 200 "memory through host 1" "$out"
out=$(req "$url2" GET "/$session/memory/plan")
expect 200 "memory through host 2" "$out"
[ "$(field value "$out")" = '{"step":3}' ] ||
    lib_fail "host 2 reads another memory value than host 1 wrote" || exit 1
out=$(req "$url2" DELETE "/$session/memory/plan")
expect 204 "memory delete through host 2" "$out"
out=$(req "$url1" GET "/$session/memory/plan")
expect 404 "memory deleted, through host 1" "$out"
lib_log "check 1: session, message and memory written through one host are read through the other"

# --- 2. load, then host 1 dies ----------------------------------------------------

# The first message is not the load's.
out=$(req "$url" DELETE "/$session/clear-messages")
expect 200 "clear messages" "$out"

now() { date +%s.%N; }

# served HOST SINCE [STATUS_RE]: balanced requests logged after SINCE whose
# last upstream was HOST (with a status matching STATUS_RE, default any).
served() {
    awk -F'"' -v host="$1:9000" -v since="$2" -v re="${3:-.}" '
        { split($1, f, " "); if (f[1] + 0 <= since + 0) next
          n = split($2, u, ", "); if (u[n] == host && f[4] ~ re) c++ }
        END { print c + 0 }' "$PARLEY_TMP/access.log" 2>/dev/null || echo 0
}

# at_least N HOST SINCE [RE]: for lib_poll; gives up when the load ended.
at_least() {
    [ "$(served "$2" "$3" "${4:-.}")" -ge "$1" ] && return 0
    lib_alive "$LOAD_PID" || return 2
    return 1
}

stop_file=$PARLEY_TMP/load.stop
lib_spawn load "$PARLEY_TMP/load.out" "$NODE" "$loadjs" load --url "$url" \
    --token "$token" --session "$session" --concurrency "$clients" \
    --stop-file "$stop_file" --max-seconds 150 --out "$PARLEY_TMP/load.json"
LOAD_PID=$LIB_LAST_PID
t0=$(now)
lib_poll 30 at_least 100 "${addr[1]}" "$t0" '^2' &&
    lib_poll 30 at_least 100 "${addr[2]}" "$t0" '^2' ||
    lib_fail "the balanced server did not spread the load over both hosts" || exit 1

# SIGKILL for the supervisor and every worker at once: no drain, the
# requests they hold die with them.
mapfile -t victims < <(lib_descendants "${HOST_PID[1]}")
victims=("${HOST_PID[1]}" "${victims[@]}")
t_kill=$(now)
kill -KILL "${victims[@]}"
# In braces, so that bash does not report the job it reaps as "Killed".
{ wait "${HOST_PID[1]}"; } 2>/dev/null || true
lib_poll 5 lib_all_gone "${victims[@]}" || lib_fail "host 1 survived SIGKILL" || exit 1
t_dead=$(now)
lib_log "killed host 1 (pids ${victims[*]}) under load"

# Host 2 carries everything now, for longer than fail_timeout, so that
# nginx also tries the dead host again (and passes that request on too).
down_a_while() {
    at_least 500 "${addr[2]}" "$t_dead" '^2' || return $?
    awk -v a="$t_dead" -v b="$(now)" -v t="$fail_timeout" 'BEGIN { exit !(b - a > t + 1) }'
}
lib_poll $((fail_timeout + 30)) down_a_while ||
    lib_fail "host 2 did not take over the load" || exit 1
[ "$(http_status "$url1/healthz")" = 502 ] ||
    lib_fail "host 1 still answers after SIGKILL" || exit 1

# --- 3. host 1 comes back -----------------------------------------------------------

host_start 1
t_up=$(now)
lines_h1=$(wc -l <"$PARLEY_TMP/h1.log")
lib_poll $((fail_timeout + 10)) at_least 1 "${addr[1]}" "$t_up" '^2' ||
    lib_fail "host 1 took no balanced traffic within $((fail_timeout + 10)) s of coming back" ||
    exit 1
t_back=$(awk -F'"' -v host="${addr[1]}:9000" -v since="$t_up" '
    { split($1, f, " "); if (f[1] + 0 <= since + 0) next
      n = split($2, u, ", "); if (u[n] == host && f[4] ~ /^2/) { print f[1]; exit } }' \
    "$PARLEY_TMP/access.log")
lib_poll 30 at_least 100 "${addr[1]}" "$t_up" '^2' ||
    lib_fail "host 1 came back but does not keep taking traffic" || exit 1
touch "$stop_file"
load_done() { ! lib_alive "$LOAD_PID"; }
lib_poll 40 load_done || lib_fail "the load did not stop" || exit 1
wait "$LOAD_PID" || lib_fail "the load generator failed: $(tail -n 3 "$PARLEY_TMP/load.out")" ||
    exit 1

# --- the numbers ------------------------------------------------------------------

back_ms=$(awk -v a="$t_up" -v b="$t_back" 'BEGIN { printf "%d", (b - a) * 1000 }')
h1_lines_after=$(($(wc -l <"$PARLEY_TMP/h1.log") - lines_h1))

# From the load's results and nginx's log: prints the numbers, checks them,
# exits 1 on any failure.
rc=0
"$NODE" - "$PARLEY_TMP/load.json" "$PARLEY_TMP/access.log" "${addr[1]}:9000" \
    "${addr[2]}:9000" "$t_kill" "$t_dead" "$t_up" "$clients" "$fail_timeout" \
    "$back_ms" "$h1_lines_after" <<'EOF' || rc=1
const fs = require('fs');
const [loadFile, logFile, h1, h2, tKill, tDead, tUp, clients, failTimeout,
  backMs, h1LinesAfter] = process.argv.slice(2);
const say = (s) => console.error(`multihost: ${s}`);
let ok = true;
const fail = (s) => { say(`error: ${s}`); ok = false; };
const load = JSON.parse(fs.readFileSync(loadFile, 'utf8'));
const lines = fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
const byId = new Map();
// Requests that ended between the kill and the last process's death may
// still have been answered by host 1: counted as "before".
const phase = (t) => (t <= +tDead ? 'before' : t <= +tUp ? 'down' : 'after');
const perHost = { before: {}, down: {}, after: {} };
const retried = {};
let h1AnsweredDead = 0;
let retriedFailed = 0;
let inFlightRetried = 0;
for (const line of lines) {
  const m = /^(\S+) (\S+) (\S+) (\d+) "([^"]*)" "([^"]*)"/.exec(line);
  if (!m) continue;
  const [, msec, id, method, status, ups, upsStatus] = m;
  if (id === '-') continue;
  const t = +msec;
  const hosts = ups.split(', ');
  byId.set(id, { t, method, status: +status, hosts });
  const last = hosts[hosts.length - 1];
  // parley never answers 502 or 504 itself: from the last upstream, those
  // are nginx's word that it failed (reset, closed), logged when nginx got
  // to it, which on a loaded machine can be after the host was gone.
  const lastStatus = upsStatus.split(', ').pop();
  if (phase(t) === 'down' && last === h1 && lastStatus !== '502' && lastStatus !== '504') {
    h1AnsweredDead++;
  }
  const p = perHost[phase(t)];
  const name = last === h1 ? 'h1' : last === h2 ? 'h2' : last;
  p[name] = (p[name] || 0) + 1;
  if (hosts.length > 1) {
    retried[method] = (retried[method] || 0) + 1;
    if (+status >= 500) retriedFailed++;
    // Sent to host 1 before it died, answered by host 2: the requests
    // that were in flight at the kill (later ones are nginx trying the
    // dead host again after fail_timeout).
    if (hosts[0] === h1 && t > +tKill && t < +tDead + 1) inFlightRetried++;
  }
}
const retriedTotal = Object.values(retried).reduce((a, b) => a + b, 0);
const total = Object.values(load.counts).reduce((a, b) => a + b, 0);
const postFailures = load.failedPosts.map((f) => {
  const e = byId.get(f.id);
  return { key: f.key, status: f.status, hosts: e ? e.hosts.join(' ') : '?',
    msAfterKill: e ? Math.round((e.t - +tKill) * 1000) : null };
});
const show = JSON.stringify;

say(`load: ${total} requests in ${load.seconds} s by ${load.clients} clients; ${show(load.counts)}`);
say(`last upstream per phase (before kill / host 1 down / after restart): ${show(perHost)}`);
say(`nginx passed to the other host: ${show(retried)} (in flight at the kill: ${inFlightRetried}; failed anyway: ${retriedFailed})`);
say(`failed POSTs (in flight on host 1 at the kill): ${show(postFailures)}`);
say(`DELETE answered 404 after nginx sent it to both hosts: ${load.delete404.length}`);
say(`host 1 took balanced traffic again ${backMs} ms after it accepted (fail_timeout ${failTimeout} s); its log has ${h1LinesAfter} lines since`);

// Every idempotent request succeeded.
const failedIdempotent = load.unexpected.filter((u) => u.what !== 'POST message');
if (failedIdempotent.length) fail(`idempotent requests failed: ${show(failedIdempotent)}`);
// A DELETE answered 404 is fine only when nginx sent it to both hosts.
const unexplained = load.delete404.filter((id) => !(byId.get(id)?.hosts.length > 1));
if (unexplained.length) fail(`DELETE 404 that nginx did not resend: ${show(unexplained)}`);
// Only POSTs in flight on host 1 when it died failed, only with 502/504,
// at most one per client.
const postUnexpected = load.unexpected.filter((u) => u.what === 'POST message');
if (postUnexpected.length) fail(`POSTs failed with other than 502/504: ${show(postUnexpected)}`);
if (postFailures.length > +clients) {
  fail(`${postFailures.length} POSTs failed; at most one per client (${clients}) can be in flight`);
}
if (!postFailures.every((x) => x.hosts === h1 && x.msAfterKill !== null &&
    x.msAfterKill >= 0 && x.msAfterKill < 15000)) {
  fail(`a POST failed that was not in flight on host 1 when it died: ${show(postFailures)}`);
}
// nginx tried the dead host again after fail_timeout at least once, and
// passed that request on too; nothing it passed on failed.
if (retriedTotal < 1 || retriedFailed) {
  fail(`nginx passed ${retriedTotal} requests on, ${retriedFailed} of them failed`);
}
if (h1AnsweredDead) fail(`host 1 answered ${h1AnsweredDead} requests while it was dead`);
if (+h1LinesAfter < 100) fail(`host 1's log shows only ${h1LinesAfter} lines after it came back`);
if (+backMs > (+failTimeout + 2) * 1000) {
  fail(`host 1 took ${backMs} ms to take traffic again (fail_timeout ${failTimeout} s)`);
}
process.exit(ok ? 0 : 1);
EOF

# Every failed POST sent again with its key; every key stored once.
verify=$("$NODE" "$loadjs" verify --url "$url" --token "$token" --session "$session" \
    --in "$PARLEY_TMP/load.json") || {
    lib_log "error: $verify"
    rc=1
}
lib_log "messages after resending the failed POSTs with their keys: $verify"

# The servers that should be running still are (host 1's first run was
# killed on purpose, the load has ended).
for pid in "${HOST_PID[1]}" "${HOST_PID[2]}" "$NGINX_PID" $(testdb_pids); do
    if ! lib_alive "$pid"; then
        lib_log "error: a server (pid $pid) exited during the test"
        rc=1
    fi
done
[ "$rc" -eq 0 ] && echo "multihost: all checks passed"
exit "$rc"
