#!/usr/bin/env bash
# test_rpc.sh — drive vigil agents with the real `serf` CLI (and vigil's own
# CLI) and check they behave like a serf agent: same output shape, same
# exit codes, and a mixed serf/vigil cluster that agrees on membership.
set -u
. "$(dirname "$0")/lib.sh"

VIGIL=$VIGIL_BIN
SERF=$SERF_BIN

if ! command -v "$SERF" >/dev/null 2>&1; then
    ok "rpc # SKIP serf not installed"
    exit 0
fi

read -r P1 R1 P2 R2 P3 R3 P4 R4 < <(free_ports 8)
read -r P5 R5 P6 R6 < <(free_ports 4)
T=$VIGIL_TMP

# serf prints a member's tags in Go map order (random); sort them so lines
# can be compared: "a  addr  alive  z=1,b=2" -> "a  addr  alive  b=2,z=1"
norm() {
    python3 -c '
import re, sys
for line in sys.stdin.read().splitlines():
    parts = re.split(r"(\s{2,})", line)
    out = []
    for p in parts:
        if "=" in p and not p.isspace() and ": " not in p:
            p = ",".join(sorted(p.split(",")))
        out.append(p)
    print("".join(out))'
}
# members NAME-ish checks on the normalized member list of agent at RPC port
nmembers() { local r=$1; shift; "$SERF" members -rpc-addr=127.0.0.1:"$r" "$@" 2>&1 | norm; }

# -------------------------------------------------------------- cluster
start_serf s1 "$P1" "$R1"
wait_until 10 "$SERF" members -rpc-addr=127.0.0.1:"$R1" || not_ok "serf agent s1 starts"

cat >"$T/handler.sh" <<EOF
#!/bin/sh
# record every event; answer queries named "ping"
payload=\$(cat)
echo "\$SERF_EVENT|\$SERF_USER_EVENT|\$SERF_QUERY_NAME|\$SERF_SELF_NAME|\$VIGIL_SELF_NAME|\$SERF_TAG_ROLE|\$payload" >>"$T/events.\$SERF_SELF_NAME"
if [ "\$SERF_EVENT" = query ] && [ "\$SERF_QUERY_NAME" = ping ]; then
    echo "pong from \$SERF_SELF_NAME"
fi
EOF
chmod +x "$T/handler.sh"

cat >"$T/will.sh" <<EOF
#!/bin/sh
echo "\$SERF_EVENT|\$VIGIL_WILL_OWNER|\$(cat)" >>"$T/will.out"
EOF
chmod +x "$T/will.sh"
start_vigil v1 "$P2" "$R2" -join=127.0.0.1:"$P1" -tag role=web -tag dc=east \
    -event-handler="$T/handler.sh" -event-handler="member-will=$T/will.sh"
if wait_until 10 members_have "$R1" v1 alive && wait_until 10 members_have "$R2" s1 alive; then
    ok "vigil joins serf agent (-join), both see each other alive"
else
    not_ok "vigil joins serf agent (-join), both see each other alive" "$(members_of "$R1" 2>&1; members_of "$R2" 2>&1)"
fi

# ------------------------------------------------------------- members
out=$(nmembers "$R2")
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -Eq "^v1 +127\.0\.0\.1:$P2 +alive +dc=east,role=web$" &&
    echo "$out" | grep -Eq "^s1 +127\.0\.0\.1:$P1 +alive"; then
    ok "serf members against vigil: serf's columns"
else
    not_ok "serf members against vigil: serf's columns" "rc=$rc out=$out"
fi

# the same membership, seen from the serf agent and from vigil, as lines
a=$("$SERF" members -rpc-addr=127.0.0.1:"$R1" | awk '{print $1, $2, $3}' | sort)
b=$("$SERF" members -rpc-addr=127.0.0.1:"$R2" | awk '{print $1, $2, $3}' | sort)
if [ -n "$a" ] && [ "$a" = "$b" ]; then
    ok "serf agent and vigil agent report the same members"
else
    not_ok "serf agent and vigil agent report the same members" "serf: $a / vigil: $b"
fi

# vigil's CLI prints exactly what serf's does
a=$("$SERF" members -rpc-addr=127.0.0.1:"$R2" -detailed 2>&1 | norm)
b=$("$VIGIL" members -rpc-addr=127.0.0.1:"$R2" -detailed 2>&1 | norm)
if [ "$a" = "$b" ]; then ok "vigil members -detailed == serf members -detailed"; else
    not_ok "vigil members -detailed == serf members -detailed" "serf: $a / vigil: $b"; fi
a=$("$SERF" members -rpc-addr=127.0.0.1:"$R1" -format=json 2>&1)
b=$("$VIGIL" members -rpc-addr=127.0.0.1:"$R1" -format=json 2>&1)
# tags maps are sorted by both; member order may differ between calls
if [ "$(echo "$a" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(d["members"], key=lambda m: m["name"]))')" = \
     "$(echo "$b" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(d["members"], key=lambda m: m["name"]))')" ]; then
    ok "vigil members -format=json == serf's (against a serf agent)"
else
    not_ok "vigil members -format=json == serf's (against a serf agent)" "serf: $a / vigil: $b"
fi

out=$("$SERF" members -rpc-addr=127.0.0.1:"$R2" -format=json 2>&1)
if echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
m = {x["name"]: x for x in d["members"]}
v = m["v1"]
assert v["status"] == "alive" and v["tags"] == {"role": "web", "dc": "east"}, v
assert set(v) == {"name", "addr", "port", "tags", "status", "protocol"}, v
assert set(v["protocol"]) == {"min", "max", "version"}, v
'; then ok "serf members -format=json against vigil"; else
    not_ok "serf members -format=json against vigil" "$out"; fi

out=$("$SERF" members -rpc-addr=127.0.0.1:"$R2" -status=alive -name='v.*' -tag role='w.b' 2>&1)
if [ "$(echo "$out" | awk '{print $1}')" = v1 ]; then ok "members filters (-status -name -tag regexps)"; else
    not_ok "members filters (-status -name -tag regexps)" "$out"; fi
# counted repeats work; ones that would blow up regcomp (nested counts,
# back-references) are refused at once, as Go's regexp refuses them
out=$("$SERF" members -rpc-addr=127.0.0.1:"$R2" -name='v[0-9]{1,3}' 2>&1)
if [ "$(echo "$out" | awk '{print $1}')" = v1 ]; then
    ok "members -name with a counted repeat"
else
    not_ok "members -name with a counted repeat" "$out"
fi
t0=$SECONDS
bad1=$("$SERF" members -rpc-addr=127.0.0.1:"$R2" -name='((a{1,100}){1,100}){1,100}' 2>&1); rc1=$?
bad2=$("$SERF" members -rpc-addr=127.0.0.1:"$R2" -name='(a*)*\1' 2>&1); rc2=$?
if [ $rc1 -ne 0 ] && [ $rc2 -ne 0 ] && echo "$bad1" | grep -q 'Failed to compile regex' &&
   echo "$bad2" | grep -q 'Failed to compile regex' && [ $((SECONDS - t0)) -le 5 ] &&
   members_have "$R2" v1 alive; then
    ok "members filter: explosive regexps refused quickly, agent unharmed"
else
    not_ok "members filter: explosive regexps refused quickly, agent unharmed" \
        "rc=$rc1/$rc2 ($((SECONDS - t0)) s): $bad1 / $bad2"
fi
out=$("$SERF" members -rpc-addr=127.0.0.1:"$R2" -name='nomatch' 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then ok "members filter matching nothing prints nothing"; else
    not_ok "members filter matching nothing prints nothing" "rc=$rc $out"; fi

# --------------------------------------------------------------- join
start_vigil v2 "$P3" "$R3"
wait_until 10 "$SERF" members -rpc-addr=127.0.0.1:"$R3" >/dev/null
out=$("$SERF" join -rpc-addr=127.0.0.1:"$R3" 127.0.0.1:"$P2" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$out" = "Successfully joined cluster by contacting 1 nodes." ]; then
    ok "serf join against vigil"
else
    not_ok "serf join against vigil" "rc=$rc $out"
fi
if wait_until 10 members_have "$R1" v2 alive && wait_until 10 members_have "$R3" s1 alive; then
    ok "three-node mixed cluster converges"
else
    not_ok "three-node mixed cluster converges" "$(members_of "$R1" 2>&1)"
fi

out=$("$SERF" join -rpc-addr=127.0.0.1:"$R3" 127.0.0.1:1 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "^Error joining the cluster: "; then
    ok "serf join to an unreachable address fails against vigil too"
else
    not_ok "serf join to an unreachable address fails against vigil too" "rc=$rc $out"
fi
# serf answers once every seed is done, counting the ones that answered
t0=$SECONDS
out=$("$SERF" join -rpc-addr=127.0.0.1:"$R3" 127.0.0.1:"$P1" 127.0.0.1:1 127.0.0.1:"$P2" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$out" = "Successfully joined cluster by contacting 2 nodes." ] &&
   [ $((SECONDS - t0)) -le 3 ]; then
    ok "serf join against vigil counts the seeds that answered, at once"
else
    not_ok "serf join against vigil counts the seeds that answered, at once" \
        "rc=$rc ($((SECONDS - t0)) s) $out"
fi
out=$("$VIGIL" members -rpc-addr=127.0.0.1:1 2>/dev/null)
if [ "$out" = "Error connecting to Serf agent: dial tcp 127.0.0.1:1: connect: connection refused" ]; then
    ok "CLI errors go to stdout, like serf's"
else
    not_ok "CLI errors go to stdout, like serf's" "$out"
fi

# --------------------------------------------------------------- event
out=$("$SERF" event -rpc-addr=127.0.0.1:"$R2" deploy v42 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$out" = "Event 'deploy' dispatched! Coalescing enabled: true" ]; then
    ok "serf event against vigil"
else
    not_ok "serf event against vigil" "rc=$rc $out"
fi
if wait_until 10 grep -q "Received event: user-event: deploy" "$(log_of s1)"; then
    ok "user event from vigil reaches the serf agent"
else
    not_ok "user event from vigil reaches the serf agent"
fi
"$SERF" event -rpc-addr=127.0.0.1:"$R1" -coalesce=false fromserf payload1 >/dev/null 2>&1
if wait_until 10 grep -q "^user|fromserf||v1|v1|web|payload1$" "$T/events.v1"; then
    ok "event handler runs for a serf user event (env + payload on stdin)"
else
    not_ok "event handler runs for a serf user event (env + payload on stdin)" "$(cat "$T/events.v1" 2>&1)"
fi
if grep -q "^member-join|||v1|v1|web|" "$T/events.v1" 2>/dev/null; then
    ok "event handler sees member-join"
else
    not_ok "event handler sees member-join" "$(cat "$T/events.v1" 2>&1)"
fi

for i in 1 2 3; do "$SERF" event -rpc-addr=127.0.0.1:"$R1" burst "$i" >/dev/null 2>&1; done
if wait_until 10 grep -q "^user|burst||v1|v1|web|3$" "$T/events.v1" && sleep 2 &&
    [ "$(grep -c "^user|burst|" "$T/events.v1")" -eq 1 ]; then
    ok "coalescing user events: a burst runs the handler once, with the newest"
else
    not_ok "coalescing user events: a burst runs the handler once, with the newest" "$(grep burst "$T/events.v1")"
fi

# --------------------------------------------------------------- query
out=$("$SERF" query -rpc-addr=127.0.0.1:"$R1" -timeout=3s ping 2>&1)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "^Query 'ping' dispatched$" &&
    echo "$out" | grep -q "^Response from 'v1': pong from v1$" &&
    echo "$out" | grep -q "^Ack from 'v2'$" && echo "$out" | grep -q "^Total Acks: 3$"; then
    ok "serf query via serf agent answered by a vigil handler"
else
    not_ok "serf query via serf agent answered by a vigil handler" "rc=$rc $out"
fi
out=$("$SERF" query -rpc-addr=127.0.0.1:"$R2" -timeout=3s -format=json ping 2>&1)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert sorted(d["Acks"]) == ["s1", "v1", "v2"], d
assert d["Responses"] == {"v1": "pong from v1\n"}, d
'; then ok "serf query -format=json against vigil (acks, responses, done)"; else
    not_ok "serf query -format=json against vigil (acks, responses, done)" "rc=$rc $out"; fi
out=$("$SERF" query -rpc-addr=127.0.0.1:"$R2" -timeout=2s -node=s1 -no-ack ping 2>&1)
if echo "$out" | grep -q "^Total Responses: 0$" && ! echo "$out" | grep -q "Total Acks"; then
    ok "serf query -node -no-ack against vigil"
else
    not_ok "serf query -node -no-ack against vigil" "$out"
fi

# ---------------------------------------------------------------- tags
out=$("$SERF" tags -rpc-addr=127.0.0.1:"$R2" -set version=2 -delete dc 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$out" = "Successfully updated agent tags" ] &&
    wait_until 10 eval 'nmembers "$R1" | grep -Eq "^v1 .* role=web,version=2$"'; then
    ok "serf tags against vigil, seen by the serf agent"
else
    not_ok "serf tags against vigil, seen by the serf agent" "rc=$rc $out $("$SERF" members -rpc-addr=127.0.0.1:"$R1")"
fi

# ---------------------------------------------------------- info/monitor
out=$("$SERF" info -rpc-addr=127.0.0.1:"$R2" 2>&1)
if echo "$out" | grep -q "^agent:$" && echo "$out" | grep -qP "^\tname = v1$" &&
    echo "$out" | grep -qP "^\tmembers = 3$" && echo "$out" | grep -qP "^\trole = web$"; then
    ok "serf info against vigil"
else
    not_ok "serf info against vigil" "$out"
fi
timeout 3 "$SERF" monitor -rpc-addr=127.0.0.1:"$R2" -log-level=debug >"$T/monitor.out" 2>&1 &
mpid=$!
sleep 0.5
"$SERF" event -rpc-addr=127.0.0.1:"$R2" monitored x >/dev/null 2>&1
wait $mpid 2>/dev/null
if grep -q "\[INFO\] agent.ipc: Accepted client" "$T/monitor.out" &&
    grep -q "\[DEBUG\] agent: Requesting user event send: monitored" "$T/monitor.out"; then
    ok "serf monitor -log-level=debug against vigil streams logs"
else
    not_ok "serf monitor -log-level=debug against vigil streams logs" "$(head -20 "$T/monitor.out")"
fi
out=$("$SERF" monitor -rpc-addr=127.0.0.1:"$R2" -log-level=bogus 2>&1)
rc=$?
if [ $rc -eq 1 ] && [ "$out" = "Error starting monitor: Unknown log level: BOGUS" ]; then
    ok "monitor with a bad log level is refused like serf"
else
    not_ok "monitor with a bad log level is refused like serf" "rc=$rc $out"
fi
out=$("$SERF" rtt -rpc-addr=127.0.0.1:"$R2" v1 s1 2>&1)
if echo "$out" | grep -q 'Could not find a coordinate for node'; then
    ok "get-coordinate answers like serf with coordinates disabled"
else
    not_ok "get-coordinate answers like serf with coordinates disabled" "$out"
fi

# ------------------------------------------- stream / respond / stop (raw RPC)
cat >"$T/rpcpy.py" <<'PYEOF'
# minimal msgpack + serf RPC client for tests (no msgpack module here)
import socket, struct, sys, time

def enc(o):
    if o is None: return b"\xc0"
    if o is True: return b"\xc3"
    if o is False: return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128: return bytes([o])
        if o >= 0: return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32: return bytes([0xa0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(o, bytes): return b"\xc6" + struct.pack(">I", len(o)) + o
    if isinstance(o, list): return b"\xdd" + struct.pack(">I", len(o)) + b"".join(enc(x) for x in o)
    if isinstance(o, dict):
        return b"\xdf" + struct.pack(">I", len(o)) + b"".join(enc(k) + enc(v) for k, v in o.items())
    raise TypeError(o)

class Dec:
    def __init__(self, sock): self.s = sock; self.buf = b""
    def need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d: raise EOFError
            self.buf += d
        r, self.buf = self.buf[:n], self.buf[n:]
        return r
    def obj(self):
        b = self.need(1)[0]
        if b < 0x80: return b
        if b >= 0xe0: return b - 256
        if 0xa0 <= b <= 0xbf: return self.need(b & 31).decode()
        if 0x90 <= b <= 0x9f: return [self.obj() for _ in range(b & 15)]
        if 0x80 <= b <= 0x8f: return {self.obj(): self.obj() for _ in range(b & 15)}
        if b == 0xc0: return None
        if b == 0xc2: return False
        if b == 0xc3: return True
        if b in (0xc4, 0xc5, 0xc6):
            n = int.from_bytes(self.need({0xc4: 1, 0xc5: 2, 0xc6: 4}[b]), "big"); return self.need(n)
        if b in (0xd9, 0xda, 0xdb):
            n = int.from_bytes(self.need({0xd9: 1, 0xda: 2, 0xdb: 4}[b]), "big"); return self.need(n).decode()
        if b in (0xcc, 0xcd, 0xce, 0xcf):
            return int.from_bytes(self.need({0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[b]), "big")
        if b in (0xd0, 0xd1, 0xd2, 0xd3):
            return int.from_bytes(self.need({0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[b]), "big", signed=True)
        if b == 0xcb: return struct.unpack(">d", self.need(8))[0]
        if b in (0xdc, 0xdd):
            n = int.from_bytes(self.need(2 if b == 0xdc else 4), "big"); return [self.obj() for _ in range(n)]
        if b in (0xde, 0xdf):
            n = int.from_bytes(self.need(2 if b == 0xde else 4), "big"); return {self.obj(): self.obj() for _ in range(n)}
        raise ValueError(hex(b))

class Client:
    def __init__(self, port, auth=None):
        self.s = socket.create_connection(("127.0.0.1", port)); self.s.settimeout(10)
        self.d = Dec(self.s); self.seq = 0
        h = self.call("handshake", {"Version": 1})
        assert h["Error"] == "", h
    def send(self, cmd, body=None):
        self.seq += 1
        self.s.sendall(enc({"Command": cmd, "Seq": self.seq}) + (enc(body) if body is not None else b""))
        return self.seq
    def call(self, cmd, body=None, resp=False):
        seq = self.send(cmd, body)
        h = self.d.obj()
        assert h["Seq"] == seq, (h, seq)
        if resp and h["Error"] == "":
            return h, self.d.obj()
        return h
PYEOF
cat >"$T/stream.py" <<'PYEOF'
import subprocess, sys
sys.path.insert(0, sys.argv[3])
from rpcpy import Client
port, qport = int(sys.argv[1]), int(sys.argv[2])
c = Client(port)
seq = c.send("stream", {"Type": "user:hello,query:ask"})
h = c.d.obj(); assert h["Seq"] == seq and h["Error"] == "", h
assert c.call("stream", {"Type": "nonsense"})["Error"] == "Invalid event filter"
subprocess.run(["serf", "event", "-rpc-addr=127.0.0.1:%d" % qport, "hello", "world"], capture_output=True)
h = c.d.obj(); rec = c.d.obj()
assert h["Seq"] == seq and rec["Event"] == "user" and rec["Name"] == "hello", rec
assert rec["Payload"] == b"world" and rec["Coalesce"] is True and rec["LTime"] > 0, rec
p = subprocess.Popen(["serf", "query", "-rpc-addr=127.0.0.1:%d" % qport, "-timeout=3s", "-format=json", "ask", "q?"],
                     stdout=subprocess.PIPE)
h = c.d.obj(); rec = c.d.obj()
assert rec["Event"] == "query" and rec["Name"] == "ask" and rec["Payload"] == b"q?", rec
assert c.call("respond", {"ID": rec["ID"], "Payload": b"answer!"})["Error"] == ""
assert c.call("respond", {"ID": 999999, "Payload": b"x"})["Error"] == "No pending queries matching ID"
out = p.communicate()[0].decode()
assert '"v1": "answer!"' in out, out
assert c.call("stop", {"Stop": seq})["Error"] == ""
h, st = c.call("stats", None, True)
assert sorted(st) == ["agent", "event_handlers", "runtime", "serf", "tags"], st
assert c.call("handshake", {"Version": 1})["Error"] == "Handshake already performed"
print("stream ok")
PYEOF
out=$(timeout 30 python3 "$T/stream.py" "$R2" "$R1" "$T" 2>&1)
if [ "$out" = "stream ok" ]; then
    ok "RPC stream (filtered), respond, stop, stats against vigil"
else
    not_ok "RPC stream (filtered), respond, stop, stats against vigil" "$out"
fi

# --------------------------------------------------- bad RPC input
python3 - "$R2" <<'PY' >"$T/garbage.out" 2>&1
import socket, sys, time
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(2); return s
for blob in [b"\xc1\xc1\xc1", b"\xdd\xff\xff\xff\xff", b"\xdb\x7f\xff\xff\xff" + b"a" * 100,
             b"\x91" * 2000 + b"\xc0", b"GET / HTTP/1.0\r\n\r\n", bytes(range(256)) * 4]:
    s = conn()
    try:
        s.sendall(blob); time.sleep(0.05); s.recv(100)
    except Exception:
        pass
    s.close()
# a 2 MiB string: larger than any frame the agent accepts
s = conn()
s.sendall(b"\x82\xa7Command\xa9handshake\xa3Seq\x01\x81\xa7Version\x01")
s.recv(100)
try:
    s.sendall(b"\x82\xa7Command\xa5event\xa3Seq\x02\x81\xa4Name\xdb\x00\x20\x00\x00" + b"x" * (2 << 20))
except Exception:
    pass
s.close()
PY
if "$SERF" members -rpc-addr=127.0.0.1:"$R2" >/dev/null 2>&1; then
    ok "garbage, oversized and truncated RPC input leave the agent running"
else
    not_ok "garbage, oversized and truncated RPC input leave the agent running" "$(cat "$T/garbage.out")"
fi
out=$(printf '\x82\xa7Command\xa7members\xa3Seq\x07' | timeout 3 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(2)
s.sendall(sys.stdin.buffer.read()); print(s.recv(100))' "$R2" 2>&1)
if echo "$out" | grep -q "Handshake required"; then ok "command before handshake: 'Handshake required'"; else
    not_ok "command before handshake: 'Handshake required'" "$out"; fi

# ------------------------------------------------------------ rpc-auth
start_vigil va "$P4" "$R4" -rpc-auth=sekret
wait_until 10 "$SERF" members -rpc-addr=127.0.0.1:"$R4" -rpc-auth=sekret >/dev/null
out=$("$SERF" members -rpc-addr=127.0.0.1:"$R4" 2>&1)
rc=$?
out2=$("$SERF" members -rpc-addr=127.0.0.1:"$R4" -rpc-auth=wrong 2>&1)
rc2=$?
out3=$("$SERF" members -rpc-addr=127.0.0.1:"$R4" -rpc-auth=sekret 2>&1)
rc3=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "Authentication required" &&
    [ $rc2 -ne 0 ] && echo "$out2" | grep -q "Invalid authentication token" &&
    [ $rc3 -eq 0 ] && echo "$out3" | grep -q "^va "; then
    ok "-rpc-auth: refused without/with a wrong token, accepted with it"
else
    not_ok "-rpc-auth: refused without/with a wrong token, accepted with it" "$rc $out / $rc2 $out2 / $rc3 $out3"
fi
if SERF_RPC_ADDR=127.0.0.1:$R4 SERF_RPC_AUTH=sekret "$VIGIL" members | grep -q "^va "; then
    ok "vigil CLI honours SERF_RPC_ADDR / SERF_RPC_AUTH"
else
    not_ok "vigil CLI honours SERF_RPC_ADDR / SERF_RPC_AUTH"
fi
stop_node va INT
wait "$(pid_of va)" 2>/dev/null
rc=$?
if [ $rc -eq 0 ]; then ok "SIGINT: graceful leave, exit 0"; else not_ok "SIGINT: graceful leave, exit 0" "rc=$rc"; fi

# ------------------------------------------------ RPC fuzz (bounded, seeded)
cat >"$T/fuzz.py" <<'PYEOF'
import random, socket, sys, time
sys.path.insert(0, sys.argv[2])
from rpcpy import enc
port = int(sys.argv[1])
rng = random.Random(int(sys.argv[3]))
cmds = ["handshake", "auth", "event", "force-leave", "join", "members", "members-filtered",
        "stream", "monitor", "stop", "install-key", "use-key", "remove-key", "list-keys",
        "tags", "query", "respond", "stats", "get-coordinate", "will-set", "will-clear",
        "will-list", "bogus"]
fields = ["Version", "AuthKey", "Name", "Payload", "Coalesce", "Node", "Prune", "Existing",
          "Replay", "Tags", "Status", "Type", "LogLevel", "Stop", "Key", "DeleteTags",
          "FilterNodes", "FilterTags", "RequestAck", "RelayFactor", "Timeout", "ID", "To",
          "Event", "Delay", "Owner"]
def val(d=0):
    k = rng.randrange(9 if d < 3 else 6)
    if k == 0: return None
    if k == 1: return rng.choice([True, False])
    if k == 2: return rng.choice([0, 1, -1, 2**63, 255, 2**32, rng.randrange(-10**9, 10**9)])
    if k == 3: return rng.choice(["", "x" * rng.randrange(300), "*", "user:a", "(", "[", ".*", "debug", "alive"])
    if k == 4: return bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
    if k == 5: return "127.0.0.1:" + str(rng.randrange(70000))
    if k == 6: return [val(d + 1) for _ in range(rng.randrange(4))]
    if k == 7: return {rng.choice(fields): val(d + 1) for _ in range(rng.randrange(4))}
    return {rng.choice(["a", "role", ""]): val(d + 1) for _ in range(rng.randrange(3))}
end = time.time() + float(sys.argv[4])
n = 0
while time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", port)); s.settimeout(0.3)
    except OSError:
        print("connect failed"); sys.exit(1)
    msgs = []
    if rng.random() < 0.9:
        msgs.append(enc({"Command": "handshake", "Seq": 1}) + enc({"Version": 1}))
    for i in range(rng.randrange(1, 6)):
        cmd = rng.choice(cmds)
        if cmd in ("stop",) and rng.random() < 0.5: continue
        if cmd in ("leave",): continue
        hdr = {"Command": cmd, "Seq": rng.randrange(2**64)} if rng.random() < 0.95 else val()
        body = {rng.choice(fields): val() for _ in range(rng.randrange(5))} if rng.random() < 0.9 else val()
        m = enc(hdr) + enc(body)
        r = rng.random()
        if r < 0.1:
            m = m[:rng.randrange(len(m) + 1)]
        elif r < 0.2:
            b = bytearray(m); b[rng.randrange(len(b))] = rng.randrange(256); m = bytes(b)
        msgs.append(m)
    try:
        s.sendall(b"".join(msgs))
        time.sleep(0.002)
        s.recv(65536)
    except OSError:
        pass
    s.close()
    n += 1
print("fuzz ok", n)
PYEOF
out=$(timeout 60 python3 "$T/fuzz.py" "$R3" "$T" 42 8 2>&1)
if echo "$out" | grep -q "^fuzz ok" && "$SERF" members -rpc-addr=127.0.0.1:"$R3" >/dev/null 2>&1 &&
    kill -0 "$(pid_of v2)" 2>/dev/null; then
    ok "RPC fuzz: random/mutated requests leave the agent running ($out)"
else
    not_ok "RPC fuzz: random/mutated requests leave the agent running" "$out"
fi

# --------------------------------------------------------- force-leave
out=$("$VIGIL" will set -rpc-addr=127.0.0.1:"$R3" --to v1 "restart v2" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$out" = "Will set: 10 bytes for member 'v1', delay 0s" ] &&
    wait_until 10 eval '"$VIGIL" will show -rpc-addr=127.0.0.1:"$R2" v2 | grep -Eq "^v2 +member:v1 +0s +[0-9]+ +restart v2$"'; then
    ok "vigil will set / will show (will-set, will-list RPC)"
else
    not_ok "vigil will set / will show (will-set, will-list RPC)" "rc=$rc $out $("$VIGIL" will show -rpc-addr=127.0.0.1:"$R2" 2>&1)"
fi
kill_node v2
if wait_until 20 members_have "$R2" v2 failed; then
    ok "killed vigil node is seen failed"
else
    not_ok "killed vigil node is seen failed" "$(members_of "$R2" 2>&1)"
fi
out=$("$SERF" force-leave -rpc-addr=127.0.0.1:"$R2" v2 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ] && wait_until 10 members_have "$R1" v2 left; then
    ok "serf force-leave against vigil: the serf agent sees it left"
else
    not_ok "serf force-leave against vigil: the serf agent sees it left" "rc=$rc $out $(members_of "$R1" 2>&1)"
fi

if wait_until 20 grep -q "^member-will|v2|restart v2$" "$T/will.out"; then
    ok "will of a failed vigil node delivered to a member-will handler"
else
    not_ok "will of a failed vigil node delivered to a member-will handler" "$(cat "$T/will.out" 2>&1)"
fi

# --------------------------------------------------------------- leave
out=$("$SERF" leave -rpc-addr=127.0.0.1:"$R2" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$out" = "Graceful leave complete" ]; then
    ok "serf leave against vigil"
else
    not_ok "serf leave against vigil" "rc=$rc $out"
fi
if wait_until 10 sh -c "! kill -0 $(pid_of v1) 2>/dev/null" && wait_until 10 members_have "$R1" v1 left; then
    ok "after serf leave the vigil agent exits and the serf agent sees it left"
else
    not_ok "after serf leave the vigil agent exits and the serf agent sees it left" "$(members_of "$R1" 2>&1)"
fi

# ------------------------------------- config dir, handlers, SIGHUP, SIGTERM
mkdir -p "$T/conf.d"
cat >"$T/conf.d/10-base.json" <<EOF
{"node_name": "cfgnode", "tags": {"role": "db", "zone": "a"},
 "event_handlers": ["user:slow=sleep 30", "user:after=echo \$SERF_USER_EVENT >>$T/after.out"],
 "event_handler_timeout": "1s", "log_level": "debug"}
EOF
cat >"$T/conf.d/20-override.json" <<EOF
{"tags": {"zone": "b"}}
EOF
echo "not json" >"$T/conf.d/ignored.txt"
start_vigil c1 "$P5" "$R5" -config-dir="$T/conf.d" -tag extra=1
if wait_until 10 eval 'nmembers "$R5" | grep -Eq "^c1 .* alive +extra=1,role=db,zone=b$"'; then
    ok "config dir: files merged in order, flags (-node, -tag) override"
else
    not_ok "config dir: files merged in order, flags (-node, -tag) override" "$("$SERF" members -rpc-addr=127.0.0.1:"$R5" 2>&1)"
fi
"$SERF" event -rpc-addr=127.0.0.1:"$R5" slow >/dev/null 2>&1
"$SERF" event -rpc-addr=127.0.0.1:"$R5" after >/dev/null 2>&1
if wait_until 10 grep -q "^after$" "$T/after.out" &&
    grep -q "exceeded the handler timeout, killing it" "$(log_of c1)"; then
    ok "event handler timeout kills a stuck script; later events still run"
else
    not_ok "event handler timeout kills a stuck script; later events still run" "$(tail -5 "$(log_of c1)")"
fi
cat >"$T/conf.d/20-override.json" <<EOF
{"tags": {"zone": "c"}}
EOF
stop_node c1 HUP
if wait_until 10 eval 'nmembers "$R5" | grep -Eq "zone=c$"'; then
    ok "SIGHUP reloads the configuration (tags)"
else
    not_ok "SIGHUP reloads the configuration (tags)" "$("$SERF" members -rpc-addr=127.0.0.1:"$R5" 2>&1)"
fi
stop_node c1 TERM
wait "$(pid_of c1)" 2>/dev/null
rc=$?
if [ $rc -eq 1 ] && ! grep -q "requesting graceful leave" "$(log_of c1)"; then
    ok "SIGTERM: no leave, exit 1 (serf's default without leave_on_terminate)"
else
    not_ok "SIGTERM: no leave, exit 1 (serf's default without leave_on_terminate)" "rc=$rc"
fi
echo '{"leave_on_terminate": true}' >"$T/lot.json"
start_vigil c2 "$P6" "$R6" -config-file="$T/lot.json"
wait_until 10 "$SERF" members -rpc-addr=127.0.0.1:"$R6" >/dev/null
stop_node c2 TERM
wait "$(pid_of c2)" 2>/dev/null
rc=$?
if [ $rc -eq 0 ] && grep -q "requesting graceful leave" "$(log_of c2)"; then
    ok "SIGTERM with leave_on_terminate: graceful leave, exit 0"
else
    not_ok "SIGTERM with leave_on_terminate: graceful leave, exit 0" "rc=$rc"
fi

# ----------------------------------------------------------- retry-join
read -r P7 R7 P8 R8 < <(free_ports 4)
start_vigil rj "$P7" "$R7" -retry-join=127.0.0.1:"$P8" -retry-interval=1s
sleep 1.5
start_vigil rjs "$P8" "$R8"
if wait_until 15 members_have "$R7" rjs alive; then
    ok "-retry-join keeps trying until the seed comes up"
else
    not_ok "-retry-join keeps trying until the seed comes up" "$(members_of "$R7" 2>&1)"
fi
read -r P9 R9 < <(free_ports 2)
start_vigil rjmax "$P9" "$R9" -retry-join=127.0.0.1:1 -retry-interval=1s -retry-max=1
if wait_until 20 eval '! kill -0 "$(pid_of rjmax)" 2>/dev/null'; then
    wait "$(pid_of rjmax)" 2>/dev/null
    rc=$?
    if [ $rc -eq 1 ] && grep -q "maximum retry join attempts made, exiting" "$(log_of rjmax)"; then
        ok "-retry-max: gives up and exits 1"
    else
        not_ok "-retry-max: gives up and exits 1" "rc=$rc"
    fi
else
    not_ok "-retry-max: gives up and exits 1" "still running"
fi
read -r P10 R10 < <(free_ports 2)
"$VIGIL" agent -node=sj -bind=127.0.0.1:"$P10" -rpc-addr=127.0.0.1:"$R10" -join=127.0.0.1:1 >"$T/sj.log" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "Error joining the cluster" "$T/sj.log"; then
    ok "-join to nobody: the agent exits 1, like serf"
else
    not_ok "-join to nobody: the agent exits 1, like serf" "rc=$rc $(tail -3 "$T/sj.log")"
fi

# ----------------------------------------------------- CLI behaviour
out=$("$VIGIL" members -bogus 2>&1 >/dev/null)
rc=$?
if [ $rc -eq 1 ] && [ "$out" = "flag provided but not defined: -bogus" ]; then
    ok "vigil members -bogus: Go flag error, exit 1"
else
    not_ok "vigil members -bogus: Go flag error, exit 1" "rc=$rc $out"
fi
"$VIGIL" members --help >"$T/help.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "^Usage: vigil members \[options\]" "$T/help.out"; then
    ok "vigil members --help"
else
    not_ok "vigil members --help" "rc=$rc $(cat "$T/help.out")"
fi
out=$("$VIGIL" members -rpc-addr=127.0.0.1:1 2>&1)
rc=$?
if [ $rc -eq 1 ] && [ "$out" = "Error connecting to Serf agent: dial tcp 127.0.0.1:1: connect: connection refused" ]; then
    ok "vigil members without agent: serf's error"
else
    not_ok "vigil members without agent: serf's error" "rc=$rc $out"
fi
echo '{"node_name": "x", "bogus_key": 1}' >"$T/bad.json"
out=$("$VIGIL" agent -config-file="$T/bad.json" 2>&1)
rc=$?
if [ $rc -eq 1 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "bogus_key"; then
    ok "invalid config file: one error line, exit 1"
else
    not_ok "invalid config file: one error line, exit 1" "rc=$rc $out"
fi
echo '{"node_name": 5}' >"$T/bad2.json"
out=$("$VIGIL" agent -config-file="$T/bad2.json" 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q '"node_name" must be a string'; then
    ok "config value of the wrong type is rejected"
else
    not_ok "config value of the wrong type is rejected" "rc=$rc $out"
fi

finish
