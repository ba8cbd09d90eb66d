#!/usr/bin/env python3
"""plot.py -- PNG charts (gnuplot) from a bench/bench.py results file.

    python3 bench/plot.py RESULTS.json OUTDIR

Writes OUTDIR/bench-detection.png (detection and join latency ECDFs, vigil vs
serf), OUTDIR/bench-ratios.png (vigil/serf ratios with the DESIGN.md targets)
and, if the results hold simulator data, OUTDIR/bench-sim-dissemination.png
(dissemination curves per size) and OUTDIR/bench-sim-falsepos.png (false
positives with slow members, plain SWIM vs Lifeguard).
Each chart is labelled with the machine, date and git commit of the run.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

COLORS = {"vigil": "#1f77b4", "serf": "#d62728"}


def ecdf_rows(xs):
    xs = sorted(xs)
    n = len(xs)
    rows = []
    for i, x in enumerate(xs):
        rows.append((x, i / n))
        rows.append((x, (i + 1) / n))
    return rows


def write(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(" ".join(str(x) for x in r) + "\n")
        if not rows:
            f.write("NaN NaN\n")


def subtitle(res):
    m = res.get("machine", {})
    g = res.get("git", {})
    commit = (g.get("commit") or "?")[:10] + ("+dirty" if g.get("dirty") else "")
    return "%s x%s, %s, commit %s" % (m.get("cpu_model") or "?", m.get("nproc") or "?",
                                      (res.get("started_utc") or "?")[:10], commit)


def gp_escape(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


def run_gnuplot(script, tmp):
    p = os.path.join(tmp, "plot.gp")
    with open(p, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", p], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit("plot.py: gnuplot failed")


def plot_latency(res, out, tmp):
    kinds = [k for k in ("vigil", "serf") if k in res["kinds"]]
    plots_d, plots_j = [], []
    for k in kinds:
        d = res["kinds"][k].get("detection")
        if d:
            alls = [x["all_s"] for x in d["kills"] if x["all_s"] is not None]
            pooled = [v for x in d["kills"] for v in x["per_observer_s"].values() if v is not None]
            fa = os.path.join(tmp, "det_all_%s.dat" % k)
            fo = os.path.join(tmp, "det_obs_%s.dat" % k)
            write(fa, ecdf_rows(alls))
            write(fo, ecdf_rows(pooled))
            med = d["all_s"]["median"] if d.get("all_s") else float("nan")
            plots_d.append("'%s' w l lw 2.5 lc rgb '%s' t '%s: last member (n=%d, median %.2f s)'"
                           % (fa, COLORS[k], k, len(alls), med))
            plots_d.append("'%s' w l lw 1.2 dt 2 lc rgb '%s' t '%s: each member'" % (fo, COLORS[k], k))
        j = res["kinds"][k].get("join")
        if j:
            alls = [x["all_s"] for x in j["joins"] if x["all_s"] is not None]
            fj = os.path.join(tmp, "join_%s.dat" % k)
            write(fj, ecdf_rows(alls))
            med = j["all_s"]["median"] if j.get("all_s") else float("nan")
            plots_j.append("'%s' w l lw 2.5 lc rgb '%s' t '%s (n=%d, median %.2f s)'"
                           % (fj, COLORS[k], k, len(alls), med))
    if not plots_d and not plots_j:
        return None
    size = res["config"]["latency_size"]
    png = os.path.join(out, "bench-detection.png")
    s = """set terminal pngcairo size 1200,520 font 'DejaVu Sans,10'
set output '%s'
set multiplot layout 1,2 title "{/:Bold Failure detection and join latency, %d-agent clusters, default LAN timings}\\n%s"
set grid
set key bottom right
set ylabel 'fraction of events'
set yrange [0:1.02]
set xlabel 'seconds from kill -9 until reported failed (EventMemberFailed)'
set title 'detection: kill -9 -> member(s) log it failed'
plot %s
set xlabel 'seconds from spawn until every member logged EventMemberJoin'
set title 'join: new agent -> known by every member'
set xrange [0:*]
plot %s
unset multiplot
""" % (png, size, gp_escape(subtitle(res)), ", ".join(plots_d) or "NaN notitle",
       ", ".join(plots_j) or "NaN notitle")
    run_gnuplot(s, tmp)
    return png


RATIO_LABELS = [
    ("rss_%d", "RSS\\n%d agents", "rss"),
    ("cpu_%d", "CPU\\n%d agents", "cpu"),
    ("bytes_%d", "bytes sent\\n%d agents", None),
]


def plot_ratios(res, out, tmp):
    r = res.get("ratios") or {}
    if not r:
        return None
    sizes = res["config"]["sizes"]
    big = max(sizes)
    rows = []
    for key, label, tkind in RATIO_LABELS:
        for n in sizes:
            v = r.get(key % n)
            if v is None:
                continue
            target = None
            if tkind == "rss":
                target = 0.2
            elif tkind == "cpu" and n == big:
                target = 1 / 3
            rows.append((label % n, v, target))
    for key, label in (("detect_median", "detection\\nmedian"), ("detect_p99", "detection\\np99"),
                       ("join_median", "join\\nmedian"), ("join_p99", "join\\np99")):
        if r.get(key) is not None:
            rows.append((label, r[key], 1.0 if key.startswith("detect") else None))
    if not rows:
        return None
    dat = os.path.join(tmp, "ratios.dat")
    tgt = os.path.join(tmp, "targets.dat")
    with open(dat, "w") as f:
        for i, (label, v, t) in enumerate(rows):
            f.write('%d "%s" %g\n' % (i, label, v))
    with open(tgt, "w") as f:
        n_t = 0
        for i, (label, v, t) in enumerate(rows):
            if t is not None:
                f.write("%g %g %g 0\n" % (i - 0.42, t, 0.84))
                n_t += 1
        if not n_t:
            f.write("NaN NaN NaN NaN\n")
    ymax = max(1.25, max(v for _, v, _ in rows) * 1.15)
    png = os.path.join(out, "bench-ratios.png")
    s = """set terminal pngcairo size 1100,520 font 'DejaVu Sans,10'
set output '%s'
set title "{/:Bold vigil / serf, same workload, one run (lower is better for vigil)}\\n%s"
set style fill solid 0.75 border -1
set boxwidth 0.7
set grid ytics
set yrange [0:%g]
set xrange [-0.6:%g]
set ylabel 'ratio vigil / serf'
set xtics nomirror font ',9'
set bmargin 5
set key top left
set arrow from -0.6,1 to %g,1 nohead dt 3 lc rgb '#555555'
plot '%s' u 1:3:xtic(2) w boxes lc rgb '#1f77b4' t 'ratio', \\
     '' u 1:3:(sprintf('%%.2f', $3)) w labels offset 0,0.8 notitle, \\
     '%s' u 1:2:3:4 w vectors nohead lw 3 lc rgb '#d62728' t 'DESIGN.md target (at or below)'
""" % (png, gp_escape(subtitle(res)), ymax, len(rows) - 0.4, len(rows) - 0.4, dat, tgt)
    run_gnuplot(s, tmp)
    return png


def plot_sim(res, out, tmp):
    """Dissemination curves of every simulated size, one panel per rumour;
    x is gossip rounds over that size's log bound, so 1.0 and 1.2 line up."""
    runs = (res.get("simulator") or {}).get("runs") or {}
    sizes = sorted((int(n), r) for n, r in runs.items() if r.get("ok") and r.get("rumours"))
    if not sizes:
        return None
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    panels = []
    for j, name in enumerate(("alive rumour", "dead rumour")):
        plots = []
        for i, (n, r) in enumerate(sizes):
            ru = (r.get("rumours") or {}).get(name) or {}
            exp = ru.get("expected_rounds")
            if not ru.get("curve") or not exp:
                continue
            f = os.path.join(tmp, "sim_%d_%d.dat" % (j, n))
            write(f, [(c[0] / exp, c[2] / c[3]) for c in ru["curve"]])
            plots.append("'%s' w lp pt 7 ps 0.5 lw 2 lc rgb '%s' t 'n = %d: 99%% after %s rounds "
                         "(bound %.1f)'" % (f, colors[i % len(colors)], n, ru.get("rounds_99", "?"), exp))
        if plots:
            panels.append("""set title "{/:Bold %s}"
plot %s""" % (name, ", ".join(plots)))
    if not panels:
        return None
    png = os.path.join(out, "bench-sim-dissemination.png")
    s = """set terminal pngcairo size 1100,480 font 'DejaVu Sans,10'
set output '%s'
set multiplot layout 1,%d title "{/:Bold Simulator: dissemination against the SWIM log bound}\\n%s"
set grid
set key bottom right
set xlabel 'gossip rounds / log bound (log_4 n + ln n / 3)'
set ylabel 'fraction of members informed'
set yrange [0:1.02]
set xrange [0:2]
set arrow 1 from 1,0 to 1,1.02 nohead dt 2 lw 1.5 lc rgb '#555555'
set arrow 2 from 1.2,0 to 1.2,1.02 nohead dt 3 lw 1.5 lc rgb '#d62728'
set label 1 'bound' at 1,0.45 right offset -0.5,0
set label 2 '1.2 x bound' at 1.2,0.45 left offset 0.5,0 tc rgb '#d62728'
%s
unset multiplot
""" % (png, len(panels), gp_escape(subtitle(res)), "\n".join(panels))
    run_gnuplot(s, tmp)
    return png


def plot_falsepos(res, out, tmp):
    """Healthy members falsely declared dead per slow-member delay, plain SWIM vs Lifeguard."""
    fp = res.get("falsepos") or {}
    rows = sorted((int(d), x) for d, x in (fp.get("by_delay") or {}).items())
    if not rows:
        return None
    dat = os.path.join(tmp, "falsepos.dat")
    write(dat, [("0-%gs" % (d / 1000.0), x["plain"].get("healthy_incidents", 0),
                 x["lifeguard"].get("healthy_incidents", 0)) for d, x in rows])
    png = os.path.join(out, "bench-sim-falsepos.png")
    s = """set terminal pngcairo size 800,480 font 'DejaVu Sans,10'
set output '%s'
set title "{/:Bold Simulator: healthy members falsely declared dead, %s of %s members slow, %s s x %s seeds}\\n%s"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set grid ytics
set key top left
set xlabel "extra delay of everything a slow member receives (uniform)"
set ylabel 'false dead verdicts (distinct member, incarnation)'
set offsets 0,0,graph 0.1,0
set yrange [0:*]
plot '%s' u 2:xtic(1) lc rgb '#d62728' t 'plain SWIM', \\
     '' u 3 lc rgb '#1f77b4' t 'Lifeguard', \\
     '' u ($0-0.17):2:2 w labels offset 0,0.7 notitle, \\
     '' u ($0+0.17):3:3 w labels offset 0,0.7 notitle
""" % (png, fp.get("slow_fraction"), fp.get("members"), fp.get("seconds"),
       (rows[0][1] or {}).get("seeds"), gp_escape(subtitle(res)), dat)
    run_gnuplot(s, tmp)
    return png


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        res = json.load(f)
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    if not shutil.which("gnuplot"):
        sys.exit("plot.py: gnuplot not installed (apt-get install gnuplot-nox)")
    tmp = tempfile.mkdtemp(prefix="vigil-plot.")
    try:
        for fn in (plot_latency, plot_ratios, plot_sim, plot_falsepos):
            p = fn(res, out, tmp)
            if p:
                print("plot: %s" % p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
