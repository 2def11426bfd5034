#!/usr/bin/env bash
# tests/failover.sh — the primary of a real 3-member replica set goes away
# under load, three ways, and nothing parley acknowledged is lost.  Needs a
# real mongod (PARLEY_TEST_MONGOD; skipped, 77, on the dev DB, which has no
# replica set) and runs on a set of its own (electionTimeoutMillis 2000),
# with parley's default write concern (the URI names neither w nor
# journal: w=majority, journal=true are parley's defaults).
#
# The load (tests/loadgen, every request recorded): 5 clients append keyed
# messages (client_message_id) to a session each, 1 creates sessions, 2
# PATCH a session each.  Each fault, in turn:
#
#   a. stepdown: replSetStepDown on the primary;
#   b. kill: SIGKILL of the primary, restarted on its data 3 s later;
#   c. stop: SIGSTOP of the primary for 8 s (4 election timeouts), then
#      SIGCONT: it must step down and roll back nothing acknowledged.
#
# and for each: no answer but 2xx and 503, every 503 with Retry-After: 1
# and sent before parley could know the new primary (no later than 2 s
# after the harness saw it take a w:majority write, which is what parley's
# write concern needs: a secondary that was fetching from a paused primary
# keeps a newly elected one from a majority for seconds) and answered after
# the fault; a 2xx answered within 2 s of that; the same supervisor and
# workers throughout.  The figures are printed per fault.
#
# Then every 503'd append is sent again with its key until it is stored,
# every session is listed page by page, and: every acknowledged append is
# listed exactly once with the id and seq it was answered with, every key
# is stored exactly once, no seq of a session was handed to two messages
# and each client's acknowledged seqs only grow, every acknowledged create
# is listed, and no two acknowledged PATCHes of a session got one version.
#
# Beside parley, tests/mongo_probe runs parley's kinds of operation on the
# same set and records every error the set answers (with retryWrites on,
# as parley, and off) and what parley makes of it: none may be a 500.
# parley's log may hold no 500 either.  About 2 minutes on 2 cores.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init failover --slow
if [ -z "${PARLEY_TEST_MONGOD:-}" ]; then
    echo "failover: skipped: needs a real replica set (set PARLEY_TEST_MONGOD)"
    exit 77
fi
loadgen=$top_builddir/tests/loadgen
probe=$top_builddir/tests/mongo_probe
lib_require_tools
test_need_built "$bin" "$loadgen" "$probe"
test_need_tools curl

FAILED=()
now_ms() { date +%s%3N; }
pass() { lib_log "ok   $*"; }
fail() {
    lib_log "FAIL $*"
    FAILED+=("$*")
}

deadline_ms=4000
# A worker for each client: what is measured is the database's failover,
# not requests waiting in the accept queue behind slow ones.
workers=8
clients=8
testdb_prepare --own
testdb_up
testdb_name parley_failover
secret=$(random_hex 48)
conf=$PARLEY_TMP/parley.conf
(
    umask 077
    cat >"$conf" <<EOF
# Written by tests/failover.sh
listen = unix:$PARLEY_TMP/parley.sock
socket_mode = 0666
workers = $workers
# The load is one user's, many clients at once: no per-user in-flight
# limit here (tests/limits.sh tests it).
user_max_inflight = 1024
user_max_bulk = 1024
mongodb_uri = $TESTDB_URI
mongodb_database = $TESTDB_NAME
jwt_secret = $secret
log_level = info
request_deadline_ms = $deadline_ms
EOF
)
# The zones nginx/parley.conf uses: a rate no test reaches, and a
# connection key unique to each request (all the load is from 127.0.0.1).
cat >"$PARLEY_TMP/http.conf" <<EOF
limit_req_zone \$binary_remote_addr zone=parley_per_client:1m rate=100000r/s;
limit_conn_zone \$request_id zone=parley_conn_per_client:1m;
EOF
"$bin" check-config -c "$conf" | grep '^# database settings' >"$PARLEY_TMP/settings"
lib_log "$(cat "$PARLEY_TMP/settings")"
grep -q ' w=majority journal=true ' "$PARLEY_TMP/settings" ||
    fail "check-config does not say w=majority journal=true"
parley_start "$bin" "$conf" "$PARLEY_TMP/parley.log"
supervisor=$PARLEY_PID
port=$(free_port)
nginx_conf_write "$PARLEY_TMP" "$port" "$PARLEY_SOCKET" "$PARLEY_TMP/http.conf"
nginx_test "$PARLEY_TMP"
nginx_start "$PARLEY_TMP"
url=http://127.0.0.1:$port
wait_http "$url/readyz" 30

user=failover-$(random_hex 8)
token=$("$bin" token --sub "$user" --ttl 3600 -c "$conf")
auth="Authorization: Bearer $token"

lib_spawn mongo_probe "$PARLEY_TMP/probe.log" \
    "$probe" "$TESTDB_URI" "${TESTDB_NAME}_probe" "$PARLEY_TMP/probe.jsonl"
probe_pid=$LIB_LAST_PID

worker_pids() {
    local p
    for p in $(pgrep -P "$supervisor"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = parley-indexer ] || echo "$p"
    done | sort -n | tr '\n' ' ' | sed 's/ *$//'
}

for c in $(seq 0 $((clients - 1))); do
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "$auth" \
        -H 'Content-Type: application/json' -d "{\"session_id\":\"f$c\"}" \
        "$url/api/agent-sessions")
    [ "$status" = 201 ] || { lib_fail "creating session f$c answered $status"; exit 1; }
done
start_workers=$(worker_pids)

# member_primary I: member I says it is primary (it is not asked when
# stopped: a paused server would hold the question for seconds).
member_primary() {
    mongo_cmd "$RS_HOST:${RS_PORTS[$1]}" admin '{"isMaster":1}' 2>/dev/null |
        grep -q '"ismaster" : true'
}

# majority_writable I: member I acknowledges a write with w:majority (for
# lib_poll; sets WRITABLE_MS).
majority_writable() {
    local out
    out=$(mongo_cmd "$RS_HOST:${RS_PORTS[$1]}" parley_failover_harness \
        '{"insert":"w","documents":[{"w":1}],"writeConcern":{"w":"majority","wtimeout":250}}' 2>/dev/null) ||
        return 1
    ! grep -q writeConcernError <<<"$out" || return 1
    WRITABLE_MS=$(now_ms)
}

# new_primary OLD: a member other than OLD is primary (for lib_poll; sets
# NEW_PRIMARY and NEW_PRIMARY_MS).
new_primary() {
    local i
    for i in "${!RS_PORTS[@]}"; do
        [ "$i" != "$1" ] || continue
        if member_primary "$i"; then
            NEW_PRIMARY=$i
            NEW_PRIMARY_MS=$(now_ms)
            return 0
        fi
    done
    return 1
}

# One fault under load.  Writes $PARLEY_TMP/NAME.tsv (the load) and
# NAME.times (fault and new-primary times).
run_fault() {
    local name=$1 old fault_ms np_ms load_pid rollbacks before
    lib_spawn "loadgen $name" "$PARLEY_TMP/loadgen.log" \
        "$loadgen" -H "$auth" -o "$PARLEY_TMP/$name.tsv" -c "$clients" -g "$clients" -w 100 \
        -d 120000 \
        -r "POST /api/agent-sessions/f{g}/messages {\"role\":\"user\",\"content\":\"$name-{c}-{i}\",\"client_message_id\":\"$name-{c}-{i}\"}" \
        -r "POST /api/agent-sessions/f{g}/messages {\"role\":\"user\",\"content\":\"$name-{c}-{i}\",\"client_message_id\":\"$name-{c}-{i}\"}" \
        -r "POST /api/agent-sessions/f{g}/messages {\"role\":\"assistant\",\"content\":\"$name-{c}-{i}\",\"client_message_id\":\"$name-{c}-{i}\"}" \
        -r "POST /api/agent-sessions/f{g}/messages {\"role\":\"user\",\"content\":\"$name-{c}-{i}\",\"client_message_id\":\"$name-{c}-{i}\"}" \
        -r "POST /api/agent-sessions/f{g}/messages {\"role\":\"tool\",\"content\":\"$name-{c}-{i}\",\"client_message_id\":\"$name-{c}-{i}\"}" \
        -r "POST /api/agent-sessions {\"session_id\":\"$name-c{c}-{i}\"}" \
        -r "PATCH /api/agent-sessions/f{g} {\"description\":\"$name-{c}-{i}\"}" \
        -r "PATCH /api/agent-sessions/f{g} {\"description\":\"$name-{c}-{i}\"}" \
        "$url"
    load_pid=$LIB_LAST_PID
    sleep 2
    rs_has_primary || { lib_fail "$name: no primary before the fault"; exit 1; }
    old=$RS_PRIMARY
    before=$(grep -ci 'rollback' "$RS_DIR/mongod-${RS_PORTS[$old]}.log" || true)
    case $name in
    stepdown)
        fault_ms=$(now_ms)
        mongo_cmd "$RS_HOST:${RS_PORTS[$old]}" admin \
            '{"replSetStepDown":10,"secondaryCatchUpPeriodSecs":5}' >/dev/null 2>&1 || true
        ;;
    kill)
        rs_signal KILL "$old"
        fault_ms=$TESTDB_SIGNALLED_MS
        ;;
    stop)
        rs_signal STOP "$old"
        fault_ms=$TESTDB_SIGNALLED_MS
        ;;
    esac
    # What parley can serve from is a primary that acknowledges a write
    # with w=majority (its write concern): elected is not enough when a
    # secondary still waits on the old primary (paused) for its oplog.
    if ! lib_poll 30 new_primary "$old"; then
        fail "$name: no new primary within 30 s"
        elected_ms=$(now_ms)
        np_ms=$elected_ms
    else
        elected_ms=$NEW_PRIMARY_MS
        if lib_poll 30 majority_writable "$NEW_PRIMARY"; then
            np_ms=$WRITABLE_MS
        else
            fail "$name: the new primary took no w:majority write within 30 s"
            np_ms=$(now_ms)
        fi
    fi
    case $name in
    kill)
        sleep 3
        rs_up 60 || fail "kill: the killed member did not come back"
        ;;
    stop)
        sleep $((8 - (np_ms - fault_ms) / 1000 > 0 ? 8 - (np_ms - fault_ms) / 1000 : 0))
        rs_signal CONT "$old"
        lib_poll 60 rs_healthy || fail "stop: the set did not become healthy after SIGCONT"
        ;;
    stepdown)
        lib_poll 60 rs_healthy || fail "stepdown: the set did not become healthy"
        ;;
    esac
    sleep 3
    kill -USR1 "$load_pid"
    wait "$load_pid" || { lib_fail "loadgen exited with $?"; exit 1; }
    rollbacks=$(($(grep -ci 'rollback' "$RS_DIR/mongod-${RS_PORTS[$old]}.log" || true) - before))
    printf '%s %s %s %s %s %s\n' "$fault_ms" "$np_ms" "$old" "$NEW_PRIMARY" "$rollbacks" "$elected_ms" \
        >"$PARLEY_TMP/$name.times"
    lib_log "$name: member $old was primary; member $NEW_PRIMARY elected $((elected_ms - fault_ms)) ms after the fault, took w:majority writes after $((np_ms - fault_ms)) ms; $rollbacks rollback lines in the old primary's log"
    if [ "$(worker_pids)" = "$start_workers" ] && lib_alive "$supervisor"; then
        pass "$name: same supervisor and workers (no restart)"
    else
        fail "$name: parley restarted: workers $(worker_pids), were $start_workers"
    fi
}

for fault in stepdown kill stop; do
    lib_log "fault: $fault"
    run_fault "$fault"
done
kill -USR1 "$probe_pid"
lib_poll 30 lib_all_gone "$probe_pid" || true

# Every append that got no 2xx is sent again with its key until stored.
: >"$PARLEY_TMP/resent.tsv"
resend_deadline=$(($(now_ms) + 60000))
for fault in stepdown kill stop; do
    while IFS=$'\t' read -r c i _ _ status _; do
        [ "$c" -lt 5 ] || continue
        case $status in 200 | 201) continue ;; esac
        key=$fault-$c-$i
        while :; do
            out=$(curl -s -m 20 -H "$auth" -H 'Content-Type: application/json' \
                -w '\n%{http_code}' -d "{\"role\":\"user\",\"content\":\"$key\",\"client_message_id\":\"$key\"}" \
                "$url/api/agent-sessions/f$c/messages")
            code=${out##*$'\n'}
            case $code in 200 | 201) break ;; esac
            if [ "$(now_ms)" -ge "$resend_deadline" ]; then
                fail "resending $key still answers $code"
                break
            fi
            sleep 0.25
        done
        id=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' <<<"${out%$'\n'*}")
        seq=$(sed -n 's/.*"seq":\([0-9]*\).*/\1/p' <<<"${out%$'\n'*}")
        printf '%s\t%s\t%s\t%s\t%s\n' "$key" "$code" "${id:--}" "$c" "${seq:--}" >>"$PARLEY_TMP/resent.tsv"
    done <"$PARLEY_TMP/$fault.tsv"
done

# Every session's messages, and every session, page by page.
: >"$PARLEY_TMP/messages.jsonl"
for c in $(seq 0 4); do
    offset=0
    while :; do
        body=$(curl -s -m 20 -H "$auth" "$url/api/agent-sessions/f$c/messages?limit=200&offset=$offset")
        printf '%s\n' "$body" >>"$PARLEY_TMP/messages.jsonl"
        grep -q '"has_more":true' <<<"$body" || break
        offset=$((offset + 200))
    done
done
: >"$PARLEY_TMP/sessions.jsonl"
offset=0
while :; do
    body=$(curl -s -m 20 -H "$auth" "$url/api/agent-sessions?limit=200&offset=$offset")
    printf '%s\n' "$body" >>"$PARLEY_TMP/sessions.jsonl"
    grep -q '"has_more":true' <<<"$body" || break
    offset=$((offset + 200))
done

report=$("$NODE" "$top_srcdir/tests/failover.mjs" "$PARLEY_TMP" "$deadline_ms")
printf '%s\n' "$report" | grep -v '^PROBLEM' >&2
while read -r line; do
    fail "${line#PROBLEM }"
done < <(grep '^PROBLEM' <<<"$report" || true)

n5xx=$(grep -cE '"msg":"[A-Z]+ [^ ]+ 50[0-24-9] ' "$PARLEY_TMP/parley.log" || true)
if [ "$n5xx" -gt 0 ]; then
    fail "parley's log: $n5xx answers 5xx other than 503"
fi

if [ "${#FAILED[@]}" -gt 0 ]; then
    lib_log "${#FAILED[@]} checks failed:"
    printf '  %s\n' "${FAILED[@]}" >&2
    exit 1
fi
lib_log "all failover checks passed"
