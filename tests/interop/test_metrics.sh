#!/usr/bin/env bash
# Prometheus endpoint (vigil agent -metrics-addr / metrics_addr):
#  1. two plaintext vigil agents, one configured by flag, one by config file:
#     /metrics is a well-formed text exposition (every sample parses, every
#     family has HELP and TYPE, counters end in _total), both see 2 alive
#     members, probes go up; other paths 404; garbage HTTP gets 400 and the
#     agent stays up.  An agent without the flag opens no endpoint.
#  2. Issue 5: an encrypted cluster (2 vigil + 1 serf agent, one key).
#     Plaintext memberlist packets (a valid alive for a fake node, a
#     push-pull announcing it), random bytes, and the same messages
#     encrypted with a wrong key are sent into a vigil agent's UDP and TCP
#     port: every one is dropped and counted in vigil_packets_dropped_total
#     (by at least the number sent, per reason), and no agent's member list
#     changes.  A vigil agent with a wrong key retrying to join is refused
#     and counted too.  Control: the same alive encrypted with the right key
#     is accepted, so the dropped packets were well-formed.
set -u
. "$(dirname "$0")/lib.sh"

TOOL="$VIGIL_TMP/metrics_tool.py"
cat >"$TOOL" <<'PY'
import os, random, re, socket, struct, sys, time, urllib.error, urllib.request

# ------------------------------------------------------------- scraping
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?[0-9]+)?$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')
VALUE = re.compile(r'^(NaN|[+-]Inf|[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)$')

def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")

def parse(text):
    """Parse a 0.0.4 exposition strictly; return ({series: value}, [errors])."""
    errs, series, help_, type_, seen_family, cur = [], {}, {}, {}, [], None
    if not text.endswith("\n"):
        errs.append("body does not end with a newline")
    for i, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not re.match(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$', name):
                    errs.append("line %d: bad metric name %r" % (i, name))
                d = help_ if parts[1] == "HELP" else type_
                if name in d:
                    errs.append("line %d: second %s for %s" % (i, parts[1], name))
                if len(parts) < 4 or not parts[3].strip():
                    errs.append("line %d: empty %s" % (i, parts[1]))
                d[name] = parts[3] if len(parts) > 3 else ""
                if parts[1] == "TYPE":
                    if d[name] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        errs.append("line %d: unknown type %r" % (i, d[name]))
                    if name in seen_family:
                        errs.append("line %d: TYPE after samples of %s" % (i, name))
            continue
        m = SAMPLE.match(line)
        if not m:
            errs.append("line %d: unparseable sample %r" % (i, line))
            continue
        name, labels, value = m.group(1), m.group(3), m.group(4)
        if not VALUE.match(value):
            errs.append("line %d: bad value %r" % (i, value))
        lab = []
        if labels:
            pos = 0
            while pos < len(labels):
                lm = LABEL.match(labels, pos)
                if not lm or lm.end() == pos:
                    errs.append("line %d: bad labels %r" % (i, labels))
                    break
                lab.append((lm.group(1), lm.group(2)))
                pos = lm.end()
        if name not in type_:
            errs.append("line %d: sample of %s before/without TYPE" % (i, name))
        if name not in help_:
            errs.append("line %d: sample of %s before/without HELP" % (i, name))
        if cur != name:
            if name in seen_family:
                errs.append("line %d: samples of %s not contiguous" % (i, name))
            seen_family.append(name)
            cur = name
        if type_.get(name) == "counter" and not name.endswith("_total"):
            errs.append("line %d: counter %s lacks _total" % (i, name))
        key = name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(lab)) + "}" if lab else "")
        if key in series:
            errs.append("line %d: duplicate series %s" % (i, key))
        try:
            series[key] = float(value)
        except ValueError:
            pass
    for name in set(help_) | set(type_):
        if name not in help_ or name not in type_:
            errs.append("%s has only one of HELP/TYPE" % name)
    return series, errs

def cmd_check(url):
    """Exit 0 if the exposition is well formed; print what is wrong."""
    status, ctype, text = fetch(url)
    _, errs = parse(text)
    if status != 200:
        errs.insert(0, "status %d" % status)
    if not ctype.startswith("text/plain") or "version=0.0.4" not in ctype:
        errs.insert(0, "content type %r" % ctype)
    for e in errs[:20]:
        print(e)
    sys.exit(1 if errs else 0)

def cmd_get(url, *keys):
    """Print the value of each series key (0 if absent: exit 1)."""
    series, _ = parse(fetch(url)[2])
    rc = 0
    for k in keys:
        if k not in series:
            rc = 1
        print("%.0f" % series.get(k, 0))
    sys.exit(rc)

def cmd_status(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            print(r.status)
    except urllib.error.HTTPError as e:
        print(e.code)

def cmd_raw(port, kind):
    """Send a bad request on a raw socket; print the status line we get."""
    payload = {"random": os.urandom(2000),
               "nonhttp": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),
               "oversized": b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n",
               "badline": b"GET /metrics\r\n\r\n"}[kind]
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    try:
        s.sendall(payload)
    except OSError:
        pass
    out = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
    except OSError:
        pass
    s.close()
    print(out.split(b"\r\n", 1)[0].decode("latin-1") if out else "(nothing)")

# ------------------------------------------------------------- packets
def mp(v):
    """Tiny msgpack encoder: enough for memberlist messages."""
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if v < 128:
            return bytes([v])
        if v < 65536:
            return b"\xcd" + struct.pack(">H", v)
        return b"\xce" + struct.pack(">I", v)
    if isinstance(v, str):
        b = v.encode()
        return bytes([0xa0 | len(b)]) + b if len(b) < 32 else b"\xd9" + bytes([len(b)]) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)

FAKE = "fake-intruder"
def alive_msg(port):
    return b"\x04" + mp({"Incarnation": 7, "Node": FAKE, "Addr": b"\x7f\x00\x00\x01",
                         "Port": port, "Meta": b"\xff\x80", "Vsn": b"\x01\x05\x02\x02\x05\x04"})

def push_pull_msg(port):
    node = {"Name": FAKE, "Addr": b"\x7f\x00\x00\x01", "Port": port, "Meta": b"\xff\x80",
            "Incarnation": 7, "State": 0, "Vsn": b"\x01\x05\x02\x02\x05\x04"}
    return b"\x06" + mp({"Join": True, "Nodes": 1, "UserStateLen": 0}) + mp(node)

def aesgcm():
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        return AESGCM
    except ImportError:
        return None

def encrypt_packet(key, msg):
    """memberlist encryptPayload, version 1, no additional data (UDP)."""
    nonce = os.urandom(12)
    return b"\x01" + nonce + aesgcm()(key).encrypt(nonce, msg, None)

def encrypt_stream(key, msg):
    """memberlist encryptLocal: [10][u32 len][version 1][nonce][ct], AAD = 5 header bytes."""
    hdr = b"\x0a" + struct.pack(">I", 1 + 12 + len(msg) + 16)
    nonce = os.urandom(12)
    return hdr + b"\x01" + nonce + aesgcm()(key).encrypt(nonce, msg, hdr)

def tcp_send(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    try:                                  # wait for the agent to close it
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()

def cmd_has_crypto():
    sys.exit(0 if aesgcm() else 1)

def cmd_attack(port, fake_port, key_b64, kind, count):
    """Send `count` items of one kind to 127.0.0.1:port; print the number sent."""
    import base64
    port, fake_port, count = int(port), int(fake_port), int(count)
    key = base64.b64decode(key_b64)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rnd = random.Random(4242)
    for _ in range(count):
        if kind == "udp-plain":
            u.sendto(alive_msg(fake_port), ("127.0.0.1", port))
        elif kind == "udp-random":
            # not an encryption version byte, not a memberlist type
            u.sendto(bytes([rnd.randrange(0x20, 0x100)]) + os.urandom(rnd.randrange(20, 600)),
                     ("127.0.0.1", port))
        elif kind == "udp-wrongkey":
            u.sendto(encrypt_packet(key, alive_msg(fake_port)), ("127.0.0.1", port))
        elif kind == "udp-rightkey":          # the control: same message, right key
            u.sendto(encrypt_packet(key, alive_msg(fake_port)), ("127.0.0.1", port))
        elif kind == "tcp-plain":
            tcp_send(port, push_pull_msg(fake_port))
        elif kind == "tcp-random":
            # an unknown message type byte, then junk
            tcp_send(port, bytes([rnd.randrange(0x20, 0x100)]) + os.urandom(rnd.randrange(20, 600)))
        elif kind == "tcp-wrongkey":
            tcp_send(port, encrypt_stream(key, push_pull_msg(fake_port)))
        else:
            sys.exit("unknown kind " + kind)
        time.sleep(0.005)             # stay well under the socket buffer
    print(count)

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY
tool() { python3 "$TOOL" "$@"; }
url() { echo "http://127.0.0.1:$1/metrics"; }
# metric PORT SERIES: its value (exit 1 if absent)
metric() { tool get "$(url "$1")" "$2"; }

# ---------------------------------------------------------------- part 1

read -r PV1 RV1 MV1 PV2 RV2 MV2 PV3 RV3 < <(free_ports 8)
start_vigil v1 "$PV1" "$RV1" -metrics-addr=127.0.0.1:"$MV1"
wait_ready "$RV1"
cat >"$VIGIL_TMP/v2.json" <<EOF
{"metrics_addr": "127.0.0.1:$MV2"}
EOF
start_vigil v2 "$PV2" "$RV2" -config-file="$VIGIL_TMP/v2.json" -join=127.0.0.1:"$PV1"
wait_ready "$RV2"

expo() { # NAME PORT
    local out
    if out=$(tool check "$(url "$2")" 2>&1); then ok "$1"; else not_ok "$1" "$out"; fi
}
expo "GET /metrics (flag): well-formed exposition, HELP and TYPE for every family" "$MV1"
expo "GET /metrics (config file metrics_addr): well-formed exposition" "$MV2"

required="vigil_members{state=\"alive\"} vigil_members{state=\"failed\"} vigil_members{state=\"left\"}
vigil_members{state=\"leaving\"} vigil_probes_total vigil_acks_total vigil_nacks_total
vigil_suspicions_total vigil_refutations_total vigil_health_score vigil_messages_received_total
vigil_messages_sent_total vigil_bytes_received_total{transport=\"udp\"}
vigil_bytes_sent_total{transport=\"tcp\"} vigil_decode_errors_total{layer=\"swim\"}
vigil_packets_dropped_total{reason=\"plaintext\",transport=\"udp\"}
vigil_packets_dropped_total{reason=\"decrypt\",transport=\"udp\"}
vigil_packets_dropped_total{reason=\"malformed\",transport=\"tcp\"}
vigil_stalls_total vigil_wills_delivered_total vigil_user_events_received_total
vigil_queries_received_total"
# shellcheck disable=SC2086
if out=$(tool get "$(url "$MV1")" $required); then ok "every documented core metric is exposed"
else not_ok "every documented core metric is exposed" "missing one of: $(echo $required)"; fi

two_alive() {
    [ "$(metric "$MV1" 'vigil_members{state="alive"}')" = 2 ] &&
        [ "$(metric "$MV2" 'vigil_members{state="alive"}')" = 2 ]
}
check "vigil_members{state=\"alive\"} is 2 on both agents" wait_until 15 two_alive

p1=$(metric "$MV1" vigil_probes_total)
a1=$(metric "$MV1" vigil_acks_total)
probes_grew() {
    p2=$(metric "$MV1" vigil_probes_total)
    a2=$(metric "$MV1" vigil_acks_total)
    [ "$p2" -gt "$p1" ] && [ "$a2" -gt "$a1" ]
}
wait_until 5 probes_grew
if [ "$p2" -gt "$p1" ] && [ "$a2" -gt "$a1" ]; then ok "probes and acks increase over time ($p1 -> $p2, $a1 -> $a2)"
else not_ok "probes and acks increase over time" "probes $p1 -> $p2, acks $a1 -> $a2"; fi
m_in=$(metric "$MV1" vigil_messages_received_total)
b_in=$(metric "$MV1" 'vigil_bytes_received_total{transport="udp"}')
if [ "$m_in" -gt 0 ] && [ "$b_in" -gt 0 ]; then ok "messages and bytes in are counted"
else not_ok "messages and bytes in are counted" "msgs $m_in bytes $b_in"; fi

check "GET /other is 404" sh -c "[ \"\$(python3 '$TOOL' status http://127.0.0.1:$MV1/other)\" = 404 ]"
check "GET / is 404" sh -c "[ \"\$(python3 '$TOOL' status http://127.0.0.1:$MV1/)\" = 404 ]"
check "HEAD /metrics is 200" sh -c "[ \"\$(python3 '$TOOL' status http://127.0.0.1:$MV1/metrics HEAD)\" = 200 ]"
if command -v curl >/dev/null; then
    check "curl sees 200 and the 0.0.4 content type" sh -c \
        "curl -fsS -D - -o /dev/null http://127.0.0.1:$MV1/metrics | grep -qi '^content-type: text/plain; version=0.0.4'"
fi
for kind in random nonhttp oversized badline; do
    got=$(tool raw "$MV1" "$kind")
    case $got in
    "HTTP/1.1 400 "*) ok "garbage HTTP ($kind) gets 400" ;;
    *) not_ok "garbage HTTP ($kind) gets 400" "got: $got" ;;
    esac
done
# many clients at once, some of them silent
python3 - "$MV1" <<'PY' && ok "60 idle connections + 40 parallel scrapes: all scrapes answered" || not_ok "many clients"
import socket, sys, threading, urllib.request
port = int(sys.argv[1])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
res = []
def one():
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            res.append(r.status)
    except Exception as e:
        res.append(str(e))
ts = [threading.Thread(target=one) for _ in range(40)]
[t.start() for t in ts]
[t.join() for t in ts]
[s.close() for s in idle]
sys.exit(0 if res == [200] * 40 else (print(res) or 1))
PY
rpc_ok() { members_of "$RV1" >/dev/null; }
check "after the garbage, the agent is up and answers RPC" rpc_ok
expo "after the garbage, /metrics still works" "$MV1"

start_vigil v3 "$PV3" "$RV3" -join=127.0.0.1:"$PV1"
wait_ready "$RV3"
check "without -metrics-addr no endpoint is announced" \
    sh -c "! grep -q 'Metrics addr' '$(log_of v3)'"
# A crashed process on a live host: its port answers "unreachable", which
# v1 counts and answers with an early probe of v3 (see swim_hint_unreachable).
check "v1 sees v3 alive" wait_until 15 members_have "$RV1" v3 alive
u0=$(metric "$MV1" vigil_udp_unreachable_total)
h0=$(metric "$MV1" vigil_unreachable_probes_total)
kill_node v3
unreachable_counted() {
    [ "$(metric "$MV1" vigil_udp_unreachable_total)" -gt "$u0" ] &&
        [ "$(metric "$MV1" vigil_unreachable_probes_total)" -gt "$h0" ]
}
check "after kill -9 of v3, v1 counts port unreachable and probes v3 early" \
    wait_until 10 unreachable_counted
check "v1 then reports v3 failed" wait_until 20 members_have "$RV1" v3 failed
stop_node v2
stop_node v1

# ---------------------------------------------------------------- part 2

read -r PE1 RE1 ME1 PE2 RE2 ME2 PS RS PW RW FAKEP < <(free_ports 11)
K=$(serf keygen)
KW=$(serf keygen)
start_serf s1 "$PS" "$RS" -encrypt="$K"
wait_ready "$RS"
start_vigil e1 "$PE1" "$RE1" -encrypt="$K" -metrics-addr=127.0.0.1:"$ME1" -join=127.0.0.1:"$PS"
start_vigil e2 "$PE2" "$RE2" -encrypt="$K" -metrics-addr=127.0.0.1:"$ME2" -join=127.0.0.1:"$PS"
wait_ready "$RE1"
wait_ready "$RE2"
three() {
    local r
    for r in "$RS" "$RE1" "$RE2"; do
        [ "$(members_of "$r" -status=alive 2>/dev/null | wc -l)" -eq 3 ] || return 1
    done
}
check "encrypted cluster: 2 vigil + 1 serf agent, all alive" wait_until 20 three
check "vigil_encrypted is 1" sh -c "[ \"\$(python3 '$TOOL' get $(url "$ME1") vigil_encrypted)\" = 1 ]"
members_before=$(for r in "$RS" "$RE1" "$RE2"; do members_of "$r" | awk '{print $1}' | sort | tr '\n' ' '; echo; done)

D='vigil_packets_dropped_total'
series="$D{reason=\"plaintext\",transport=\"udp\"} $D{reason=\"decrypt\",transport=\"udp\"}
$D{reason=\"malformed\",transport=\"udp\"} $D{reason=\"plaintext\",transport=\"tcp\"}
$D{reason=\"decrypt\",transport=\"tcp\"} $D{reason=\"malformed\",transport=\"tcp\"}"
# shellcheck disable=SC2086
read -r b_up b_ud b_um b_tp b_td b_tm < <(tool get "$(url "$ME1")" $series | tr '\n' ' ')
N=25
sent_up=$(tool attack "$PE1" "$FAKEP" "$KW" udp-plain $N)
sent_um=$(tool attack "$PE1" "$FAKEP" "$KW" udp-random $N)
sent_tp=$(tool attack "$PE1" "$FAKEP" "$KW" tcp-plain 10)
sent_tm=$(tool attack "$PE1" "$FAKEP" "$KW" tcp-random 10)
if tool has-crypto; then
    sent_ud=$(tool attack "$PE1" "$FAKEP" "$KW" udp-wrongkey $N)
    sent_td=$(tool attack "$PE1" "$FAKEP" "$KW" tcp-wrongkey 10)
else
    echo "# python3 cryptography missing: wrong-key packets come only from the wrong-key agent below"
    sent_ud=0 sent_td=0
fi
sleep 1
# shellcheck disable=SC2086
read -r a_up a_ud a_um a_tp a_td a_tm < <(tool get "$(url "$ME1")" $series | tr '\n' ' ')
grew() { # name before after sent
    if [ $(($3 - $2)) -ge "$4" ]; then ok "$1: +$(($3 - $2)) >= $4 sent"
    else not_ok "$1" "counter went $2 -> $3, $4 were sent"; fi
}
grew "UDP plaintext alive for a fake node dropped, counted as plaintext" "$b_up" "$a_up" "$sent_up"
grew "UDP random bytes dropped, counted as malformed" "$b_um" "$a_um" "$sent_um"
grew "TCP plaintext push-pull dropped, counted as plaintext" "$b_tp" "$a_tp" "$sent_tp"
grew "TCP random bytes dropped, counted as malformed" "$b_tm" "$a_tm" "$sent_tm"
if [ "$sent_ud" -gt 0 ]; then
    grew "UDP alive encrypted with a wrong key dropped, counted as decrypt" "$b_ud" "$a_ud" "$sent_ud"
    grew "TCP push-pull encrypted with a wrong key dropped, counted as decrypt" "$b_td" "$a_td" "$sent_td"
fi
total_before=$((b_up + b_ud + b_um + b_tp + b_td + b_tm))
total_after=$((a_up + a_ud + a_um + a_tp + a_td + a_tm))
sent_all=$((sent_up + sent_ud + sent_um + sent_tp + sent_td + sent_tm))
grew "all $sent_all hostile packets/streams counted as dropped" "$total_before" "$total_after" "$sent_all"

# a real agent with the wrong key keeps trying to join through e1
b_td2=$(metric "$ME1" "$D{reason=\"decrypt\",transport=\"tcp\"}")
start_vigil wrongkey "$PW" "$RW" -encrypt="$KW" -retry-join=127.0.0.1:"$PE1" -retry-interval=1s
wait_ready "$RW"
td_grew() { [ "$(metric "$ME1" "$D{reason=\"decrypt\",transport=\"tcp\"}")" -ge $((b_td2 + 2)) ]; }
check "a wrong-key agent's join attempts are dropped and counted (tcp decrypt)" wait_until 15 td_grew
alone() { [ "$(members_of "$RW" 2>/dev/null | wc -l)" -eq 1 ]; }
check "the wrong-key agent learns nothing of the cluster" alone

sleep 2
members_after=$(for r in "$RS" "$RE1" "$RE2"; do members_of "$r" | awk '{print $1}' | sort | tr '\n' ' '; echo; done)
if [ "$members_before" = "$members_after" ]; then ok "member lists unchanged on all three agents"
else not_ok "member lists unchanged on all three agents" "before: $members_before / after: $members_after"; fi
no_fake() {
    local r
    for r in "$RS" "$RE1" "$RE2"; do
        members_of "$r" | grep -qE "^(fake-intruder|wrongkey) " && return 1
    done
    return 0
}
check "no fake node and no wrong-key node in any member list" no_fake
check "the cluster is still whole" three
expo "e1 still serves a well-formed /metrics" "$ME1"
e1_alive=$(metric "$ME1" 'vigil_members{state="alive"}')
if [ "$e1_alive" = 3 ]; then ok "vigil_members{state=\"alive\"} is 3 on e1"
else not_ok "vigil_members{state=\"alive\"} is 3 on e1" "got $e1_alive"; fi

# control: the very same alive, encrypted with the right key, is accepted
if tool has-crypto; then
    tool attack "$PE1" "$FAKEP" "$K" udp-rightkey 3 >/dev/null
    has_fake() { members_of "$RE1" | grep -q '^fake-intruder '; }
    check "control: the same alive with the right key is accepted (the dropped ones were well-formed)" \
        wait_until 5 has_fake
fi

finish
