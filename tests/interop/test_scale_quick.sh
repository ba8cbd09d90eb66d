#!/usr/bin/env bash
# bench/scale.py --quick: the real-agents-at-scale harness end to end on tiny
# clusters (sizes 4 and 8, vigil and serf): the results carry convergence,
# RSS, CPU and detection for every size, the largest converged size, and a
# cluster that misses the limit ends its kind's curve.  Checks the harness,
# not timings (those are in docs/BENCHMARKS.md).
set -u
. "$(dirname "$0")/lib.sh"

out=$VIGIL_TMP/scale.json
if python3 bench/scale.py --quick --no-plots --out "$out" >"$VIGIL_TMP/scale.log" 2>&1; then
    ok "bench/scale.py --quick runs to the end"
else
    not_ok "bench/scale.py --quick runs to the end" "$(tail -n 5 "$VIGIL_TMP/scale.log" | tr '\n' '|')"
fi

check_json() { # description python-expression-over-r
    if python3 - "$out" "$2" <<'PY' 2>"$VIGIL_TMP/py.err"; then ok "$1"; else not_ok "$1" "$(tail -n 3 "$VIGIL_TMP/py.err" | tr '\n' '|')"; fi
import json, sys
r = json.load(open(sys.argv[1]))
assert eval(sys.argv[2]), sys.argv[2]
PY
}
for k in vigil serf; do
    check_json "$k: both sizes converged, largest 8" \
        "[c['agents'] for c in r['kinds']['$k']['sizes'] if c['converged']] == [4, 8] and r['kinds']['$k']['largest_converged'] == 8"
    check_json "$k: convergence, RSS and CPU recorded for every size" \
        "all(c['converge_s'] > 0 and c['rss_kb']['mean'] > 0 and c['cpu_s']['n'] == c['agents'] for c in r['kinds']['$k']['sizes'])"
    check_json "$k: the kill -9 was seen by every survivor" \
        "all(c['detection']['complete'] == 1 and c['detection']['all_s']['median'] > 0 for c in r['kinds']['$k']['sizes'])"
done

# a limit nobody can meet: the first size is reported as not converged
# and the larger one is not tried
out2=$VIGIL_TMP/scale-limit.json
python3 bench/scale.py --quick --no-plots --kinds vigil --kills 0 --limit 0.05 --out "$out2" \
    >"$VIGIL_TMP/scale2.log" 2>&1
out=$out2 check_json "a cluster over the limit ends the curve: one size, not converged, no largest" \
    "[(c['agents'], c['converged']) for c in r['kinds']['vigil']['sizes']] == [(4, False)] and r['kinds']['vigil']['largest_converged'] is None"
finish
