# tests/wait.sh — wait_until, shared by the interop (tests/interop/lib.sh)
# and fault-injection (tests/chaos/lib.sh) helpers.  Source it.

# wait_until TIMEOUT_SECONDS cmd...: run cmd (output discarded) every
# WAIT_INTERVAL seconds (default 0.2) until it succeeds (return 0) or
# TIMEOUT_SECONDS (may be fractional) pass (return 1).
wait_until() {
    local limit_us end now
    limit_us=$(awk -v d="$1" 'BEGIN{printf "%.0f", d * 1000000}')
    shift
    now=${EPOCHREALTIME/[.,]/}
    end=$((now + limit_us))
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        now=${EPOCHREALTIME/[.,]/}
        [ "$now" -ge "$end" ] && return 1
        sleep "${WAIT_INTERVAL:-0.2}"
    done
}
