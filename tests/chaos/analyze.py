#!/usr/bin/env python3
"""tests/chaos/analyze.py — figures of a chaos scenario from its timestamps.

A scenario directory holds, per agent, nNN.log: the agent's log lines, each
prefixed by the wall-clock time it was read (tests/chaos/lib.sh ch_stamp);
`marks`: "TIME LABEL" lines of the timeline (fault on, heal, ...); `events`:
"TIME SELF EVENT OWNER" lines from the event handler; `meta`: what the
scenario expects, one fact a line:

  scenario NAME / impl vigil|serf / n N
  detect LABEL MARK OBS TARGETS   every OBS must mark every TARGET failed
                                  after MARK: seconds until the last did
  heal LABEL MARK OBS TARGETS     seconds after MARK until every OBS sees
                                  every TARGET alive again
  expect OBS TARGETS              these may be marked failed (detect lines
                                  count too); any other failure after the
                                  mark `converged` is a false death
  left LABEL MARK NODE OBS        how many OBS first logged NODE as left /
                                  as failed after MARK
  window START END                failed probes are counted between marks
  value KEY VALUE                 a figure measured by the script itself
  will LABEL OWNER RECIPIENT EXPECT   member-will of OWNER at RECIPIENT:
                                  EXPECT once|none (revocations counted)
  event LABEL NAME OBS            user event NAME seen by OBS, times each

OBS and TARGETS are comma-separated agent numbers.

  analyze.py sees DIR STATUS "OBS" "TARGETS"   exit 0 iff every OBS's log
                                               says every TARGET is STATUS
  analyze.py report DIR        write DIR/result.json and print it
  analyze.py table RUNDIR...   markdown table of every */*/result.json
"""
import json
import os
import re
import sys

EVENT_RE = re.compile(
    r"^(\d+\.\d+) .*serf: EventMember(Join|Failed|Leave|Reap)(?: \(forced\))?: (\S+)")
NOACK_RE = re.compile(r"^(\d+\.\d+) .*Suspect \S+ has failed, no acks received")
STATUS = {"Join": "alive", "Failed": "failed", "Leave": "left", "Reap": "reaped"}


def name(i):
    return "n%02d" % int(i)


def nums(s):
    return [int(x) for x in re.split(r"[ ,]+", s.strip()) if x]


def read_logs(d):
    """{observer: [(time, status, target)]} in log order."""
    out = {}
    for f in sorted(os.listdir(d)):
        if not re.match(r"^n\d+\.log$", f):
            continue
        obs = f[:-4]
        evs = []
        with open(os.path.join(d, f), errors="replace") as fh:
            for line in fh:
                m = EVENT_RE.match(line)
                if m:
                    evs.append((float(m.group(1)), STATUS[m.group(2)], m.group(3)))
        out[obs] = evs
    return out


def state_at(evs, target, t=None):
    """Status of target in one observer's log at time t (None: now)."""
    st = None
    for (et, s, tg) in evs:
        if t is not None and et > t:
            break
        if tg == target:
            st = s
    return st


def sees(d, status, obs, targets):
    logs = read_logs(d)
    for o in obs:
        evs = logs.get(name(o), [])
        for tg in targets:
            if o == tg and status == "alive":
                continue
            if state_at(evs, name(tg)) != status:
                return False
    return True


def read_marks(d):
    marks = {}
    p = os.path.join(d, "marks")
    if os.path.exists(p):
        for line in open(p):
            t, label = line.split(None, 1)
            marks.setdefault(label.strip(), float(t))
    return marks


def first_after(evs, status, target, t0):
    for (et, s, tg) in evs:
        if et >= t0 and s == status and tg == target:
            return et
    return None


def detect(logs, t0, obs, targets):
    """Seconds from t0 until every obs marked every target failed, and how
    many of the pairs were marked at all."""
    done, last = 0, t0
    pairs = [(o, tg) for o in obs for tg in targets if o != tg]
    for (o, tg) in pairs:
        t = first_after(logs.get(name(o), []), "failed", name(tg), t0)
        if t is not None:
            done += 1
            last = max(last, t)
    return (round(last - t0, 2) if done == len(pairs) else None), done, len(pairs)


def heal(logs, t0, obs, targets):
    """Seconds from t0 until the first moment at which every obs holds
    every target alive (replaying the logs), or None."""
    times = sorted({t0} | {et for o in obs for (et, _, _) in logs.get(name(o), []) if et >= t0})
    for t in times:
        if all(o == tg or state_at(logs.get(name(o), []), name(tg), t) == "alive"
               for o in obs for tg in targets):
            return round(t - t0, 2)
    return None


def report(d):
    meta = [l.split() for l in open(os.path.join(d, "meta")) if l.strip()]
    logs = read_logs(d)
    marks = read_marks(d)
    res = {"figures": [], "problems": []}
    expected = set()
    events = []
    p = os.path.join(d, "events")
    if os.path.exists(p):
        for line in open(p):
            f = line.split()
            if len(f) >= 3:
                events.append((float(f[0]), f[1], f[2], f[3] if len(f) > 3 else ""))

    def fig(key, label, value, unit=""):
        res["figures"].append({"key": key, "label": label, "value": value, "unit": unit})
        res[key] = value

    def mark(label):
        if label not in marks:
            res["problems"].append("mark %s missing" % label)
            return None
        return marks[label]

    for f in meta:
        kind = f[0]
        if kind in ("scenario", "impl", "n"):
            res[kind] = f[1]
        elif kind == "detect":
            label, m, obs, tgs = f[1], f[2], nums(f[3]), nums(f[4])
            expected |= {(name(o), name(t)) for o in obs for t in tgs}
            t0 = mark(m)
            if t0 is None:
                continue
            secs, done, total = detect(logs, t0, obs, tgs)
            fig("detect_" + label, "%s: all marked failed after" % label.replace("_", " "), secs, "s")
            res["detect_" + label + "_pairs"] = "%d/%d" % (done, total)
            if secs is None:
                res["figures"][-1]["note"] = "%d/%d pairs" % (done, total)
        elif kind == "expect":
            expected |= {(name(o), name(t)) for o in nums(f[1]) for t in nums(f[2])}
        elif kind == "heal":
            label, m, obs, tgs = f[1], f[2], nums(f[3]), nums(f[4])
            t0 = mark(m)
            if t0 is None:
                continue
            fig("heal_" + label, "%s: all alive everywhere after" % label.replace("_", " "),
                heal(logs, t0, obs, tgs), "s")
        elif kind == "left":
            label, m, node, obs = f[1], f[2], name(f[3]), nums(f[4])
            t0 = mark(m)
            if t0 is None:
                continue
            # each observer's first verdict after the leave: left or failed
            # (serf may log a failure and later a forced leave)
            first = [next((s for (et, s, tg) in logs.get(name(o), [])
                           if et >= t0 and tg == node and s in ("left", "failed")), None)
                     for o in obs]
            nl, nf = first.count("left"), first.count("failed")
            fig("left_" + label, "%s: observers that saw it left" % label.replace("_", " "),
                "%d/%d" % (nl, len(obs)))
            fig("leftfailed_" + label, "%s: observers that saw it failed (first)" %
                label.replace("_", " "), nf)
            res["left_" + label + "_ok"] = nl == len(obs)
        elif kind == "window":
            t0, t1 = mark(f[1]), mark(f[2])
            if t0 is None or t1 is None:
                continue
            if res.get("impl") == "serf":
                n = 0
                for lf in os.listdir(d):
                    if re.match(r"^n\d+\.log$", lf):
                        for line in open(os.path.join(d, lf), errors="replace"):
                            m = NOACK_RE.match(line)
                            if m and t0 <= float(m.group(1)) <= t1:
                                n += 1
                fig("probe_failures", "failed probes (no ack at all), all agents", n)
        elif kind == "value":
            try:
                v = float(f[2])
                v = int(v) if v == int(v) else v
            except ValueError:
                v = f[2]
            fig(f[1], " ".join(f[3:]) if len(f) > 3 else f[1].replace("_", " "), v)
        elif kind == "will":
            label, owner, rcpt, want = f[1], name(f[2]), name(f[3]), f[4]
            got = [e for e in events if e[2] == "member-will" and e[3] == owner]
            at_r = [e for e in got if e[1] == rcpt]
            elsewhere = [e for e in got if e[1] != rcpt]
            rev = [e for e in events if e[2] == "will-revoked" and e[3] == owner]
            if res.get("impl") == "serf":
                fig("will_" + label, "will %s: delivered / revoked" % label.replace("_", " "), "n/a")
                continue
            fig("will_" + label, "will %s: delivered / revoked" % label.replace("_", " "),
                "%d / %d" % (len(at_r), len(rev)) + (" (+%d elsewhere)" % len(elsewhere) if elsewhere else ""))
            ok = not elsewhere and (len(at_r) == 1 if want == "once" else
                                    (len(at_r) == 0 or len(rev) >= len(at_r)))
            if want == "none-strict":
                ok = not got
            res["will_" + label + "_ok"] = ok
        elif kind == "event":
            label, ev, obs = f[1], f[2], nums(f[3])
            counts = [sum(1 for e in events if e[1] == name(o) and e[2] == "user" and e[3] == ev)
                      for o in obs]
            once = sum(1 for c in counts if c == 1)
            more = sum(1 for c in counts if c > 1)
            if res.get("impl") == "serf":
                fig("event_" + label, "will %s: user event seen once by" % label, "n/a")
                continue
            fig("event_" + label, "will %s: user event seen once by" % label,
                "%d/%d" % (once, len(obs)) + (" (%d twice+)" % more if more else ""))
            t0 = marks.get("kill")
            seen = sorted(e[0] for e in events if e[2] == "user" and e[3] == ev)
            if once == len(obs) and t0 is not None:
                fig("event_all_" + label, "will %s: user event at every member after" % label,
                    round(seen[-1] - t0, 2), "s")
            pubs = 0
            for lf in os.listdir(d):
                if re.match(r"^n\d+\.log$", lf):
                    pubs += sum(1 for line in open(os.path.join(d, lf), errors="replace")
                                if "will as event " + ev in line)
            fig("event_publishers_" + label, "will %s: members that published it" % label, pubs)
            res["event_" + label + "_ok"] = more == 0 and pubs == 1 and once >= 1

    t0 = marks.get("converged")
    false = []
    if t0 is not None:
        for o, evs in logs.items():
            for (et, s, tg) in evs:
                if et >= t0 and s == "failed" and (o, tg) not in expected:
                    false.append("%s by %s at +%.1fs" % (tg, o, et - t0))
    fig("false_deaths", "false deaths (failed while reachable)", len(false))
    res["false_death_list"] = false
    out = json.dumps(res, indent=1, sort_keys=True)
    with open(os.path.join(d, "result.json"), "w") as fh:
        fh.write(out + "\n")
    return res


def fmt(v, unit):
    if v is None:
        return "never"
    if isinstance(v, float):
        return "%.1f %s" % (v, unit) if unit else "%g" % v
    return ("%s %s" % (v, unit)) if unit else str(v)


def cell(figs):
    """One table cell from the same figure of one or more runs: the value
    itself for one run; for repeated runs (run.sh --repeat) the median and
    worst of times, the total and the runs it came from for counts, how
    often each value was seen otherwise."""
    if len(figs) == 1:
        f = figs[0]
        c = fmt(f["value"], f.get("unit", ""))
        return c + (" (%s)" % f["note"] if f.get("note") else "")
    vals = [f["value"] for f in figs]
    n = len(vals)
    if figs[0].get("unit") == "s":
        got = sorted(v for v in vals if v is not None)
        if not got:
            return "never in %d runs" % n
        c = "median %.1f s, max %.1f s" % (got[len(got) // 2], got[-1])
        return c + (", never in %d of %d runs" % (n - len(got), n) if len(got) < n else "")
    if all(isinstance(v, int) for v in vals):
        bad = sum(1 for v in vals if v)
        return "%d in %d runs" % (sum(vals), n) + (" (nonzero in %d)" % bad if bad else "")
    if all(v == "n/a" for v in vals):
        return "n/a"
    seen = {}
    for v in vals:
        seen[fmt(v, "")] = seen.get(fmt(v, ""), 0) + 1
    return ", ".join("%s in %d" % (k, c) for k, c in seen.items()) + " of %d runs" % n


def table(dirs):
    """One markdown table: a row per figure of each scenario, vigil and serf
    side by side (figures only one side has show n/a on the other).  Runs
    of one scenario repeated by run.sh --repeat (NAME, NAME.2, NAME.3 ...)
    are summarised in one row per figure (cell())."""
    runs = {}
    order = []
    for top in dirs:
        # run order (run.sh appends each scenario to OUT/order), else by name
        p = os.path.join(top, "order")
        names = [l.strip() for l in open(p) if l.strip()] if os.path.exists(p) else []
        names += sorted(x for x in os.listdir(top) if x not in names)
        for sc in names:
            base = re.sub(r"\.\d+$", "", sc)
            for impl in ("vigil", "serf"):
                p = os.path.join(top, sc, impl, "result.json")
                if os.path.exists(p):
                    r = json.load(open(p))
                    if base not in runs:
                        order.append(base)
                    runs.setdefault(base, {}).setdefault(impl, []).append(r)
    lines = ["| scenario | figure | vigil | serf |", "| --- | --- | --- | --- |"]
    for sc in order:
        by = runs[sc]
        keys = []
        for impl in ("vigil", "serf"):
            for r in by.get(impl, []):
                for f in r.get("figures", []):
                    if f["key"] not in [k for k, _ in keys]:
                        keys.append((f["key"], f))
        nruns = max(len(v) for v in by.values())
        label = sc if nruns == 1 else "%s (%d runs)" % (sc, nruns)
        for key, f0 in keys:
            cells = []
            for impl in ("vigil", "serf"):
                rs = by.get(impl)
                figs = [f for r in rs or [] for f in r["figures"] if f["key"] == key]
                if not rs:
                    cells.append("not run")
                elif not figs:
                    cells.append("n/a")
                else:
                    cells.append(cell(figs))
            lines.append("| %s | %s | %s | %s |" % (label, f0["label"], cells[0], cells[1]))
    return "\n".join(lines)


def main(argv):
    if len(argv) >= 6 and argv[1] == "sees":
        return 0 if sees(argv[2], argv[3], nums(argv[4]), nums(argv[5])) else 1
    if len(argv) == 3 and argv[1] == "report":
        print(json.dumps(report(argv[2]), indent=1, sort_keys=True))
        return 0
    if len(argv) >= 3 and argv[1] == "table":
        print(table(argv[2:]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
