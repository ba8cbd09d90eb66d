#!/usr/bin/env bash
# Every unit test binary (normal build) under valgrind memcheck: no invalid
# reads/writes, no uninitialised values steering branches, no leaks.  The
# simulator tests run at reduced scale (VIGIL_SIM_SCALE) to keep this to a
# few minutes on 2 cores.
set -u
cd "$(dirname "$0")/../.."
if ! command -v valgrind >/dev/null; then
    echo "ok - valgrind not installed (skipped)"
    exit 0
fi
rc=0
for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    name=${t##*/}
    log=$(mktemp)
    if VIGIL_SIM_SCALE=0.3 timeout 900 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=99 "$t" >"$log" 2>&1; then
        echo "ok - valgrind $name"
    else
        echo "not ok - valgrind $name"
        grep -E "^==[0-9]+==" "$log" | head -30 | sed 's/^/# /'
        tail -5 "$log" | sed 's/^/# /'
        rc=1
    fi
    rm -f "$log"
done
exit $rc
