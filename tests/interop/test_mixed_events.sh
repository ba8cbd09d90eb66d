#!/usr/bin/env bash
# Issue 4, mixed cluster: a `serf event` sent through a serf agent runs a
# vigil agent's handler, a `vigil event` sent through a vigil agent runs a
# serf agent's handler (payload on stdin, serf's environment), and a
# `serf query` from a serf agent is answered by vigil members' handlers.
set -u
. "$(dirname "$0")/lib.sh"

read -r PS RS PV1 RV1 PV2 RV2 < <(free_ports 6)
H="$VIGIL_TMP/h.sh"
cat >"$H" <<'SH'
#!/bin/sh
# $1: output file.  Queries answer with our name; events are recorded.
payload=$(cat)
if [ "$SERF_EVENT" = query ]; then
    printf 'answer-from-%s' "$SERF_SELF_NAME"
else
    echo "$SERF_EVENT $SERF_USER_EVENT $SERF_USER_LTIME payload=$payload" >>"$1"
fi
SH
chmod +x "$H"
start_serf s "$PS" "$RS" -event-handler="user,query:whoami=$H $VIGIL_TMP/s.out"
wait_ready "$RS"
start_vigil v1 "$PV1" "$RV1" -join=127.0.0.1:"$PS" -event-handler="user,query:whoami=$H $VIGIL_TMP/v1.out"
start_vigil v2 "$PV2" "$RV2" -join=127.0.0.1:"$PS" -event-handler="user,query:whoami=$H $VIGIL_TMP/v2.out"
check "three members alive" wait_until 15 sh -c "[ \$(serf members -rpc-addr=127.0.0.1:$RS -status=alive | wc -l) -eq 3 ]"

serf event -rpc-addr=127.0.0.1:"$RS" from-serf hello-vigil >/dev/null
check "serf event runs vigil handlers (both vigil agents)" wait_until 10 sh -c \
    "grep -q '^user from-serf .* payload=hello-vigil' $VIGIL_TMP/v1.out && grep -q '^user from-serf .* payload=hello-vigil' $VIGIL_TMP/v2.out"

"$VIGIL_BIN" event -rpc-addr=127.0.0.1:"$RV1" from-vigil hello-serf >/dev/null
check "vigil event runs the serf agent's handler" wait_until 10 \
    grep -q '^user from-vigil .* payload=hello-serf' "$VIGIL_TMP/s.out"

out=$(serf query -rpc-addr=127.0.0.1:"$RS" -timeout=3s whoami 2>&1)
if echo "$out" | grep -q "Response from 'v1': answer-from-v1" &&
    echo "$out" | grep -q "Response from 'v2': answer-from-v2"; then
    ok "serf query from a serf agent is answered by both vigil members"
else
    not_ok "serf query from a serf agent is answered by both vigil members" "$out"
fi
out=$("$VIGIL_BIN" query -rpc-addr=127.0.0.1:"$RV2" -timeout=3s whoami 2>&1)
if echo "$out" | grep -q "Response from 's': answer-from-s"; then
    ok "vigil query is answered by the serf agent's handler"
else
    not_ok "vigil query is answered by the serf agent's handler" "$out"
fi
sleep 1
for n in v1 v2 s; do
    c=$(grep -c '^user from-serf ' "$VIGIL_TMP/$n.out" 2>/dev/null)
    d=$(grep -c '^user from-vigil ' "$VIGIL_TMP/$n.out" 2>/dev/null)
    if [ "$c" = 1 ] && [ "$d" = 1 ]; then ok "$n ran each event handler exactly once"
    else not_ok "$n ran each event handler exactly once" "from-serf=$c from-vigil=$d"; fi
done
finish
