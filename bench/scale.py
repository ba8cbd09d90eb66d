#!/usr/bin/env python3
"""scale.py -- real agents at scale, vigil and serf one kind at a time.

For each kind (vigil, then serf) and each cluster size N (ascending), it
starts N real agent processes on loopback, each joining a random earlier
one (the first is the seed), and measures:

  converge   first spawn -> every agent has logged every other member as
             alive ("serf: EventMemberJoin: NAME" lines, stamped on arrival
             by bench.py's LogHub, as in the side-by-side benchmark);
  rss, cpu   VmRSS and utime+stime of every agent over a window after the
             cluster has settled (bench.py's Harness.window);
  detect     kill -9 of an agent -> every survivor has logged it failed
             (bench.py's Harness.detection; the victim is restarted);

and the largest N at which the kind converged within --limit seconds.  A
kind that does not converge at some N is not tried at larger sizes: the
curve ends there, and the cluster is torn down at once.

Results: JSON (default bench/results/scale.json), a markdown table on
stdout, and a gnuplot PNG (bench/results/scale.png) unless --no-plots.
The quick form (--quick: sizes 4,8, short windows, one kill) checks the
harness only; tests/interop/test_scale_quick.sh runs it in `make test`.
"""

import argparse
import datetime
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the side-by-side harness: agents, log hub, windows)

ROOT = bench.ROOT


def raise_fd_limit(need):
    """One pipe per agent stays open in this process: lift the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, need))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ScaleHarness(bench.Harness):
    def make_agents(self, kind, n):
        i = self.kind_index[kind]
        base = self.base + i * self.span
        rpc = self.base + 2 * self.span + i * self.span
        return [bench.Agent(kind, "%s%04d" % (kind[0], j), base + j, rpc + j) for j in range(n)]

    def converged(self, agents):
        want = len(agents) - 1
        return all(a.n_alive >= want and a.running() for a in agents)

    def start_cluster(self, kind, n):
        """Like bench.Harness.start_cluster, but each agent joins a random
        earlier one (a join storm spread over the cluster, not one seed),
        and a cluster that misses the limit is reported, not raised."""
        rnd = random.Random(self.args.seed + n)
        agents = self.make_agents(kind, n)
        t0 = time.monotonic()
        self.spawn(agents[0])
        if not self.wait_port(agents[0].port, 20):
            raise RuntimeError("%s: seed agent never listened on %d" % (kind, agents[0].port))
        for j, a in enumerate(agents[1:], 1):
            self.check_time()
            self.spawn(a, join=agents[rnd.randrange(j)])
            time.sleep(self.args.spawn_gap)
        left = self.args.limit - (time.monotonic() - t0)
        ok = left > 0 and self.hub.wait_for(lambda: self.converged(agents), left)
        dt = time.monotonic() - t0
        with self.hub.cond:
            # what the agents still running know (an agent that exited,
            # e.g. because its -join failed, is listed apart)
            knows = sorted(a.n_alive for a in agents if a.running())
        exited = [a.name for a in agents if not a.running()]
        return agents, (dt if ok else None), {"least_known": knows[0] + 1 if knows else 0,
                                              "median_known": knows[len(knows) // 2] + 1 if knows else 0,
                                              "exited": exited}

    def rpc_latency(self, kind, agents, rounds=5):
        """Wall time of `members` over RPC against one agent of the settled
        cluster (the CLI's own start-up included, the same for each size),
        and whether its answer listed every member."""
        times, complete = [], True
        a = agents[len(agents) // 2]
        for _ in range(rounds):
            self.check_time(30)
            t0 = time.monotonic()
            r = subprocess.run([self.bins[kind], "members", "-rpc-addr=127.0.0.1:%d" % a.rpc],
                               capture_output=True, text=True, timeout=30)
            times.append(time.monotonic() - t0)
            lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
            complete = complete and r.returncode == 0 and len(lines) >= len(agents)
        times.sort()
        return {"median_s": times[len(times) // 2], "max_s": times[-1], "rounds": rounds,
                "lists_every_member": complete}

    def run_size(self, kind, n):
        self.loadavg("%s-%d start" % (kind, n))
        bench.log("%s: starting %d agents" % (kind, n))
        agents, conv, seen = self.start_cluster(kind, n)
        out = {"agents": n, "converge_s": conv, "converged": conv is not None}
        out.update(seen)
        try:
            if conv is None:
                bench.log("%s x%d: not converged within %.0f s (least-informed agent knows %d of %d)"
                          % (kind, n, self.args.limit, seen["least_known"], n))
                return out
            bench.log("%s x%d: converged in %.1f s" % (kind, n, conv))
            out.update(self.window(kind, agents))
            self.loadavg("%s-%d after window" % (kind, n))
            out["rpc_members"] = self.rpc_latency(kind, agents)
            bench.log("%s x%d: members over RPC %.3f s (median), every member listed: %s" % (
                kind, n, out["rpc_members"]["median_s"], out["rpc_members"]["lists_every_member"]))
            bench.log("%s x%d: rss %.0f kB, cpu %.4f cores/agent" % (
                kind, n, out["rss_kb"]["mean"], out["cpu_pct_of_core_per_agent"] / 100))
            if self.args.kills:
                out["detection"] = self.detection(kind, agents)
                self.loadavg("%s-%d after kills" % (kind, n))
            return out
        finally:
            self.stop_all(agents)


def plot(res, path):
    """Convergence time, RSS and CPU per agent against N, both kinds."""
    gp = shutil.which("gnuplot")
    if not gp:
        bench.log("no gnuplot: plot skipped")
        return None
    dat = path + ".dat"
    with open(dat, "w") as f:
        for kind, kr in res["kinds"].items():
            f.write("# %s\n" % kind)
            for c in kr["sizes"]:
                if c["converged"]:
                    f.write("%d %.3f %.1f %.5f\n" % (c["agents"], c["converge_s"],
                                                    c["rss_kb"]["mean"] / 1024.0,
                                                    c["cpu_pct_of_core_per_agent"] / 100))
            f.write("\n\n")
    kinds = list(res["kinds"])
    cmds = ['set terminal pngcairo size 1500,450', 'set output "%s"' % path,
            'set multiplot layout 1,3', 'set logscale x', 'set xlabel "agents"', 'set key top left']
    for col, title in ((2, "convergence (s)"), (3, "RSS per agent (MiB)"), (4, "CPU per agent (cores)")):
        cmds.append('set title "%s"' % title)
        cmds.append("plot " + ", ".join('"%s" index %d using 1:%d with linespoints title "%s"'
                                        % (dat, i, col, k) for i, k in enumerate(kinds)))
    cmds.append("unset multiplot")
    r = subprocess.run([gp], input="\n".join(cmds) + "\n", capture_output=True, text=True)
    os.unlink(dat)
    if r.returncode != 0:
        bench.log("gnuplot failed: %s" % r.stderr.strip())
        return None
    return path


def table(res):
    rows = ["| kind | agents | converged in | RSS/agent | CPU/agent (cores) | `members` over RPC | kill -9 seen by all (median) |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, kr in res["kinds"].items():
        for c in kr["sizes"]:
            if not c["converged"]:
                rows.append("| %s | %d | not within %.0f s (least-informed knew %d; %d exited) | | | | |"
                            % (kind, c["agents"], res["config"]["limit_s"], c["least_known"],
                               len(c.get("exited") or [])))
                continue
            det = (c.get("detection") or {}).get("all_s")
            rpc = c.get("rpc_members")
            rows.append("| %s | %d | %.1f s | %.2f MiB | %.4f | %s | %s |" % (
                kind, c["agents"], c["converge_s"], c["rss_kb"]["mean"] / 1024.0,
                c["cpu_pct_of_core_per_agent"] / 100,
                ("%.3f s%s" % (rpc["median_s"], "" if rpc["lists_every_member"] else " (incomplete)"))
                if rpc else "-",
                "%.2f s" % det["median"] if det else "-"))
        rows.append("| %s | largest N converged: **%s** | | | | | |" % (kind, kr["largest_converged"]))
    return "\n".join(rows)


SCALE_BEGIN = "<!-- scale-results:begin -->"
SCALE_END = "<!-- scale-results:end -->"


def render(res):
    """The block docs/BENCHMARKS.md shows: where, what, the table."""
    m, g, cfg = res["machine"], res["git"], res["config"]
    out = ["Measured %s on %d × %s; vigil built from commit `%s`%s (%s), serf `%s`. "
           "Command: `%s`. Sizes %s, one kind at a time, each agent joining a random earlier "
           "one %g s after the previous; a size that does not converge within %.0f s ends "
           "that kind's curve. RSS and CPU over a %g s window after %g s of settling; "
           "%d kill -9 rounds per size."
           % (res["started_utc"], m["nproc"], m["cpu_model"], g["commit"][:12],
              " (+ uncommitted changes)" if g.get("dirty") else "",
              (res.get("versions") or {}).get("vigil") or "?",
              (res.get("versions") or {}).get("serf") or "?",
              res.get("command", "bench/scale.py"), ", ".join(str(n) for n in cfg["sizes"]),
              cfg["spawn_gap_s"], cfg["limit_s"], cfg["window_s"], cfg["settle_s"], cfg["kills"]),
           ""]
    if res.get("stopped"):
        out += ["**Stopped early:** %s" % res["stopped"], ""]
    out.append(table(res))
    if res.get("plot"):
        out += ["", "![scale curve](bench-scale.png)"]
    return "\n".join(out)


def publish(json_path, doc):
    """Copy a run's results next to the document and render them into it."""
    import report  # noqa: E402  (bench/report.py: the marker replacement)
    with open(json_path) as f:
        res = json.load(f)
    docs = os.path.dirname(os.path.abspath(doc))
    png = os.path.splitext(json_path)[0] + ".png"
    if res.get("plot") and os.path.exists(png):
        shutil.copyfile(png, os.path.join(docs, "bench-scale.png"))
    dest = os.path.join(docs, "scale-results.json")
    if os.path.abspath(json_path) != dest:
        shutil.copyfile(json_path, dest)
    report.replace_block(doc, SCALE_BEGIN, SCALE_END, render(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes 4,8, 2 s windows, 1 kill: the harness only")
    ap.add_argument("--sizes", help="cluster sizes, ascending (default 100,300,1000)")
    ap.add_argument("--kinds", default="vigil,serf")
    ap.add_argument("--limit", type=float, default=480.0,
                    help="seconds a cluster may take to converge (default 480)")
    ap.add_argument("--kills", type=int, help="kill -9 rounds per size (default 3; 1 with --quick)")
    ap.add_argument("--window", type=float, help="CPU window, seconds (default 30; 2 with --quick)")
    ap.add_argument("--settle", type=float, help="seconds before the window (default 20; 1 with --quick)")
    ap.add_argument("--spawn-gap", type=float, default=0.05, help="seconds between spawns (default 0.05)")
    ap.add_argument("--max-time", type=float, help="hard bound on the whole run (default 7200; 240 with --quick)")
    ap.add_argument("--vigil-bin", default=os.environ.get("VIGIL_BIN", os.path.join(ROOT, "build/vigil")))
    ap.add_argument("--serf-bin", default=os.environ.get("SERF_BIN", "serf"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/scale.json"))
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--publish", metavar="DOC",
                    help="after the run (or with --from, instead of one), put the results "
                         "into DOC (docs/BENCHMARKS.md) between its scale-results markers, "
                         "with docs/scale-results.json and docs/bench-scale.png")
    ap.add_argument("--from", dest="from_json", metavar="JSON",
                    help="with --publish: publish this earlier run's results")
    args = ap.parse_args()
    if args.from_json:
        if not args.publish:
            ap.error("--from needs --publish")
        publish(args.from_json, args.publish)
        return 0

    q = args.quick
    dflt = lambda v, quick, full: v if v is not None else (quick if q else full)
    args.sizes = sorted(int(x) for x in dflt(args.sizes, "4,8", "100,300,1000").split(",") if x)
    args.kinds = [k for k in args.kinds.split(",") if k]
    for k in args.kinds:
        if k not in ("vigil", "serf"):
            ap.error("unknown kind %s" % k)
        if not shutil.which(args.vigil_bin if k == "vigil" else args.serf_bin):
            ap.error("%s binary not found" % k)
    args.kills = dflt(args.kills, 1, 3)
    args.window = dflt(args.window, 2.0, 30.0)
    args.settle = dflt(args.settle, 1.0, 20.0)
    args.max_time = dflt(args.max_time, 240.0, 7200.0)
    # what bench.Harness reads besides these
    args.joins, args.freezes, args.between = 0, 0, 1.0
    args.no_net, args.pidfile = True, None
    args.converge_timeout = args.limit
    args.detect_timeout, args.rejoin_timeout = 120.0, max(60.0, args.limit / 4)

    nofile = raise_fd_limit(3 * max(args.sizes) + 64)
    res = {
        "schema": 1,
        "command": " ".join(["bench/scale.py"] + sys.argv[1:]),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": bench.machine(),
        "git": {"commit": bench.git("rev-parse", "HEAD"),
                "dirty": bool(bench.git("status", "--porcelain", "--untracked-files=no"))},
        "versions": {"vigil": bench.bin_version(args.vigil_bin) if "vigil" in args.kinds else None,
                     "serf": bench.bin_version(args.serf_bin) if "serf" in args.kinds else None},
        "config": {"quick": q, "sizes": args.sizes, "kinds": args.kinds, "limit_s": args.limit,
                   "kills": args.kills, "window_s": args.window, "settle_s": args.settle,
                   "spawn_gap_s": args.spawn_gap, "join": "each agent joins a random earlier one",
                   "timings": "agent defaults (LAN profile) for both kinds", "nofile": nofile},
        "kinds": {k: {"sizes": [], "largest_converged": None} for k in args.kinds},
    }

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    h = ScaleHarness(args)
    rc = 0
    try:
        for kind in args.kinds:
            for n in args.sizes:
                c = h.run_size(kind, n)
                res["kinds"][kind]["sizes"].append(c)
                if not c["converged"]:
                    break
                res["kinds"][kind]["largest_converged"] = n
    except (bench.Aborted, KeyboardInterrupt, RuntimeError) as e:
        bench.log("stopped: %s" % e)
        res["stopped"] = str(e)
        rc = 1
    finally:
        h.cleanup()
    res["load"] = h.load_samples
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    if not args.no_plots:
        res["plot"] = plot(res, os.path.splitext(args.out)[0] + ".png")
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    print(table(res))
    if args.publish and rc == 0:
        publish(args.out, args.publish)
    return rc


if __name__ == "__main__":
    sys.exit(main())
