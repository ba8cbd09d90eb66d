#!/usr/bin/env bash
# Issue 3 acceptance on real processes: 5 vigil agents + 1 serf agent.
#  - A sets a will to B with a 2 s delay; kill -9 A: B's handler gets it
#    exactly once, nobody else does, the serf agent stays healthy;
#  - restart-within-delay: F's will (10 s delay) is not delivered when F is
#    restarted right after being declared failed;
#  - SIGSTOP C for 30 s then SIGCONT: C is alive everywhere again within a
#    few probe intervals, no other member is ever reported failed, and C
#    raised a local-stall event of about 30 s.
set -u
. "$(dirname "$0")/lib.sh"

read -r PA RA PB RB PC RC PD RD PE RE PF RF PS RS < <(free_ports 14)

cat >"$VIGIL_TMP/handler.sh" <<'H'
#!/bin/sh
# $1 = file to append to; one line per event
payload=$(cat)
echo "event=$VIGIL_EVENT owner=${VIGIL_WILL_OWNER:-} stall_ms=${VIGIL_STALL_MS:-} payload=$payload" >>"$1"
H
chmod +x "$VIGIL_TMP/handler.sh"
ev() { echo "$VIGIL_TMP/$1.events"; }
handlers() {
    echo "-event-handler=member-will,will-revoked,member-returned,local-stall=$VIGIL_TMP/handler.sh $(ev "$1")"
}
vstart() { # name port rpc [args]
    local n=$1 p=$2 r=$3
    shift 3
    start_vigil "$n" "$p" "$r" "$(handlers "$n")" "$@"
}
vigil_has() {
    "$VIGIL_BIN" members -rpc-addr=127.0.0.1:"$1" 2>/dev/null |
        awk -v n="$2" -v s="$3" '$1 == n && $3 == s {f = 1} END {exit !f}'
}
count_ev() { # node event owner
    [ -f "$(ev "$1")" ] || { echo 0; return; }
    grep -c "^event=$2 owner=$3 " "$(ev "$1")"
}

vstart a "$PA" "$RA"
wait_ready "$RA"
for spec in "b $PB $RB" "c $PC $RC" "d $PD $RD" "e $PE $RE" "f $PF $RF"; do
    set -- $spec
    vstart "$1" "$2" "$3" -join=127.0.0.1:"$PA"
done
start_serf s "$PS" "$RS" -join=127.0.0.1:"$PB"
all_alive() {
    local r
    for r in $RA $RB $RC $RD $RE $RF; do
        [ "$("$VIGIL_BIN" members -rpc-addr=127.0.0.1:$r -status=alive 2>/dev/null | wc -l)" -eq 7 ] || return 1
    done
    [ "$(members_of "$RS" -status=alive 2>/dev/null | wc -l)" -eq 7 ]
}
check "seven members alive everywhere" wait_until 45 all_alive

# ---- will delivered exactly once ------------------------------------
"$VIGIL_BIN" will set -rpc-addr=127.0.0.1:"$RA" --to b --delay 2s "a's secret: 42" ||
    not_ok "vigil will set"
replicated() {
    local r
    for r in $RB $RC $RD $RE $RF; do
        "$VIGIL_BIN" will show -rpc-addr=127.0.0.1:$r a 2>/dev/null | grep -q "a's secret" || return 1
    done
}
# gossip normally spreads it in well under a second; push-pull (every 30 s,
# staggered) repairs a lost broadcast
if wait_until 30 replicated; then ok "the will is replicated to every vigil member"
else
    missing=""
    for r in $RB $RC $RD $RE $RF; do
        "$VIGIL_BIN" will show -rpc-addr=127.0.0.1:$r a 2>&1 | grep -q "a's secret" || missing="$missing $r"
    done
    not_ok "the will is replicated to every vigil member" "missing at rpc ports:$missing"
fi
kill_node a
check "b's handler receives a's will" wait_until 40 sh -c "[ \$(grep -c '^event=member-will owner=a ' $(ev b) 2>/dev/null) -ge 1 ]"
sleep 4 # any duplicate would arrive in this window (retries, other holders)
if [ "$(count_ev b member-will a)" -eq 1 ]; then ok "delivered exactly once"
else not_ok "delivered exactly once" "$(cat "$(ev b)" 2>/dev/null)"; fi
if grep -q "payload=a's secret: 42" "$(ev b)"; then ok "payload arrives intact"
else not_ok "payload arrives intact" "$(cat "$(ev b)")"; fi
others=0
for n in c d e f; do others=$((others + $(count_ev "$n" member-will a))); done
if [ "$others" -eq 0 ]; then ok "no other member received the will"
else not_ok "no other member received the will"; fi
if members_have "$RS" a failed && [ "$(members_of "$RS" -status=alive | wc -l)" -eq 6 ] &&
    kill -0 "$(pid_of s)" 2>/dev/null; then
    ok "serf agent healthy: sees a failed, the rest alive"
else
    not_ok "serf agent healthy: sees a failed, the rest alive" "$(members_of "$RS" 2>&1 | tr '\n' ';')"
fi
if grep -qiE "panic|fatal" "$(log_of s)"; then not_ok "serf logged no errors from will traffic"
else ok "serf logged no errors from will traffic"; fi

# ---- restart within the delay: nothing delivered --------------------
"$VIGIL_BIN" will set -rpc-addr=127.0.0.1:"$RF" --to b --delay 10s "f should not die" ||
    not_ok "vigil will set (f)"
wait_until 10 sh -c "'$VIGIL_BIN' will show -rpc-addr=127.0.0.1:$RC f | grep -q 'f should not'"
kill_node f
check "f reported failed" wait_until 40 vigil_has "$RB" f failed
vstart f "$PF" "$RF" -join=127.0.0.1:"$PB"
check "restarted f is alive again at b" wait_until 10 vigil_has "$RB" f alive
sleep 12
if [ "$(count_ev b member-will f)" -eq 0 ]; then ok "no will delivered when the owner returns within the delay"
else not_ok "no will delivered when the owner returns within the delay" "$(cat "$(ev b)")"; fi

# ---- stall: SIGSTOP c for 30 s ----------------------------------------
stop_node c STOP
sleep 30
c_lines=$(wc -l <"$(log_of c)")
stop_node c CONT
t0=$SECONDS
c_alive_everywhere() {
    local r
    for r in $RB $RD $RE $RF; do vigil_has "$r" c alive || return 1; done
    members_have "$RS" c alive
}
if wait_until 15 c_alive_everywhere; then ok "stalled member alive everywhere again ($((SECONDS - t0)) s after SIGCONT)"
else not_ok "stalled member alive everywhere again"; fi
sleep 3
# after waking, c must not act on probe/suspicion timers that expired while
# it was frozen: no failure of a live member may show up in its log
falsely=$(tail -n +"$((c_lines + 1))" "$(log_of c)" | grep -cE "member-failed: (b|d|e|f|s)$")
if [ "$falsely" -eq 0 ]; then ok "the stalled member accused nobody"
else not_ok "the stalled member accused nobody" "$(tail -n +"$((c_lines + 1))" "$(log_of c)" | grep member-failed)"; fi
# nobody else marked anyone but c (and the killed a, f) failed
bad=0
for n in b d e; do
    bad=$((bad + $(grep -cE "Received event: member-failed: (b|d|e|s)$" "$(log_of "$n")")))
done
if [ "$bad" -eq 0 ]; then ok "no other member was ever reported failed"
else not_ok "no other member was ever reported failed"; fi
stall_ms=$(sed -n 's/^event=local-stall owner= stall_ms=\([0-9]*\).*/\1/p' "$(ev c)" | head -1)
if [ -n "$stall_ms" ] && [ "$stall_ms" -ge 25000 ] && [ "$stall_ms" -le 40000 ]; then
    ok "c raised local-stall of about 30 s (${stall_ms} ms)"
else
    not_ok "c raised local-stall of about 30 s" "got '${stall_ms}': $(cat "$(ev c)" 2>/dev/null)"
fi
finish
