#!/usr/bin/env bash
# tests/fuzz.sh — the libFuzzer harnesses of tests/fuzz/, run by `make check`.
#
# Builds them (`make fuzz`: clang, -fsanitize=fuzzer,address,undefined) and
# runs each for PARLEY_FUZZ_SECONDS (default 30) over a copy of its committed
# seed corpus, tests/fuzz/corpus/<name>/ (the copy grows; the committed seeds
# stay as they are).  Any crash, sanitizer report, leak, timeout (10 s for
# one input) or memory blow-up (2 GiB) fails the suite; the input that did
# it is kept as tests/fuzz/bin/crash-<name>-* in the build tree and printed
# here (od -c), so it can be turned into a regression case in the unit
# tests.
#
# Exits 77 (skip) when PARLEY_TEST_QUICK=1 (make distcheck, via
# scripts/test).  clang or its fuzzer runtime missing is a failure, not a
# skip: scripts/setup installs them.
set -euo pipefail

if [ "${PARLEY_TEST_QUICK:-0}" = 1 ]; then
    echo "fuzz: skipped (PARLEY_TEST_QUICK=1)"
    exit 77
fi
if [ -z "${top_srcdir:-}" ]; then
    top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
fi
top_builddir=${top_builddir:-$top_srcdir}
seconds=${PARLEY_FUZZ_SECONDS:-30}
harnesses=(fuzz_json fuzz_auth fuzz_router fuzz_encode)

command -v clang >/dev/null || {
    echo "fuzz: clang not found (scripts/setup installs clang and libclang-rt-14-dev)" >&2
    exit 1
}
# `make check` runs this with the build's environment; the harnesses are
# built by their own rule, with clang whatever CC is.  Building and fuzzing
# run niced: `make -j check` runs other suites beside this one, and some of
# them time what they see.
env -u MAKEFLAGS -u MFLAGS nice -n 10 make -s -C "$top_builddir" fuzz || {
    echo "fuzz: make fuzz failed (is libclang-rt-14-dev installed?)" >&2
    exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

status=0
for h in "${harnesses[@]}"; do
    bin=$top_builddir/tests/fuzz/bin/$h
    seeds=$top_srcdir/tests/fuzz/corpus/$h
    [ -x "$bin" ] || { echo "fuzz: $bin not built" >&2; exit 1; }
    [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
    mkdir "$tmp/$h"
    cp "$seeds"/* "$tmp/$h/"
    chmod -R u+w "$tmp/$h" # distcheck's source tree is read-only
    dict=()
    [ ! -f "$top_srcdir/tests/fuzz/$h.dict" ] ||
        dict=(-dict="$top_srcdir/tests/fuzz/$h.dict")
    rc=0
    # -close_fd_mask=1: the harnesses print nothing worth keeping on
    # stdout; stderr carries libFuzzer's report.
    (cd "$tmp" && nice -n 10 "$bin" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
        -artifact_prefix="$tmp/crash-$h-" "$tmp/$h") >"$tmp/$h.log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$h.log")
    corpus=$(find "$tmp/$h" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz: $h: ok, ${runs:-?} inputs in ${seconds} s, corpus $(find "$seeds" -type f | wc -l) -> $corpus"
        continue
    fi
    status=1
    echo "fuzz: $h: FAILED (exit $rc)"
    grep -E -A 40 "ERROR: |property violated|runtime error|==[0-9]+==" "$tmp/$h.log" | head -n 80 || tail -n 60 "$tmp/$h.log"
    for crash in "$tmp"/crash-"$h"-*; do
        [ -f "$crash" ] || continue
        keep=$top_builddir/tests/fuzz/bin/$(basename "$crash")
        cp "$crash" "$keep"
        echo "fuzz: input kept as $keep:"
        od -An -c "$crash" | head -n 20
    done
done
exit "$status"
