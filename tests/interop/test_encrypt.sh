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
check "encrypted: 3 serf + 3 vigil form one cluster" wait_until 20 whole

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

keys_on() { # rpc -> sorted key list of that agent's local keyring view
    members_of "$1" >/dev/null 2>&1 || return 1
    serf keys -list -rpc-addr=127.0.0.1:"$1" 2>/dev/null
}
has_key_everywhere() { # key expected(yes|no)
    local out
    out=$(serf keys -list -rpc-addr=127.0.0.1:"$RS2" 2>/dev/null)
    if [ "$2" = yes ]; then echo "$out" | grep -q "$1.*\[6/6\]"
    else ! echo "$out" | grep -q "$1"; fi
}

# rotation driven from serf
if serf keys -install="$K2" -rpc-addr=127.0.0.1:"$RS1" >/dev/null 2>&1; then ok "serf keys -install succeeds on all 6 members"
else not_ok "serf keys -install succeeds on all 6 members" "$(serf keys -install="$K2" -rpc-addr=127.0.0.1:"$RS1" 2>&1)"; fi
check "installed key present on all 6 (asked via a vigil agent)" \
    sh -c "serf keys -list -rpc-addr=127.0.0.1:$RV2 | grep -q '$K2.*\[6/6\]'"
if serf keys -use="$K2" -rpc-addr=127.0.0.1:"$RS1" >/dev/null 2>&1; then ok "serf keys -use succeeds on all 6 members"
else not_ok "serf keys -use succeeds on all 6 members"; fi
if serf keys -remove="$K1" -rpc-addr=127.0.0.1:"$RS1" >/dev/null 2>&1; then ok "serf keys -remove succeeds on all 6 members"
else not_ok "serf keys -remove succeeds on all 6 members"; fi
check "old key gone everywhere" has_key_everywhere "$K1" no
sleep 3
check "cluster whole after serf-driven rotation" wait_until 10 whole

# rotation driven from vigil
if "$VIGIL_BIN" keys -install="$K3" -rpc-addr=127.0.0.1:"$RV3" >/dev/null 2>&1; then ok "vigil keys -install succeeds on all 6 members"
else not_ok "vigil keys -install succeeds on all 6 members" "$("$VIGIL_BIN" keys -install="$K3" -rpc-addr=127.0.0.1:"$RV3" 2>&1)"; fi
check "vigil-installed key present on all 6 (asked via a serf agent)" has_key_everywhere "$K3" yes
"$VIGIL_BIN" keys -use="$K3" -rpc-addr=127.0.0.1:"$RV3" >/dev/null 2>&1 || not_ok "vigil keys -use"
"$VIGIL_BIN" keys -remove="$K2" -rpc-addr=127.0.0.1:"$RV3" >/dev/null 2>&1 || not_ok "vigil keys -remove"
check "vigil-removed key gone everywhere" has_key_everywhere "$K2" no
sleep 3
check "cluster whole after vigil-driven rotation" wait_until 10 whole
# a new serf agent with only the new key joins through a vigil agent
read -r PS4 RS4 < <(free_ports 2)
start_serf s4 "$PS4" "$RS4" -encrypt="$K3" -join=127.0.0.1:"$PV2"
check "a serf agent with only the rotated key joins via vigil" \
    wait_until 15 members_have "$RV1" s4 alive
finish
