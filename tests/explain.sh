#!/usr/bin/env bash
# tests/explain.sh — every query shape parley issues, explained on a real
# mongod: with PARLEY_TEST_MONGOD it takes the replica set every suite
# shares (or starts one), and runs tests/mongo_explain in a database of its
# own, which seeds it through parley's store, runs each shape with the
# profiler on and checks each command's plan with explain (executionStats):
# the intended index, no COLLSCAN, no blocking SORT, keys and documents
# examined within the shape's bound (see tests/mongo_explain.c).  On the dev
# DB (no query planner: it scans every collection, ignores hints) it is
# skipped (77).  About a minute on 2 cores.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
test_init explain --slow
if [ -z "${PARLEY_TEST_MONGOD:-}" ]; then
    echo "explain: skipped: the dev DB has no query plans (set PARLEY_TEST_MONGOD)"
    exit 77
fi
explain=$top_builddir/tests/mongo_explain
test_need_built "$explain"
TEST_LOGS=()

testdb_start
testdb_name parley_explain
lib_log "on the $(testdb_describe), database $TESTDB_NAME"
"$explain" "$TESTDB_URI" "$TESTDB_NAME"
