# shellcheck shell=bash
# tests/lib.sh — the preamble every tests/*.sh suite that runs servers
# shares.  A suite starts with
#
#     set -euo pipefail
#     # shellcheck source=tests/lib.sh
#     . "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
#     test_init NAME [--slow] [--keep VAR]...
#
# and then starts its database with testdb_start (scripts/lib.sh), parley
# with parley_start, nginx with nginx_start, ...  test_init:
#   - with --slow, skips the suite (exit 77) when PARLEY_TEST_QUICK=1
#     (make distcheck);
#   - sets top_srcdir and top_builddir when make check did not, and
#     `bin` (src/parley) and `check` (tests/check_e2e) of the build tree;
#   - unsets every PARLEY_* variable of the caller's environment (parley
#     reads PARLEY_<KEY> as settings: the suite must see exactly the config
#     it writes) but the harness's own (PARLEY_DEVDB_HOME, PARLEY_KEEP_TMP,
#     PARLEY_STOP_TIMEOUT, PARLEY_TEST_*) and those named by --keep;
#   - makes the temp dir (lib_init NAME) and sets the EXIT trap, test_exit.
#
# test_exit stops everything the suite started, runs the functions in
# TEST_CLEANUP, fails the suite when a parley log (TEST_PARLEY_LOGS,
# default parley.log, relative to the temp dir) holds a sanitizer report
# (a build with --enable-sanitizers reports there, LeakSanitizer only as a
# worker exits: so the logs are read once everything has stopped), and
# when the suite failed prints the ends of TEST_LOGS (FILE or FILE:LINES,
# relative to the temp dir; default parley.log:40 and nginx-error.log:20)
# and of the database's logs.  It then drops the suite's databases from a
# shared replica set, removes the temp dir (unless PARLEY_KEEP_TMP=1) and
# exits with the suite's status.

if [ -z "${top_srcdir:-}" ]; then
    top_srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
top_builddir=${top_builddir:-$top_srcdir}

# shellcheck source=scripts/lib.sh
. "$top_srcdir/scripts/lib.sh"

# For the suites.
# shellcheck disable=SC2034
bin=$top_builddir/src/parley
# shellcheck disable=SC2034
check=$top_builddir/tests/check_e2e
TEST_NAME=suite
TEST_LOGS=(parley.log:40 nginx-error.log:20)
TEST_PARLEY_LOGS=(parley.log)
TEST_CLEANUP=()

test_init() {
    TEST_NAME=$1
    shift
    local keep=" " var
    while [ $# -gt 0 ]; do
        case $1 in
        --slow)
            if [ "${PARLEY_TEST_QUICK:-0}" = 1 ]; then
                echo "$TEST_NAME: skipped (PARLEY_TEST_QUICK=1)"
                exit 77
            fi
            ;;
        --keep)
            keep+="$2 "
            shift
            ;;
        *)
            echo "test_init: unknown option $1" >&2
            exit 1
            ;;
        esac
        shift
    done
    while read -r var; do
        case $var in
        PARLEY_DEVDB_HOME | PARLEY_KEEP_TMP | PARLEY_STOP_TIMEOUT | PARLEY_TEST_*) ;;
        PARLEY_*) [[ $keep == *" $var "* ]] || unset "$var" ;;
        esac
    done < <(compgen -e)
    lib_init "$TEST_NAME"
    trap test_exit EXIT
}

# test_need_built FILE...: fails unless each FILE of the build is there.
test_need_built() {
    local f
    for f in "$@"; do
        [ -x "$f" ] || lib_fail "$f not built" || exit 1
    done
}

# test_need_tools TOOL...: fails unless each TOOL is on PATH (scripts/setup
# installs them all).
test_need_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null ||
            lib_fail "$t not found (scripts/setup installs it)" || exit 1
    done
}

# test_sanitizer_reports: fails (printing them) when a parley log holds a
# sanitizer report.
test_sanitizer_reports() {
    local san="ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:" f rc=0
    for f in "${TEST_PARLEY_LOGS[@]}"; do
        [[ $f == /* ]] || f=$PARLEY_TMP/$f
        [ -f "$f" ] || continue
        if grep -qE "$san" "$f"; then
            lib_log "sanitizer report in $f:"
            grep -E -A 30 "$san" "$f" | head -n 300 >&2
            rc=1
        fi
    done
    return "$rc"
}

# shellcheck disable=SC2317 # runs from the EXIT trap
test_exit() {
    local rc=$? fn entry f
    stop_processes
    for fn in "${TEST_CLEANUP[@]}"; do
        "$fn" || true
    done
    if [ -n "$PARLEY_TMP" ]; then
        if ! test_sanitizer_reports && [ "$rc" -eq 0 ]; then
            rc=1
        fi
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
            lib_log "failed ($rc); temp dir $PARLEY_TMP${TESTDB_KIND:+; database: $(testdb_describe)}"
            for entry in "${TEST_LOGS[@]}"; do
                f=${entry%%:*}
                [[ $f == /* ]] || f=$PARLEY_TMP/$f
                if [[ $entry == *:* ]]; then
                    lib_tail "$f" "${entry##*:}"
                else
                    lib_tail "$f" 40
                fi
            done
            testdb_logs_tail
        fi
    fi
    testdb_cleanup
    remove_tmp
    exit "$rc"
}

# config_check CONF: `parley check-config` on CONF, its output kept in
# $PARLEY_TMP/check-config.out (a suite may grep it); a configuration it
# refuses ends the suite.
config_check() {
    "$bin" check-config -c "$1" >"$PARLEY_TMP/check-config.out" 2>&1 || {
        cat "$PARLEY_TMP/check-config.out" >&2
        lib_fail "parley check-config rejected $1"
        exit 1
    }
}

# nginx_serve SOCKET [HTTP_SNIPPET]: nginx with the repository's
# nginx/parley.conf on a free loopback port in front of parley's SOCKET
# (nginx_conf_write), started and answering /healthz; sets url to it.
nginx_serve() {
    local port
    port=$(free_port)
    nginx_conf_write "$PARLEY_TMP" "$port" "$1" "${2:-}"
    nginx_test "$PARLEY_TMP"
    nginx_start "$PARLEY_TMP"
    url=http://127.0.0.1:$port
    wait_http "$url/healthz" 15
}
