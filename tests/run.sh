#!/usr/bin/env bash
# tests/run.sh — run every built test and print "N passed, N failed".
#
# Runs, from the repository root:
#   build/tests/test_*          unit tests (normal build)
#   build-asan/tests/test_*     unit tests (ASan + UBSan build)
#   tests/interop/*.sh          executable interop scripts (lib.sh is sourced)
#   tests/fuzz-smoke/*.sh       executable fuzz smoke scripts, if present
#   tests/memcheck/*.sh         executable valgrind runs of the unit tests
#
# Counting: every "ok - x" line a program prints is one pass, every
# "not ok - x" line one failure.  A program that exits non-zero without
# printing any "not ok" line counts as one failure; so does (additionally to
# its "not ok" lines) one that ends abnormally: killed by a signal, timed out,
# sanitizer abort, exit status other than 0/1, or a unit binary exiting
# non-zero without testlib's "# N passed, N failed" summary.  A program that
# exits 0 and prints no ok/not ok line counts as one pass.
#
# Environment:
#   VIGIL_TEST_FILTER=substr   only run files whose path contains substr
#   VIGIL_TEST_VERBOSE=1       print every program's full output
#   VIGIL_UNIT_TIMEOUT=300     seconds per unit test binary
#   VIGIL_INTEROP_TIMEOUT=300  seconds per interop / fuzz-smoke script
#   VIGIL_TEST_TAIL=60         lines of output shown for a failing program
set -u
cd "$(dirname "$0")/.." || exit 2

filter=${VIGIL_TEST_FILTER:-}
verbose=${VIGIL_TEST_VERBOSE:-0}
unit_timeout=${VIGIL_UNIT_TIMEOUT:-300}
interop_timeout=${VIGIL_INTEROP_TIMEOUT:-300}
tail_lines=${VIGIL_TEST_TAIL:-60}

passed=0
failed=0
failures=()

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-run.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# run_one KIND TIMEOUT PATH [env assignments...]   (KIND: unit or script)
run_one() {
    local kind=$1 limit=$2 path=$3
    shift 3
    local out="$tmp/out" rc nok nnot status abnormal
    # (the subshell keeps bash's "Aborted"/"Killed" notices out of our output)
    (env "$@" timeout -k 10 "$limit" "./$path" </dev/null >"$out" 2>&1; exit $?) 2>/dev/null
    rc=$?
    nok=$(grep -c '^ok - ' "$out")
    nnot=$(grep -c '^not ok - ' "$out")
    passed=$((passed + nok))
    failed=$((failed + nnot))
    status="exit $rc"
    [ "$rc" -eq 124 ] && status="timed out after ${limit}s"
    [ "$rc" -eq 137 ] && status="killed (timeout ${limit}s?)"
    [ "$rc" -gt 128 ] && [ "$rc" -ne 137 ] && status="exit $rc (signal $((rc - 128)))"
    # Abnormal end: a signal, timeout or sanitizer abort (exit status other
    # than 0/1), or a testlib binary failing without its "# N passed, N
    # failed" summary (e.g. UBSan halting mid-run).  Counts as one extra
    # failure even if "not ok" lines were printed before it.
    abnormal=0
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -ne 1 ] || [ "$nnot" -eq 0 ]; then
            abnormal=1
        elif [ "$kind" = unit ] && ! grep -qE '^# [0-9]+ passed, [0-9]+ failed$' "$out"; then
            abnormal=1
        fi
    fi
    if [ "$abnormal" = 1 ]; then
        failed=$((failed + 1))
        nnot=$((nnot + 1))
        status="$status, abnormal end counted as a failure"
    elif [ "$rc" -eq 0 ] && [ "$nok" -eq 0 ] && [ "$nnot" -eq 0 ]; then
        passed=$((passed + 1))
        nok=1
    fi
    if [ "$nnot" -gt 0 ]; then
        printf 'FAIL  %s  (%d ok, %d not ok, %s)\n' "$path" "$nok" "$nnot" "$status"
        failures+=("$path")
        {
            echo "======== $path ($status) ========"
            if [ "$verbose" = 1 ]; then
                cat "$out"
            else
                echo "---- failing tests ----"
                # each "not ok" line plus the "#" diagnostics right before it
                awk '/^# /{d[n++]=$0; next}
                     /^not ok - /{for(i=0;i<n;i++)print d[i]; print; n=0; next}
                     {n=0}' "$out" | tail -n 200
                echo "---- last $tail_lines lines of output ----"
                tail -n "$tail_lines" "$out"
            fi
        } >>"$tmp/report"
    else
        printf 'PASS  %s  (%d ok)\n' "$path" "$nok"
        [ "$verbose" = 1 ] && cat "$out"
    fi
    return 0
}

selected() {
    [ -f "$1" ] && [ -x "$1" ] || return 1
    [ -z "$filter" ] || [[ "$1" == *"$filter"* ]]
}

for t in build/tests/test_*; do
    selected "$t" || continue
    run_one unit "$unit_timeout" "$t"
done

for t in build-asan/tests/test_*; do
    selected "$t" || continue
    run_one unit "$unit_timeout" "$t" \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
done

for t in tests/interop/*.sh tests/fuzz-smoke/*.sh tests/memcheck/*.sh; do
    [ -e "$t" ] || continue
    [ "${t##*/}" = lib.sh ] && continue
    if [ ! -x "$t" ]; then
        [ -z "$filter" ] || [[ "$t" == *"$filter"* ]] || continue
        echo "skip  $t  (not executable)"
        continue
    fi
    selected "$t" || continue
    run_one script "$interop_timeout" "$t"
done

if [ -s "$tmp/report" ]; then
    echo
    cat "$tmp/report"
    echo
    echo "failing: ${failures[*]}"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
