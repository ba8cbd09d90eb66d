#!/usr/bin/env bash
# Every unit test binary (normal build) under valgrind memcheck: no invalid
# reads/writes, no uninitialised values steering branches, no leaks.  The
# simulator binary runs a representative subset at reduced scale
# (VIGIL_SIM_SCALE): its long soaks (5 virtual minutes of loss, 2 virtual
# days of absence) take minutes under valgrind and exercise the same code.
set -u
cd "$(dirname "$0")/../.."
if ! command -v valgrind >/dev/null; then
    echo "ok - valgrind # SKIP valgrind not installed"
    exit 0
fi
rc=0
SIM_SUBSET="sim_basics crash_detected pause_suspected frozen_30s graceful_leave
    return_before_reap isolated_accuser leave_does_not_spin stale_suspicion determinism"
memcheck() { # label binary [filter]
    local label=$1 log
    shift
    log=$(mktemp)
    if VIGIL_SIM_SCALE=0.3 VIGIL_TEST_SLOWDOWN=200 timeout 600 valgrind -q --leak-check=full --suppressions=tests/memcheck/re2.supp \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$@" >"$log" 2>&1; then
        echo "ok - valgrind $label"
    else
        echo "not ok - valgrind $label"
        grep -E "^==[0-9]+==" "$log" | head -30 | sed 's/^/# /'
        tail -5 "$log" | sed 's/^/# /'
        rc=1
    fi
    rm -f "$log"
}
for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    name=${t##*/}
    if [ "$name" = test_sim ]; then
        for f in $SIM_SUBSET; do memcheck "$name $f" "$t" "$f"; done
    else
        memcheck "$name" "$t"
    fi
done
exit $rc
