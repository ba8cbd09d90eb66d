#!/usr/bin/env bash
# tests/chaos/run.sh — fault-injection suite, vigil beside serf (as root).
#
#   tests/chaos/run.sh [--n 10] [--only a,b] [--impl vigil|serf|both]
#                      [--loss-secs 120] [--repeat K] [--out DIR] [--publish]
#   tests/chaos/run.sh --cleanup        remove leftovers of crashed runs
#
# N agents (default 10), each in its own network namespace (lib.sh), run
# every scenario below first as vigil agents, then identically as `serf
# agent`s, on a fresh cluster each time.  Prints the side-by-side table
# (markdown); --publish also writes it into docs/RELIABILITY.md.  Results
# stay in --out (default a new /tmp/vigil-chaos.XXXXXX): per scenario and
# impl the stamped agent logs, marks, events, meta and result.json.
#
# Scenarios: loss10 loss25 (random loss on every agent for --loss-secs),
# loss10udp loss25udp (the same, of UDP datagrams only: TCP gets through),
# part30 part90 (6|4 partition, will owner and recipient on the minority),
# deaf (one agent drops all inbound gossip for 40 s), vanish (link down),
# kill9 (kill -9 of two will owners: --to and --event), sigstop (3 agents
# stopped for 20 s), restart (will owner killed and restarted inside the
# will delay), leave (graceful leave 30 s after 4 agents were killed).
#
# --repeat K runs the list K times (results NAME, NAME.2, ... NAME.K); the
# table then gives, per figure, the median and worst time, the total count
# and in how many runs it was not 0.
#
# Whatever ends it (error, Ctrl-C, TERM), the run's namespaces, with their
# veths, bridge and nftables tables, and every process in them are removed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/scenarios.sh"

args="$*"
ALL="loss10 loss25 loss10udp loss25udp part30 part90 deaf vanish kill9 sigstop restart leave"
only=$ALL
impls="vigil serf"
loss_secs=120
out=""
publish=0
repeat=1
while [ $# -gt 0 ]; do
    case $1 in
        --n) CH_N=$2; shift ;;
        --only) only=${2//,/ }; shift ;;
        --impl) impls=$2; [ "$2" = both ] && impls="vigil serf"; shift ;;
        --loss-secs) loss_secs=$2; shift ;;
        --out) out=$2; shift ;;
        --repeat) repeat=$2; shift ;;
        --publish) publish=1 ;;
        --cleanup) ch_cleanup_stale; exit 0 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

why=$(ch_can_run) || { echo "chaos: cannot run: $why" >&2; exit 2; }
[ -x "$VIGIL_BIN" ] || { echo "chaos: $VIGIL_BIN not built" >&2; exit 2; }
command -v "$SERF_BIN" >/dev/null || case $impls in *serf*) echo "chaos: no serf" >&2; exit 2 ;; esac
[ "$CH_N" -ge 8 ] || { echo "chaos: --n must be at least 8" >&2; exit 2; }
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/vigil-chaos.XXXXXX")
mkdir -p "$out"

cleanup() {
    trap - EXIT INT TERM HUP
    ch_cleanup_prefix "$CH_PREFIX"
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

ch_net_up "$CH_N" || { echo "chaos: could not build the network" >&2; exit 1; }
echo "# chaos: $CH_N agents, prefix $CH_PREFIX, results in $out"
{
    echo "commit $(git -C "$CH_ROOT" rev-parse --short HEAD 2>/dev/null)"
    echo "serf $("$SERF_BIN" version 2>/dev/null | head -1)"
    echo "n $CH_N"
    echo "args $args"
    echo "loss_secs $loss_secs"
    echo "started $(date -u +%FT%TZ)"
} >"$out/run-info"

for ((rep = 1; rep <= repeat; rep++)); do
for sc0 in $only; do
    sc=$sc0
    [ "$rep" -gt 1 ] && sc=$sc0.$rep
    grep -qx "$sc" "$out/order" 2>/dev/null || echo "$sc" >>"$out/order"
    for impl in $impls; do
        echo "# $(date -u +%T) $sc on $impl"
        case $sc0 in
            loss10) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_loss 10 "$loss_secs" ;;
            loss25) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_loss 25 "$loss_secs" ;;
            loss10udp) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_loss 10 "$loss_secs" udp ;;
            loss25udp) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_loss 25 "$loss_secs" udp ;;
            part30) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_partition 30 ;;
            part90) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_partition 90 ;;
            deaf) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_deaf 40 ;;
            vanish) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_vanish ;;
            kill9) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_kill_wills 3s ;;
            sigstop) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_sigstop 3 20 ;;
            restart) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_restart 20s ;;
            leave) ch_scenario "$out" "$sc" "$impl" "$CH_N" sc_leave ;;
            *) echo "unknown scenario $sc0 (have: $ALL)" >&2; exit 2 ;;
        esac
    done
    "$CH_PY" "$here/analyze.py" table "$out" >"$out/table.md"
done
done
echo "finished $(date -u +%FT%TZ)" >>"$out/run-info"

cat "$out/table.md"
if [ "$publish" = 1 ]; then
    "$CH_PY" "$here/publish.py" "$out" "$CH_ROOT/docs/RELIABILITY.md" &&
        echo "# wrote docs/RELIABILITY.md"
fi
