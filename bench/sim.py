"""sim.py -- run the simulator benchmarks (build/sim_bench and
build/sim_falsepos, built by `make sim-benches` from bench/sim_*.c) and parse
their text output into dicts for bench/bench.py's JSON.  Never builds
anything: if a program is not there, its section says so.

    python3 bench/sim.py [members[,members...]] [results.json]
        run sim_bench alone (default 10000 members); merge into a results file
"""

import json
import os
import re
import resource
import subprocess
import sys
import time

NUM = r"([0-9.eE+-]+)"
# "steady  10.0 s virtual in 1.61 s wall (0.74 s cpu): 28479 packets (...), 398208 messages (...)"
# (older sim_bench builds print no cpu time)
TIMING_RE = re.compile(r"^(\w+)\s+" + NUM + r" s virtual in\s+" + NUM + r" s wall(?: \(\s*" + NUM +
                       r" s cpu\))?:\s+(\d+) packets \(.*?\),\s+(\d+) messages")
HEAD_RE = re.compile(r"^(.+?): n=(\d+), log2\(n\)=" + NUM + r", expected ~" + NUM +
                     r" gossip rounds \(fanout (\d+)\)")
ROUND_RE = re.compile(r"^\s+round\s+(\d+) \(t\+\s*(\d+) ms, period\s+" + NUM + r"\):\s+(\d+)/(\d+) informed")
DONE_RE = re.compile(r"^(.+?): 50% after (-?\d+) rounds, 99% after (-?\d+), 100% after (-?\d+)")
# "converged at t=355.0 s; RSS 10.79 GB = 108 bytes per ...; 10.2 GB of it in huge pages"
CONVERGED_RE = re.compile(r"^converged at t=" + NUM + r" s; RSS " + NUM + r" GB(?:.*; " + NUM +
                          r" GB of it in huge pages)?")
DETECT_RE = re.compile(r"crash detected \(first dead verdict\) after " + NUM + " s")


def parse(text):
    out = {"phases": {}, "rumours": {}}
    cur = None
    for line in text.splitlines():
        m = TIMING_RE.match(line)
        if m:
            wall = float(m.group(3))
            cpu = float(m.group(4)) if m.group(4) else None
            pk, msg = int(m.group(5)), int(m.group(6))
            out["phases"][m.group(1)] = {
                "virtual_s": float(m.group(2)), "wall_s": wall, "cpu_s": cpu,
                "packets": pk, "messages": msg,
                "packets_per_wall_s": pk / wall if wall > 0 else None,
                "messages_per_wall_s": msg / wall if wall > 0 else None,
                "messages_per_cpu_s": msg / cpu if cpu else None}
            continue
        m = HEAD_RE.match(line)
        if m:
            cur = {"n": int(m.group(2)), "log2_n": float(m.group(3)),
                   "expected_rounds": float(m.group(4)), "fanout": int(m.group(5)),
                   "curve": []}
            out["rumours"][m.group(1).strip()] = cur
            continue
        m = ROUND_RE.match(line)
        if m and cur is not None:
            cur["curve"].append([int(m.group(1)), int(m.group(2)), int(m.group(4)), int(m.group(5))])
            continue
        m = DONE_RE.match(line)
        if m and m.group(1).strip() in out["rumours"]:
            r = out["rumours"][m.group(1).strip()]
            r["rounds_50"], r["rounds_99"], r["rounds_100"] = (int(m.group(i)) for i in (2, 3, 4))
            if r["rounds_99"] >= 0:
                r["rounds_99_over_expected"] = r["rounds_99"] / r["expected_rounds"]
                r["rounds_99_over_log2n"] = r["rounds_99"] / r["log2_n"]
            continue
        m = CONVERGED_RE.match(line)
        if m:
            out["converged_virtual_s"] = float(m.group(1))
            out["converged_rss_gb"] = float(m.group(2))
            if m.group(3):
                out["huge_pages_gb"] = float(m.group(3))
            continue
        m = DETECT_RE.search(line)
        if m:
            out["crash_first_dead_verdict_s"] = float(m.group(1))
    st = out["phases"].get("steady")
    if st:
        # "on one core": messages per CPU second of the (single-threaded)
        # simulator when it reports its CPU time, else per wall second
        out["steady_messages_per_s"] = st["messages_per_cpu_s"] or st["messages_per_wall_s"]
        out["steady_messages_per_s_basis"] = "cpu" if st["messages_per_cpu_s"] else "wall"
    return out


def memory_limit():
    """Address-space limit for a simulation, so a runaway one cannot take a
    shared machine down: the memory available when it starts less 4 GiB for
    everything else, at most 3/4 of RAM (None if /proc/meminfo cannot be
    read).  10,000 members need about 11 GiB."""
    lim = None
    try:
        info = {}
        with open("/proc/meminfo") as f:
            for line in f:
                k, v = line.split(":", 1)
                info[k] = int(v.split()[0]) * 1024
        lim = min(info["MemTotal"] * 3 // 4, info.get("MemAvailable", info["MemTotal"]) - (4 << 30))
        lim = max(lim, 1 << 30)  # a small machine still runs the small sizes
    except (OSError, ValueError, KeyError):
        pass
    return lim


def address_space_limiter(lim):
    """preexec_fn for subprocess: apply memory_limit()'s limit in the child."""
    if not lim:
        return None
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (lim, lim))


# glibc's malloc asks the kernel for transparent huge pages (madvise) for
# its heap.  10,000 members keep 10^8 member records, about 12 GB of state
# on 3 million 4 KB pages, so with small pages nearly every record touched
# is also a TLB miss whose page walk misses the cache too; the simulator's
# rate at that size is bound by it.  It is a setting of the C library, no
# code: a program embedding libvigil at that scale would set it the same
# way.  sim_bench prints how much of its memory it got in huge pages (the
# kernel's THP mode must allow madvise).
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"


def huge_pages_env():
    env = dict(os.environ)
    old = env.get("GLIBC_TUNABLES")
    env["GLIBC_TUNABLES"] = old + ":" + HUGE_PAGES_TUNABLE if old else HUGE_PAGES_TUNABLE
    return env


def run_sim(root, members, required=False, timeout=900):
    exe = os.path.join(root, "build", "sim_bench")
    if not os.access(exe, os.X_OK):
        return {"available": False, "reason": "build/sim_bench not built"}
    lim = memory_limit()
    env = huge_pages_env()

    t0 = time.time()
    try:
        r = subprocess.run([exe, str(members)], capture_output=True, text=True, timeout=timeout,
                           preexec_fn=address_space_limiter(lim), env=env)
    except subprocess.TimeoutExpired as e:
        return {"available": True, "ok": False, "members": members,
                "reason": "timed out after %d s" % timeout,
                "output": (e.stdout or b"")[-4000:].decode("utf-8", "replace")
                if isinstance(e.stdout, bytes) else (e.stdout or "")[-4000:]}
    res = parse(r.stdout)
    if r.returncode != 0:
        res["reason"] = ("exit %d" % r.returncode if r.returncode > 0 else "killed by signal %d" % -r.returncode)
        if lim and ("alloc" in r.stderr.lower() or "memory" in r.stderr.lower() or r.returncode == -6):
            res["reason"] += " (address-space limit %d MiB reached?)" % (lim >> 20)
    res.update({"available": True, "ok": r.returncode == 0, "exit": r.returncode,
                "memory_limit_mib": (lim >> 20) if lim else None,
                "members": members, "wall_s": time.time() - t0,
                "command": "GLIBC_TUNABLES=%s build/sim_bench %d" % (env["GLIBC_TUNABLES"], members),
                "output": r.stdout[-20000:], "stderr": r.stderr[-2000:]})
    return res


def run_sims(root, sizes, timeout=900, log=None):
    """Run build/sim_bench for each member count; the section for the JSON."""
    runs = {}
    for n in sizes:
        if log:
            log("simulator: build/sim_bench %d (timeout %d s)" % (n, timeout))
        r = run_sim(root, n, timeout=timeout)
        runs[str(n)] = r
        if log:
            log("simulator: %d members: %s" % (n, "ok" if r.get("ok") else
                                               "not ok (%s)" % (r.get("reason") or "exit %s" % r.get("exit"))))
        if not r.get("available"):
            break
    ok = [int(k) for k, r in runs.items() if r.get("ok")]
    return {"available": any(r.get("available") for r in runs.values()),
            "runs": runs, "largest_ok": max(ok) if ok else None}


# "run delay=5000 seed=1 mode=lifeguard converged=1 healthy_incidents=0 ..."
FP_RUN_RE = re.compile(r"^run ((?:\w+=\S+ ?)+)$")


def plain_over_lifeguard(plain, lifeguard):
    """The false-positive ratio, with a floor of one Lifeguard incident so
    that 0 stays finite (the ratio is then a lower bound)."""
    return plain / max(lifeguard, 1)


def parse_falsepos(text):
    runs = []
    for line in text.splitlines():
        m = FP_RUN_RE.match(line)
        if not m:
            continue
        kv = dict(x.split("=", 1) for x in m.group(1).split())
        runs.append({k: (v if k == "mode" else int(v)) for k, v in kv.items()})
    by_delay = {}
    for r in runs:
        d = by_delay.setdefault(str(r["delay"]), {"lifeguard": {}, "plain": {}, "seeds": 0})
        agg = d[r["mode"]]
        for k in ("healthy_incidents", "healthy_events", "slow_incidents", "slow_events", "suspicions"):
            agg[k] = agg.get(k, 0) + r.get(k, 0)
        agg["runs"] = agg.get("runs", 0) + 1
        agg["all_converged"] = agg.get("all_converged", True) and bool(r.get("converged"))
    for d in by_delay.values():
        d["seeds"] = d["lifeguard"].get("runs", 0)
        p, lg = d["plain"].get("healthy_incidents"), d["lifeguard"].get("healthy_incidents")
        d["ratio_plain_over_lifeguard"] = None if p is None or lg is None else plain_over_lifeguard(p, lg)
        d["ratio_is_lower_bound"] = lg == 0
    return {"runs": runs, "by_delay": by_delay}


def run_falsepos(root, members=100, slow=0.1, delays="5000,10000,20000", seconds=600, seeds=3,
                 timeout=900):
    """build/sim_falsepos: false positives with slow members, Lifeguard vs plain SWIM."""
    exe = os.path.join(root, "build", "sim_falsepos")
    if not os.access(exe, os.X_OK):
        return {"available": False, "reason": "build/sim_falsepos not built"}
    cmd = [exe, str(members), str(slow), delays, str(seconds), str(seeds)]
    lim = memory_limit()
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=address_space_limiter(lim))
    except subprocess.TimeoutExpired:
        return {"available": True, "ok": False, "reason": "timed out after %d s" % timeout}
    res = parse_falsepos(r.stdout)
    res.update({"available": True, "ok": r.returncode == 0 and bool(res["runs"]),
                "exit": r.returncode, "members": members, "slow_fraction": slow,
                "seconds": seconds, "wall_s": time.time() - t0,
                "command": "build/sim_falsepos " + " ".join(cmd[1:]),
                "output": r.stdout[-20000:], "stderr": r.stderr[-2000:]})
    return res


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sizes = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "10000").split(",")]
    res = run_sims(root, sizes, log=lambda m: sys.stderr.write(m + "\n"))
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            doc = json.load(f)
        doc["simulator"] = res
        with open(sys.argv[2], "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    for n, r in res["runs"].items():
        print(n, json.dumps({k: v for k, v in r.items() if k not in ("output", "rumours")}, indent=1))
