#!/usr/bin/env bash
# Every unit test binary (normal build) under valgrind memcheck, except those
# with a script of their own (lib.sh's MEMCHECK_OWN_SCRIPT).  The simulator
# binary runs a representative subset at reduced scale (VIGIL_SIM_SCALE): its
# long soaks (5 virtual minutes of loss, 2 virtual days of absence) take
# minutes under valgrind and exercise the same code.
set -u
cd "$(dirname "$0")/../.."
. tests/memcheck/lib.sh
memcheck_available || exit 0
SIM_SUBSET="sim_basics crash_detected pause_suspected frozen_30s graceful_leave
    return_before_reap isolated_accuser leave_does_not_spin stale_suspicion determinism"
for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    name=${t##*/}
    case " $MEMCHECK_OWN_SCRIPT " in *" $name "*) continue ;; esac
    if [ "$name" = test_sim ]; then
        for f in $SIM_SUBSET; do memcheck "$name $f" "$t" "$f"; done
    else
        memcheck "$name" "$t"
    fi
done
exit $memcheck_rc
