#!/usr/bin/env bash
# Issue 14, finding 5: failure news to and from a plain memberlist peer.
# 3 vigil agents and one HashiCorp memberlist node (tests/interop/mlnode,
# built here against Debian's golang-github-hashicorp-memberlist-dev, LAN
# defaults); kill -9 of a vigil agent, several fresh clusters in a row.
# Measured: when the memberlist node's NotifyLeave fired for it, and when
# both other vigil agents listed it failed.  serf in the same setup: 0 of
# 60 over 10 s, max 7.6 s; before the fix vigil had 7 of 50 over 10 s at
# the memberlist node (max 28.9 s) and 5 of 50 at the vigil agents.
# Figure: every detection within 10 s, on both sides.  With the fix
# (an own accusation is not displaced, src/swim.c note_own_accusation):
# 0 of 30 over 10 s on either side, slowest 7.6 s (serf's max: 7.6 s).
set -u
. "$(dirname "$0")/lib.sh"

# 3 fresh clusters by default (a minute); VIGIL_ML_TRIALS=50 for the
# issue's measurement.  VIGIL_ML_ARGS: extra vigil agent flags;
# VIGIL_ML_VERBOSE=1: memberlist's own log in the memberlist node's log.
TRIALS=${VIGIL_ML_TRIALS:-3}
LIMIT_MS=10000
MLNODE=$VIGIL_ROOT/build/mlnode
SRC=$VIGIL_ROOT/tests/interop/mlnode/main.go

if ! command -v go >/dev/null 2>&1 ||
   [ ! -d /usr/share/gocode/src/github.com/hashicorp/memberlist ]; then
    ok "memberlist peer # SKIP no Go toolchain or memberlist source (scripts/deps.sh)"
    finish
fi
if [ ! -x "$MLNODE" ] || [ "$SRC" -nt "$MLNODE" ]; then
    if ! (cd "$VIGIL_ROOT/tests/interop/mlnode" &&
          env GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= \
              GOCACHE="$VIGIL_ROOT/build/gocache" go build -o "$MLNODE" .) \
          >"$VIGIL_TMP/go-build.log" 2>&1; then
        not_ok "build the memberlist node" "$(tail -5 "$VIGIL_TMP/go-build.log")"
        finish
    fi
fi

now_ms() { date +%s%3N; }
vigil_has() {
    "$VIGIL_BIN" members -rpc-addr=127.0.0.1:"$1" 2>/dev/null |
        awk -v n="$2" -v s="$3" '$1 == n && $3 == s {f = 1} END {exit !f}'
}
# ml_saw NAME KIND: the memberlist node logged KIND (JOIN/LEAVE) for NAME.
ml_saw() { awk -v n="$1" -v k="$2" '$2 == k && $3 == n {f = 1} END {exit !f}' "$(log_of "$3")"; }
formed() {
    local t=$1 rv
    for n in v1 v2 v3; do ml_saw "$n-$t" JOIN "ml-$t" || return 1; done
    for rv in "$R1" "$R2" "$R3"; do vigil_has "$rv" "ml-$t" alive || return 1; done
    for rv in "$R1" "$R2" "$R3"; do
        for n in v1 v2 v3; do vigil_has "$rv" "$n-$t" alive || return 1; done
    done
}
both_see_failed() { vigil_has "$R1" "v3-$1" failed && vigil_has "$R2" "v3-$1" failed; }

over_ml=0 over_v=0 worst_ml=0 worst_v=0 measured=0
for t in $(seq 1 "$TRIALS"); do
    read -r P1 R1 P2 R2 P3 R3 PM < <(free_ports 7)
    start_vigil "v1-$t" "$P1" "$R1" ${VIGIL_ML_ARGS:-}
    wait_ready "$R1"
    start_vigil "v2-$t" "$P2" "$R2" -join=127.0.0.1:"$P1" ${VIGIL_ML_ARGS:-}
    start_vigil "v3-$t" "$P3" "$R3" -join=127.0.0.1:"$P1" ${VIGIL_ML_ARGS:-}
    wait_ready "$R2"
    wait_ready "$R3"
    "$MLNODE" -name "ml-$t" -port "$PM" -join 127.0.0.1:"$P1" ${VIGIL_ML_VERBOSE:+-v} \
        </dev/null >"$(log_of "ml-$t")" 2>&1 &
    _vigil_track "ml-$t" $!
    if ! wait_until 30 formed "$t"; then
        not_ok "trial $t: 3 vigil agents and the memberlist node see each other"
        continue
    fi
    sleep 2 # let the round-robin settle past the joins (as the benchmark does)
    t0=$(now_ms)
    kill_node "v3-$t"
    if wait_until 30 both_see_failed "$t"; then dv=$(($(now_ms) - t0)); else dv=99999; fi
    wait_until 30 ml_saw "v3-$t" LEAVE "ml-$t"
    ts=$(awk -v n="v3-$t" '$2 == "LEAVE" && $3 == n {print $1; exit}' "$(log_of "ml-$t")")
    dm=$(( ${ts:-$((t0 + 99999))} - t0 ))
    echo "# trial $t: memberlist node $dm ms, vigil agents $dv ms"
    measured=$((measured + 1))
    [ "$dm" -gt "$LIMIT_MS" ] && over_ml=$((over_ml + 1))
    [ "$dv" -gt "$LIMIT_MS" ] && over_v=$((over_v + 1))
    [ "$dm" -gt "$worst_ml" ] && worst_ml=$dm
    [ "$dv" -gt "$worst_v" ] && worst_v=$dv
    for n in v1 v2 ml; do stop_node "$n-$t"; done
done
echo "# slowest: memberlist node $worst_ml ms, vigil agents $worst_v ms ($measured trials)"
[ "$measured" -gt 0 ] || not_ok "at least one trial measured"
# Every kill must be detected within memberlist's longest suspicion (24 s)
# plus a probe, and within 10 s; a long run (VIGIL_ML_TRIALS=50) may
# have 1 in 25 over 10 s for a loaded machine's sake, the default 3 none.
# The case that used to take 11.4 s in 1 of 7 trials: the two vigil
# agents, hinted by ICMP, and the memberlist node suspect the member in
# the same ~100 ms; each vigil agent passed on the first accusation it
# heard in place of its own, so each suspicion got one of the two
# confirmations it expected (tests/unit/test_detection.c,
# own_accusation_leaves_after_hearing_another).
allowed=$((TRIALS / 25))
[ "${VIGIL_ML_STRICT:-0}" = 1 ] && allowed=0
echo "# over 10 s: memberlist node $over_ml, vigil agents $over_v of $measured (allowed $allowed)"
if [ "$worst_ml" -le 25000 ] && [ "$worst_v" -le 25000 ]; then
    ok "every kill -9 detected by the memberlist node and the vigil agents within 25 s"
else
    not_ok "every kill -9 detected by the memberlist node and the vigil agents within 25 s"
fi
if [ "$over_ml" -le "$allowed" ]; then ok "kill -9 of a vigil agent reaches the memberlist node within 10 s"
else not_ok "kill -9 of a vigil agent reaches the memberlist node within 10 s" "$over_ml of $TRIALS over"; fi
if [ "$over_v" -le "$allowed" ]; then ok "the other vigil agents report it failed within 10 s"
else not_ok "the other vigil agents report it failed within 10 s" "$over_v of $TRIALS over"; fi
finish
