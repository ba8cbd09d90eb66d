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

export VIGIL_BENCH_COMMAND="bench/run.sh${*:+ $*}"
publish=0
at_head=0
args=()
for a in "$@"; do
    case $a in
    --publish) publish=1 ;;
    --at-head) at_head=1 ;;
    *) args+=("$a") ;;
    esac
done

srcdir=
if [ "$at_head" = 1 ]; then
    # build vigil (and the simulator benchmark) from the committed HEAD in a
    # private directory, so the numbers belong to exactly that commit even
    # while the working tree is being edited
    srcdir=$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench-src.XXXXXX")
    commit=$(git rev-parse HEAD)
    echo "bench/run.sh: building vigil at HEAD ${commit:0:12} in $srcdir" >&2
    # `make all` with the Makefile's own defaults, i.e. exactly what a plain
    # `make` builds: the daemon linked statically (STATIC=1) unless STATIC=0
    # is set in the environment, as for `make`.  bench.py records the link
    # mode it finds in the binary (results: "link_mode").
    git archive HEAD | tar -x -C "$srcdir" &&
        nice make -C "$srcdir" -j"$(nproc)" all >"$srcdir/build.log" 2>&1 ||
        { tail -20 "$srcdir/build.log" >&2; rm -rf "$srcdir"; echo "bench/run.sh: build at HEAD failed" >&2; exit 2; }
    if command -v readelf >/dev/null 2>&1; then
        if readelf -lW "$srcdir/build/vigil" 2>/dev/null | grep -q 'INTERP'; then
            echo "bench/run.sh: build/vigil is linked dynamically (STATIC=${STATIC:-1})" >&2
        else
            echo "bench/run.sh: build/vigil is linked statically (STATIC=${STATIC:-1})" >&2
        fi
    fi
    # the simulator benchmarks are separate programs (not the daemon), linked
    # dynamically like the unit tests
    nice make -C "$srcdir" -j"$(nproc)" sim-benches >>"$srcdir/build.log" 2>&1 ||
        echo "bench/run.sh: the simulator benchmarks did not build at HEAD (simulator numbers skipped)" >&2
    args=(--vigil-bin "$srcdir/build/vigil" --source "git archive $commit" --sim-dir "$srcdir" "${args[@]+"${args[@]}"}")
fi

if [ "$at_head" = 0 ] && [ ! -x build/vigil ] && [[ " ${args[*]-} " != *" --vigil-bin"* ]] &&
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
    [ -n "$srcdir" ] && rm -rf "$srcdir"
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
