#!/usr/bin/env python3
"""report.py -- Markdown tables from a bench/bench.py results file.

    python3 bench/report.py docs/bench-results.json            # print
    python3 bench/report.py docs/bench-results.json docs/BENCHMARKS.md
        # replace the text between "<!-- bench-results:begin -->" and
        # "<!-- bench-results:end -->" in that file

Every number in the generated block comes from the results file.
"""

import json
import sys

BEGIN = "<!-- bench-results:begin -->"
END = "<!-- bench-results:end -->"


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def f(fmt, x):
    return "–" if x is None else fmt % x


def render(r):
    out = []
    m = r["machine"]
    g = r["git"]
    cfg = r["config"]
    out.append("Measured %s on %d × %s (%s MiB RAM, Linux %s); vigil %s (`%s`, sha256 %s…), "
               "%s. Run took %.0f s."
               % (r["started_utc"], m["nproc"], m["cpu_model"], m["mem_kb"] // 1024 if m.get("mem_kb") else "?",
                  m["kernel"], "built from commit `%s`" % g["commit"][:12] + (" (+ uncommitted changes)" if g.get("dirty") else ""),
                  (r.get("versions") or {}).get("vigil") or "?", (r.get("vigil_sha256") or "?")[:12],
                  "serf `%s`" % ((r.get("versions") or {}).get("serf") or "?"), r.get("duration_s", 0)))
    lm = r.get("link_mode") or {}
    if lm.get("vigil") or lm.get("serf"):
        out.append("")
        out.append("Link mode (from the ELF program headers of the binaries measured): vigil %s, serf %s."
                   % (lm.get("vigil") or "?", lm.get("serf") or "?"))
    out.append("")
    out.append("Command: `%s`. Both kinds run their agent defaults (LAN profile: probe interval 1 s, "
               "probe timeout 500 ms, suspicion multiplier 4, gossip every 200 ms to 3 members, "
               "push-pull every 30 s scaled by cluster size); one kind at a time; "
               "%g s settle + %g s window; %d kills and %d joins per kind in the %d-agent cluster."
               % (cfg["command"], cfg["settle_s"], cfg["window_s"], cfg["kills"], cfg["joins"],
                  cfg["latency_size"]))
    out.append("")
    if r.get("incomplete"):
        out.append("**Incomplete run:** %s" % r["incomplete"])
        out.append("")
    ks = ("vigil", "serf")
    rt = r.get("ratios") or {}
    out.append("| metric | vigil | serf | vigil/serf |")
    out.append("|---|---:|---:|---:|")

    def row(name, path, key, fmt, scale=1.0):
        vals = [get(r, "kinds", k, *path) for k in ks]
        vals = [None if v is None else v * scale for v in vals]
        out.append("| %s | %s | %s | **%s** |" % (name, f(fmt, vals[0]), f(fmt, vals[1]),
                                                 f("%.3f", rt.get(key))))

    for n in cfg["sizes"]:
        c = ["clusters", str(n)]
        row("idle RSS per agent (VmRSS), %d agents, MiB" % n, c + ["rss_kb", "mean"], "rss_%d" % n, "%.2f", 1 / 1024)
        row("&nbsp;&nbsp;anonymous part (RssAnon), MiB", c + ["rss_anon_kb", "mean"], "rss_anon_%d" % n, "%.2f", 1 / 1024)
        row("&nbsp;&nbsp;proportional (PSS), MiB", c + ["pss_kb", "mean"], "pss_%d" % n, "%.2f", 1 / 1024)
        row("CPU per agent, %d agents, s per %g s (utime+stime)" % (n, cfg["window_s"]),
            c + ["cpu_s", "mean"], "cpu_%d" % n, "%.3f")
        row("bytes sent per member per s, %d agents (IP bytes, UDP+TCP)" % n,
            c + ["net", "bytes_per_member_per_s"], "bytes_%d" % n, "%.0f")
        row("packets sent per member per s, %d agents" % n,
            c + ["net", "packets_per_member_per_s"], "packets_%d" % n, "%.2f")
    ls = cfg["latency_size"]
    row("detection, kill -9 → all members report failed, median s (%d agents)" % ls,
        ["detection", "all_s", "median"], "detect_median", "%.2f")
    row("detection, p99 s", ["detection", "all_s", "p99"], "detect_p99", "%.2f")
    row("detection, max s", ["detection", "all_s", "max"], "-", "%.2f")
    row("detection, first member to report, median s", ["detection", "first_s", "median"], "-", "%.2f")
    row("&nbsp;&nbsp;phase: kill → first failed probe, median s", ["detection", "first_probe_failure_s", "median"], "-", "%.2f")
    row("&nbsp;&nbsp;phase: failed probe → first failure verdict (suspicion), median s", ["detection", "suspicion_s", "median"], "-", "%.2f")
    row("&nbsp;&nbsp;phase: first → last member, median s", ["detection", "spread_s", "median"], "-", "%.2f")
    if any(get(r, "kinds", k, "detection_freeze") for k in ks):
        row("detection, SIGSTOP (hung, no ICMP) → all report failed, median s",
            ["detection_freeze", "all_s", "median"], "freeze_median", "%.2f")
        row("detection, SIGSTOP, p99 s", ["detection_freeze", "all_s", "p99"], "freeze_p99", "%.2f")
        row("&nbsp;&nbsp;phase: SIGSTOP → first failed probe, median s",
            ["detection_freeze", "first_probe_failure_s", "median"], "-", "%.2f")
    row("join, spawn → known by all members, median s (%d agents)" % ls,
        ["join", "all_s", "median"], "join_median", "%.2f")
    row("join, p99 s", ["join", "all_s", "p99"], "join_p99", "%.2f")
    out.append("")
    ci = r.get("ratio_ci95") or {}

    def ci_sentence(prefix, what, extra=""):
        """The bootstrap intervals of one detection kind's median and p99 ratios."""
        p99 = ci.get(prefix + "_p99") or (float("nan"),) * 2
        out.append("Bootstrap 95%% interval of the %s ratio: median %.2f–%.2f, p99 %.2f–%.2f%s."
                   % ((what,) + tuple(ci[prefix + "_median"]) + tuple(p99) + (extra,)))
        out.append("")

    if ci.get("detect_median"):
        ci_sentence("detect", "detection",
                    (", join median %.2f–%.2f" % tuple(ci["join_median"])) if ci.get("join_median") else "")
    if ci.get("freeze_median"):
        ci_sentence("freeze", "SIGSTOP detection")
    notes = []
    for k in ks:
        d = get(r, "kinds", k, "detection") or {}
        j = get(r, "kinds", k, "join") or {}
        fz = get(r, "kinds", k, "detection_freeze") or {}
        notes.append("%s: %d/%d kills and %d/%d freezes seen failed by every member, "
                     "%d/%d joins seen by every member, "
                     "%d graceful leaves reported as failed by some member, "
                     "%s failure events during the quiet windows"
                     % (k, d.get("complete", 0), len(d.get("kills") or []),
                        fz.get("complete", 0), len(fz.get("kills") or []), j.get("complete", 0),
                        len(j.get("joins") or []), j.get("graceful_leaves_reported_failed", 0),
                        "/".join(str(get(r, "kinds", k, "clusters", str(n), "failed_events_in_window"))
                                 for n in cfg["sizes"])))
    out.append("Sanity: " + "; ".join(notes) + ".")
    la = r.get("loadavg_samples")
    if la:
        out.append("")
        out.append("Machine load (1-min load average on %d CPUs, other work included): %s."
                   % (m["nproc"], ", ".join("%s %.1f" % (x["phase"], x["loadavg"][0]) for x in la)))
    out.append("")
    if r.get("targets"):
        out.append("| DESIGN.md figure | measured | verdict |")
        out.append("|---|---|---|")
        for t in r["targets"]:
            meas = ", ".join("%s = %s" % (k, "–" if x is None else ("%.3g" % x)) for k, x in t["measured"].items())
            if t.get("note"):
                meas += " (%s)" % t["note"]
            out.append("| %s | %s | %s |" % (t["target"], meas, "met" if t["met"] else "**not met**"))
        out.append("")
    sim = r.get("simulator")
    if sim and sim.get("runs"):
        cmds = [run.get("command") for run in sim["runs"].values() if run.get("command")]
        cmd = cmds[0].rsplit(" ", 1)[0] + " N" if cmds else "build/sim_bench N"
        out.append("Simulator (`%s`, one process, single-threaded):" % cmd)
        out.append("")
        out.append("| members | result | steady-state messages/s (per CPU s) | per wall s | RSS when converged (in huge pages) | alive rumour 99%/100% (rounds; bound) | dead rumour 99%/100% | first dead verdict after |")
        out.append("|---:|---|---:|---:|---:|---|---|---:|")
        for n, run in sorted(sim["runs"].items(), key=lambda x: int(x[0])):
            if not run.get("available"):
                out.append("| %s | %s | | | | | | |" % (n, run.get("reason")))
                continue
            st = get(run, "phases", "steady") or {}
            ru = run.get("rumours") or {}

            def rr(name):
                x = ru.get(name)
                if not x or x.get("rounds_99") is None:
                    return "–"
                return "%d / %d (%.1f)" % (x["rounds_99"], x["rounds_100"], x["expected_rounds"])
            rss = f("%.2f GB", run.get("converged_rss_gb"))
            if run.get("huge_pages_gb") is not None:
                rss += " (%.2f GB)" % run["huge_pages_gb"]
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                n, "ok" if run.get("ok") else (run.get("reason") or "exit %s" % run.get("exit")),
                f("%.3g", st.get("messages_per_cpu_s")), f("%.3g", st.get("messages_per_wall_s")),
                rss, rr("alive rumour"), rr("dead rumour"), f("%.1f s", run.get("crash_first_dead_verdict_s"))))
        out.append("")
    fp = r.get("falsepos")
    if fp and fp.get("available"):
        out.append("False positives with slow members (`%s`; %s members, %g of them slow, "
                   "%s virtual s per run; every dead verdict is false, nobody crashes):" % (
                       fp.get("command"), fp.get("members"), fp.get("slow_fraction"), fp.get("seconds")))
        out.append("")
        out.append("| slow members' extra delay | seeds | healthy members declared dead: plain SWIM | Lifeguard | plain/Lifeguard | slow members declared dead: plain | Lifeguard | suspicions: plain | Lifeguard |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for dl, d in sorted((fp.get("by_delay") or {}).items(), key=lambda x: int(x[0])):
            p, lg = d.get("plain") or {}, d.get("lifeguard") or {}
            ratio = d.get("ratio_plain_over_lifeguard")
            out.append("| 0–%d ms | %d | %d | %d | %s | %d | %d | %d | %d |" % (
                int(dl), d.get("seeds", 0), p.get("healthy_incidents", 0), lg.get("healthy_incidents", 0),
                "–" if ratio is None else ("≥ %.0f" if d.get("ratio_is_lower_bound") else "%.1f") % ratio,
                p.get("slow_incidents", 0), lg.get("slow_incidents", 0),
                p.get("suspicions", 0), lg.get("suspicions", 0)))
        if not fp.get("ok"):
            out.append("")
            out.append("(did not finish: %s)" % (fp.get("reason") or "exit %s" % fp.get("exit")))
        out.append("")
    return "\n".join(out)


def replace_block(path, begin, end, text):
    """Replace the text between the two marker lines of a document."""
    with open(path) as fh:
        doc = fh.read()
    if begin not in doc or end not in doc:
        sys.exit("report: markers %s ... %s not found in %s" % (begin, end, path))
    a, rest = doc.split(begin, 1)
    _, b = rest.split(end, 1)
    with open(path, "w") as fh:
        fh.write(a + begin + "\n" + text + "\n" + end + b)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    with open(sys.argv[1]) as fh:
        r = json.load(fh)
    text = render(r)
    if len(sys.argv) == 2:
        print(text)
        return
    replace_block(sys.argv[2], BEGIN, END, text)


if __name__ == "__main__":
    main()
