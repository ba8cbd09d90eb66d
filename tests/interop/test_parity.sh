#!/usr/bin/env bash
# test_parity.sh — serf parity against the real serf agent (issue 17):
# network coordinates both ways (serf rtt / vigil rtt / RPC get-coordinate),
# -disable-coordinates.
set -u
. "$(dirname "$0")/lib.sh"

read -r P1 R1 P2 R2 P3 R3 P4 R4 < <(free_ports 8)
start_serf  s1 "$P1" "$R1"
wait_ready "$R1" 15 || not_ok serf_ready "s1 never answered RPC"
start_vigil v1 "$P2" "$R2" -join=127.0.0.1:"$P1"
start_vigil v2 "$P3" "$R3" -join=127.0.0.1:"$P1"
start_vigil v3 "$P4" "$R4" -join=127.0.0.1:"$P1" -disable-coordinates
for n in v1 v2 v3; do
    wait_until 15 members_have "$R1" "$n" alive || not_ok "join_$n" "$n never alive at s1"
done

# rtt_ms CLI RPCPORT A [B]: the estimate in ms, or fail.
rtt_ms() {
    local cli=$1 rpc=$2
    shift 2
    "$cli" rtt -rpc-addr=127.0.0.1:"$rpc" "$@" 2>&1 |
        awk '/^Estimated .* rtt: [0-9.]+ ms$/ {print $(NF-1); f = 1} END {exit !f}'
}
# plausible MS: a loopback RTT estimate — positive and below 20 ms (real
# loopback RTTs here are 0.02-0.5 ms; Vivaldi's height floor and the
# adjustment term keep estimates of a few hundred µs at most).
plausible() { awk -v v="$1" 'BEGIN {exit !(v > 0 && v < 20)}'; }

# serf asks its own agent for a vigil node's coordinate (learned from v1's
# acks), and a serf CLI asks a vigil agent (its get-coordinate and stats).
for spec in "serf $R1 v1" "serf $R1 v1 s1" "serf $R2 s1" "serf $R2 v1 s1" \
            "$VIGIL_BIN $R2 v2" "$VIGIL_BIN $R2 s1" "$VIGIL_BIN $R3 v1 v2" "$VIGIL_BIN $R1 v2"; do
    set -- $spec
    cli=$1 rpc=$2
    shift 2
    name="rtt_$(basename "$cli")_via_${rpc}_$(echo "$*" | tr ' ' '_')"
    [ "$rpc" = "$R1" ] && name="rtt_$(basename "$cli")_via_s1_$(echo "$*" | tr ' ' '_')"
    [ "$rpc" = "$R2" ] && name="rtt_$(basename "$cli")_via_v1_$(echo "$*" | tr ' ' '_')"
    [ "$rpc" = "$R3" ] && name="rtt_$(basename "$cli")_via_v2_$(echo "$*" | tr ' ' '_')"
    if wait_until 20 rtt_ms "$cli" "$rpc" "$@"; then
        ms=$(rtt_ms "$cli" "$rpc" "$@")
        if plausible "$ms"; then ok "$name ($ms ms)"; else not_ok "$name" "implausible estimate $ms ms"; fi
    else
        not_ok "$name" "$("$cli" rtt -rpc-addr=127.0.0.1:"$rpc" "$@" 2>&1 | head -3)"
    fi
done

# Both sides estimate the same pair about equally (each has its own model).
a=$(rtt_ms serf "$R1" v1 s1) b=$(rtt_ms "$VIGIL_BIN" "$R2" v1 s1)
if awk -v a="$a" -v b="$b" 'BEGIN {exit !(a > 0 && b > 0 && a / b < 20 && b / a < 20)}'; then
    ok "rtt_serf_and_vigil_views_agree ($a vs $b ms)"
else
    not_ok rtt_serf_and_vigil_views_agree "serf says $a ms, vigil says $b ms"
fi

# -disable-coordinates: v3 sends none in its acks and keeps none.
out=$(serf rtt -rpc-addr=127.0.0.1:"$R1" v3 2>&1)
check disable_coordinates_serf_finds_none [ "$out" = 'Could not find a coordinate for node "v3"' ]
out=$("$VIGIL_BIN" rtt -rpc-addr=127.0.0.1:"$R4" s1 2>&1)
check disable_coordinates_vigil_keeps_none [ "$out" = 'Could not find a coordinate for node "s1"' ]
out=$("$VIGIL_BIN" rtt -rpc-addr=127.0.0.1:"$R2" nosuch 2>&1)
check rtt_unknown_node_as_serf [ "$out" = 'Could not find a coordinate for node "nosuch"' ]

finish
