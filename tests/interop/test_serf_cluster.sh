#!/usr/bin/env bash
# Issue 2 acceptance: vigil and the real Debian `serf` agent in one cluster.
#  (a) 3 serf + 3 vigil agents join (vigil through serf and serf through
#      vigil); every agent's member list shows the same 6 members alive;
#  (b) kill -9 of a vigil agent is reported failed by every serf agent, and
#      kill -9 of a serf agent is reported failed by every vigil agent,
#      within memberlist's worst-case detection time;
#  (c) SIGINT of a vigil agent is reported as left (not failed) by serf.
set -u
. "$(dirname "$0")/lib.sh"

read -r PS1 RS1 PS2 RS2 PS3 RS3 PV1 RV1 PV2 RV2 PV3 RV3 < <(free_ports 12)

# memberlist LAN defaults, n = 6: suspicion lasts 4 * max(1, log10 6) * 1 s
# = 4 s with two confirmations, up to 6x that (24 s) without; plus a probe
# interval to notice and gossip time to spread.  30 s is that bound, padded.
DETECT=30

vigil_members() { "$VIGIL_BIN" members -rpc-addr=127.0.0.1:"$1"; }
vigil_has() {
    vigil_members "$1" 2>/dev/null | awk -v n="$2" -v s="$3" \
        '$1 == n && $3 == s {f = 1} END {exit !f}'
}
# all_see KIND RPC... -- NAME STATUS
all_see() {
    local name=$1 status=$2
    shift 2
    local spec
    for spec in "$@"; do
        local kind=${spec%%:*} rpc=${spec#*:}
        if [ "$kind" = serf ]; then members_have "$rpc" "$name" "$status" || return 1
        else vigil_has "$rpc" "$name" "$status" || return 1; fi
    done
}
count_alive() {
    if [ "$1" = serf ]; then members_of "$2" -status=alive 2>/dev/null | wc -l
    else vigil_members "$2" 2>/dev/null | awk '$3 == "alive"' | wc -l; fi
}
six_alive_everywhere() {
    local spec
    for spec in serf:$RS1 serf:$RS2 serf:$RS3 vigil:$RV1 vigil:$RV2 vigil:$RV3; do
        [ "$(count_alive "${spec%%:*}" "${spec#*:}")" -eq 6 ] || return 1
    done
}

start_serf s1 "$PS1" "$RS1"
wait_ready "$RS1"
start_vigil v1 "$PV1" "$RV1" -join=127.0.0.1:"$PS1"     # vigil joins via serf
wait_ready "$RV1"
start_serf s2 "$PS2" "$RS2" -join=127.0.0.1:"$PV1"      # serf joins via vigil
wait_ready "$RS2"
start_vigil v2 "$PV2" "$RV2" -join=127.0.0.1:"$PS2"
wait_ready "$RV2"
start_serf s3 "$PS3" "$RS3" -join=127.0.0.1:"$PV2"
wait_ready "$RS3"
start_vigil v3 "$PV3" "$RV3" -join=127.0.0.1:"$PV1"
wait_ready "$RV3"

if wait_until 45 six_alive_everywhere; then
    ok "six members alive in every serf and vigil member list"
else
    not_ok "six members alive in every serf and vigil member list" \
        "$(members_of "$RS1" 2>&1 | tr '\n' ';') / $(vigil_members "$RV1" 2>&1 | tr '\n' ';')"
fi

# the lists must agree on names and addresses, not only on counts
norm() { awk '{print $1, $2}' | sort; }
ref=$(members_of "$RS1" | norm)
same=1
for r in $RS2 $RS3; do [ "$(members_of "$r" | norm)" = "$ref" ] || same=0; done
for r in $RV1 $RV2 $RV3; do [ "$(vigil_members "$r" | norm)" = "$ref" ] || same=0; done
if [ "$same" = 1 ]; then ok "all six lists name the same members at the same addresses"
else not_ok "all six lists name the same members at the same addresses" "$ref"; fi

# (b) crash a vigil agent: every serf agent (and vigil) says failed
kill_node v3
t0=$SECONDS
if wait_until "$DETECT" all_see v3 failed serf:$RS1 serf:$RS2 serf:$RS3 vigil:$RV1 vigil:$RV2; then
    ok "kill -9 vigil: every serf and vigil agent reports it failed ($((SECONDS - t0)) s)"
else
    not_ok "kill -9 vigil: every serf and vigil agent reports it failed" \
        "$(members_of "$RS1" 2>&1 | tr '\n' ';')"
fi

# crash a serf agent: every vigil agent (and serf) says failed
kill_node s3
t0=$SECONDS
if wait_until "$DETECT" all_see s3 failed vigil:$RV1 vigil:$RV2 serf:$RS1 serf:$RS2; then
    ok "kill -9 serf: every vigil and serf agent reports it failed ($((SECONDS - t0)) s)"
else
    not_ok "kill -9 serf: every vigil and serf agent reports it failed" \
        "$(vigil_members "$RV1" 2>&1 | tr '\n' ';')"
fi

# (c) graceful leave on SIGINT
stop_node v2 INT
if wait_until 15 all_see v2 left serf:$RS1 serf:$RS2 vigil:$RV1; then
    ok "SIGINT vigil: serf reports it left, not failed"
else
    not_ok "SIGINT vigil: serf reports it left, not failed" \
        "$(members_of "$RS1" 2>&1 | tr '\n' ';')"
fi
if wait_until 10 sh -c "! kill -0 $(pid_of v2) 2>/dev/null"; then
    ok "SIGINT vigil: the agent exits after leaving"
else
    not_ok "SIGINT vigil: the agent exits after leaving"
fi
if grep -q "EventMemberFailed: v2" "$(log_of s1)"; then
    not_ok "serf never saw the leaving vigil agent as failed" "$(grep v2 "$(log_of s1)" | tail -3)"
else
    ok "serf never saw the leaving vigil agent as failed"
fi
finish
