#!/usr/bin/env bash
# tests/indexes.sh — index management never fails a request.  Two parley
# hosts of 8 workers each (two supervisors on one database, behind one
# nginx upstream) start at the same moment under a load of conversation
# turns (session create + appends) and session lists, twice:
#
#   empty:   on an empty database: both supervisors build every index at
#            once (createIndexes joins a build under way);
#   upgrade: on a database holding the indexes of the previous parley
#            (user_updated, user_status_updated, user_created on sessions,
#            user_session on messages): both build the new ones and drop
#            the old ones at once (listIndexes first; a drop that meets the
#            other host's build is refused, 12587, and retried).
#
# The load runs until both hosts log "indexes ready" and 192 requests more
# have been answered.  Each time: only 2xx and 503 (with Retry-After: 1)
# answered, only 2xx to what was sent once both hosts had their indexes,
# no 500 in either host's log, and the database ends with exactly
# parley's indexes.  On the dev DB too (no concurrency there, but
# the same path); on a real replica set with PARLEY_TEST_MONGOD.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init indexes --slow
loadgen=$top_builddir/tests/loadgen
lib_require_tools
test_need_built "$bin" "$loadgen"
TEST_LOGS=(host1.log:30 host2.log:30 nginx-error.log:10)
TEST_PARLEY_LOGS=(host1.log host2.log)

FAILED=()
pass() { lib_log "ok   $*"; }
fail() {
    lib_log "FAIL $*"
    FAILED+=("$*")
}

testdb_start
mongo_cmd_find || exit 1
secret=$(random_hex 48)
# The zones nginx/parley.conf uses: a rate no test reaches, and a
# connection key unique to each request (all the load is from 127.0.0.1).
cat >"$PARLEY_TMP/http.conf" <<EOF
limit_req_zone \$binary_remote_addr zone=parley_per_client:1m rate=100000r/s;
limit_conn_zone \$request_id zone=parley_conn_per_client:1m;
EOF

# The indexes of parley before this version, by name and keys.
legacy_indexes() { # legacy_indexes DB
    mongo_cmd "$TESTDB_URI" "$1" '{"createIndexes":"sessions","indexes":[
        {"key":{"user_id":1,"session_id":1},"name":"user_session_id","unique":true},
        {"key":{"user_id":1,"updated_at":-1},"name":"user_updated"},
        {"key":{"user_id":1,"status":1,"updated_at":-1},"name":"user_status_updated"},
        {"key":{"status":1,"last_activity_at":1},"name":"status_activity"},
        {"key":{"user_id":1,"created_at":-1},"name":"user_created"},
        {"key":{"created_at":1},"name":"created"}]}' >/dev/null &&
        mongo_cmd "$TESTDB_URI" "$1" '{"createIndexes":"messages","indexes":[
        {"key":{"session_uuid":1,"seq":1},"name":"session_seq","unique":true},
        {"key":{"user_id":1,"session_uuid":1},"name":"user_session"}]}' >/dev/null
}

# index_names DB COLL: the collection's index names, sorted, one line.
index_names() {
    "$NODE" -e '
        const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
        console.log(r.cursor.firstBatch.map((i) => i.name).sort().join(" "));' \
        < <(mongo_cmd "$TESTDB_URI" "$1" "{\"listIndexes\":\"$2\"}")
}

# served_after FILE MS: 192 requests sent after MS have been answered.
served_after() {
    [ "$(awk -F'\t' -v t="$2" '$3 > t { n++ } END { print n + 0 }' "$1")" -ge 192 ]
}

round() {
    local name=$1 db h confs=() pids=() load_pid st
    testdb_name "parley_ix_$name"
    db=$TESTDB_NAME
    [ "$name" != upgrade ] || legacy_indexes "$db" || { fail "$name: seeding the old indexes"; return; }
    for h in 1 2; do
        (
            umask 077
            cat >"$PARLEY_TMP/host$h-$name.conf" <<EOF
listen = unix:$PARLEY_TMP/host$h-$name.sock
socket_mode = 0666
workers = 8
# The load is one user's: no per-user in-flight limit here
# (tests/limits.sh tests it).
user_max_inflight = 1024
user_max_bulk = 1024
mongodb_uri = $TESTDB_URI
mongodb_database = $db
jwt_secret = $secret
log_level = info
EOF
        )
        confs+=("$PARLEY_TMP/host$h-$name.conf")
    done
    port=$(free_port)
    nginx_conf_write "$PARLEY_TMP" "$port" "$PARLEY_TMP/host1-$name.sock" "$PARLEY_TMP/http.conf"
    sed -i "s|server unix:$PARLEY_TMP/host1-$name.sock;|&\n        server unix:$PARLEY_TMP/host2-$name.sock;|" "$PARLEY_TMP/nginx.conf"
    nginx_test "$PARLEY_TMP"
    nginx_start "$PARLEY_TMP"
    token=$("$bin" token --sub "ix-$name" -c "${confs[0]}")
    # Both hosts at once; the load starts the moment both sockets accept.
    for h in 1 2; do
        lib_spawn "host$h" "$PARLEY_TMP/host$h.log" "$bin" serve -c "${confs[h - 1]}"
        pids+=("$LIB_LAST_PID")
    done
    for h in 1 2; do
        lib_poll 30 unix_accepts "$PARLEY_TMP/host$h-$name.sock" "${pids[h - 1]}" ||
            { fail "$name: host $h did not accept"; return; }
    done
    # Until both hosts have their indexes, and 12 more requests a client
    # after that (at most a minute).
    lib_spawn "loadgen $name" "$PARLEY_TMP/loadgen.log" \
        "$loadgen" -H "Authorization: Bearer $token" -o "$PARLEY_TMP/$name.tsv" -c 16 -w 50 -d 60000 \
        -r "POST /api/agent-sessions/conversation {\"session_id\":\"$name-{c}\",\"messages\":[{\"role\":\"user\",\"content\":\"turn {i}\"}]}" \
        -r "GET /api/agent-sessions?limit=5" \
        "http://127.0.0.1:$port"
    load_pid=$LIB_LAST_PID
    for h in 1 2; do
        lib_poll 60 grep -q '"indexes ready"' "$PARLEY_TMP/host$h.log" ||
            fail "$name: host $h never logged 'indexes ready'"
    done
    ready_ms=$(date +%s%3N)
    lib_poll 60 served_after "$PARLEY_TMP/$name.tsv" "$ready_ms" || true
    kill -USR1 "$load_pid"
    wait "$load_pid" || fail "$name: loadgen exited with $?"
    st=$(awk -F'\t' '{ n[$5]++ } END { for (s in n) printf "%s:%d ", s, n[s] }' "$PARLEY_TMP/$name.tsv")
    lib_log "$name: $(wc -l <"$PARLEY_TMP/$name.tsv") requests: $st"
    if awk -F'\t' '$5 !~ /^2/ && $5 != 503 { bad = 1 } END { exit !bad }' "$PARLEY_TMP/$name.tsv"; then
        fail "$name: answers other than 2xx and 503: $st"
    else
        pass "$name: only 2xx and 503"
    fi
    if awk -F'\t' '$5 == 503 && $6 != "1" { bad = 1 } END { exit !bad }' "$PARLEY_TMP/$name.tsv"; then
        fail "$name: a 503 without Retry-After: 1"
    fi
    if awk -F'\t' -v t="$ready_ms" '$3 > t && $5 !~ /^2/ { bad = 1 } END { exit !bad }' "$PARLEY_TMP/$name.tsv"; then
        fail "$name: an answer other than 2xx to a request sent once both hosts had their indexes"
    fi
    if awk -F'\t' '$5 ~ /^2/ { ok = 1 } END { exit !ok }' "$PARLEY_TMP/$name.tsv"; then
        pass "$name: served once the indexes were made"
    else
        fail "$name: no 2xx at all"
    fi
    lib_stop "${pids[@]}" "$NGINX_PID"
    for h in 1 2; do
        if grep -qE '"msg":"[A-Z]+ [^ ]+ 500 ' "$PARLEY_TMP/host$h.log"; then
            fail "$name: host $h answered 500"
        fi
        lib_log "$name: host $h: $(grep -cE '"msg":"indexes not made yet' "$PARLEY_TMP/host$h.log" || true) failed index rounds logged"
        mv "$PARLEY_TMP/host$h.log" "$PARLEY_TMP/host$h-$name.log"
    done
    st=$(index_names "$db" sessions)
    [ "$st" = "_id_ created dirty status_activity user_created_id user_session_id user_status_created_id user_status_updated_id user_updated_id" ] &&
        pass "$name: the sessions indexes: $st" || fail "$name: the sessions indexes: $st"
    st=$(index_names "$db" messages)
    [ "$st" = "_id_ session_item_id session_seq user_session_role_seq user_session_seq" ] &&
        pass "$name: the messages indexes: $st" || fail "$name: the messages indexes: $st"
}

round empty
round upgrade
TEST_PARLEY_LOGS=(host1-empty.log host2-empty.log host1-upgrade.log host2-upgrade.log)

if [ "${#FAILED[@]}" -gt 0 ]; then
    lib_log "${#FAILED[@]} checks failed:"
    printf '  %s\n' "${FAILED[@]}" >&2
    exit 1
fi
lib_log "all index checks passed on the $(testdb_describe)"
