#!/usr/bin/env bash
# Membership identity (issue 15; docs/SECURITY.md "Membership identity"),
# against real agents.  Three plaintext vigil agents a, b, c; forged
# memberlist and serf messages are sent to a's and b's gossip ports from a
# script, as any host that can reach them could:
#  1. takeover: dead for c, then alive one incarnation up at another
#     address (and the same with a forged leave): c is never shown at the
#     forged address, and stays alive at its own;
#  2. suspect and dead at incarnation 2^32-1: c is not evicted;
#  3. a serf leave intent for c at Lamport time 2^64-1: c is not pinned
#     "leaving";
#  4. a user event at Lamport time 2^64-1: the event clock is not pinned;
#  and the refusals are counted (serf info: refused_address,
#  refused_incarnation, serf_ltime_refused).
set -u
. "$(dirname "$0")/lib.sh"

TOOL="$VIGIL_TMP/forge.py"
cat >"$TOOL" <<'PY'
import socket, sys, time

import msgpack  # Debian python3-msgpack (scripts/deps.sh)

def mp(v):
    return msgpack.packb(v, use_bin_type=True)

LOCAL = b"\x7f\x00\x00\x01"
VSN = b"\x01\x05\x02\x02\x05\x04"

def accuse(kind, node, inc, frm):          # memberlist suspect (3) / dead (5)
    return bytes([kind]) + mp({"Incarnation": inc, "Node": node, "From": frm})

def alive(node, inc, port):                # memberlist alive (4)
    return b"\x04" + mp({"Incarnation": inc, "Node": node, "Addr": LOCAL, "Port": port,
                         "Meta": b"", "Vsn": VSN})

def serf(msg):                             # a serf message in a memberlist user message (8)
    return b"\x08" + msg

def main(kind, node, port, *targets):
    port = int(port)
    if kind == "takeover":                 # death, then alive elsewhere
        msgs = [accuse(5, node, 5, "a"), alive(node, 6, port)]
    elif kind == "takeover-leave":         # leave (dead from the node itself), then alive elsewhere
        msgs = [accuse(5, node, 9, node), alive(node, 10, port)]
    elif kind == "top":                    # incarnation 2^32-1
        msgs = [accuse(3, node, 2**32 - 1, "a"), accuse(5, node, 2**32 - 1, "a")]
    elif kind == "leave-intent":           # serf leave intent (0) at 2^64-1
        msgs = [serf(b"\x00" + mp({"LTime": 2**64 - 1, "Node": node, "Prune": False}))]
    elif kind == "event":                  # serf user event (3) at 2^64-1
        msgs = [serf(b"\x03" + mp({"CC": False, "LTime": 2**64 - 1, "Name": "pin",
                                   "Payload": b""}))]
    else:
        sys.exit("unknown kind " + kind)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for t in targets:
        for m in msgs:
            u.sendto(m, ("127.0.0.1", int(t)))
            time.sleep(0.01)

main(*sys.argv[1:])
PY
# Debian's interpreter, where scripts/deps.sh installs python3-msgpack
PY3=/usr/bin/python3
forge() { "$PY3" "$TOOL" "$@"; }
if ! "$PY3" -c 'import msgpack' 2>/dev/null; then
    not_ok "python3-msgpack" "missing: run scripts/deps.sh"
    finish
fi

read -r PA RA PB RB PC RC PX < <(free_ports 7)   # PX: the forger's address, nobody listens
start_vigil a "$PA" "$RA"
wait_ready "$RA"
start_vigil b "$PB" "$RB" -join=127.0.0.1:"$PA"
start_vigil c "$PC" "$RC" -join=127.0.0.1:"$PA"
all_alive() {
    local r n
    for r in "$RA" "$RB" "$RC"; do
        for n in a b c; do members_have "$r" "$n" alive || return 1; done
    done
}
if wait_until 20 all_alive; then ok "three agents alive everywhere"; else not_ok "cluster" "never formed"; fi

# addr_of RPCPORT NAME: the address RPCPORT's agent lists NAME at
addr_of() { members_of "$1" 2>/dev/null | awk -v n="$2" '$1 == n {print $2}'; }
c_home() { [ "$(addr_of "$RA" c)" = "127.0.0.1:$PC" ] && [ "$(addr_of "$RB" c)" = "127.0.0.1:$PC" ]; }
# watch SECONDS: c never listed at the forger's address on a or b (sampled)
never_moved() {
    local end=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$end" ]; do
        if [ "$(addr_of "$RA" c)" = "127.0.0.1:$PX" ] || [ "$(addr_of "$RB" c)" = "127.0.0.1:$PX" ]; then
            return 1
        fi
        sleep 0.2
    done
}
c_alive_home() { c_home && members_have "$RA" c alive && members_have "$RB" c alive; }
# never_status SECONDS STATUS: c never listed with STATUS on a or b (sampled)
never_status() {
    local end=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$end" ]; do
        if members_have "$RA" c "$2" || members_have "$RB" c "$2"; then return 1; fi
        sleep 0.2
    done
}
info_of() { "$SERF_BIN" info -rpc-addr=127.0.0.1:"$1" 2>/dev/null | awk -v k="$2" '$1 == k {print $3}'; }

# 1. takeover
forge takeover c "$PX" "$PA" "$PB"
check "forged death + alive elsewhere: c never shown at the forged address" never_moved 5
check "forged death + alive elsewhere: c alive at its own address" wait_until 15 c_alive_home
forge takeover-leave c "$PX" "$PA" "$PB"
check "forged leave + alive elsewhere: c never shown at the forged address" never_moved 5
check "forged leave + alive elsewhere: c alive at its own address again" wait_until 40 c_alive_home

# 2. incarnation 2^32-1
forge top c "$PX" "$PA" "$PB"
check "suspect/dead at incarnation 2^32-1: c never failed" never_status 10 failed
check "suspect/dead at incarnation 2^32-1: c alive" c_alive_home

# 3. leave intent at 2^64-1
forge leave-intent c "$PX" "$PA"
# stays_alive SECONDS: c listed alive on a at every sample
stays_alive() {
    local end=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$end" ]; do
        members_have "$RA" c alive || return 1
        sleep 0.2
    done
}
check "leave intent at Lamport time 2^64-1: c stays alive (not leaving)" stays_alive 3

# 4. user event at 2^64-1
forge event c "$PX" "$PA"
sleep 0.5   # nothing to wait for: the event is refused, nothing changes
et=$(info_of "$RA" event_time)
if [ -n "$et" ] && [ ${#et} -lt 10 ]; then
    ok "user event at Lamport time 2^64-1: event clock not pinned ($et)"
else
    not_ok "user event at Lamport time 2^64-1: event clock not pinned" "event_time=$et"
fi

# counted
ra=$(info_of "$RA" refused_address); ri=$(info_of "$RA" refused_incarnation)
rl=$(info_of "$RA" serf_ltime_refused)
if [ "${ra:-0}" -ge 2 ] && [ "${ri:-0}" -ge 2 ] && [ "${rl:-0}" -ge 2 ]; then
    ok "refusals counted on a (address $ra, incarnation $ri, lamport $rl)"
else
    not_ok "refusals counted on a" "address=$ra incarnation=$ri lamport=$rl"
fi

[ "$_VIGIL_FAILS" -eq 0 ] || dump_logs 20
finish
