#!/usr/bin/env bash
# Issue 17: serf's `agent -discover=CLUSTER` (mDNS) and vigil's
# agent/discover.c find each other.  Runs in a network namespace of its
# own (mDNS is multicast on port 5353, which must not leak to or from the
# host), with multicast routed over its loopback:
#  (a) vigil's module, driven by tests/interop/discover_probe.c, finds a
#      `serf agent -discover=A`; a vigil agent told to join the address
#      found becomes a member of serf's cluster;
#  (b) `serf agent -discover=B` finds the announcement the module makes
#      for a running vigil agent (started without -discover) and joins it;
#  (c) two instances of the module find each other;
#  (d) `vigil agent -discover=D` started first: `serf agent -discover=D`
#      finds it and joins it (the agent announces itself);
#  (e) `serf agent -discover=E` started first: `vigil agent -discover=E`
#      finds it and joins it (the agent browses and joins).
# Needs root (ip netns), serf, cc and build/vigil; otherwise one SKIP line.
set -u

if [ "${VIGIL_DISCOVER_INSIDE:-0}" != 1 ]; then
    root=$(cd "$(dirname "$0")/../.." && pwd)
    skip() { echo "ok - discover # SKIP $*"; exit 0; }
    command -v serf >/dev/null 2>&1 || skip "serf not installed"
    command -v cc >/dev/null 2>&1 || skip "no C compiler"
    [ -x "${VIGIL_BIN:-$root/build/vigil}" ] || skip "build/vigil not built"
    [ "$(id -u)" = 0 ] && command -v ip >/dev/null 2>&1 || skip "needs root and ip(8) for a network namespace"
    ns=vigil-discover-$$
    ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace"
    cleanup_ns() {
        local pid _
        # whatever the inner run left behind (it was killed by a timeout?):
        # every process in the namespace was started by this script.  TERM
        # first, so the inner run's own cleanup removes its temp dir.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
            [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
            sleep 0.2
        done
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    }
    trap cleanup_ns EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # 224.0.0.251 over lo; serf's mDNS client also sends to ff02::fb and,
    # failing that, gives up the whole poll, so IPv6 multicast needs a route
    if ! ip netns exec "$ns" sh -c 'ip link set lo up && ip link set lo multicast on &&
            ip route add 224.0.0.0/4 dev lo &&
            { ip -6 route add ff00::/8 dev lo table local || ip -6 route add ff00::/8 dev lo; }' \
            >/dev/null 2>&1; then
        skip "cannot route multicast over the namespace's loopback"
    fi
    ip netns exec "$ns" env VIGIL_DISCOVER_INSIDE=1 bash "$0" "$@"
    exit $?
fi

. "$(dirname "$0")/lib.sh"
need_serf discover
PROBE=$VIGIL_TMP/discover_probe
if ! cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$VIGIL_ROOT/include" -I"$VIGIL_ROOT/agent" \
        -o "$PROBE" "$VIGIL_ROOT/tests/interop/discover_probe.c" "$VIGIL_ROOT/agent/discover.c" \
        "$VIGIL_ROOT/agent/dns_wire.c" 2>"$VIGIL_TMP/cc.out"; then
    not_ok "discover_probe builds" "$(sed 's/^/# /' "$VIGIL_TMP/cc.out")"
    finish
fi

# start_probe NAME ARGS...: the probe in the background, its output in
# NAME.log; waits (bounded) until its sockets are open.
start_probe() {
    local name=$1
    shift
    "$PROBE" "$@" </dev/null >"$VIGIL_TMP/$name.log" 2>&1 &
    _vigil_track "$name" $!
    wait_until 5 grep -q '^# ready' "$VIGIL_TMP/$name.log"
}
probe_found() { grep -qx "peer $2" "$VIGIL_TMP/$1.log"; }
stats_of() { grep '^# stats' "$VIGIL_TMP/$1.log" | sed 's/^# //'; }

read -r PS1 RS1 PV1 RV1 PS2 RS2 PV2 RV2 PX PY PS3 RS3 PV3 RV3 PS4 RS4 PV4 RV4 < <(free_ports 18)

# (a) vigil's module finds serf's announcement
start_serf s1 "$PS1" "$RS1" -discover=clusterA
wait_ready "$RS1"
start_vigil v1 "$PV1" "$RV1"
wait_ready "$RV1"
start_probe probe_a clusterA probe-a 127.0.0.1 "$PX" 20 -expect 127.0.0.1:"$PS1"
if wait_until 20 probe_found probe_a 127.0.0.1:"$PS1"; then
    ok "vigil's discover finds serf agent -discover=clusterA at 127.0.0.1:$PS1"
    "$VIGIL_BIN" join -rpc-addr=127.0.0.1:"$RV1" 127.0.0.1:"$PS1" >"$VIGIL_TMP/join.log" 2>&1
    check "a vigil agent joining the address found is in serf's cluster" \
        wait_until 15 members_have "$RS1" v1 alive
else
    not_ok "vigil's discover finds serf agent -discover=clusterA" \
        "probe: $(tr '\n' ' ' <"$VIGIL_TMP/probe_a.log")"
fi
stop_node probe_a
wait_until 5 grep -q '^# stats' "$VIGIL_TMP/probe_a.log"
echo "# probe_a $(stats_of probe_a)"

# (b) serf finds what vigil's module announces: a vigil agent's address.
# serf queries once when it starts (then every 60 s), so the announcement
# is up first.
start_vigil v2 "$PV2" "$RV2"
wait_ready "$RV2"
start_probe announce_b clusterB v2 127.0.0.1 "$PV2" 60
start_serf s2 "$PS2" "$RS2" -discover=clusterB
wait_ready "$RS2"
if wait_until 20 members_have "$RS2" v2 alive; then
    ok "serf agent -discover=clusterB joins the vigil agent vigil's discover announces"
else
    not_ok "serf agent -discover=clusterB joins the vigil agent vigil's discover announces" \
        "serf's mDNS log: $(grep -i 'mdns\|joining' "$(log_of s2)" | tr '\n' ' ')"
fi
check "serf's log shows the mDNS join of 127.0.0.1:$PV2" \
    grep -q "joining: .*127.0.0.1:$PV2" "$(log_of s2)"

# (c) two instances of the module find each other
start_probe probe_c clusterB probe-c 127.0.0.1 "$PY" 15 -expect 127.0.0.1:"$PV2"
check "two vigil discover instances find each other" \
    wait_until 15 probe_found probe_c 127.0.0.1:"$PV2"
for p in probe_c announce_b; do
    stop_node "$p"
    wait_until 5 grep -q '^# stats' "$VIGIL_TMP/$p.log"
    echo "# $p $(stats_of "$p")"
done
check "no packet seen by the probes was malformed" \
    bash -c '! grep -h "^# stats" "$@" | grep -qv " malformed=0 "' _ \
    "$VIGIL_TMP/probe_a.log" "$VIGIL_TMP/announce_b.log" "$VIGIL_TMP/probe_c.log"

# (d) the vigil agent's own announcement: serf joins it
start_vigil v3 "$PV3" "$RV3" -discover=clusterD
wait_ready "$RV3"
check "the agent's banner names its mDNS cluster" \
    grep -q "mDNS cluster: clusterD" "$(log_of v3)"
start_serf s3 "$PS3" "$RS3" -discover=clusterD
wait_ready "$RS3"
check "serf agent -discover=clusterD joins vigil agent -discover=clusterD" \
    wait_until 20 members_have "$RS3" v3 alive
check "... and the vigil agent lists serf alive" wait_until 10 members_have "$RV3" s3 alive

# (e) the vigil agent's browsing: it joins serf
start_serf s4 "$PS4" "$RS4" -discover=clusterE
wait_ready "$RS4"
start_vigil v4 "$PV4" "$RV4" -discover=clusterE
wait_ready "$RV4"
check "vigil agent -discover=clusterE joins serf agent -discover=clusterE" \
    wait_until 20 members_have "$RV4" s4 alive
check "the vigil agent logs its mDNS join as serf does" \
    wait_until 5 grep -q "agent.mdns: Joined 1 hosts" "$(log_of v4)"
lists_none_of() { ! members_of "$1" | awk '{print $1}' | grep -qx "$2"; }
check "no cross-talk: clusterE's vigil agent never lists clusterD's" lists_none_of "$RV4" v3
finish
