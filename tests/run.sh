#!/usr/bin/env bash
# tests/run.sh — run every built test and print "N passed, N failed".
#
# Runs, from the repository root:
#   build/tests/test_*          unit tests (normal build)
#   build-asan/tests/test_*     unit tests (ASan + UBSan build)
#   tests/interop/*.sh          executable interop scripts (lib.sh is sourced)
#   tests/chaos/test_*.sh       executable fault-injection scripts, if present
#   tests/fuzz-smoke/*.sh       executable fuzz smoke scripts, if present
#   tests/memcheck/*.sh         executable valgrind runs of the unit tests
#
# Programs run in parallel (VIGIL_TEST_JOBS at a time): most of the suite
# waits on real protocol timers, not on the CPU, so running one script at a
# time left the machine idle for most of the run.  Each program's output
# goes to its own file and the results are reported in a fixed order once
# all have ended, so parallelism never interleaves output.  The longest
# programs (by the timings of the previous run, kept in build/.test-times)
# start first.
#
# Counting: every "ok - x" line a program prints is one pass, every
# "not ok - x" line one failure, and an "ok - x # SKIP reason" line one skip
# (reported, never counted as a pass).  One failure is added for a program
# that ends abnormally: killed by a signal, timed out, sanitizer abort, exit
# status other than 0/1, exits non-zero without any "not ok" line, or is a
# unit binary exiting non-zero without testlib's "# N passed, N failed"
# summary.  A program that exits 0 but prints no ok/not ok line at all is
# also a failure: a test that says nothing has shown nothing.
#
# Environment:
#   VIGIL_TEST_FILTER=substr   only run files whose path contains substr
#   VIGIL_TEST_VERBOSE=1       print every program's full output
#   VIGIL_TEST_JOBS=N          programs at once (default: 2 per CPU)
#   VIGIL_UNIT_TIMEOUT=300     seconds per unit test binary
#   VIGIL_INTEROP_TIMEOUT=300  seconds per interop / chaos script
#   VIGIL_MEMCHECK_TIMEOUT=600 seconds per valgrind script (tests/memcheck)
#   VIGIL_FUZZ_TIMEOUT=400     seconds for the fuzz smoke script (the fuzz
#                              targets are built before, by `make test`)
#   VIGIL_TEST_TAIL=60         lines of output shown for a failing program
set -u
cd "$(dirname "$0")/.." || exit 2

filter=${VIGIL_TEST_FILTER:-}
verbose=${VIGIL_TEST_VERBOSE:-0}
unit_timeout=${VIGIL_UNIT_TIMEOUT:-300}
interop_timeout=${VIGIL_INTEROP_TIMEOUT:-300}
fuzz_timeout=${VIGIL_FUZZ_TIMEOUT:-400}
memcheck_timeout=${VIGIL_MEMCHECK_TIMEOUT:-600}
tail_lines=${VIGIL_TEST_TAIL:-60}
ncpu=$(nproc 2>/dev/null || echo 1)
jobs=${VIGIL_TEST_JOBS:-$((2 * ncpu))}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
times_file=build/.test-times

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-run.XXXXXX") || exit 2
# One list of the loopback ports handed out to every script of the run
# (tests/interop/lib.sh free_port): scripts run side by side, and a port one
# of them picked but has not bound yet looks free to the others.
export VIGIL_PORT_REGISTRY="$tmp/ports"
: >"$VIGIL_PORT_REGISTRY"
# Whatever ends the runner, its children (and their process groups) go too.
cleanup() {
    local p
    for p in $(jobs -p); do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

selected() {
    [ -f "$1" ] && [ -x "$1" ] || return 1
    [ -z "$filter" ] || [[ "$1" == *"$filter"* ]]
}

# The job table: kinds[i] timeouts[i] paths[i] envs[i] (space-separated).
kinds=() limits=() paths=() envs=()
add_job() { kinds+=("$1"); limits+=("$2"); paths+=("$3"); envs+=("${4:-}"); }

asan_env="ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
for t in build/tests/test_*; do
    selected "$t" && add_job unit "$unit_timeout" "$t"
done
for t in build-asan/tests/test_*; do
    selected "$t" && add_job unit "$unit_timeout" "$t" "$asan_env"
done
for t in tests/interop/*.sh tests/chaos/test_*.sh tests/fuzz-smoke/*.sh tests/memcheck/*.sh; do
    [ -e "$t" ] || continue
    [ "${t##*/}" = lib.sh ] && continue
    if [ ! -x "$t" ]; then
        [ -z "$filter" ] || [[ "$t" == *"$filter"* ]] || continue
        echo "skip  $t  (not executable)"
        continue
    fi
    selected "$t" || continue
    case $t in
        tests/fuzz-smoke/*) add_job script "$fuzz_timeout" "$t" ;;
        tests/memcheck/*) add_job script "$memcheck_timeout" "$t" ;;
        *) add_job script "$interop_timeout" "$t" ;;
    esac
done

# Start order: longest first by the last run's times (unknown ones first of
# all, they may be long); ties keep the listing order.
order=$(for i in "${!paths[@]}"; do
    secs=$(awk -v p="${paths[$i]}" '$2 == p {print $1}' "$times_file" 2>/dev/null | tail -n 1)
    printf '%s %05d\n' "${secs:-99999}" "$i"
done | sort -k1,1nr -k2,2n | awk '{print $2 + 0}')

# run_job I: run job I in the background of its own process group, its
# output in $tmp/I.out, exit status in $tmp/I.rc and seconds in $tmp/I.sec.
run_job() {
    local i=$1 start
    start=$(date +%s)
    # (the subshell keeps bash's "Aborted"/"Killed" notices out of our output)
    (env ${envs[$i]} timeout -k 10 "${limits[$i]}" "./${paths[$i]}" </dev/null >"$tmp/$i.out" 2>&1
     echo $? >"$tmp/$i.rc") 2>/dev/null
    echo $(($(date +%s) - start)) >"$tmp/$i.sec"
}

started=0
running=0
wall_start=$(date +%s)
for i in $order; do
    while [ "$running" -ge "$jobs" ]; do
        wait -n 2>/dev/null
        running=$((running - 1))
    done
    set -m
    run_job "$i" &
    set +m
    running=$((running + 1))
    started=$((started + 1))
done
wait

passed=0 failed=0 skipped=0
failures=()
: >"$tmp/report"
: >"$tmp/times"
for i in "${!paths[@]}"; do
    path=${paths[$i]} kind=${kinds[$i]} limit=${limits[$i]}
    out="$tmp/$i.out"
    rc=$(cat "$tmp/$i.rc" 2>/dev/null || echo 125)
    secs=$(cat "$tmp/$i.sec" 2>/dev/null || echo 0)
    echo "$secs $path" >>"$tmp/times"
    nskip=$(grep -cE '^ok - .*# *SKIP' "$out")
    nok=$(($(grep -c '^ok - ' "$out") - nskip))
    nnot=$(grep -c '^not ok - ' "$out")
    status="exit $rc"
    [ "$rc" -eq 124 ] && status="timed out after ${limit}s"
    [ "$rc" -eq 137 ] && status="killed (timeout ${limit}s?)"
    [ "$rc" -gt 128 ] && [ "$rc" -ne 137 ] && status="exit $rc (signal $((rc - 128)))"
    abnormal=0
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -ne 1 ] || [ "$nnot" -eq 0 ]; then
            abnormal=1
        elif [ "$kind" = unit ] && ! grep -qE '^# [0-9]+ passed, [0-9]+ failed$' "$out"; then
            abnormal=1
        fi
        [ "$abnormal" = 1 ] && status="$status, abnormal end counted as a failure"
    elif [ "$nok" -eq 0 ] && [ "$nnot" -eq 0 ] && [ "$nskip" -eq 0 ]; then
        abnormal=1
        status="exit 0 without a single ok/not ok line, counted as a failure"
    fi
    if [ "$abnormal" = 1 ]; then
        nnot=$((nnot + 1))
    fi
    passed=$((passed + nok))
    failed=$((failed + nnot))
    skipped=$((skipped + nskip))
    if [ "$nnot" -gt 0 ]; then
        printf 'FAIL  %s  (%d ok, %d not ok, %s, %ss)\n' "$path" "$nok" "$nnot" "$status" "$secs"
        failures+=("$path")
        {
            echo "======== $path ($status) ========"
            if [ "$verbose" = 1 ]; then
                cat "$out"
            else
                echo "---- failing tests ----"
                # each "not ok" line with the "#" diagnostics right before it
                # (unit tests print them first) and right after it (the
                # interop scripts' not_ok prints them second), at most 10
                awk '/^# /{if (after > 0) {print; after--; next} d[n++]=$0; next}
                     /^not ok - /{for(i=0;i<n;i++)print d[i]; print; n=0; after=10; next}
                     {n=0; after=0}' "$out" | tail -n 200
                echo "---- last $tail_lines lines of output ----"
                tail -n "$tail_lines" "$out"
            fi
        } >>"$tmp/report"
    else
        if [ "$nskip" -gt 0 ]; then
            printf 'PASS  %s  (%d ok, %d skipped, %ss)\n' "$path" "$nok" "$nskip" "$secs"
            grep -E '^ok - .*# *SKIP' "$out" | sed 's/^/      /'
        else
            printf 'PASS  %s  (%d ok, %ss)\n' "$path" "$nok" "$secs"
        fi
        [ "$verbose" = 1 ] && cat "$out"
    fi
done

# Remember this run's times for the next run's start order (whole runs only).
if [ -z "$filter" ] && [ -d build ]; then
    cp "$tmp/times" "$times_file" 2>/dev/null || true
fi

if [ -s "$tmp/report" ]; then
    echo
    cat "$tmp/report"
    echo
    echo "failing: ${failures[*]}"
fi

echo "# $started programs, $jobs at a time, $(($(date +%s) - wall_start)) s"
[ "$skipped" -gt 0 ] && echo "# $skipped skipped (listed above; not counted as passes)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
