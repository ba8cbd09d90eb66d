#!/usr/bin/env bash
# bench/run.sh — vigil vs serf benchmark on loopback, in one run.
#
#   bench/run.sh                 full run (~20 min): 32- and 64-agent clusters
#                                of each kind, 60 s CPU/bytes windows, 20 kills
#                                and 10 joins per kind (in the 32-agent cluster)
#   bench/run.sh --quick         4 agents, 5 s windows, 3 kills, 3 joins (~1.5 min)
#   bench/run.sh --publish       full run, then copy the JSON and the plots to
#                                docs/bench-results.json and docs/bench-*.png
#   bench/run.sh --help          every knob (sizes, window, kills, joins, ...)
#
# Writes bench/results/latest.json (+ PNG plots next to it, --out/--plots-dir
# to change) and prints a table of vigil/serf ratios.  Needs root for the
# nftables byte counters (nft from Debian's nftables package; without it the
# bytes metric is reported as unavailable), serf and gnuplot.  See
# docs/BENCHMARKS.md.
#
# Every agent started is killed when this script ends, however it ends
# (the harness also sets PR_SET_PDEATHSIG on its agents); the harness's
# nftables table is deleted.
set -u
cd "$(dirname "$0")/.." || exit 2

publish=0
args=()
for a in "$@"; do
    case $a in
    --publish) publish=1 ;;
    *) args+=("$a") ;;
    esac
done

if [ ! -x build/vigil ] && [[ " ${args[*]-} " != *" --vigil-bin"* ]] &&
    [[ " ${args[*]-} " != *" --kinds=serf "* ]]; then
    echo "bench/run.sh: build/vigil not built (run make)" >&2
    exit 2
fi
if ! command -v nft >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bench/run.sh: installing nftables (Debian package) for the byte counters" >&2
    apt-get install -y nftables >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 && apt-get install -y nftables >/dev/null 2>&1; } ||
        echo "bench/run.sh: could not install nftables; bytes will be unavailable" >&2
fi

pidfile=$(mktemp "${TMPDIR:-/tmp}/vigil-bench-pids.XXXXXX")
child=
harness=

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM HUP
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    # belt and braces: any agent the harness started that is still there
    while read -r pid; do
        [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || continue
        if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q ' agent '; then
            kill -KILL "$pid" 2>/dev/null
        fi
    done <"$pidfile"
    rm -f "$pidfile"
    # the harness's counters table, if it could not delete it itself
    if [ -n "$harness" ] && command -v nft >/dev/null 2>&1; then
        nft delete table inet "vigil_bench_$harness" 2>/dev/null
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

python3 bench/bench.py --pidfile "$pidfile" "${args[@]+"${args[@]}"}" &
child=$!
harness=$child
wait "$child"
rc=$?
child=
if [ "$rc" -eq 0 ] && [ "$publish" = 1 ]; then
    out=bench/results/latest.json
    for ((i = 0; i < ${#args[@]}; i++)); do
        case ${args[$i]} in
        --out=*) out=${args[$i]#--out=} ;;
        --out) out=${args[$((i + 1))]} ;;
        esac
    done
    dir=$(dirname "$out")
    cp "$out" docs/bench-results.json
    python3 bench/plot.py docs/bench-results.json docs || rc=1
    echo "published: docs/bench-results.json docs/bench-*.png (from $dir)"
fi
exit "$rc"
