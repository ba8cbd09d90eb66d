#!/usr/bin/env bash
# -snapshot on real processes: 3 vigil agents (a, b, x) + 1 serf agent (s).
#  - x runs with -snapshot; kill -9 x; restart it with the same -snapshot and
#    no -join: it re-joins on its own and every member sees it alive; the
#    restored clocks keep a user event from before the crash from running
#    again, while one sent during the outage is delivered;
#  - a graceful leave is recorded: a restart without -rejoin stays alone
#    (as serf), one with -rejoin re-joins;
#  - a truncated and a garbage snapshot: x logs one error, starts fresh and
#    alone, and does not crash;
#  - the formats are each other's: vigil restarts the serf agent's node from
#    serf's own snapshot, and serf restarts x from vigil's.
set -u
. "$(dirname "$0")/lib.sh"

read -r PA RA PB RB PS RS PX RX PX2 RX2 PX3 RX3 PX4 RX4 PS2 RS2 < <(free_ports 16)
SNAP=$VIGIL_TMP/x.snapshot
EVENTS=$VIGIL_TMP/x.events

cat >"$VIGIL_TMP/handler.sh" <<'H'
#!/bin/sh
cat >/dev/null
echo "$SERF_USER_EVENT" >>"$1"
H
chmod +x "$VIGIL_TMP/handler.sh"

# start_x PORT RPC [args]: x with the snapshot and the user event handler
start_x() {
    local p=$1 r=$2
    shift 2
    [ -f "$(log_of x)" ] && cat "$(log_of x)" >>"$VIGIL_TMP/x.history"
    start_vigil x "$p" "$r" -snapshot="$SNAP" \
        "-event-handler=user=$VIGIL_TMP/handler.sh $EVENTS" "$@"
}
vmembers() { "$VIGIL_BIN" members -rpc-addr=127.0.0.1:"$1" "${@:2}" 2>/dev/null; }
vhas() { vmembers "$1" | awk -v n="$2" -v s="$3" '$1 == n && $3 == s {f = 1} END {exit !f}'; }
alive_count() { vmembers "$1" -status=alive | wc -l; }
count_event() { [ -f "$EVENTS" ] || { echo 0; return; }; grep -cx "$1" "$EVENTS"; }
x_running() { kill -0 "$(pid_of x)" 2>/dev/null; }
everyone_sees_x() {
    vhas "$RA" x alive && vhas "$RB" x alive && members_have "$RS" x alive &&
        [ "$(alive_count "$RX")" -eq 4 ]
}

start_vigil a "$PA" "$RA"
wait_ready "$RA" || not_ok "a starts"
start_vigil b "$PB" "$RB" -join=127.0.0.1:"$PA"
start_serf s "$PS" "$RS" -join=127.0.0.1:"$PA" -snapshot="$VIGIL_TMP/s.snapshot"
start_x "$PX" "$RX" -join=127.0.0.1:"$PB"
all_alive() {
    [ "$(alive_count "$RA")" -eq 4 ] && [ "$(alive_count "$RB")" -eq 4 ] &&
        [ "$(alive_count "$RX")" -eq 4 ] && [ "$(members_of "$RS" -status=alive | wc -l)" -eq 4 ]
}
check "four members alive everywhere" wait_until 20 all_alive
snap_lists_all() { for n in a b s x; do grep -q "^alive: $n 127.0.0.1:" "$SNAP" || return 1; done; }
check "the snapshot lists every alive member" wait_until 5 snap_lists_all
if head -n 1 "$SNAP" | grep -qx '# vigil-snapshot 1' && tail -n 1 "$SNAP" | grep -q '^# end ' &&
    [ ! -e "$SNAP.tmp" ]; then
    ok "snapshot written whole (header, end marker, no temp file left)"
else
    not_ok "snapshot written whole" "$(cat "$SNAP")"
fi

# a user event x handles before the crash
"$VIGIL_BIN" event -rpc-addr=127.0.0.1:"$RA" -coalesce=false before-crash >/dev/null ||
    not_ok "send before-crash"
check "x handles the event once" wait_until 10 sh -c "[ \$(grep -cx before-crash $EVENTS 2>/dev/null) -eq 1 ]"
# the event's Lamport time reaches the snapshot (written debounced)
clock_saved() { grep -q '^event-clock: [1-9]' "$SNAP"; }
wait_until 5 clock_saved || not_ok "the event clock reaches the snapshot" "$(cat "$SNAP")"

# ---- kill -9 and restart without -join ---------------------------------
kill_node x
check "serf sees x failed after kill -9" wait_until 30 members_have "$RS" x failed
"$VIGIL_BIN" event -rpc-addr=127.0.0.1:"$RA" -coalesce=false during-outage >/dev/null ||
    not_ok "send during-outage"
sleep 1
start_x "$PX" "$RX"
check "restarted x (no -join) is alive everywhere again" wait_until 30 everyone_sees_x
if grep -q "Re-joined to previously known node" "$(log_of x)"; then ok "x logged its re-join"
else not_ok "x logged its re-join" "$(grep -i join "$(log_of x)")"; fi
check "the event sent during the outage is delivered after the re-join" \
    wait_until 10 sh -c "[ \$(grep -cx during-outage $EVENTS 2>/dev/null) -ge 1 ]"
sleep 2
if [ "$(count_event before-crash)" -eq 1 ] && [ "$(count_event during-outage)" -eq 1 ]; then
    ok "restored clocks: nothing handled twice"
else
    not_ok "restored clocks: nothing handled twice" "$(cat "$EVENTS")"
fi
if grep -q '\[ERR\]' "$(log_of x)"; then not_ok "no errors on a clean restart" "$(grep '\[ERR\]' "$(log_of x)")"
else ok "no errors on a clean restart"; fi

# ---- graceful leave: no automatic re-join (without -rejoin) -------------
stop_node x INT
wait_until 15 sh -c "! kill -0 $(pid_of x) 2>/dev/null"
check "x left gracefully" wait_until 10 members_have "$RS" x left
if grep -qx leave "$SNAP"; then ok "the snapshot records the leave"
else not_ok "the snapshot records the leave" "$(cat "$SNAP")"; fi
start_x "$PX" "$RX"
wait_ready "$RX" || not_ok "x restarts after the leave"
sleep 3
if [ "$(alive_count "$RX")" -eq 1 ] && ! grep -q "Attempting re-join" "$(log_of x)" &&
    members_have "$RS" x left; then
    ok "after a recorded leave x does not re-join on its own"
else
    not_ok "after a recorded leave x does not re-join on its own" "$(vmembers "$RX")"
fi
stop_node x INT
wait_until 15 sh -c "! kill -0 $(pid_of x) 2>/dev/null"
start_x "$PX" "$RX" -rejoin
check "with -rejoin it re-joins despite the leave" wait_until 30 everyone_sees_x

# ---- corrupt snapshots: one error line, a fresh start, no crash ---------
# (new ports, so that the others' reconnect attempts to the failed x cannot
# pull the fresh node back in)
corrupt_case() { # name port rpc
    local what=$1 p=$2 r=$3
    start_x "$p" "$r"
    if ! wait_ready "$r"; then
        not_ok "$what: x starts" "$(tail -n 5 "$(log_of x)")"
        return
    fi
    sleep 3
    local errs
    errs=$(grep -c '\[ERR\]' "$(log_of x)")
    if [ "$errs" -eq 1 ] && grep '\[ERR\]' "$(log_of x)" | grep -q "snapshot .* is corrupt"; then
        ok "$what: exactly one clear error line"
    else
        not_ok "$what: exactly one clear error line" "$(grep '\[ERR\]' "$(log_of x)")"
    fi
    if x_running && [ "$(alive_count "$r")" -eq 1 ] && ! grep -q "Attempting re-join" "$(log_of x)"; then
        ok "$what: x starts fresh and alone"
    else
        not_ok "$what: x starts fresh and alone" "$(vmembers "$r")"
    fi
    if [ -s "$SNAP.corrupt" ] && head -n 1 "$SNAP" | grep -qx '# vigil-snapshot 1'; then
        ok "$what: the bad file is moved aside and a good one written"
    else
        not_ok "$what: the bad file is moved aside and a good one written"
    fi
}
sleep 1
kill_node x
size=$(stat -c %s "$SNAP")
head -c $((size - 7)) "$SNAP" >"$SNAP.new" && mv "$SNAP.new" "$SNAP"
corrupt_case "truncated snapshot" "$PX2" "$RX2"
kill_node x
head -c 400 /dev/urandom >"$SNAP"
corrupt_case "garbage snapshot" "$PX3" "$RX3"

# the rest of the cluster never noticed anything odd
if kill -0 "$(pid_of s)" 2>/dev/null && [ "$(members_of "$RS" -status=alive | wc -l)" -ge 3 ]; then
    ok "serf agent healthy throughout"
else
    not_ok "serf agent healthy throughout" "$(members_of "$RS")"
fi

# ---- each other's snapshots ---------------------------------------------
# x (fresh, alone since the garbage) joins again; its vigil snapshot then
# lists the cluster, and serf itself restarts x from that file
"$VIGIL_BIN" join -rpc-addr=127.0.0.1:"$RX3" 127.0.0.1:"$PA" >/dev/null ||
    not_ok "x joins again"
snap_has_a() { grep -q "^alive: a 127.0.0.1:$PA\$" "$SNAP"; }
wait_until 10 snap_has_a || not_ok "x's snapshot lists a again" "$(cat "$SNAP")"
kill_node x
cp "$SNAP" "$VIGIL_TMP/x-for-serf.snapshot"
start_serf x "$PX4" "$RX4" -snapshot="$VIGIL_TMP/x-for-serf.snapshot"
serf_x_back() { vhas "$RA" x alive && members_have "$RX4" a alive; }
check "serf restarts from vigil's snapshot and re-joins" wait_until 30 serf_x_back
if grep -q "Unrecognized snapshot line\|Failed to parse\|Failed to convert" "$(log_of x)"; then
    not_ok "serf reads vigil's snapshot without complaint" "$(grep -i snapshot "$(log_of x)")"
else
    ok "serf reads vigil's snapshot without complaint"
fi
# and vigil restarts the serf agent's node s from serf's own append log
kill_node s
start_vigil s "$PS2" "$RS2" -snapshot="$VIGIL_TMP/s.snapshot"
vigil_s_back() { vhas "$RA" s alive && vhas "$RB" s alive && vhas "$RS2" a alive; }
check "vigil restarts from serf's snapshot and re-joins" wait_until 30 vigil_s_back
if grep -q '\[ERR\]' "$(log_of s)"; then not_ok "vigil reads serf's snapshot cleanly" "$(grep '\[ERR\]' "$(log_of s)")"
else ok "vigil reads serf's snapshot cleanly"; fi
finish
