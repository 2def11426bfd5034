# shellcheck shell=bash
# scripts/lib.sh — shell functions shared by scripts/run, tests/e2e.sh and
# scripts/bench.  Source it from bash, then call lib_init:
#
#     . "$top_srcdir/scripts/lib.sh"
#     lib_init e2e              # temp dir + cleanup traps
#     devdb_start "$PARLEY_TMP"
#     ...
#
# Everything a script starts through these functions is recorded and stopped
# by stop_all (TERM, then KILL after PARLEY_STOP_TIMEOUT seconds, default 5),
# which lib_init arranges to run at exit.  Everything they write goes under
# one temp dir, $PARLEY_TMP, removed at exit unless PARLEY_KEEP_TMP=1.  Only
# loopback addresses are used.  Waits poll with a bound; nothing sleeps on a
# guess.
#
# Functions return non-zero (with a message on stderr) on failure, so they
# work under `set -e`; global results are set in variables because a function
# run in $(...) would start its processes in a subshell.
#
# Tools: NODE (default: node on PATH) and NGINX (default: nginx on PATH or in
# /usr/sbin); both may be set, as make check does.

# The source tree this file lives in; the nginx snippets and the dev DB
# launcher are read from it, never written.
PARLEY_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ -z "${NODE:-}" ]; then
    NODE=$(command -v node || true)
fi
if [ -z "${NGINX:-}" ]; then
    NGINX=$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx || true)
fi

PARLEY_TMP=${PARLEY_TMP:-}
LIB_PIDS=()   # every background process started, in start order
LIB_NAMES=()  # a name for each, for messages
LIB_TAG=parley

lib_log() {
    printf '%s: %s\n' "$LIB_TAG" "$*" >&2
}

lib_fail() {
    lib_log "error: $*"
    return 1
}

# lib_require_tools: fails unless node and nginx can be run.
lib_require_tools() {
    [ -n "$NODE" ] && [ -x "$(command -v "$NODE" || true)" ] ||
        lib_fail "node not found (set NODE=/path/to/node)" || return 1
    [ -n "$NGINX" ] && [ -x "$(command -v "$NGINX" || true)" ] ||
        lib_fail "nginx not found (set NGINX=/path/to/nginx)" || return 1
}

# lib_init [TAG]: makes $PARLEY_TMP and installs the cleanup traps (EXIT runs
# stop_all; INT and TERM exit 130/143, which runs it too).  A script that
# wants other signal behaviour sets its own INT/TERM traps afterwards.
lib_init() {
    LIB_TAG=${1:-parley}
    local base=${TMPDIR:-/tmp}
    # A unix socket path must stay under 108 bytes.
    [ "${#base}" -le 60 ] || base=/tmp
    PARLEY_TMP=$(mktemp -d "$base/parley-$LIB_TAG.XXXXXX") || return 1
    # nginx workers run as another user when nginx starts as root; they must
    # reach the sockets in here.  Nothing in here is secret from local users
    # but the config files, which are written 0600.
    chmod 0711 "$PARLEY_TMP"
    trap stop_all EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# random_hex N: N random lowercase hex characters (N even).
random_hex() {
    od -An -tx1 -N"$(($1 / 2))" /dev/urandom | tr -d ' \n'
}

# free_port: prints a TCP port on 127.0.0.1 that was free a moment ago (the
# kernel picks it).  Another process may take it before the caller binds it;
# on loopback in a test that is rare enough.
free_port() {
    "$NODE" -e '
        const s = require("net").createServer();
        s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# lib_spawn NAME LOG CMD...: starts CMD in the background with stdin from
# /dev/null and stdout+stderr appended to LOG; records it for stop_all and
# sets LIB_LAST_PID.
lib_spawn() {
    local name=$1 log=$2
    shift 2
    "$@" </dev/null >>"$log" 2>&1 &
    LIB_LAST_PID=$!
    LIB_PIDS+=("$LIB_LAST_PID")
    LIB_NAMES+=("$name")
}

lib_alive() {
    kill -0 "$1" 2>/dev/null
}

# lib_tail FILE [N]: the last N (default 40) lines of FILE to stderr, framed.
lib_tail() {
    local f=$1 n=${2:-40}
    [ -s "$f" ] || return 0
    printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2
    printf -- '----- end of %s -----\n' "$f" >&2
}

# lib_poll TIMEOUT CMD...: runs CMD every 0.1 s until it succeeds (0), it
# returns 2 (give up: what it waits for has died), or TIMEOUT seconds have
# passed.  Returns 0 on success, 1 otherwise.
lib_poll() {
    local timeout=$1 rc
    shift
    local deadline=$((SECONDS + timeout))
    while :; do
        rc=0
        "$@" || rc=$?
        [ "$rc" -eq 0 ] && return 0
        [ "$rc" -ne 2 ] || return 1
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# --- dev DB ----------------------------------------------------------------

# devdb_home: prints where the dev DB's node_modules/ and vendor/ live:
# $PARLEY_DEVDB_HOME, else scripts/devdb in the source tree, else (the tree
# is read-only and holds no install, as in make distcheck) a per-user cache.
devdb_home() {
    local home=${PARLEY_DEVDB_HOME:-$PARLEY_SRCDIR/scripts/devdb}
    if [ -z "${PARLEY_DEVDB_HOME:-}" ] && ! devdb_installed "$home" &&
        [ ! -w "$home" ]; then
        home=${XDG_CACHE_HOME:-$HOME/.cache}/parley/devdb
    fi
    printf '%s\n' "$home"
}

devdb_installed() {
    [ -d "$1/node_modules" ] && [ -n "$(ls -d "$1"/vendor/smartmongo-*/ 2>/dev/null)" ]
}

# devdb_install: runs scripts/devdb/install when the dev DB is not installed
# where devdb_home says (needs npm and the registry the first time only).
devdb_install() {
    local home
    home=$(devdb_home)
    devdb_installed "$home" && return 0
    lib_log "installing the dev DB into $home"
    PARLEY_DEVDB_HOME=$home "$PARLEY_SRCDIR/scripts/devdb/install" ||
        lib_fail "scripts/devdb/install failed"
}

# devdb_start DIR [--dbpath P]: starts the dev DB (in memory, or persisted
# under P) on a free loopback port, logging to DIR/devdb.log, and waits up to
# 15 s for its ready line.  Sets PARLEY_DEVDB_URI (mongodb://127.0.0.1:PORT)
# and PARLEY_DEVDB_PID.  DEVDB_HOST, when set, is the address to bind
# instead of 127.0.0.1 (tests/multihost.sh: an address of its own test
# network).
devdb_start() {
    local dir=$1
    shift
    local home out=$dir/devdb.out log=$dir/devdb.log
    home=$(devdb_home)
    devdb_installed "$home" ||
        lib_fail "dev DB not installed in $home (run scripts/devdb/install)" || return 1
    : >"$out"
    # stdout carries only the ready line; keep it apart from the log.
    PARLEY_DEVDB_HOME=$home "$NODE" "$PARLEY_SRCDIR/scripts/devdb/devdb.mjs" \
        --host "${DEVDB_HOST:-127.0.0.1}" --port 0 "$@" </dev/null >"$out" 2>>"$log" &
    PARLEY_DEVDB_PID=$!
    LIB_PIDS+=("$PARLEY_DEVDB_PID")
    LIB_NAMES+=(devdb)
    PARLEY_DEVDB_URI=
    if ! lib_poll 15 devdb_ready "$out" "$PARLEY_DEVDB_PID"; then
        lib_tail "$log"
        lib_fail "dev DB did not become ready within 15 s"
        return 1
    fi
    PARLEY_DEVDB_URI=$(sed -n 's/^devdb ready //p' "$out" | head -n 1)
    [ -n "$PARLEY_DEVDB_URI" ] || lib_fail "dev DB printed no URI" || return 1
}

devdb_ready() {
    grep -q '^devdb ready mongodb://' "$1" && return 0
    lib_alive "$2" || return 2
    return 1
}

# --- a real mongod: replica sets ---------------------------------------------
#
# rs_prepare picks the ports and the URI of a replica set, rs_up starts its
# members (or starts them again on their data) and waits for a primary:
#
#     rs_prepare "$PARLEY_TMP" 3    # RS_URI is known before anything runs
#     rs_up                         # members up, initiated, a primary
#     rs_signal KILL; rs_up         # every member killed, restarted on its data
#
# Every member is `$RS_MONGOD` (default $PARLEY_TEST_MONGOD, else mongod on
# PATH) on a free port of $RS_HOST (default 127.0.0.1) with its data in
# DIR/rs/PORT and its log in DIR/rs/mongod-PORT.log, a cache of 0.25 GB
# (three members must fit on a small machine), no unix socket (nothing is
# written outside DIR) and no diagnostic data collection (its CPU cost
# is not the test's).  The set is initiated with electionTimeoutMillis
# $RS_ELECTION_MS (default 2000, a fifth of MongoDB's default, so failover
# tests stay short), a heartbeat every quarter of it, and a heartbeat
# timeout as long as it (MongoDB's is 10 s: a SIGSTOPped member is seen
# down only after it, and a secondary that was replicating from it may
# wait that long, or longer, before it replicates from the new primary,
# which w:majority writes wait for).  RS_ARGS (an array)
# adds mongod flags (--profile 2, --auth --keyFile F, ...).  Members are
# started with lib_spawn, so stop_processes stops them; SIGTERM to all
# members at once shuts a set down in about 2 s.
#
# mongod is talked to with tests/mongo_cmd (a libmongoc client built with
# parley: no mongo shell or other driver needed); it works with any mongod
# from 4.4 on.

# Results for the callers, set by the functions below.
# shellcheck disable=SC2034
RS_MONGOD=
RS_HOST=127.0.0.1
RS_ELECTION_MS=2000
RS_ARGS=()
RS_NAME=parley
RS_DIR=
RS_PORTS=()
RS_PIDS=()
RS_URI=
RS_INITIATED=0
RS_PRIMARY=
MONGO_CMD=${MONGO_CMD:-}

# mongo_cmd_find: sets MONGO_CMD to tests/mongo_cmd of the build tree
# ($top_builddir when a test set it, else the tree this file is in).
mongo_cmd_find() {
    [ -z "$MONGO_CMD" ] || return 0
    local d
    for d in "${top_builddir:-}" "$PARLEY_SRCDIR"; do
        if [ -n "$d" ] && [ -x "$d/tests/mongo_cmd" ]; then
            MONGO_CMD=$d/tests/mongo_cmd
            return 0
        fi
    done
    lib_fail "tests/mongo_cmd not built (make builds it)"
}

# mongo_cmd TARGET DB JSON: runs one command (see tests/mongo_cmd.c) and
# prints the reply; TARGET is a URI, or HOST:PORT for that one server alone
# (directConnection).  Exit status 0 ok, 1 the server said no, 2 no answer.
mongo_cmd() {
    local target=$1
    case $target in
    mongodb://*) ;;
    *) target="mongodb://$target/?directConnection=true&serverSelectionTimeoutMS=2000" ;;
    esac
    "$MONGO_CMD" "$target" "$2" "$3"
}

# mongod_check BIN: fails unless BIN runs and is mongod 4.4 or later.
mongod_check() {
    local bin=$1 version major minor
    [ -x "$bin" ] || lib_fail "$bin: not an executable mongod" || return 1
    version=$("$bin" --version 2>&1 | sed -n 's/^db version v\([0-9][0-9.]*\).*/\1/p' | head -n 1)
    [ -n "$version" ] ||
        lib_fail "$bin --version does not say 'db version': $("$bin" --version 2>&1 | head -n 3)" ||
        return 1
    major=${version%%.*}
    minor=${version#*.}
    minor=${minor%%.*}
    [ "$major" -gt 4 ] || { [ "$major" -eq 4 ] && [ "$minor" -ge 4 ]; } ||
        lib_fail "$bin is mongod $version; 4.4 or later is needed" || return 1
    MONGOD_VERSION=$version
}

# rs_prepare DIR [MEMBERS]: picks MEMBERS (default 3) free ports on RS_HOST
# and sets RS_DIR, RS_PORTS and RS_URI; starts nothing.
rs_prepare() {
    local dir=$1 n=${2:-3} i hosts=()
    RS_MONGOD=${RS_MONGOD:-${PARLEY_TEST_MONGOD:-$(command -v mongod || true)}}
    mongod_check "$RS_MONGOD" || return 1
    mongo_cmd_find || return 1
    RS_DIR=$dir/rs
    mkdir -p "$RS_DIR"
    RS_PORTS=()
    RS_PIDS=()
    RS_INITIATED=0
    local port
    for ((i = 0; i < n; i++)); do
        port=$(free_port_on "$RS_HOST")
        # The kernel may hand the same free port out twice in a row.
        while [[ " ${RS_PORTS[*]} " == *" $port "* ]]; do
            port=$(free_port_on "$RS_HOST")
        done
        RS_PORTS+=("$port")
        RS_PIDS+=("")
        hosts+=("$RS_HOST:${RS_PORTS[i]}")
    done
    RS_URI="mongodb://$(
        IFS=,
        echo "${hosts[*]}"
    )/?replicaSet=$RS_NAME"
}

# free_port_on HOST: as free_port, on HOST.
free_port_on() {
    "$NODE" -e '
        const s = require("net").createServer();
        s.listen(0, process.argv[1], () => { console.log(s.address().port); s.close(); });' "$1"
}

# rs_member_start I: starts member I (from 0) on its data.
rs_member_start() {
    local i=$1 port=${RS_PORTS[$1]}
    mkdir -p "$RS_DIR/$port"
    lib_spawn "mongod-$port" "$RS_DIR/mongod-$port.log" \
        "$RS_MONGOD" --replSet "$RS_NAME" --bind_ip "$RS_HOST" --port "$port" \
        --dbpath "$RS_DIR/$port" --nounixsocket --wiredTigerCacheSizeGB 0.25 \
        --oplogSize 256 --setParameter diagnosticDataCollectionEnabled=false \
        "${RS_ARGS[@]}"
    RS_PIDS[i]=$LIB_LAST_PID
}

# rs_up [TIMEOUT]: starts every member that is not running, initiates the
# set the first time, and waits (up to TIMEOUT s, default 90) until one
# member is primary and every member is primary or secondary.  Sets
# RS_PRIMARY (the primary's index) and RS_UP_MS (wall-clock ms at which the
# primary started taking writes, from its log).
# shellcheck disable=SC2120 # TIMEOUT is optional
rs_up() {
    local timeout=${1:-90} i members=() pid since
    since=$(date +%s%3N)
    for i in "${!RS_PORTS[@]}"; do
        pid=${RS_PIDS[i]}
        if [ -z "$pid" ] || ! lib_alive "$pid"; then
            rs_member_start "$i"
        fi
    done
    for i in "${!RS_PORTS[@]}"; do
        if ! lib_poll 60 tcp_accepts "$RS_HOST" "${RS_PORTS[i]}" "${RS_PIDS[i]}"; then
            lib_tail "$RS_DIR/mongod-${RS_PORTS[i]}.log" 20
            lib_fail "mongod on $RS_HOST:${RS_PORTS[i]} did not accept within 60 s"
            return 1
        fi
    done
    if [ "$RS_INITIATED" = 0 ]; then
        RS_INITIATED=1
        for i in "${!RS_PORTS[@]}"; do
            members+=("{\"_id\":$i,\"host\":\"$RS_HOST:${RS_PORTS[i]}\"}")
        done
        local IFS=,
        local config="{\"_id\":\"$RS_NAME\",\"members\":[${members[*]}],\"settings\":{\"electionTimeoutMillis\":$RS_ELECTION_MS,\"heartbeatIntervalMillis\":$((RS_ELECTION_MS / 4)),\"heartbeatTimeoutSecs\":$(((RS_ELECTION_MS + 999) / 1000))}}"
        unset IFS
        mongo_cmd "$RS_HOST:${RS_PORTS[0]}" admin "{\"replSetInitiate\":$config}" \
            >"$RS_DIR/initiate.out" 2>&1 || {
            cat "$RS_DIR/initiate.out" >&2
            lib_fail "replSetInitiate failed"
            return 1
        }
    fi
    # When the set has a primary again (RS_UP_MS) is what a test measures
    # against; every member up is what the next step needs.
    if ! lib_poll "$timeout" rs_has_primary; then
        lib_log "replica set status: $(rs_states)"
        lib_fail "replica set $RS_URI: no primary within $timeout s"
        return 1
    fi
    # A poll sees the primary late on a loaded machine (every mongo_cmd is
    # a new client against a server that may be busy recovering): the
    # member's own log says when it started taking writes.
    RS_UP_MS=$(rs_primary_since "$since")
    RS_UP_MS=${RS_UP_MS:-$RS_PRIMARY_MS}
    if ! lib_poll "$timeout" rs_healthy; then
        lib_log "replica set status: $(rs_states)"
        lib_fail "replica set $RS_URI: no primary with every member up within $timeout s"
        return 1
    fi
    # A set killed before its members' first checkpoint after the initiation
    # comes back with every member wanting an initial sync and none to sync
    # from: one write every member has journaled, then a checkpoint on each,
    # make it survive a SIGKILL from here on.
    if [ "$RS_INITIATED" = 1 ]; then
        mongo_cmd "$RS_URI" parley_harness \
            "{\"insert\":\"up\",\"documents\":[{\"ms\":$RS_UP_MS}],\"writeConcern\":{\"w\":${#RS_PORTS[@]},\"j\":true,\"wtimeout\":30000}}" \
            >/dev/null || lib_fail "replica set $RS_URI: a write to every member failed" || return 1
        for i in "${!RS_PORTS[@]}"; do
            mongo_cmd "$RS_HOST:${RS_PORTS[i]}" admin '{"fsync":1}' >/dev/null ||
                lib_fail "fsync on member $i failed" || return 1
        done
        RS_INITIATED=2
    fi
}

# rs_primary: prints the index of the member that says it is primary
# (fails when none does).
rs_primary() {
    local i
    for i in "${!RS_PORTS[@]}"; do
        if [ -z "${RS_PIDS[i]}" ] || ! lib_alive "${RS_PIDS[i]}"; then
            continue
        fi
        if mongo_cmd "$RS_HOST:${RS_PORTS[i]}" admin '{"isMaster":1}' 2>/dev/null |
            grep -q '"ismaster" : true'; then
            echo "$i"
            return 0
        fi
    done
    return 1
}

# rs_primary_since MS: the wall-clock ms at which a member first logged,
# at or after MS, that it had become primary and took writes (mongod's
# structured log, 4.4 on: id 21331); nothing if none did.
rs_primary_since() {
    local port t ms first=
    for port in "${RS_PORTS[@]}"; do
        # shellcheck disable=SC2016 # $date is mongod's, not the shell's
        while read -r t; do
            ms=$(date -d "$t" +%s%3N) || continue
            if [ "$ms" -ge "$1" ] && { [ -z "$first" ] || [ "$ms" -lt "$first" ]; }; then
                first=$ms
            fi
        done < <(grep -h '"id":21331,' "$RS_DIR/mongod-$port.log" 2>/dev/null |
            sed -n 's/^{"t":{"$date":"\([^"]*\)".*/\1/p')
    done
    [ -z "$first" ] || echo "$first"
}

# rs_states: "PORT:STATE ..." as the primary (or else any member) sees them.
rs_states() {
    local i out
    for i in $( (rs_primary || true) | head -n 1) "${!RS_PORTS[@]}"; do
        out=$(mongo_cmd "$RS_HOST:${RS_PORTS[i]}" admin '{"replSetGetStatus":1}' 2>/dev/null) ||
            continue
        grep -o '"name" : "[^"]*", "health" : [0-9.]*, "state" : [0-9]*, "stateStr" : "[A-Z0-9]*"' \
            <<<"$out" | sed 's/^"name" : "[^:]*:\([0-9]*\)".*"stateStr" : "\([A-Z0-9]*\)"/\1:\2/' |
            tr '\n' ' '
        return 0
    done
    echo "no member answers"
}

# rs_has_primary: a member says it is primary (for lib_poll; sets
# RS_PRIMARY, and RS_PRIMARY_MS to the wall-clock ms it was seen).
rs_has_primary() {
    local p
    p=$(rs_primary) || return 1
    RS_PRIMARY_MS=$(date +%s%3N)
    RS_PRIMARY=$p
}

# rs_healthy: a primary, and every member primary or secondary (for
# lib_poll; sets RS_PRIMARY).
rs_healthy() {
    local p states n
    p=$(rs_primary) || return 1
    states=$(rs_states)
    n=$(grep -oE ':(PRIMARY|SECONDARY)( |$)' <<<"$states" | wc -l)
    [ "$n" -eq "${#RS_PORTS[@]}" ] || return 1
    # shellcheck disable=SC2034 # for the callers
    RS_PRIMARY=$p
}

# rs_signal SIG [I...]: sends SIG to members I (default all); for KILL and
# TERM waits (up to 30 s) until they are gone.
rs_signal() {
    local sig=$1 i pids=()
    shift
    local which=("$@")
    [ "${#which[@]}" -gt 0 ] || which=("${!RS_PORTS[@]}")
    for i in "${which[@]}"; do
        if [ -n "${RS_PIDS[i]}" ] && lib_alive "${RS_PIDS[i]}"; then
            pids+=("${RS_PIDS[i]}")
        fi
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    kill -"$sig" "${pids[@]}"
    TESTDB_SIGNALLED_MS=$(date +%s%3N)
    case $sig in
    KILL | TERM | INT)
        lib_poll 30 lib_all_gone "${pids[@]}" ||
            lib_fail "mongod ${pids[*]} still running 30 s after SIG$sig" || return 1
        for i in "${pids[@]}"; do
            { wait "$i"; } 2>/dev/null || true
        done
        ;;
    esac
}

# lib_all_gone PID...: none of them runs (a zombie counts as gone).
lib_all_gone() {
    local p state
    for p in "$@"; do
        state=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1) || continue
        [ -z "$state" ] || [ "$state" = Z ] || return 1
    done
}

# rs_logs_tail [N]: the last N (default 10) warnings and errors of every
# member's log (its last lines are those of the shutdown at exit).
rs_logs_tail() {
    local port f
    for port in "${RS_PORTS[@]}"; do
        f=$RS_DIR/mongod-$port.log
        [ -s "$f" ] || continue
        printf -- '----- last %s warnings and errors of %s -----\n' "${1:-10}" "$f" >&2
        grep -E '"s":"(W|E|F)"' "$f" | tail -n "${1:-10}" | cut -c1-600 >&2 || true
        printf -- '----- end of %s -----\n' "$f" >&2
    done
}

# --- the database a test runs on ------------------------------------------------
#
# Tests and scripts/bench call these, never devdb_* or rs_* directly, so
# that one variable chooses the database for all of them:
#
#   PARLEY_TEST_MONGOD unset         the dev DB (scripts/devdb), one per test
#   PARLEY_TEST_MONGOD=/path/mongod  a 3-member replica set of that mongod on
#                                    loopback, or, when PARLEY_TEST_MONGODB_URI
#                                    names a running one (scripts/test starts
#                                    one for the whole run), that one: each
#                                    test uses databases of its own in it
#
# A test that kills, pauses or restarts its database asks for one of its
# own (--own).  Sets TESTDB_URI (no options; add them with testdb_uri) and
# TESTDB_KIND: devdb, rs (started here) or shared.

TESTDB_KIND=
TESTDB_URI=
TESTDB_DEVDB_ARGS=()
TESTDB_NAMES=()

# testdb_prepare [--own] [--persist] [--host ADDR] [--members N]: decides
# which database and where; starts nothing.  --persist: the dev DB keeps its
# data on disk (a replica set always does), so that it can be killed and
# restarted on it.  --host: the address to serve on instead of 127.0.0.1
# (not for a shared set).  --members: a replica set of its own of N
# members instead of 3 (scripts/bench: one, so that a fill of 10^6
# messages is not replicated twice on the same cores).
testdb_prepare() {
    local own=0 persist=0 host=127.0.0.1 members=3
    while [ $# -gt 0 ]; do
        case $1 in
        --own) own=1 ;;
        --persist) persist=1 ;;
        --host)
            host=$2
            shift
            ;;
        --members)
            members=$2
            own=1
            shift
            ;;
        *) lib_fail "testdb_prepare: unknown option $1" || return 1 ;;
        esac
        shift
    done
    TESTDB_DEVDB_ARGS=()
    if [ -z "${PARLEY_TEST_MONGOD:-}" ]; then
        TESTDB_KIND=devdb
        devdb_install || return 1
        local port
        port=$(free_port_on "$host")
        TESTDB_DEVDB_ARGS=(--port "$port")
        if [ "$persist" = 1 ]; then
            mkdir -p "$PARLEY_TMP/devdb-data"
            TESTDB_DEVDB_ARGS+=(--dbpath "$PARLEY_TMP/devdb-data")
        fi
        DEVDB_HOST=$host
        TESTDB_URI=mongodb://$host:$port
    elif [ -n "${PARLEY_TEST_MONGODB_URI:-}" ] && [ "$own" = 0 ] && [ "$host" = 127.0.0.1 ]; then
        TESTDB_KIND=shared
        mongo_cmd_find || return 1
        TESTDB_URI=$PARLEY_TEST_MONGODB_URI
    else
        TESTDB_KIND=rs
        RS_HOST=$host
        rs_prepare "$PARLEY_TMP" "$members" || return 1
        TESTDB_URI=$RS_URI
    fi
}

# testdb_up: starts the database testdb_prepare chose (again, after
# testdb_signal KILL/TERM: on the same port and data) and waits until it
# serves.  Sets TESTDB_UP_MS: wall-clock ms at which it was seen to serve.
testdb_up() {
    case $TESTDB_KIND in
    devdb)
        DEVDB_HOST=${DEVDB_HOST:-127.0.0.1} devdb_start "$PARLEY_TMP" "${TESTDB_DEVDB_ARGS[@]}" ||
            return 1
        # The ready line is written the moment it accepts connections.
        TESTDB_UP_MS=$(stat -c %.3Y "$PARLEY_TMP/devdb.out" | tr -d .)
        ;;
    rs)
        rs_up || return 1
        TESTDB_UP_MS=$RS_UP_MS
        ;;
    shared)
        mongo_cmd "$TESTDB_URI" admin '{"ping":1}' >/dev/null ||
            lib_fail "the replica set PARLEY_TEST_MONGODB_URI names does not answer" || return 1
        # shellcheck disable=SC2034 # for the callers
        TESTDB_UP_MS=$(date +%s%3N)
        ;;
    *) lib_fail "testdb_up before testdb_prepare" ;;
    esac
}

# testdb_start [testdb_prepare options]: testdb_prepare, then testdb_up.
# shellcheck disable=SC2120 # the options are optional
testdb_start() {
    testdb_prepare "$@" && testdb_up
}

# testdb_signal SIG: sends SIG to every process of the database (the dev
# DB, or every member at once); for KILL and TERM waits until they are
# gone.  Sets TESTDB_SIGNALLED_MS: wall-clock ms once the signal was sent.
# Not for a shared set.
testdb_signal() {
    case $TESTDB_KIND in
    devdb)
        kill -"$1" "$PARLEY_DEVDB_PID"
        # shellcheck disable=SC2034 # for the callers
        TESTDB_SIGNALLED_MS=$(date +%s%3N)
        case $1 in
        KILL | TERM | INT)
            lib_poll 30 lib_all_gone "$PARLEY_DEVDB_PID" ||
                lib_fail "the dev DB still runs 30 s after SIG$1" || return 1
            wait "$PARLEY_DEVDB_PID" 2>/dev/null || true
            ;;
        esac
        ;;
    rs) rs_signal "$@" ;;
    *) lib_fail "testdb_signal: the database is not this test's own (testdb_prepare --own)" ;;
    esac
}

# testdb_pids: the database's processes (none for a shared set).
testdb_pids() {
    case $TESTDB_KIND in
    devdb) echo "$PARLEY_DEVDB_PID" ;;
    rs) printf '%s\n' "${RS_PIDS[@]}" ;;
    esac
}

# testdb_uri [OPTIONS]: TESTDB_URI with OPTIONS (a=b&c=d) added.
testdb_uri() {
    local uri=$TESTDB_URI opts=${1:-}
    if [ -z "$opts" ]; then
        printf '%s\n' "$uri"
    elif [[ $uri == *\?* ]]; then
        printf '%s&%s\n' "$uri" "$opts"
    elif [[ $uri == mongodb://*/* ]]; then
        printf '%s?%s\n' "$uri" "$opts"
    else
        printf '%s/?%s\n' "$uri" "$opts"
    fi
}

# testdb_hostports: the HOST:PORT of each server in TESTDB_URI, one a line.
testdb_hostports() {
    local list=${TESTDB_URI#mongodb://}
    list=${list%%/*}
    list=${list%%\?*}
    tr ',' '\n' <<<"$list"
}

# testdb_name PREFIX: sets TESTDB_NAME to PREFIX_<random>, a database
# name of this test's own; testdb_cleanup drops it from a shared set.
testdb_name() {
    TESTDB_NAME=${1}_$(random_hex 8)
    TESTDB_NAMES+=("$TESTDB_NAME")
}

# testdb_cleanup: drops this test's databases from a shared set (what it
# starts itself goes with its temp dir).
testdb_cleanup() {
    [ "$TESTDB_KIND" = shared ] || return 0
    local name
    for name in "${TESTDB_NAMES[@]}"; do
        mongo_cmd "$TESTDB_URI" "$name" '{"dropDatabase":1}' >/dev/null 2>&1 ||
            lib_log "could not drop database $name"
    done
    TESTDB_NAMES=()
}

# testdb_logs_tail: the ends of the database's logs, for a failure report.
testdb_logs_tail() {
    case $TESTDB_KIND in
    devdb) lib_tail "$PARLEY_TMP/devdb.log" 20 ;;
    rs) rs_logs_tail 10 ;;
    esac
}

# testdb_describe: one line saying what the database is.
testdb_describe() {
    case $TESTDB_KIND in
    devdb) echo "dev DB at $TESTDB_URI" ;;
    rs) echo "mongod $MONGOD_VERSION replica set of ${#RS_PORTS[@]} at $TESTDB_URI" ;;
    shared) echo "shared replica set at $TESTDB_URI" ;;
    *) echo "database not started yet" ;;
    esac
}

# testdb_profile_on DB: the profiler records every operation on database DB
# (on the primary: {profile: 2, slowms: 0}) into a system.profile of 64 MiB,
# so that a whole suite's operations fit.  Not for the dev DB.
testdb_profile_on() {
    local db=$1
    mongo_cmd "$TESTDB_URI" "$db" '{"profile":0}' >/dev/null &&
        { mongo_cmd "$TESTDB_URI" "$db" '{"drop":"system.profile"}' >/dev/null 2>&1 || true; } &&
        mongo_cmd "$TESTDB_URI" "$db" \
            '{"create":"system.profile","capped":true,"size":67108864}' >/dev/null &&
        mongo_cmd "$TESTDB_URI" "$db" '{"profile":2,"slowms":0}' >/dev/null ||
        lib_fail "could not turn the profiler on for $db"
}

# testdb_profile_check DB: prints what parley's operations on DB (those of
# appName "parley" the profiler recorded since testdb_profile_on) used, one
# line per kind of operation and plan, and fails if one scanned a
# collection or sorted in memory (tests/profile_check.mjs).
testdb_profile_check() {
    local db=$1 out
    out=$(mongo_cmd "$TESTDB_URI" "$db" '{"aggregate":"system.profile","pipeline":[
        {"$match":{"appName":"parley","op":{"$nin":["insert","getmore","killcursors"]}}},
        {"$group":{"_id":{"ns":"$ns","op":"$op","plan":"$planSummary","sort":"$hasSortStage"},
                   "n":{"$sum":1},"keys":{"$max":"$keysExamined"},"docs":{"$max":"$docsExamined"},
                   "returned":{"$max":"$nreturned"},"command":{"$first":"$command"}}},
        {"$sort":{"_id.ns":1,"n":-1}}],"cursor":{"batchSize":10000}}') ||
        lib_fail "reading $db.system.profile failed" || return 1
    "$NODE" "$PARLEY_SRCDIR/tests/profile_check.mjs" <<<"$out"
}

# --- parley ------------------------------------------------------------------

# parley_socket CONFIG: prints the unix socket path parley will listen on
# (PARLEY_LISTEN overrides the file, as in parley itself).
parley_socket() {
    local listen=${PARLEY_LISTEN:-}
    if [ -z "$listen" ]; then
        listen=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*//p' "$1" |
            tail -n 1 | sed 's/[[:space:]]*$//')
    fi
    case $listen in
    unix:*) printf '%s\n' "${listen#unix:}" ;;
    *) lib_fail "$1: listen must be unix:/path here (got '$listen')" ;;
    esac
}

# parley_start BIN CONFIG [LOG]: starts `BIN serve -c CONFIG` (output to LOG,
# default $PARLEY_TMP/parley.log) and waits up to 15 s until its unix socket
# accepts a connection.  Sets PARLEY_PID and PARLEY_SOCKET.
parley_start() {
    local bin=$1 conf=$2 log=${3:-$PARLEY_TMP/parley.log}
    PARLEY_SOCKET=$(parley_socket "$conf") || return 1
    lib_spawn parley "$log" "$bin" serve -c "$conf"
    PARLEY_PID=$LIB_LAST_PID
    if ! lib_poll 15 unix_accepts "$PARLEY_SOCKET" "$PARLEY_PID"; then
        lib_tail "$log"
        lib_fail "parley did not accept on $PARLEY_SOCKET within 15 s"
        return 1
    fi
}

# unix_accepts PATH [PID]: succeeds when a connection to the unix socket PATH
# is accepted; returns 2 at once when process PID has exited.  Connecting and
# closing costs a FastCGI worker one empty accept.
unix_accepts() {
    if [ -n "${2:-}" ] && ! lib_alive "$2"; then
        return 2
    fi
    [ -S "$1" ] || return 1
    "$NODE" -e '
        const c = require("net").connect(process.argv[1]);
        c.on("connect", () => { c.destroy(); process.exit(0); });
        c.on("error", () => process.exit(1));' "$1"
}

# --- nginx -----------------------------------------------------------------

# nginx_conf_write DIR PORT SOCKET [HTTP_SNIPPET [SERVER_SNIPPET
# [CONVERSATION_SOCKET]]]: writes DIR/nginx.conf, a whole nginx config that
# serves 127.0.0.1:PORT with the repo's nginx/parley.conf (or
# SERVER_SNIPPET) in front of the FastCGI unix socket SOCKET, with the
# repo's nginx/parley-http.conf (or HTTP_SNIPPET) in the http context.  The
# conversation route goes to CONVERSATION_SOCKET (upstream
# parley_conversation), by default where parley puts its conversation pool
# next to SOCKET (conversation_socket); pass SOCKET itself for a parley
# without that pool.  Every path nginx writes is under DIR.
#
# When nginx starts as root its workers run as nobody; rather than `user
# root;` the sockets are made reachable: lib_init makes the temp dir 0711 and
# the test and dev configs give parley socket_mode 0666.
nginx_conf_write() {
    local dir=$1 port=$2 socket=$3
    local http_snippet=${4:-$PARLEY_SRCDIR/nginx/parley-http.conf}
    local server_snippet=${5:-$PARLEY_SRCDIR/nginx/parley.conf}
    local conv_socket=${6:-$(conversation_socket "$socket")}
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
# Written by scripts/lib.sh (nginx_conf_write); loopback only.
worker_processes 2;
# Enough connections that thousands of idle ones from one client (the
# noisy-neighbour test opens 2000) leave room for everyone else.
worker_rlimit_nofile 16384;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
daemon off;

events {
    worker_connections 8192;
}

http {
    access_log off;
    keepalive_requests 10000;
    client_body_temp_path $dir/tmp/body;
    fastcgi_temp_path $dir/tmp/fastcgi;
    proxy_temp_path $dir/tmp/proxy;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    include $http_snippet;

    upstream parley {
        server unix:$socket;
    }

    upstream parley_conversation {
        server unix:$conv_socket;
    }

    server {
        listen 127.0.0.1:$port;
        include $server_snippet;
    }
}
EOF
}

# conversation_socket SOCKET: prints the path of the conversation pool's
# socket that parley makes next to the unix socket SOCKET when
# conversation_listen is not set (/x/parley.sock -> /x/parley-conversation.sock).
conversation_socket() {
    local s=${1%.sock}
    printf '%s-conversation.sock\n' "$s"
}

# pool_pids PARENT SOCKET: prints the pids of PARENT's children (parley's
# workers) that hold the listening unix socket SOCKET: the workers of the
# pool serving it (each worker keeps its own pool's socket only).
pool_pids() {
    local parent=$1 inode pid fd
    inode=$(awk -v p="$2" '$NF == p { print $7; exit }' /proc/net/unix)
    [ -n "$inode" ] || return 0
    for pid in $(lib_descendants "$parent"); do
        for fd in /proc/"$pid"/fd/*; do
            if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ]; then
                printf '%s\n' "$pid"
                break
            fi
        done
    done
}

# pools_served LOG PARENT SOCKET CONVERSATION_SOCKET: succeeds when every
# conversation request in parley's LOG was served by a worker of the pool
# on CONVERSATION_SOCKET and every other request by one on SOCKET (the
# web server routed each to its pool); says what it found.
pools_served() {
    local log=$1 parent=$2 main conv served_conv served_main pid ok=0
    main=$(pool_pids "$parent" "$3")
    conv=$(pool_pids "$parent" "$4")
    served_conv=$(grep -E '"msg":"[A-Z]+ /api/agent-sessions/conversation/? ' "$log" |
        sed -n 's/.*"pid":\([0-9]*\),.*/\1/p' | sort -u)
    served_main=$(grep -E '"msg":"(GET|POST|PUT|PATCH|DELETE) /' "$log" |
        grep -vE '"msg":"[A-Z]+ /api/agent-sessions/conversation/? ' |
        sed -n 's/.*"pid":\([0-9]*\),.*/\1/p' | sort -u)
    lib_log "pools: main $(echo $main) served by $(echo $served_main);" \
        "conversation $(echo $conv) served by $(echo $served_conv)"
    [ -n "$main" ] && [ -n "$conv" ] && [ -n "$served_conv" ] || ok=1
    for pid in $served_conv; do
        grep -qx "$pid" <<<"$conv" || ok=1
    done
    for pid in $served_main; do
        grep -qx "$pid" <<<"$main" || ok=1
    done
    return "$ok"
}

# nginx reads the environment variable NGINX as a list of inherited listening
# sockets (its binary upgrade), and make check exports NGINX as nginx's path:
# every nginx run here goes through nginx_exec, which clears it.
nginx_exec() {
    env -u NGINX "$NGINX" "$@"
}

# nginx_test DIR: `nginx -t` on DIR/nginx.conf.
nginx_test() {
    nginx_exec -q -t -p "$1/" -e "$1/nginx-error.log" -c "$1/nginx.conf"
}

# nginx_start DIR: starts nginx (foreground master, in the background here)
# on DIR/nginx.conf and waits up to 10 s for its port to accept.  Sets
# NGINX_PID and NGINX_PORT.
nginx_start() {
    local dir=$1
    NGINX_PORT=$(sed -n 's/^[[:space:]]*listen 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/nginx.conf" |
        head -n 1)
    [ -n "$NGINX_PORT" ] || lib_fail "$dir/nginx.conf: no listen 127.0.0.1:PORT" || return 1
    # Otherwise the wait below would take another server's port for ours.
    if tcp_accepts 127.0.0.1 "$NGINX_PORT"; then
        lib_fail "127.0.0.1:$NGINX_PORT is already in use"
        return 1
    fi
    # -e: the error log from the first line on, before the config is read.
    # Not through nginx_exec: a function in the background would be a
    # subshell with nginx as its child, and $! the subshell's pid.
    lib_spawn nginx "$dir/nginx-error.log" \
        env -u NGINX "$NGINX" -p "$dir/" -e "$dir/nginx-error.log" -c "$dir/nginx.conf"
    NGINX_PID=$LIB_LAST_PID
    if ! lib_poll 10 tcp_accepts 127.0.0.1 "$NGINX_PORT" "$NGINX_PID"; then
        lib_tail "$dir/nginx-error.log"
        lib_fail "nginx did not listen on 127.0.0.1:$NGINX_PORT within 10 s"
        return 1
    fi
}

# tcp_accepts HOST PORT [PID]: succeeds when HOST:PORT accepts a connection;
# returns 2 at once when process PID has exited.
tcp_accepts() {
    if [ -n "${3:-}" ] && ! lib_alive "$3"; then
        return 2
    fi
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# http_status URL: prints the HTTP status of GET URL (000 when nothing
# answered).
http_status() {
    if command -v curl >/dev/null; then
        curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true
    else
        "$NODE" -e '
            fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
                .then((r) => console.log(r.status), () => console.log("000"));' "$1"
    fi
}

# wait_http URL TIMEOUT [STATUS]: waits up to TIMEOUT seconds until GET URL
# answers STATUS (default 200).
wait_http() {
    local url=$1 timeout=$2 want=${3:-200}
    local deadline=$((SECONDS + timeout)) got
    while :; do
        got=$(http_status "$url")
        [ "$got" = "$want" ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            lib_fail "GET $url answered $got, not $want, within ${timeout} s"
            return 1
        fi
        sleep 0.1
    done
}

# --- cleanup -----------------------------------------------------------------

# lib_descendants PID: prints the pids of PID's children, grandchildren, ...
# (from /proc, so that a supervisor's workers are stopped even when the
# supervisor itself has to be killed).
lib_descendants() {
    local f line pid fields
    local -A kids=()
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        pid=${line%% *}
        # Fields after the command name, which may hold spaces and ')'.
        read -ra fields <<<"${line##*) }"
        kids[${fields[1]}]+=" $pid"
    done
    local todo=("$1") next
    while [ "${#todo[@]}" -gt 0 ]; do
        next=${todo[0]}
        todo=("${todo[@]:1}")
        for pid in ${kids[$next]:-}; do
            printf '%s\n' "$pid"
            todo+=("$pid")
        done
    done
}

# stop_processes: TERM to everything started, newest first (nginx before
# parley before the DB), then KILL whatever is left, descendants included,
# after PARLEY_STOP_TIMEOUT seconds (default 5).  Idempotent.
stop_processes() {
    local i pid all=() left
    local timeout=${PARLEY_STOP_TIMEOUT:-5}
    for ((i = ${#LIB_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${LIB_PIDS[i]}
        lib_alive "$pid" || continue
        all+=("$pid")
        mapfile -t -O "${#all[@]}" all < <(lib_descendants "$pid")
        kill -TERM "$pid" 2>/dev/null || true
    done
    local deadline=$((SECONDS + timeout))
    while :; do
        left=()
        for pid in "${all[@]}"; do
            lib_alive "$pid" && left+=("$pid")
        done
        [ "${#left[@]}" -eq 0 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            lib_log "killing ${left[*]} (still running ${timeout} s after SIGTERM)"
            kill -KILL "${left[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    # Reap our own children so bash prints no job messages later.
    for pid in "${LIB_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    LIB_PIDS=()
    LIB_NAMES=()
}

# lib_stop PID...: as stop_processes, for some of the processes started
# here only, which are then forgotten (lib_check_children no longer
# watches them).
lib_stop() {
    local keep_pids=() keep_names=() i p stop=" $* "
    for i in "${!LIB_PIDS[@]}"; do
        if [[ $stop != *" ${LIB_PIDS[i]} "* ]]; then
            keep_pids+=("${LIB_PIDS[i]}")
            keep_names+=("${LIB_NAMES[i]}")
        fi
    done
    LIB_PIDS=("$@")
    LIB_NAMES=()
    for p in "$@"; do LIB_NAMES+=("pid $p"); done
    stop_processes
    LIB_PIDS=("${keep_pids[@]}")
    LIB_NAMES=("${keep_names[@]}")
}

# remove_tmp: removes $PARLEY_TMP unless PARLEY_KEEP_TMP=1.
remove_tmp() {
    [ -n "$PARLEY_TMP" ] && [ -d "$PARLEY_TMP" ] || return 0
    if [ "${PARLEY_KEEP_TMP:-0}" = 1 ]; then
        lib_log "kept $PARLEY_TMP"
    else
        rm -rf "$PARLEY_TMP"
    fi
    PARLEY_TMP=
}

# stop_all: stop_processes, then remove_tmp; the EXIT trap lib_init sets.
# Keeps the exit status it was called with.
stop_all() {
    local rc=$?
    stop_processes
    remove_tmp
    return "$rc"
}

# lib_check_children: fails (naming it) when a process started here has
# exited; for scripts that watch their children.
lib_check_children() {
    local i
    for i in "${!LIB_PIDS[@]}"; do
        if ! lib_alive "${LIB_PIDS[i]}"; then
            lib_log "${LIB_NAMES[i]} (pid ${LIB_PIDS[i]}) exited"
            return 1
        fi
    done
}
