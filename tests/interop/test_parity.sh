#!/usr/bin/env bash
# test_parity.sh — serf parity against the real serf agent (issue 17):
# network coordinates both ways (serf rtt / vigil rtt / RPC get-coordinate),
# -disable-coordinates; -tags-file, -iface, -syslog, -discover's errors.
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
# (stdout only: serf's Ui writes errors there too)
out=$(serf rtt -rpc-addr=127.0.0.1:"$R1" v3 2>/dev/null)
check disable_coordinates_serf_finds_none [ "$out" = 'Could not find a coordinate for node "v3"' ]
out=$("$VIGIL_BIN" rtt -rpc-addr=127.0.0.1:"$R4" s1 2>/dev/null)
check disable_coordinates_vigil_keeps_none [ "$out" = 'Could not find a coordinate for node "s1"' ]
out=$("$VIGIL_BIN" rtt -rpc-addr=127.0.0.1:"$R2" nosuch 2>/dev/null)
check rtt_unknown_node_as_serf [ "$out" = 'Could not find a coordinate for node "nosuch"' ]

# agents expected to refuse to start get these (never a well-known port:
# on old code they would start and listen)
read -r PX RX < <(free_ports 2)

# ---- -tags-file: tags set at run time survive a restart (serf's format)
read -r P5 R5 < <(free_ports 2)
TAGS=$VIGIL_TMP/tags.json
start_vigil v5 "$P5" "$R5" -join=127.0.0.1:"$P1" -tags-file="$TAGS"
wait_until 15 members_have "$R1" v5 alive || not_ok tags_file_join "v5 never alive"
"$VIGIL_BIN" tags -rpc-addr=127.0.0.1:"$R5" -set role=web -set dc=east >/dev/null 2>&1
check tags_file_written_as_serf python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(d != {"dc": "east", "role": "web"})' "$TAGS"
stop_node v5
wait_until 10 bash -c "! kill -0 $(pid_of v5) 2>/dev/null"
start_vigil v5 "$P5" "$R5" -join=127.0.0.1:"$P1" -tags-file="$TAGS"
# asked of the restarted agent itself: s1 may still hold the old copy
has_tags() { members_of "$R5" -tag role=web -tag dc=east 2>/dev/null | grep -q '^v5 .*alive'; }
if wait_until 15 has_tags; then ok tags_file_survives_restart; else
    not_ok tags_file_survives_restart "$(members_of "$R5" 2>&1 | grep v5)"; fi
out=$(timeout 10 "$VIGIL_BIN" agent -node=x -bind=127.0.0.1:"$PX" -rpc-addr=127.0.0.1:"$RX" -tags-file="$TAGS" -tag a=b 2>&1)
check tags_file_with_tag_refused_as_serf grep -q "Tags config not allowed while using tag files" <<<"$out"

# ---- -iface lo: bind the interface's address (127.0.0.1), not 0.0.0.0
read -r P6 R6 < <(free_ports 2)
start_vigil v6 "$P6" "$R6" -bind=0.0.0.0:"$P6" -iface=lo -join=127.0.0.1:"$P1"
wait_until 15 members_have "$R1" v6 alive || not_ok iface_join "v6 never alive"
check iface_says_address grep -q "Using interface 'lo' address '127.0.0.1'" "$(log_of v6)"
bound=$(ss -Hlnu "sport = :$P6" | awk '{print $4}')
check iface_binds_interface_address [ "$bound" = "127.0.0.1:$P6" ]
out=$(timeout 10 "$VIGIL_BIN" agent -node=x -bind=127.0.0.1:"$PX" -rpc-addr=127.0.0.1:"$RX" -iface=nosuch0 2>&1); rc=$?
check iface_unknown_refused bash -c "[ $rc -ne 0 ] && grep -q 'Invalid network interface' <<<'$out'"
cfg=$VIGIL_TMP/iface.json
echo '{"interface": "nosuch0"}' >"$cfg"
out=$(timeout 10 "$VIGIL_BIN" agent -node=x -bind=127.0.0.1:"$PX" -rpc-addr=127.0.0.1:"$RX" -config-file="$cfg" 2>&1); rc=$?
check config_interface_key_honoured bash -c "[ $rc -ne 0 ] && grep -q 'Invalid network interface' <<<'$out'"

# ---- -discover works (tests/interop/test_discover.sh, with serf, in a
# namespace); a cluster name that makes no DNS name is refused clearly
long=$(printf 'x%.0s' $(seq 70))
timeout 10 "$VIGIL_BIN" agent -node=x -bind=127.0.0.1:"$PX" -rpc-addr=127.0.0.1:"$RX" -discover="$long" \
    >"$VIGIL_TMP/discover_bad.out" 2>&1; rc=$?
check discover_bad_cluster_name_refused_clearly bash -c "[ $rc -eq 1 ] && grep -q 'Error starting mDNS listener: .*valid DNS name' $VIGIL_TMP/discover_bad.out"

# ---- -syslog: lines reach syslog.  /dev/log is redirected, in a private
# mount namespace, to a socket this script listens on.
if unshare -m true 2>/dev/null; then
    read -r P7 R7 < <(free_ports 2)
    DEV=$VIGIL_TMP/dev
    mkdir -p "$DEV"
    touch "$DEV/null"
    python3 - "$DEV/log" "$VIGIL_TMP/syslog.txt" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1)
end = time.time() + 30
with open(sys.argv[2], "ab", buffering=0) as out:
    while time.time() < end:
        try:
            out.write(s.recv(65536) + b"\n")
        except socket.timeout:
            pass
PY
    _vigil_track syslogd $!
    wait_until 5 test -S "$DEV/log"
    unshare -m bash -c 'mount --bind /dev/null "$1/null" && mount --rbind "$1" /dev && exec "$2" agent -node=v7 -bind=127.0.0.1:"$3" -rpc-addr=127.0.0.1:"$4" -syslog' \
        _ "$DEV" "$VIGIL_BIN" "$P7" "$R7" </dev/null >"$(log_of v7)" 2>&1 &
    _vigil_track v7 $!
    if wait_until 10 grep -q 'vigil\[[0-9]*\]: \[INFO\] agent' "$VIGIL_TMP/syslog.txt"; then
        ok syslog_receives_log_lines
    else
        not_ok syslog_receives_log_lines "$(head -c 300 "$VIGIL_TMP/syslog.txt" 2>&1)"
    fi
    # LOCAL0 (16) * 8 + info (6) = 134, serf's default facility
    check syslog_facility_local0 grep -q '^<134>' "$VIGIL_TMP/syslog.txt"
else
    echo "# skipping syslog: no mount namespaces here"
fi
out=$(timeout 10 "$VIGIL_BIN" agent -node=x -bind=127.0.0.1:"$PX" -rpc-addr=127.0.0.1:"$RX" -syslog -config-file=<(echo '{"syslog_facility":"BOGUS"}') 2>&1); rc=$?
check syslog_bad_facility_refused bash -c "[ $rc -ne 0 ] && grep -q 'Syslog setup failed' <<<'$out'"

# ---- protocol: what `vigil version` says is what the node advertises
# (serf agents advertise their ProtocolVersionMax, 5)
said=$("$VIGIL_BIN" version | sed -n 's/^Agent Protocol: \([0-9]*\) .*/\1/p')
adv_v1=$(serf members -detailed -rpc-addr=127.0.0.1:"$R1" | awk '$1 == "v1" {print $6}')
adv_s1=$(serf members -detailed -rpc-addr=127.0.0.1:"$R1" | awk '$1 == "s1" {print $6}')
check version_matches_advertised_protocol [ "$said" = "$adv_v1" ]
check protocol_as_serf_agent [ "$adv_v1" = "$adv_s1" ]
info=$("$VIGIL_BIN" info -rpc-addr=127.0.0.1:"$R2")
check info_runtime_real bash -c "! grep -q goroutines <<<'$info' && grep -q 'arch = $(uname -m)' <<<'$info'"
check info_coordinate_resets_as_serf grep -q "coordinate_resets = 0" <<<"$info"

# ---- join NAME/ADDR (memberlist resolveAddr, used by serf's join tests)
read -r P8 R8 < <(free_ports 2)
start_vigil v8 "$P8" "$R8"
wait_ready "$R8" 10
out=$(serf join -rpc-addr=127.0.0.1:"$R8" s1/127.0.0.1:"$P1" 2>&1)
check join_name_slash_addr grep -q "Successfully joined cluster by contacting 1 nodes" <<<"$out"
out=$(serf join -rpc-addr=127.0.0.1:"$R8" /127.0.0.1:"$P1" 2>&1)
check join_empty_name_refused bash -c "! grep -q Successfully <<<'$out'"

# ---- query IDs in an RPC event stream: per connection, 1, 2, ... (serf
# IPCClient.nextQueryID), and "respond" takes that ID
cp "$(dirname "$0")/rpcpy.py" "$VIGIL_TMP/rpcpy.py"
out=$(timeout 30 python3 - "$R2" "$R1" "$VIGIL_TMP" <<'PY' 2>&1
import subprocess, sys
sys.path.insert(0, sys.argv[3])
from rpcpy import Client
port, qport = int(sys.argv[1]), int(sys.argv[2])
c = Client(port)
seq = c.send("stream", {"Type": "query:idq"})
h = c.d.obj(); assert h["Seq"] == seq and h["Error"] == "", h
ids = []
for i in range(2):
    p = subprocess.Popen(["serf", "query", "-rpc-addr=127.0.0.1:%d" % qport, "-timeout=2s",
                          "-node=v1", "idq", "x"], stdout=subprocess.PIPE)
    h = c.d.obj(); rec = c.d.obj()
    assert rec["Event"] == "query" and rec["Name"] == "idq", rec
    ids.append(rec["ID"])
    assert c.call("respond", {"ID": rec["ID"], "Payload": b"r%d" % i})["Error"] == ""
    out = p.communicate()[0].decode()
    assert "Response from 'v1': r%d" % i in out, out
print("ids", ids)
PY
)
check query_ids_per_connection_from_1 [ "$out" = "ids [1, 2]" ]

# ---- reachability: vigil's command against either agent prints what
# serf's prints; serf's command works against a vigil agent
# (retried: a member that just restarted can be mid-way through joining)
reach_same() {
    local a b
    a=$(serf reachability -rpc-addr=127.0.0.1:"$1" 2>&1) || return 1
    b=$("$VIGIL_BIN" reachability -rpc-addr=127.0.0.1:"$1" 2>&1) || return 1
    [ "$a" = "$b" ] && grep -q 'Successfully contacted all live nodes' <<<"$b"
}
for rpc in "$R1" "$R2"; do
    name="reachability_as_serf_via_$([ "$rpc" = "$R1" ] && echo s1 || echo v1)"
    if wait_until 30 reach_same "$rpc"; then ok "$name"; else
        not_ok "$name" "$(serf reachability -rpc-addr=127.0.0.1:"$rpc" 2>&1) /// $("$VIGIL_BIN" reachability -rpc-addr=127.0.0.1:"$rpc" 2>&1)"; fi
done
# a stopped member is still listed alive but does not ack
kill -STOP "$(pid_of v8)"
out=$("$VIGIL_BIN" reachability -rpc-addr=127.0.0.1:"$R2" 2>&1); rc=$?
kill -CONT "$(pid_of v8)"
check reachability_reports_missing_ack bash -c "[ $rc -eq 1 ] && grep -q 'Received less acks than live nodes! Missing acks from:' <<<\"\$1\" && grep -qx '	v8' <<<\"\$1\"" _ "$out"

# ---- memberlist's protocol check: a plain memberlist node (no serf
# delegate: delegate versions 0/0/0) joining by push-pull is refused by
# serf; vigil must refuse it too, and accept the same join with serf's
# versions.  The join is a hand-made memberlist push-pull over TCP.
read -r P9 < <(free_ports 1)
cat >"$VIGIL_TMP/mljoin.py" <<'PY'
import socket, sys
sys.path.insert(0, sys.argv[4])
from rpcpy import enc
port, name, dvsn = int(sys.argv[1]), sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
node = {"Name": name, "Addr": bytes([127, 0, 0, 1]), "Port": int(sys.argv[5]), "Meta": b"",
        "Incarnation": 1, "State": 0, "Vsn": bytes([1, 5, 2] + dvsn)}
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(bytes([6]) + enc({"Nodes": 1, "UserStateLen": 0, "Join": True}) + enc(node))
try:
    print("reply", s.recv(1)[:1].hex())
except Exception as e:
    print("no reply", e)
PY
for target in "s1 $P1 $R1" "v1 $P2 $R2"; do
    set -- $target
    python3 "$VIGIL_TMP/mljoin.py" "$2" "ml-$1" 0,0,0 "$VIGIL_TMP" "$P9" >/dev/null 2>&1
    python3 "$VIGIL_TMP/mljoin.py" "$2" "okml-$1" 2,5,4 "$VIGIL_TMP" "$P9" >/dev/null 2>&1
    wait_until 5 bash -c "serf members -rpc-addr=127.0.0.1:$3 | grep -q '^okml-$1 '" ||
        not_ok "memberlist_join_control_$1" "a push-pull with serf's versions was not merged by $1"
    if serf members -rpc-addr=127.0.0.1:"$3" | grep -q "^ml-$1 "; then
        not_ok "memberlist_delegate_000_refused_by_$1" "$(serf members -rpc-addr=127.0.0.1:"$3" | grep "^ml-")"
    else
        ok "memberlist_delegate_000_refused_by_$1"
    fi
done

# ---- a bad -encrypt key: serf's words (Go's base64 error with its offset)
for k in 'abc$def' 'AAAA' 'AAAAAAAAAAAAAAAAAAAAAA=' 'AAAAAAAAAAAAAAAAAAAAAAA' 'AA=A' 'AAAAAAAAAAAAAAAAAAAAAA==x' 'A'; do
    a=$(timeout 10 serf agent -node=x -bind=127.0.0.1:"$PX" -rpc-addr=127.0.0.1:"$RX" -encrypt="$k" 2>&1 |
        grep -E 'Invalid encryption key|key size')
    b=$(timeout 10 "$VIGIL_BIN" agent -node=x -bind=127.0.0.1:"$PX" -rpc-addr=127.0.0.1:"$RX" -encrypt="$k" 2>&1 |
        grep -E 'Invalid encryption key|key size')
    if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "bad_key_text_as_serf $k"; else not_ok "bad_key_text_as_serf $k" "serf: $a / vigil: $b"; fi
done

# ---- a joiner with the wrong key or without encryption is told why (an
# errMsg, encrypted as memberlist sends it), as a serf agent tells it
read -r PE1 RE1 PE2 RE2 PJ RJ < <(free_ports 6)
KEY=$(serf keygen) OTHER=$(serf keygen)
start_serf  se "$PE1" "$RE1" -encrypt="$KEY"
start_vigil ve "$PE2" "$RE2" -encrypt="$KEY"
wait_ready "$RE1" 10; wait_ready "$RE2" 10
join_error() { # target port, extra serf args: the joiner's error line
    local port=$1
    shift
    timeout 15 serf agent -node=joiner -bind=127.0.0.1:"$PJ" -rpc-addr=127.0.0.1:"$RJ" \
        -join=127.0.0.1:"$port" "$@" 2>&1 | grep 'Failed to join' | sed 's/^[[:space:]]*//'
}
for case in wrong_key plaintext; do
    extra=()
    [ "$case" = wrong_key ] && extra=(-encrypt="$OTHER")
    a=$(join_error "$PE1" "${extra[@]}")
    b=$(join_error "$PE2" "${extra[@]}")
    if [ -n "$a" ] && [ "$a" = "$b" ] && ! grep -q EOF <<<"$b"; then ok "join_${case}_told_as_serf ($b)"; else
        not_ok "join_${case}_told_as_serf" "serf: $a / vigil: $b"; fi
done

finish
