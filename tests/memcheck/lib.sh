# tests/memcheck/lib.sh — shared by the valgrind_*.sh scripts, which split
# the unit test binaries between them so that tests/run.sh runs them in
# parallel (under valgrind test_will and test_detection each take minutes).
#
# memcheck LABEL BINARY [ARGS]: run one binary under memcheck and print
# "ok - valgrind LABEL (N s)" or "not ok" with valgrind's report; sets
# memcheck_rc=1 on failure.  No invalid reads/writes, no uninitialised values
# steering branches, no definite or indirect leaks.  VIGIL_SIM_SCALE shrinks
# the simulator's soaks; VIGIL_TEST_SLOWDOWN widens the unit tests' time
# bounds, since here they look for memory errors only.
memcheck_rc=0
memcheck_available() {
    if ! command -v valgrind >/dev/null; then
        echo "ok - valgrind # SKIP valgrind not installed"
        return 1
    fi
}
memcheck() {
    local label=$1 log start=$SECONDS
    shift
    log=$(mktemp)
    if VIGIL_SIM_SCALE=0.3 VIGIL_TEST_SLOWDOWN=200 timeout 600 valgrind -q --leak-check=full \
        --suppressions=tests/memcheck/re2.supp \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$@" >"$log" 2>&1; then
        echo "ok - valgrind $label ($((SECONDS - start)) s)"
    else
        echo "not ok - valgrind $label"
        grep -E "^==[0-9]+==" "$log" | head -30 | sed 's/^/# /'
        tail -5 "$log" | sed 's/^/# /'
        memcheck_rc=1
    fi
    rm -f "$log"
}
# Unit binaries that get a script of their own (valgrind_<name minus test_>.sh).
MEMCHECK_OWN_SCRIPT="test_will test_detection"
