#!/usr/bin/env bash
# Issue 5 acceptance: encrypted gossip compatible with `serf -encrypt`.
#  - 3 serf + 3 vigil agents sharing one -encrypt key form one cluster;
#  - a vigil agent with a wrong key, or with none, is not admitted and
#    learns nothing of the cluster;
#  - `serf keys -install/-use/-remove` run against a serf agent rotates the
#    keys of the vigil agents too, `vigil keys` against a vigil agent rotates
#    the serf agents', and the cluster stays whole throughout.
set -u
. "$(dirname "$0")/lib.sh"

read -r PS1 RS1 PS2 RS2 PS3 RS3 PV1 RV1 PV2 RV2 PV3 RV3 PW RW PN RN < <(free_ports 16)
K1=$(serf keygen); K2=$(serf keygen); K3=$(serf keygen); KW=$(serf keygen)

start_serf s1 "$PS1" "$RS1" -encrypt="$K1"
wait_ready "$RS1"
start_vigil v1 "$PV1" "$RV1" -encrypt="$K1" -join=127.0.0.1:"$PS1"
wait_ready "$RV1"
start_serf s2 "$PS2" "$RS2" -encrypt="$K1" -join=127.0.0.1:"$PV1"
start_vigil v2 "$PV2" "$RV2" -encrypt="$K1" -join=127.0.0.1:"$PS1"
start_serf s3 "$PS3" "$RS3" -encrypt="$K1" -join=127.0.0.1:"$PV1"
start_vigil v3 "$PV3" "$RV3" -encrypt="$K1" -join=127.0.0.1:"$PS1"
RPCS="$RS1 $RS2 $RS3 $RV1 $RV2 $RV3"
whole() { # every agent lists 6 alive
    local r
    for r in $RPCS; do
        [ "$(members_of "$r" -status=alive 2>/dev/null | wc -l)" -eq 6 ] || return 1
    done
}
check "encrypted: 3 serf + 3 vigil form one cluster" wait_until 45 whole

# intruders: wrong key, and no key at all
start_vigil wrongkey "$PW" "$RW" -encrypt="$KW" -join=127.0.0.1:"$PS1"
start_vigil nokey "$PN" "$RN" -join=127.0.0.1:"$PV1"
wait_ready "$RW"
wait_ready "$RN"
sleep 5
alone() { [ "$(members_of "$1" 2>/dev/null | wc -l)" -eq 1 ]; }
check "a vigil agent with the wrong key learns nothing of the cluster" alone "$RW"
check "a vigil agent without a key learns nothing of the cluster" alone "$RN"
nobody_admits() {
    local r
    for r in $RPCS; do
        members_of "$r" | grep -qE "^(wrongkey|nokey) " && return 1
    done
    return 0
}
check "nobody in the cluster admits either intruder" nobody_admits
check "the cluster is still whole" whole

# keys_cmd BIN RPC ARGS...: `BIN keys ARGS` against RPC, output in KEYS_OUT.
# A query reaches each member in ~4 gossip copies and misses all of them
# about 1% of the time (serf agents alone do the same); the command then
# fails with "N/6 nodes reported success".  Re-run it then, as an operator
# would -- install/use/remove are idempotent.  Per-node failures (or
# anything else) are not retried.
keys_cmd() {
    local bin=$1 rpc=$2 i rc
    shift 2
    for i in 1 2 3; do
        KEYS_OUT=$("$bin" keys "$@" -rpc-addr=127.0.0.1:"$rpc" 2>&1)
        rc=$?
        [ "$rc" -eq 0 ] && return 0
        echo "$KEYS_OUT" | grep -q "nodes reported success" || return "$rc"
        echo "# $bin keys $* (rpc $rpc): a member did not answer, re-running"
    done
    return "$rc"
}
keys_ok() { # NAME BIN RPC ARGS...
    local name=$1
    shift
    if keys_cmd "$@"; then ok "$name"; else not_ok "$name" "$(echo "$KEYS_OUT" | tr '\n' ' ')"; fi
}
# has_key_everywhere KEY yes|no [RPC]: a complete cluster-wide listing (all
# 6 answered) shows KEY on [6/6] / not at all
has_key_everywhere() {
    local out
    out=$(serf keys -list -rpc-addr=127.0.0.1:"${3:-$RS2}" 2>/dev/null) || return 1
    if [ "$2" = yes ]; then echo "$out" | grep -q "$1.*\[6/6\]"
    else ! echo "$out" | grep -q "$1"; fi
}

# rotation driven from serf
keys_ok "serf keys -install succeeds on all 6 members" serf "$RS1" -install="$K2"
check "installed key present on all 6 (asked via a vigil agent)" \
    wait_until 5 has_key_everywhere "$K2" yes "$RV2"
keys_ok "serf keys -use succeeds on all 6 members" serf "$RS1" -use="$K2"
keys_ok "serf keys -remove succeeds on all 6 members" serf "$RS1" -remove="$K1"
check "old key gone everywhere" wait_until 5 has_key_everywhere "$K1" no
sleep 3
check "cluster whole after serf-driven rotation" wait_until 10 whole

# rotation driven from vigil
keys_ok "vigil keys -install succeeds on all 6 members" "$VIGIL_BIN" "$RV3" -install="$K3"
check "vigil-installed key present on all 6 (asked via a serf agent)" \
    wait_until 5 has_key_everywhere "$K3" yes
# back to back: each command returns only once the whole cluster answered,
# so the remove never reaches a node where K2 is still the primary
keys_ok "vigil keys -use succeeds on all 6 members" "$VIGIL_BIN" "$RV3" -use="$K3"
keys_ok "vigil keys -remove right after -use succeeds on all 6 members" \
    "$VIGIL_BIN" "$RV3" -remove="$K2"
check "vigil-removed key gone everywhere" wait_until 5 has_key_everywhere "$K2" no
vigil_lists_one() { # RPC: `vigil keys -list` there shows exactly one key, on [6/6]
    local out
    out=$("$VIGIL_BIN" keys -list -rpc-addr=127.0.0.1:"$1") || return 1
    [ "$(echo "$out" | grep -c '\[6/6\]')" -eq 1 ] && echo "$out" | grep -q "$K3.*\[6/6\]"
}
check "vigil keys -list asks the whole cluster: only the new key, on [6/6]" \
    wait_until 5 vigil_lists_one "$RV1"
# per-node failures are reported as serf does, with exit code 1
primary_refused() { # BIN RPC
    local out rc i
    for i in 1 2 3; do
        out=$("$1" keys -remove="$K3" -rpc-addr=127.0.0.1:"$2" 2>&1)
        rc=$?
        [ "$rc" -eq 1 ] || return 1
        echo "$out" | grep -q "Error removing key: 6/6 nodes reported failure" && break
    done
    [ "$(echo "$out" | grep -c '^failed: .*Removing the primary key is not allowed')" -eq 6 ] &&
        echo "$out" | grep -q "Error removing key: 6/6 nodes reported failure"
}
check "vigil keys -remove of the primary: 6 node failures, exit 1" primary_refused "$VIGIL_BIN" "$RV1"
check "serf keys -remove of the primary via a vigil agent: 6 node failures, exit 1" \
    primary_refused "$SERF_BIN" "$RV2"
check "the primary key is still on all 6" wait_until 5 has_key_everywhere "$K3" yes "$RV3"
sleep 3
check "cluster whole after vigil-driven rotation" wait_until 10 whole
# a new serf agent with only the new key joins through a vigil agent
read -r PS4 RS4 < <(free_ports 2)
start_serf s4 "$PS4" "$RS4" -encrypt="$K3" -join=127.0.0.1:"$PV2"
check "a serf agent with only the rotated key joins via vigil" \
    wait_until 15 members_have "$RV1" s4 alive
finish
