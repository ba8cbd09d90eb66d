"""sim.py -- run the simulator benchmark (build/sim_bench, owned by the
simulator; see bench/sim_bench.c) and parse its text output into a dict for
bench/bench.py's JSON.  Never builds anything: if build/sim_bench is not
there, the simulator section says so.

    python3 bench/sim.py [members] [results.json]   # run alone; merge into a results file
"""

import json
import os
import re
import resource
import subprocess
import sys
import time

NUM = r"([0-9.eE+-]+)"
TIMING_RE = re.compile(r"^(\w+)\s+" + NUM + r" s virtual in\s+" + NUM + r" s wall:\s+(\d+) packets \(" +
                       NUM + r"/s\),\s+(\d+) messages \(" + NUM + r"/s\)")
HEAD_RE = re.compile(r"^(.+?): n=(\d+), log2\(n\)=" + NUM + r", expected ~" + NUM +
                     r" gossip rounds \(fanout (\d+)\)")
ROUND_RE = re.compile(r"^\s+round\s+(\d+) \(t\+\s*(\d+) ms, period\s+" + NUM + r"\):\s+(\d+)/(\d+) informed")
DONE_RE = re.compile(r"^(.+?): 50% after (-?\d+) rounds, 99% after (-?\d+), 100% after (-?\d+)")
DETECT_RE = re.compile(r"crash detected \(first dead verdict\) after " + NUM + " s")


def parse(text):
    out = {"phases": {}, "rumours": {}}
    cur = None
    for line in text.splitlines():
        m = TIMING_RE.match(line)
        if m:
            out["phases"][m.group(1)] = {
                "virtual_s": float(m.group(2)), "wall_s": float(m.group(3)),
                "packets": int(m.group(4)), "packets_per_s": float(m.group(5)),
                "messages": int(m.group(6)), "messages_per_s": float(m.group(7))}
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
        m = DETECT_RE.search(line)
        if m:
            out["crash_first_dead_verdict_s"] = float(m.group(1))
    st = out["phases"].get("steady")
    if st:
        out["steady_messages_per_s"] = st["messages_per_s"]
    return out


def run_sim(root, members, required=False, timeout=900):
    exe = os.path.join(root, "build", "sim_bench")
    if not os.access(exe, os.X_OK):
        return {"available": False, "reason": "build/sim_bench not built"}

    def limits():
        # keep a runaway simulation from taking the machine down: at most
        # 3/4 of RAM, one core's worth of niceness
        try:
            with open("/proc/meminfo") as f:
                kb = int(f.readline().split()[1])
            lim = kb * 1024 * 3 // 4
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        except (OSError, ValueError):
            pass

    t0 = time.time()
    try:
        r = subprocess.run([exe, str(members)], capture_output=True, text=True, timeout=timeout,
                           preexec_fn=limits)
    except subprocess.TimeoutExpired as e:
        return {"available": True, "ok": False, "members": members,
                "reason": "timed out after %d s" % timeout,
                "output": (e.stdout or b"")[-4000:].decode("utf-8", "replace")
                if isinstance(e.stdout, bytes) else (e.stdout or "")[-4000:]}
    res = parse(r.stdout)
    res.update({"available": True, "ok": r.returncode == 0, "exit": r.returncode,
                "members": members, "wall_s": time.time() - t0, "command": "build/sim_bench %d" % members,
                "output": r.stdout[-20000:], "stderr": r.stderr[-2000:]})
    return res


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    res = run_sim(root, n, required=True)
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            doc = json.load(f)
        doc["simulator"] = res
        with open(sys.argv[2], "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    print(json.dumps({k: v for k, v in res.items() if k not in ("output",)}, indent=1))
