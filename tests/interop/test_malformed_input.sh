#!/usr/bin/env bash
# Issue 2: truncated, random and oversized UDP datagrams and TCP streams
# sent into a running vigil agent leave it alive with its member list
# unchanged (and the decode errors are counted, not fatal).
set -u
. "$(dirname "$0")/lib.sh"

read -r PV1 RV1 PV2 RV2 PS1 RS1 < <(free_ports 6)
start_vigil v1 "$PV1" "$RV1"
wait_ready "$RV1"
start_vigil v2 "$PV2" "$RV2" -join=127.0.0.1:"$PV1"
start_serf s1 "$PS1" "$RS1" -join=127.0.0.1:"$PV1"
wait_until 15 sh -c "[ \$(serf members -rpc-addr=127.0.0.1:$RV1 -status=alive | wc -l) -eq 3 ]" ||
    not_ok "three members before the attack"
before=$(members_of "$RV1" | awk '{print $1, $2, $3}' | sort)

python3 - "$PV1" <<'PY'
import os, random, socket, struct, sys, time, zlib
port = int(sys.argv[1]); addr = ("127.0.0.1", port)
rnd = random.Random(1234)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

def fixmap(d):
    out = bytes([0x80 | len(d)])
    for k, v in d.items():
        out += bytes([0xa0 | len(k)]) + k.encode()
        if isinstance(v, int): out += bytes([0xce]) + struct.pack(">I", v)
        elif isinstance(v, bool): out += b"\xc3" if v else b"\xc2"
        else: out += bytes([0xda]) + struct.pack(">H", len(v)) + v
    return out
# plausible messages to cut up: an alive about a fake node, a suspect and dead
# about v2, a ping, a compound of them, a CRC-wrapped one
alive = b"\x04" + fixmap({"Incarnation": 9, "Node": b"intruder", "Addr": b"\x7f\x00\x00\x09",
                          "Port": b"\x1f\x90", "Meta": b"", "Vsn": b"\x01\x05\x02\x02\x05\x04"})
suspect = b"\x03" + fixmap({"Incarnation": 99, "Node": b"v2", "From": b"x"})
dead = b"\x05" + fixmap({"Incarnation": 99, "Node": b"v2", "From": b"x"})
ping = b"\x00" + fixmap({"SeqNo": 7, "Node": b"v1"})
def compound(msgs):
    return bytes([7, len(msgs)]) + b"".join(struct.pack(">H", len(m)) for m in msgs) + b"".join(msgs)
def crc(p): return b"\x0c" + struct.pack(">I", zlib.crc32(p) & 0xffffffff) + p
valid = [alive, suspect, dead, ping, compound([alive, suspect, dead]), crc(compound([suspect, dead]))]

sent = 0
for m in valid:                         # every strict prefix (truncation)
    for cut in range(0, len(m)):
        u.sendto(m[:cut], addr); sent += 1
for m in valid:                         # single-byte corruptions of CRC'd packets
    p = crc(m)
    for i in range(5, len(p)):
        b = bytearray(p); b[i] ^= 0x5a; u.sendto(bytes(b), addr); sent += 1
for i in range(2000):                   # random datagrams, many starting with a valid type byte
    n = rnd.randrange(0, 1500)
    d = bytes([rnd.randrange(0, 16)]) + os.urandom(n)
    u.sendto(d, addr); sent += 1
for t in (7, 9, 12, 10):                # lying envelopes: compound counts, bogus LZW, bad CRC, encrypt
    u.sendto(bytes([t, 255]) + b"\xff" * 600, addr); sent += 1
u.sendto(b"\x07\xff" + b"\x00\x01" * 255, addr)
u.sendto(b"\x09" + fixmap({"Algo": 0, "Buf": os.urandom(1200)}), addr)
u.sendto(b"\x09" + fixmap({"Algo": 7, "Buf": b"x"}), addr)
try:                                    # oversized datagram (64 KiB)
    u.sendto(b"\x04" + os.urandom(65000), addr); sent += 1
except OSError:
    pass

def tcp(payload, linger=False):
    try:
        s = socket.create_connection(addr, timeout=2)
        s.sendall(payload)
        if linger:
            time.sleep(0.05)
        s.close()
    except OSError:
        pass
pp_hdr = b"\x06" + fixmap({"Nodes": 3, "UserStateLen": 0, "Join": False})
tcp_cases = [b"", b"\x06", pp_hdr, pp_hdr + b"\x87", b"\x06" + fixmap({"Nodes": 100000000, "UserStateLen": 0, "Join": True}),
             b"\x06" + fixmap({"Nodes": 0, "UserStateLen": 0x7fffffff, "Join": True}),
             b"\x0a" + struct.pack(">I", 0xffffffff) + b"x" * 100, b"\x0a" + struct.pack(">I", 20) + b"y" * 20,
             b"\x08" + fixmap({"UserMsgLen": 0x7fffffff}) + b"z", b"\x09" + fixmap({"Algo": 0, "Buf": os.urandom(3000)}),
             b"\xff" * 100, b"\x0d" + b"\x00" * 10]
for c in tcp_cases:
    tcp(c, linger=True); sent += 1
for i in range(200):
    tcp(bytes([rnd.randrange(0, 16)]) + os.urandom(rnd.randrange(0, 5000))); sent += 1
# a large random stream (4 MiB) and many idle half-open connections
try:
    s = socket.create_connection(addr, timeout=2)
    for _ in range(64): s.sendall(b"\x06" + os.urandom(65535))
    s.close()
except OSError:
    pass
idle = []
for _ in range(200):
    try: idle.append(socket.create_connection(addr, timeout=2))
    except OSError: break
time.sleep(0.5)
for s in idle: s.close()
print("# sent %d malformed inputs" % sent)
PY

sleep 1
if kill -0 "$(pid_of v1)" 2>/dev/null; then ok "agent alive after malformed UDP and TCP input"
else not_ok "agent alive after malformed UDP and TCP input"; fi
if wait_ready "$RV1" 5; then ok "agent still answers RPC"; else not_ok "agent still answers RPC"; fi
after=$(members_of "$RV1" | awk '{print $1, $2, $3}' | sort)
if [ "$before" = "$after" ]; then ok "member list unchanged by malformed input"
else not_ok "member list unchanged by malformed input" "before: $before after: $after"; fi
if members_of "$RV1" | grep -q intruder; then not_ok "no member was created from a truncated alive"
else ok "no member was created from a truncated alive"; fi
# the cluster still works afterwards: a new member is seen
read -r PV3 RV3 < <(free_ports 2)
start_vigil v3 "$PV3" "$RV3" -join=127.0.0.1:"$PV1"
if wait_until 15 members_have "$RV1" v3 alive; then ok "cluster still admits members after the attack"
else not_ok "cluster still admits members after the attack"; fi
finish
