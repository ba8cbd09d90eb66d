#!/usr/bin/env bash
# Issue 15, "Wills can be forged", on real agents (plaintext gossip, so an
# outsider can send anything a member could).  A forger sends, as single
# UDP datagrams to the gossip ports, will messages about member a's will:
# the unsigned format of the first will protocol and the signed format
# signed with a key of its own (python3-cryptography, Ed25519):
#   - a version at seq 2^64-1 and a tombstone at 2^64-2 (overwrite, revoke);
#   - a delivery to b while a is alive (b's handler must not run);
#   - a "done" for a's next deaths (must not suppress the delivery);
#   - 21,000 wills of 1 KiB for made-up owners (c's memory stays put, and a
#     new member still joins through c: push-pull state stays small).
# Then a sets its will again (it must spread: no wrap) and is killed: b's
# handler gets a's real will, exactly once.
set -u
. "$(dirname "$0")/lib.sh"

read -r PA RA PB RB PC RC PD RD < <(free_ports 8)

cat >"$VIGIL_TMP/handler.sh" <<'H'
#!/bin/sh
payload=$(cat)
echo "event=$VIGIL_EVENT owner=${VIGIL_WILL_OWNER:-} payload=$payload" >>"$1"
H
chmod +x "$VIGIL_TMP/handler.sh"
EV="$VIGIL_TMP/b.events"
start_vigil a "$PA" "$RA"
wait_ready "$RA"
start_vigil b "$PB" "$RB" -join=127.0.0.1:"$PA" \
    "-event-handler=member-will=$VIGIL_TMP/handler.sh $EV"
start_vigil c "$PC" "$RC" -join=127.0.0.1:"$PA"
all_alive() {
    local r
    for r in $RA $RB $RC; do
        [ "$("$VIGIL_BIN" members -rpc-addr=127.0.0.1:$r -status=alive 2>/dev/null | wc -l)" -eq 3 ] || return 1
    done
}
check "three members alive everywhere" wait_until 30 all_alive

will_at() { # rpc-port: a's will as "seq|payload" (columns: owner delivery delay seq payload)
    "$VIGIL_BIN" will show -rpc-addr=127.0.0.1:"$1" a 2>/dev/null |
        awk '$1 == "a" {s = $4; sub(/^[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +/, ""); print s "|" $0}'
}
holds() { [ "$(will_at "$1")" = "$2" ]; }
"$VIGIL_BIN" will set -rpc-addr=127.0.0.1:"$RA" --to b --delay 2s "real one" ||
    not_ok "vigil will set"
check "a's will is at b and c" wait_until 30 bash -c \
    "$(declare -f will_at holds); VIGIL_BIN=$VIGIL_BIN; holds $RB '1|real one' && holds $RC '1|real one'"

# ---- the forger --------------------------------------------------------
forge() { # port...: send the forged datagrams to each port
    python3 - "$@" <<'PY'
import socket, struct, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

def mp(o):  # the few msgpack shapes the will messages use
    if isinstance(o, bool): return b"\xc3" if o else b"\xc2"
    if isinstance(o, int): return b"\xcf" + struct.pack(">Q", o)
    if isinstance(o, str):
        b = o.encode(); return bytes([0xd9, len(b)]) + b
    if isinstance(o, bytes): return bytes([0xc4, len(o)]) + o
    if isinstance(o, list):
        return bytes([0x90 | len(o)]) + b"".join(mp(x) for x in o)
    raise TypeError(o)

key = Ed25519PrivateKey.generate()
pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
def signed(t, fields):  # the signed layout of src/will.h, with the forger's key
    return fields + [pub, key.sign(b"vigil-will-v1" + bytes([t]) + mp(fields))]

VERSION, DELIVER, DONE = 200, 201, 202
M64 = 2**64 - 1
def version(seq, tomb, payload=b"FORGED"):
    return ["a", seq, tomb, 0, "" if tomb else "b", 0, b"" if tomb else payload]
msgs = []
for f in (lambda t, x: x, signed):     # unsigned, then signed by the forger
    msgs += [(VERSION, f(VERSION, version(M64, False))),
             (VERSION, f(VERSION, version(M64 - 1, True))),
             (VERSION, f(VERSION, version(2, False)))]
    msgs.append((DONE, f(DONE, ["a", 2**32 - 1, 1, 0, "b"])))
    msgs.append((DONE, f(DONE, ["a", 1, 1, 0, "b"])))
msgs.append((DELIVER, ["a", 1, 1, "b", b"FORGED", ""]))          # unsigned
msgs.append((DELIVER, [signed(VERSION, version(1, False)), 1, ""]))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in map(int, sys.argv[1:]):
    for t, body in msgs:
        # memberlist user message (8) carrying a serf extension message
        u.sendto(b"\x08" + bytes([t]) + mp(body), ("127.0.0.1", port))
PY
}
if python3 -c 'import cryptography' 2>/dev/null; then
    forge "$PB" "$PC" "$PA"
    sleep 1 # the datagrams are handled at once; give the handlers their time
    if holds "$RB" '1|real one' && holds "$RC" '1|real one'; then
        ok "forged versions and tombstones change nobody's copy"
    else
        not_ok "forged versions and tombstones change nobody's copy" \
            "b: $(will_at "$RB") c: $(will_at "$RC")"
    fi
    # and they got as far as the will layer, refused there and counted
    refused() { # rpc-port reason
        "$VIGIL_BIN" info -rpc-addr=127.0.0.1:"$1" 2>/dev/null |
            awk -v k="will_refused_$2" '$1 == k {print $3}'
    }
    # 6 unsigned; of the 6 signed: 2 implausible seqs, 2 "done"s while a
    # is alive, 2 with the forger's key instead of a's
    counts="b: unsigned=$(refused "$RB" unsigned) seq=$(refused "$RB" seq)"
    counts="$counts view=$(refused "$RB" view) key=$(refused "$RB" key)"
    if [ "$counts" = "b: unsigned=6 seq=2 view=2 key=2" ]; then
        ok "forgeries refused and counted ($counts)"
    else
        not_ok "forgeries refused and counted" "$counts; $("$VIGIL_BIN" info -rpc-addr=127.0.0.1:"$RB" 2>&1 | grep will_)"
    fi
    if ! grep -q '^event=member-will' "$EV" 2>/dev/null; then
        ok "forged deliveries run no handler while a is alive"
    else
        not_ok "forged deliveries run no handler while a is alive" "$(cat "$EV" 2>&1)"
    fi
else
    echo "ok - forged messages # SKIP python3-cryptography missing"
fi

# ---- a flood of wills -------------------------------------------------------
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$(pid_of c)/status"; }
unsigned_at_c() {
    "$VIGIL_BIN" info -rpc-addr=127.0.0.1:"$RC" 2>/dev/null |
        awk '$1 == "will_refused_unsigned" {print $3}'
}
rss0=$(rss_kb)
python3 - "$PC" <<'PY'
import socket, struct, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
kib = bytes(1024)
for i in range(21000):
    owner = ("x%05d" % i).encode()
    body = (b"\x97" + bytes([0xa0 | len(owner)]) + owner + b"\x01\xc2\x00\xa1b\x00" +
            b"\xc5" + struct.pack(">H", len(kib)) + kib)
    u.sendto(b"\x08\xc8" + body, ("127.0.0.1", int(sys.argv[1])))
    if i % 200 == 199:
        time.sleep(0.005)  # let c drain its socket: the point is what it keeps
PY
# wait until c has read most of them (some may drop at the socket)
flood_read() { [ "$(unsigned_at_c)" -ge 18000 ] 2>/dev/null; }
wait_until 20 flood_read || true
grow=$(( $(rss_kb) - rss0 ))
seen=$(unsigned_at_c)
# (the count makes sure the flood got to the will layer at all)
if [ "$grow" -lt 16384 ] && flood_read; then
    ok "c's memory after 21,000 forged 1 KiB wills: +${grow} KiB ($seen refused)"
else
    not_ok "c's memory after 21,000 forged 1 KiB wills" "+${grow} KiB, ${seen:-no} refusals counted"
fi
start_vigil d "$PD" "$RD" -join=127.0.0.1:"$PC"
d_joined() {
    "$VIGIL_BIN" members -rpc-addr=127.0.0.1:"$RD" -status=alive 2>/dev/null | grep -q '^a ' &&
        "$VIGIL_BIN" members -rpc-addr=127.0.0.1:"$RC" -status=alive 2>/dev/null | grep -q '^d '
}
check "a new member joins through c after the flood" wait_until 20 d_joined

# ---- the real owner is unaffected ----------------------------------------
"$VIGIL_BIN" will set -rpc-addr=127.0.0.1:"$RA" --to b --delay 2s "real two" ||
    not_ok "vigil will set (second)"
check "a's next will spreads (no wrap)" wait_until 30 bash -c \
    "$(declare -f will_at holds); VIGIL_BIN=$VIGIL_BIN; holds $RB '2|real two' && holds $RC '2|real two'"
kill_node a
check "b's handler receives a's real will" wait_until 40 sh -c \
    "grep -q '^event=member-will owner=a payload=real two' $EV 2>/dev/null"
sleep 3 # a duplicate would come from c's retries in this window
if [ "$(grep -c '^event=member-will' "$EV" 2>/dev/null)" = 1 ]; then ok "delivered exactly once"
else not_ok "delivered exactly once" "$(cat "$EV" 2>&1)"; fi
finish
