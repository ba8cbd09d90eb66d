#!/usr/bin/env bash
# scripts/demo.sh — `make run`: a small vigil cluster on loopback, narrated.
#
# Starts four vigil agents and one real serf agent, shows that they agree on
# membership, registers a last will on one vigil agent addressed to another,
# kills the owner with SIGKILL, and shows the failure being detected and the
# will arriving at its recipient's event handler exactly once.  Everything it
# starts is stopped when it ends (or on Ctrl-C).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VIGIL=$ROOT/build/vigil
TMP=$(mktemp -d /tmp/vigil-demo.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
base=$((21000 + RANDOM % 2000 * 4))

# an event handler that appends what it receives to a per-node file
cat >"$TMP/handler.sh" <<'H'
#!/bin/sh
out="$1"
{
  echo "event=${VIGIL_EVENT:-$SERF_EVENT} owner=${VIGIL_WILL_OWNER:-} node=${VIGIL_SELF_NAME:-$SERF_SELF_NAME}"
  echo "payload: $(cat)"
} >>"$out"
H
chmod +x "$TMP/handler.sh"

start() { # name index [args...]
    local name=$1 i=$2
    shift 2
    "$VIGIL" agent -node="$name" -bind=127.0.0.1:$((base + i)) \
        -rpc-addr=127.0.0.1:$((base + 100 + i)) \
        -event-handler="member-will=$TMP/handler.sh $TMP/$name.events" \
        "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
}

say "starting 4 vigil agents and 1 serf agent on 127.0.0.1"
start alpha 0
sleep 0.5
for i in 1 2 3; do start "$(echo bravo charlie delta | cut -d' ' -f$i)" "$i" -join=127.0.0.1:$base; done
serf agent -node=serf-echo -bind=127.0.0.1:$((base + 4)) -rpc-addr=127.0.0.1:$((base + 104)) \
    -join=127.0.0.1:$base >"$TMP/serf.log" 2>&1 &
PIDS+=($!)

members() { "$VIGIL" members -rpc-addr=127.0.0.1:$((base + 100 + $1)); }
for _ in $(seq 1 50); do
    [ "$(members 1 2>/dev/null | grep -c alive)" -eq 5 ] && break
    sleep 0.2
done
say "membership as bravo sees it (vigil members)"
members 1
say "membership as the serf agent sees it (serf members)"
serf members -rpc-addr=127.0.0.1:$((base + 104))

say "alpha registers a last will for bravo, released 2 s after alpha's death"
"$VIGIL" will set -rpc-addr=127.0.0.1:$((base + 100)) --to bravo --delay 2s "alpha's last words: rotate the backups"
sleep 1.5
"$VIGIL" will show -rpc-addr=127.0.0.1:$((base + 102)) alpha

say "kill -9 alpha (no goodbye)"
{ kill -KILL "${PIDS[0]}"; wait "${PIDS[0]}"; } 2>/dev/null
t0=$(date +%s.%N)
for _ in $(seq 1 200); do
    members 1 2>/dev/null | grep -q '^alpha .* failed' && break
    sleep 0.2
done
printf 'bravo reports alpha failed after %.1f s\n' "$(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo 0)"
members 1
for _ in $(seq 1 100); do
    [ -s "$TMP/bravo.events" ] && break
    sleep 0.2
done
sleep 3
say "bravo's event handler received:"
cat "$TMP/bravo.events" 2>/dev/null || echo "(nothing — the will was not delivered)"
say "charlie and delta received no will:"
for n in charlie delta; do
    if [ -s "$TMP/$n.events" ]; then echo "$n: UNEXPECTED: $(cat "$TMP/$n.events")"; else echo "$n: nothing"; fi
done
say "serf still sees the cluster (alpha failed):"
serf members -rpc-addr=127.0.0.1:$((base + 104))
[ -s "$TMP/bravo.events" ]
