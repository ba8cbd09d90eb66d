#!/usr/bin/env bash
# bench/run.sh --quick: the benchmark harness works (not how fast anything
# is).  Runs the quick benchmark (4 vigil + 4 serf agents, 5 s windows,
# 3 kills, 1 freeze, 3 joins each) and checks that it
#   - exits 0 and prints the ratio table,
#   - produces every metric for both kinds, with positive numbers (CPU
#     seconds only non-negative: /proc ticks are 10 ms and an idle vigil
#     agent may use less than one in 5 s),
#   - writes the JSON and the PNG plots,
#   - leaves no agent process and no nftables table behind.
# If build/vigil is not built, serf stands in for vigil (still a harness
# test).  The simulator benchmarks run small (200 members; false positives
# with 100 members for 60 s).  Takes about 80 s.
set -u
. "$(dirname "$0")/lib.sh"
cd "$VIGIL_ROOT" || exit 2

vbin=$VIGIL_BIN
if [ ! -x "$vbin" ]; then
    vbin=$(command -v "$SERF_BIN")
    echo "# $VIGIL_BIN not built: serf stands in for vigil"
fi
out=$VIGIL_TMP/quick.json
plots=$VIGIL_TMP/plots
timeout -k 5 170 bench/run.sh --quick --vigil-bin="$vbin" --serf-bin="$SERF_BIN" \
    --out "$out" --plots-dir "$plots" >"$VIGIL_TMP/run.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then ok "bench/run.sh --quick exits 0"
else not_ok "bench/run.sh --quick exits 0" "exit $rc; $(tail -n 15 "$VIGIL_TMP/run.log" | tr '\n' '|')"; fi

if grep -q '^metric .*vigil/serf' "$VIGIL_TMP/run.log" &&
    grep -q '^detection to all, median' "$VIGIL_TMP/run.log"; then
    ok "the ratio table is printed"
else
    not_ok "the ratio table is printed" "$(tail -n 20 "$VIGIL_TMP/run.log" | tr '\n' '|')"
fi

if [ -s "$out" ]; then
    # one "ok"/"not ok" line per check, from the JSON
    python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
fails = 0
def check(name, cond, why=""):
    global fails
    if cond:
        print("ok - %s" % name)
    else:
        fails += 1
        print("not ok - %s" % name)
        if why:
            print("# %s" % why)
def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d
pos = lambda x: isinstance(x, (int, float)) and x > 0
nonneg = lambda x: isinstance(x, (int, float)) and x >= 0
cfg = r.get("config", {})
check("run is complete", not r.get("incomplete"), r.get("incomplete", ""))
size = str(cfg.get("sizes", [0])[0])
for k in ("vigil", "serf"):
    c = get(r, "kinds", k, "clusters", size) or {}
    check("%s: idle RSS of every agent > 0" % k,
          c.get("rss_kb") and len(c["rss_kb"]["per_agent"]) == int(size)
          and all(pos(x) for x in c["rss_kb"]["per_agent"]), str(c.get("rss_kb")))
    check("%s: CPU seconds of every agent >= 0, window > 0" % k,
          c.get("cpu_s") and len(c["cpu_s"]["per_agent"]) == int(size)
          and all(nonneg(x) for x in c["cpu_s"]["per_agent"]) and pos(c.get("window_s")),
          str(c.get("cpu_s")))
    n = c.get("net") or {}
    check("%s: bytes and packets sent per member per second > 0" % k,
          pos(n.get("bytes_per_member_per_s")) and pos(n.get("packets_per_member_per_s"))
          and pos(n.get("udp_bytes")), "%s (%s)" % (n, r.get("net_method")))
    check("%s: member lists over RPC show every agent alive" % k,
          c.get("rpc_check") and all(x["alive"] == int(size) for x in c["rpc_check"]),
          str(c.get("rpc_check")))
    d = get(r, "kinds", k, "detection") or {}
    kills = d.get("kills") or []
    check("%s: %d kills, each seen failed by every member, latencies > 0" % (k, cfg.get("kills", 0)),
          len(kills) == cfg.get("kills") and d.get("incomplete") == 0
          and all(pos(x["all_s"]) and pos(x["first_s"]) and x["first_s"] <= x["all_s"] for x in kills)
          and pos(get(d, "all_s", "median")) and pos(get(d, "all_s", "p99")), str(kills)[:400])
    check("%s: every killed agent restarted and rejoined" % k,
          get(d, "rejoin_s", "n") == cfg.get("kills") and pos(get(d, "rejoin_s", "max")),
          str(d.get("rejoin_s")))
    f = get(r, "kinds", k, "detection_freeze") or {}
    frozen = f.get("kills") or []
    check("%s: %d SIGSTOP rounds, each seen failed by every member, then alive again" % (k, cfg.get("freezes", 0)),
          len(frozen) == cfg.get("freezes") and f.get("incomplete") == 0
          and all(pos(x["all_s"]) for x in frozen)
          and get(f, "rejoin_s", "n") == cfg.get("freezes"), str(f)[:400])
    j = get(r, "kinds", k, "join") or {}
    joins = j.get("joins") or []
    check("%s: %d joins, each known by every member, latencies > 0" % (k, cfg.get("joins", 0)),
          len(joins) == cfg.get("joins") and j.get("incomplete") == 0
          and all(pos(x["all_s"]) for x in joins) and pos(get(j, "all_s", "median")),
          str(joins)[:400])
rt = r.get("ratios") or {}
want = ["rss_" + size, "cpu_" + size, "bytes_" + size, "detect_median", "detect_p99",
        "freeze_median", "freeze_p99", "join_median", "join_p99"]
check("every vigil/serf ratio is computed", all(isinstance(rt.get(w), (int, float)) for w in want),
      str(rt))
check("targets are evaluated", len(r.get("targets") or []) >= 3, str(r.get("targets")))
check("machine and commit recorded",
      pos(get(r, "machine", "nproc")) and len(get(r, "git", "commit") or "") == 40, "")
check("link mode of both binaries recorded (static/dynamic)",
      all(get(r, "link_mode", k) in ("static", "dynamic") for k in ("vigil", "serf")),
      str(r.get("link_mode")))
check("harness saw no leftover agent", r.get("leftover_pids") == [] and len(r.get("all_pids", [])) > 0,
      str(r.get("leftover_pids")))
# the simulator benchmarks, small (make sim-benches builds them; make test does)
sim = r.get("simulator") or {}
runs = [x for x in (sim.get("runs") or {}).values() if x.get("available")]
check("simulator: sim_bench ran ok, steady-state messages/s > 0",
      runs and all(x.get("ok") and pos(x.get("steady_messages_per_s")) for x in runs),
      str([(x.get("members"), x.get("reason")) for x in (sim.get("runs") or {}).values()]))
check("simulator: alive and dead rumours reach every member, curves recorded",
      runs and all(get(x, "rumours", name, "rounds_100") is not None
                   and get(x, "rumours", name, "rounds_100") >= 0
                   # one point is a whole curve when news crosses the
                   # cluster within its first round (idle members pass
                   # it on at once)
                   and len(get(x, "rumours", name, "curve") or []) >= 1
                   for x in runs for name in ("alive rumour", "dead rumour")), "")
fp = r.get("falsepos") or {}
modes = sorted({x.get("mode") for x in fp.get("runs") or []})
check("simulator: sim_falsepos ran both modes, clusters converged",
      fp.get("ok") and modes == ["lifeguard", "plain"]
      and all(x.get("converged") == 1 for x in fp.get("runs") or []),
      "%s %s" % (fp.get("reason"), fp.get("runs")))
check("simulator: false-positive target evaluated",
      any("false positives" in t["target"] for t in r.get("targets") or []), "")
with open(sys.argv[1] + ".pids", "w") as f:
    f.write("\n".join(str(p) for p in r.get("all_pids", [])) + "\n")
sys.exit(1 if fails else 0)
PY
    [ $? -eq 0 ] || _VIGIL_FAILS=$((_VIGIL_FAILS + 1))
else
    not_ok "results JSON written" "$out missing"
fi

# the report that docs/BENCHMARKS.md is made from renders these results
if [ -s "$out" ] && python3 bench/report.py "$out" >"$VIGIL_TMP/report.md" 2>&1 &&
    grep -q '^| detection, kill -9' "$VIGIL_TMP/report.md" &&
    grep -q '^| detection, SIGSTOP' "$VIGIL_TMP/report.md"; then
    ok "bench/report.py renders the results (kill and SIGSTOP rows)"
else
    not_ok "bench/report.py renders the results" "$(tail -n 5 "$VIGIL_TMP/report.md" 2>&1 | tr '\n' '|')"
fi

if [ -s "$plots/bench-detection.png" ] && [ -s "$plots/bench-ratios.png" ] &&
    [ -s "$plots/bench-sim-dissemination.png" ] && [ -s "$plots/bench-sim-falsepos.png" ]; then
    ok "plots written (bench-detection, bench-ratios, bench-sim-dissemination, bench-sim-falsepos)"
else
    not_ok "plots written" "$(ls -la "$plots" 2>&1 | tr '\n' '|')"
fi

# nothing left running: every pid the harness started is gone (or a zombie
# about to be reaped), and its nftables table is deleted
left=
if [ -s "$out.pids" ]; then
    while read -r pid; do
        [ -n "$pid" ] || continue
        if [ -r "/proc/$pid/stat" ] && ! awk '{ exit !($3 == "Z") }' "/proc/$pid/stat" 2>/dev/null &&
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ' agent '; then
            left="$left $pid"
        fi
    done <"$out.pids"
fi
if [ -z "$left" ] && [ -s "$out.pids" ]; then ok "no agent process left behind"
else not_ok "no agent process left behind" "still running:${left:- (no pid list)}"; fi
if command -v nft >/dev/null 2>&1 && nft list tables 2>/dev/null | grep -q 'vigil_bench_'; then
    # another benchmark may legitimately be running; only ours must be gone
    mine=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["net_method"])' "$out" 2>/dev/null |
        grep -o 'vigil_bench_[0-9]*')
    if [ -n "$mine" ] && nft list tables | grep -qw "$mine"; then
        not_ok "nftables counters removed" "$mine still present"
    else
        ok "nftables counters removed"
    fi
else
    ok "nftables counters removed"
fi
finish
