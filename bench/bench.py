#!/usr/bin/env python3
"""bench.py -- vigil vs serf, side by side, on loopback.  Run it via bench/run.sh.

One run starts clusters of real agent processes -- `vigil agent` and the Debian
`serf agent`, both with their default LAN timings, only one kind running at a
time -- and measures, per kind:

  rss      VmRSS of every agent (/proc/PID/status) once the cluster has
           converged and settled, at the end of the CPU window;
  cpu      utime+stime (/proc/PID/stat) of every agent over a window;
  net      bytes the cluster sent over loopback during the same window,
           from nftables counters on the kind's gossip port range (UDP and
           TCP, IP bytes = payload + headers), divided by members and seconds;
  detect   kill -9 of one agent -> every surviving agent has logged
           "serf: EventMemberFailed: NAME"; the killed agent is restarted
           (same name and ports) and waited for before the next kill;
           its host answers datagrams to the dead port with ICMP port
           unreachable, which vigil uses (probes the member at once);
  freeze   the same with SIGSTOP: the process hangs, keeps its port, and
           nothing answers (as when a host vanishes); then SIGCONT, and
           the member refutes its death;
  join     spawn of a new agent (-join to a random member) -> every member
           has logged "serf: EventMemberJoin: NAME"; the newcomer then
           leaves gracefully (SIGINT).

Timestamps for detect/join are taken by this harness when the log line
arrives on the agent's stdout/stderr pipe (time.monotonic(), one reader
thread, select()), the same way for both kinds -- no polling of member
lists, and no reliance on the agents' one-second log timestamps.

Results: a JSON file (default bench/results/latest.json) and a table on
stdout.  Plots: bench/plot.py (called at the end unless --no-plots).
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import random
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
EVENT_RE = re.compile(r"serf: (EventMember\w+)(?: \(forced\))?: (\S+)")
# a prober giving up on a member (the start of a suspicion): memberlist
# logs the first, vigil's swim the second
PROBE_FAIL_RE = re.compile(r"memberlist: Suspect (\S+) has failed, no acks received|vigil: probe of (\S+) failed")
STATE_OF = {
    "EventMemberJoin": "alive",
    "EventMemberFailed": "failed",
    "EventMemberLeave": "left",
    "EventMemberReap": "reaped",
}

_libc = ctypes.CDLL(None, use_errno=True)


def _child_setup():
    # The agents die with the harness even if it is SIGKILLed
    # (PR_SET_PDEATHSIG = 1).  Agents are only ever spawned from the main
    # thread, which lives until the end.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Aborted(Exception):
    pass


# --------------------------------------------------------------------------
# statistics


def quantile(xs, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(xs)
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {
        "n": len(xs),
        "min": min(xs),
        "median": statistics.median(xs),
        "mean": statistics.fmean(xs),
        "p90": quantile(xs, 0.90),
        "p99": quantile(xs, 0.99),
        "max": max(xs),
    }


def bootstrap_ratio_ci(a, b, stat, iters=4000, seed=7):
    """95% bootstrap interval of stat(a)/stat(b)."""
    if len(a) < 2 or len(b) < 2:
        return None
    rnd = random.Random(seed)
    rs = []
    for _ in range(iters):
        sa = stat([rnd.choice(a) for _ in a])
        sb = stat([rnd.choice(b) for _ in b])
        if sb > 0:
            rs.append(sa / sb)
    if not rs:
        return None
    return [quantile(rs, 0.025), quantile(rs, 0.975)]


# --------------------------------------------------------------------------
# /proc


def proc_cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def proc_mem_kb(pid):
    """VmRSS, RssAnon, RssFile (/proc/PID/status) and Pss (smaps_rollup), kB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = line.split(":", 1)[0]
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(line.split()[1])
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


# --------------------------------------------------------------------------
# ports


def port_free(p):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_port_base(span, lo=10000, hi=19000):
    """A block of `span` ports below tests/interop/lib.sh's range (20000-32000)
    and below the ephemeral range, all free for TCP and UDP."""
    rnd = random.Random()
    for _ in range(200):
        base = rnd.randrange(lo, hi - span) // 100 * 100
        if all(port_free(p) for p in range(base, base + span)):
            return base
    raise SystemExit("bench: no free block of %d ports in %d-%d" % (span, lo, hi))


# --------------------------------------------------------------------------
# nftables byte counters


class NetCounters:
    """Per-kind counters in a private nft table, output hook on lo: a packet
    whose source or destination port is in the kind's gossip port range is
    counted once (UDP and TCP separately)."""

    def __init__(self, ranges):
        self.table = "vigil_bench_%d" % os.getpid()
        self.ranges = ranges  # kind -> (lo, hi)
        self.ok = False
        self.error = None
        nft = shutil.which("nft")
        if not nft:
            self.error = "nft not installed (apt-get install nftables)"
            return
        self.nft = nft
        self.sweep_orphans()
        lines = ["table inet %s {" % self.table]
        for kind in ranges:
            for proto in ("udp", "tcp"):
                lines.append("  counter %s_%s { }" % (kind, proto))
        lines.append("  chain out {")
        lines.append("    type filter hook output priority 0; policy accept;")
        for kind, (lo, hi) in ranges.items():
            for proto in ("udp", "tcp"):
                for d in ("sport", "dport"):
                    lines.append('    oifname "lo" %s %s %d-%d counter name %s_%s accept'
                                 % (proto, d, lo, hi, kind, proto))
        lines.append("  }")
        lines.append("}")
        r = subprocess.run([nft, "-f", "-"], input="\n".join(lines) + "\n",
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.error = "nft: " + r.stderr.strip()
            return
        self.ok = True

    def sweep_orphans(self):
        """Delete the tables of harnesses that no longer run: one killed
        with SIGKILL (or whose run.sh was) never reached close()."""
        r = subprocess.run([self.nft, "list", "tables"], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) != 3 or parts[:2] != ["table", "inet"] or \
                    not parts[2].startswith("vigil_bench_"):
                continue
            pid = parts[2][len("vigil_bench_"):]
            if pid.isdigit() and not os.path.exists("/proc/%s" % pid):
                subprocess.run([self.nft, "delete", "table", "inet", parts[2]],
                               capture_output=True)
                log("deleted %s, left behind by a harness that is gone" % parts[2])

    def read(self):
        if not self.ok:
            return None
        r = subprocess.run([self.nft, "-j", "list", "counters", "table", "inet", self.table],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return None
        out = {}
        for obj in json.loads(r.stdout).get("nftables", []):
            c = obj.get("counter")
            if c:
                out[c["name"]] = (c["packets"], c["bytes"])
        return out

    def close(self):
        if self.ok:
            subprocess.run([self.nft, "delete", "table", "inet", self.table],
                           capture_output=True)
            self.ok = False


# --------------------------------------------------------------------------
# agents and their logs


class Agent:
    def __init__(self, kind, name, port, rpc):
        self.kind = kind
        self.name = name
        self.port = port
        self.rpc = rpc
        self.proc = None
        self.gen = 0
        self.view = {}  # subject -> (state, monotonic time of the log line)
        self.n_alive = 0  # subjects whose state in view is "alive"
        self.started = None

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def set_view(self, subject, state, t):
        """Record subject's state (None: forget it), keeping n_alive in step,
        so that convergence of a large cluster is a count, not a scan."""
        old = self.view.get(subject)
        if old is not None and old[0] == "alive":
            self.n_alive -= 1
        if state is None:
            self.view.pop(subject, None)
            return
        self.view[subject] = (state, t)
        if state == "alive":
            self.n_alive += 1

    def reset_view(self):
        self.view = {}
        self.n_alive = 0

    def since(self, subject, state, t0):
        v = self.view.get(subject)
        return v is not None and v[0] == state and v[1] >= t0


class LogHub:
    """One thread reads every agent's output pipe, stamps each line on
    arrival, keeps a per-agent member view from the serf event lines and
    appends the stamped lines to a log file per agent."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.cond = threading.Condition()
        self.sel = selectors.DefaultSelector()
        self.pending = []
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.stop = False
        self.deadline = float("inf")
        self.events = []  # (t, observer, event, subject)
        self.probe_fails = []  # (t, prober, subject)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, agent):
        fd = agent.proc.stdout.fileno()
        os.set_blocking(fd, False)
        logf = open(os.path.join(self.logdir, agent.name + ".log"), "a")
        logf.write("# ---- start gen %d pid %d at %.6f\n" % (agent.gen, agent.pid, time.monotonic()))
        with self.cond:
            self.pending.append((fd, agent, agent.gen, logf))
        os.write(self.wake_w, b"x")

    def close(self):
        self.stop = True
        os.write(self.wake_w, b"x")
        self.thread.join(5)

    def _line(self, agent, gen, logf, t, line):
        logf.write("%.6f %s\n" % (t, line))
        m = EVENT_RE.search(line)
        if not m:
            p = PROBE_FAIL_RE.search(line)
            if p:
                with self.cond:
                    if gen == agent.gen:
                        self.probe_fails.append((t, agent.name, p.group(1) or p.group(2)))
            return
        state = STATE_OF.get(m.group(1))
        if state is None:
            return
        with self.cond:
            if gen == agent.gen:
                agent.set_view(m.group(2), None if state == "reaped" else state, t)
                self.events.append((t, agent.name, m.group(1), m.group(2)))
            self.cond.notify_all()

    def _run(self):
        bufs = {}
        while not self.stop:
            for key, _ in self.sel.select(0.5):
                fd = key.fd
                if fd == self.wake_r:
                    try:
                        os.read(fd, 4096)
                    except BlockingIOError:
                        pass
                    with self.cond:
                        pend, self.pending = self.pending, []
                    for (pfd, agent, gen, logf) in pend:
                        bufs[pfd] = b""
                        self.sel.register(pfd, selectors.EVENT_READ, (agent, gen, logf))
                    continue
                agent, gen, logf = key.data
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                t = time.monotonic()
                if not data:
                    self.sel.unregister(fd)
                    if bufs.get(fd):
                        self._line(agent, gen, logf, t, bufs[fd].decode("utf-8", "replace"))
                    bufs.pop(fd, None)
                    logf.write("# ---- eof gen %d at %.6f\n" % (gen, t))
                    logf.close()
                    with self.cond:
                        self.cond.notify_all()
                    continue
                buf = bufs.get(fd, b"") + data
                *lines, rest = buf.split(b"\n")
                bufs[fd] = rest
                for ln in lines:
                    self._line(agent, gen, logf, t, ln.decode("utf-8", "replace"))

    def wait_for(self, pred, timeout):
        """Wait until pred() (evaluated under the lock) holds; False on timeout."""
        end = time.monotonic() + timeout
        hard = end > self.deadline
        end = min(end, self.deadline)
        with self.cond:
            while True:
                if pred():
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    if hard:
                        raise Aborted("--max-time reached")
                    return False
                self.cond.wait(min(left, 0.25))


class Harness:
    def __init__(self, args):
        self.args = args
        self.children = []  # every Popen ever started
        self.all_pids = []
        self.deadline = time.monotonic() + args.max_time
        self.t0 = time.monotonic()
        self.load_samples = []
        self.tmp = tempfile.mkdtemp(prefix="vigil-bench.")
        self.logdir = os.path.join(self.tmp, "logs")
        os.makedirs(self.logdir)
        self.hub = LogHub(self.logdir)
        self.hub.deadline = self.deadline
        self.bins = {"vigil": args.vigil_bin, "serf": args.serf_bin}
        # run a private copy, so a rebuild of build/vigil during the run
        # cannot change the binary under the benchmark
        if "vigil" in args.kinds:
            src = shutil.which(args.vigil_bin)
            dst = os.path.join(self.tmp, "vigil")
            shutil.copy2(src, dst)
            self.bins["vigil"] = dst
        self.span = max(args.sizes) + args.joins + 8
        self.base = pick_port_base(4 * self.span)
        self.kind_index = {k: i for i, k in enumerate(args.kinds)}
        ranges = {}
        for k, i in self.kind_index.items():
            lo = self.base + i * self.span
            ranges[k] = (lo, lo + self.span - 1)
        self.ranges = ranges
        self.net = NetCounters(ranges) if not args.no_net else None
        if self.net and not self.net.ok:
            log("WARNING: no byte counters: %s" % self.net.error)

    # ---- process management

    def check_time(self, need=0):
        if time.monotonic() + need > self.deadline:
            raise Aborted("--max-time (%d s) reached" % self.args.max_time)

    def spawn(self, agent, join=None):
        cmd = [self.bins[agent.kind], "agent", "-node=" + agent.name,
               "-bind=127.0.0.1:%d" % agent.port, "-rpc-addr=127.0.0.1:%d" % agent.rpc,
               "-log-level=info"]
        if join is not None:
            cmd.append("-join=127.0.0.1:%d" % join.port)
        agent.gen += 1
        with self.hub.cond:
            agent.reset_view()
        agent.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, preexec_fn=_child_setup,
                                      close_fds=True)
        agent.started = time.monotonic()
        self.children.append(agent.proc)
        self.all_pids.append(agent.proc.pid)
        if self.args.pidfile:
            with open(self.args.pidfile, "a") as f:
                f.write("%d\n" % agent.proc.pid)
        self.hub.add(agent)
        return agent

    def kill(self, agent, sig=signal.SIGKILL, wait=10.0):
        if agent.proc is None:
            return
        if agent.proc.poll() is None:
            try:
                agent.proc.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            agent.proc.wait(wait)
        except subprocess.TimeoutExpired:
            agent.proc.kill()
            agent.proc.wait()

    def stop_all(self, agents):
        for a in agents:
            if a.running():
                a.proc.send_signal(signal.SIGKILL)
        for a in agents:
            if a.proc is not None:
                try:
                    a.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        for p in self.children:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.net:
            self.net.close()
        self.hub.close()
        if self.args.keep_logs:
            log("logs kept in %s" % self.logdir)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def wait_port(self, port, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = socket.socket()
            s.settimeout(0.5)
            try:
                s.connect(("127.0.0.1", port))
                return True
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        return False

    # ---- cluster phases

    def make_agents(self, kind, n):
        i = self.kind_index[kind]
        base = self.base + i * self.span
        rpc = self.base + 2 * self.span + i * self.span
        prefix = kind[0]
        return [Agent(kind, "%s%02d" % (prefix, j), base + j, rpc + j) for j in range(n)]

    def converged(self, agents):
        names = [a.name for a in agents]
        for a in agents:
            if not a.running():
                return False
            for n in names:
                if n != a.name and not a.since(n, "alive", 0):
                    return False
        return True

    def start_cluster(self, kind, n):
        agents = self.make_agents(kind, n)
        t0 = time.monotonic()
        self.spawn(agents[0])
        if not self.wait_port(agents[0].port, 20):
            raise RuntimeError("%s: seed agent never listened on %d" % (kind, agents[0].port))
        for a in agents[1:]:
            self.spawn(a, join=agents[0])
            time.sleep(self.args.spawn_gap)
        ok = self.hub.wait_for(lambda: self.converged(agents), self.args.converge_timeout)
        dt = time.monotonic() - t0
        if not ok:
            dead = [a.name for a in agents if not a.running()]
            raise RuntimeError("%s x%d did not converge in %.0f s (exited: %s)"
                               % (kind, n, self.args.converge_timeout, dead or "none"))
        return agents, dt

    def rpc_check(self, kind, agents):
        """Cross-check the log-derived views with the agents' own member list."""
        res = []
        for a in (agents[0], agents[-1]):
            try:
                r = subprocess.run([self.bins[kind], "members", "-rpc-addr=127.0.0.1:%d" % a.rpc],
                                   capture_output=True, text=True, timeout=10)
                alive = sum(1 for ln in r.stdout.splitlines()
                            if len(ln.split()) >= 3 and ln.split()[2] == "alive")
            except subprocess.TimeoutExpired:
                alive = None
            res.append({"agent": a.name, "alive": alive})
        return res

    def window(self, kind, agents):
        n = len(agents)
        res = {}
        self.check_time(self.args.settle + self.args.window)
        time.sleep(self.args.settle)
        with self.hub.cond:
            ev0 = len(self.hub.events)
        rss0 = [proc_rss_kb(a.pid) for a in agents]
        cpu0 = [proc_cpu_ticks(a.pid) for a in agents]
        net0 = self.net.read() if self.net else None
        t0 = time.monotonic()
        time.sleep(self.args.window)
        cpu1 = [proc_cpu_ticks(a.pid) for a in agents]
        t1 = time.monotonic()
        net1 = self.net.read() if self.net else None
        rss1 = [proc_rss_kb(a.pid) for a in agents]
        mem1 = [proc_mem_kb(a.pid) for a in agents]
        dt = t1 - t0
        if not all(a.running() for a in agents):
            raise RuntimeError("%s: an agent exited during the measurement window" % kind)
        cpu_s = [(c1 - c0) / CLK_TCK for c0, c1 in zip(cpu0, cpu1)]
        res["window_s"] = dt
        res["rss_kb"] = summary(rss1)
        res["rss_kb"]["per_agent"] = rss1
        res["rss_kb_at_window_start"] = summary(rss0)
        # what the RSS is made of: anonymous memory (heap, stacks) vs pages
        # of mapped files (the binary and shared libraries, shared between
        # agents), and the proportional set size
        for key, name in (("RssAnon", "rss_anon_kb"), ("RssFile", "rss_file_kb"), ("Pss", "pss_kb")):
            vals = [m.get(key) for m in mem1]
            res[name] = summary(vals) if all(v is not None for v in vals) else None
        res["cpu_s"] = summary(cpu_s)
        res["cpu_s"]["per_agent"] = cpu_s
        res["cpu_s"]["total"] = sum(cpu_s)
        res["cpu_pct_of_core_per_agent"] = 100.0 * statistics.fmean(cpu_s) / dt
        if net0 and net1:
            d = {}
            for proto in ("udp", "tcp"):
                key = "%s_%s" % (kind, proto)
                p0, b0 = net0.get(key, (0, 0))
                p1, b1 = net1.get(key, (0, 0))
                d[proto + "_packets"] = p1 - p0
                d[proto + "_bytes"] = b1 - b0
            tot = d["udp_bytes"] + d["tcp_bytes"]
            d["bytes_per_member_per_s"] = tot / n / dt
            d["packets_per_member_per_s"] = (d["udp_packets"] + d["tcp_packets"]) / n / dt
            d["udp_bytes_per_member_per_s"] = d["udp_bytes"] / n / dt
            d["tcp_bytes_per_member_per_s"] = d["tcp_bytes"] / n / dt
            res["net"] = d
        else:
            res["net"] = None
        with self.hub.cond:
            evs = self.hub.events[ev0:]
        res["failed_events_in_window"] = sum(1 for e in evs if e[2] == "EventMemberFailed")
        return res

    def detection(self, kind, agents, freeze=False):
        """kill -9 rounds (the process dies, its host answers for its port:
        ICMP port unreachable), or with freeze=True SIGSTOP rounds (the
        process hangs and still holds its port: nothing answers, as when a
        host vanishes)."""
        a_args = self.args
        kills = []
        rejoins = []
        order = agents[1:] + agents[:1]
        rnd = random.Random(a_args.seed + (2 if freeze else 0))
        rounds = a_args.freezes if freeze else a_args.kills
        what = "freeze" if freeze else "kill"
        for k in range(rounds):
            self.check_time()
            victim = order[k % len(order)]
            others = [a for a in agents if a is not victim]
            t0 = time.monotonic()
            if freeze:
                victim.proc.send_signal(signal.SIGSTOP)
            else:
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait()
            self.hub.wait_for(lambda: all(o.since(victim.name, "failed", t0) for o in others),
                              a_args.detect_timeout)
            with self.hub.cond:
                per = {o.name: (o.view[victim.name][1] - t0
                                if o.since(victim.name, "failed", t0) else None) for o in others}
                pf = [t - t0 for (t, _, subj) in self.hub.probe_fails if subj == victim.name and t >= t0]
            got = [v for v in per.values() if v is not None]
            rec = {"victim": victim.name,
                   "all_s": max(got) if len(got) == len(others) else None,
                   "first_s": min(got) if got else None,
                   # phases: kill -> first failed probe (someone starts
                   # suspecting), -> first failure verdict, -> last member
                   "first_probe_failure_s": min(pf) if pf else None,
                   "per_observer_s": per,
                   "missing": [n for n, v in per.items() if v is None]}
            if rec["first_probe_failure_s"] is not None and rec["first_s"] is not None:
                rec["suspicion_s"] = rec["first_s"] - rec["first_probe_failure_s"]
            if rec["all_s"] is not None and rec["first_s"] is not None:
                rec["spread_s"] = rec["all_s"] - rec["first_s"]
            kills.append(rec)
            log("%s %s %d/%d %s: all %s, first %s%s" % (
                kind, what, k + 1, rounds, victim.name, fmt_s(rec["all_s"]), fmt_s(rec["first_s"]),
                (" MISSING %s" % rec["missing"]) if rec["missing"] else ""))
            # wake it (it refutes its death) or restart it under the same
            # name and ports; wait until everybody (and it) sees the
            # cluster whole again
            self.check_time()
            t1 = time.monotonic()
            if freeze:
                victim.proc.send_signal(signal.SIGCONT)
            else:
                self.spawn(victim, join=rnd.choice(others))
            ok = self.hub.wait_for(
                lambda: all(o.since(victim.name, "alive", t1) for o in others)
                and all(victim.since(o.name, "alive", 0) for o in others),
                a_args.rejoin_timeout)
            rj = time.monotonic() - t1 if ok else None
            rejoins.append(rj)
            if not ok:
                log("%s: %s did not rejoin within %.0f s" % (kind, victim.name, a_args.rejoin_timeout))
                if not victim.running():
                    raise RuntimeError("%s: restarted %s exited" % (kind, victim.name))
            time.sleep(a_args.between)
        alls = [r["all_s"] for r in kills if r["all_s"] is not None]
        firsts = [r["first_s"] for r in kills if r["first_s"] is not None]
        pooled = [v for r in kills for v in r["per_observer_s"].values() if v is not None]
        return {
            "cluster_size": len(agents),
            "kills": kills,
            "complete": len(alls),
            "incomplete": len(kills) - len(alls),
            "all_s": summary(alls),
            "first_s": summary(firsts),
            "per_observer_s": summary(pooled),
            "first_probe_failure_s": summary([r["first_probe_failure_s"] for r in kills]),
            "suspicion_s": summary([r.get("suspicion_s") for r in kills]),
            "spread_s": summary([r.get("spread_s") for r in kills]),
            "rejoin_s": summary(rejoins),
        }

    def joins(self, kind, agents):
        a_args = self.args
        rnd = random.Random(a_args.seed + 1)
        n = len(agents)
        i = self.kind_index[kind]
        recs = []
        for j in range(a_args.joins):
            self.check_time()
            port = self.base + i * self.span + n + j
            rpc = self.base + 2 * self.span + i * self.span + n + j
            new = Agent(kind, "%sjoin%02d" % (kind[0], j), port, rpc)
            target = rnd.choice(agents)
            t0 = time.monotonic()
            self.spawn(new, join=target)
            self.hub.wait_for(lambda: all(a.since(new.name, "alive", t0) for a in agents),
                              a_args.join_timeout)
            with self.hub.cond:
                per = {a.name: (a.view[new.name][1] - t0 if a.since(new.name, "alive", t0) else None)
                       for a in agents}
                knows = [new.view[a.name][1] - t0 for a in agents if new.since(a.name, "alive", t0)]
            got = [v for v in per.values() if v is not None]
            rec = {"name": new.name, "via": target.name,
                   "all_s": max(got) if len(got) == n else None,
                   "first_s": min(got) if got else None,
                   "newcomer_knows_all_s": max(knows) if len(knows) == n else None,
                   "missing": [k for k, v in per.items() if v is None]}
            recs.append(rec)
            log("%s join %d/%d: all %s, first %s" % (kind, j + 1, a_args.joins,
                                                   fmt_s(rec["all_s"]), fmt_s(rec["first_s"])))
            # graceful leave, so the cluster is back to n alive members
            t2 = time.monotonic()
            self.kill(new, signal.SIGINT, wait=15)
            gone = lambda a: a.since(new.name, "left", t2) or a.since(new.name, "failed", t2)
            self.hub.wait_for(lambda: all(gone(a) for a in agents), 10)
            with self.hub.cond:
                rec["leave_seen_as_failed_by"] = [a.name for a in agents
                                                  if a.since(new.name, "failed", t2)]
                rec["leave_not_seen_by"] = [a.name for a in agents if not gone(a)]
            time.sleep(a_args.between)
        alls = [r["all_s"] for r in recs if r["all_s"] is not None]
        return {
            "cluster_size": n,
            "joins": recs,
            "complete": len(alls),
            "incomplete": len(recs) - len(alls),
            "all_s": summary(alls),
            "first_s": summary([r["first_s"] for r in recs]),
            "newcomer_knows_all_s": summary([r["newcomer_knows_all_s"] for r in recs]),
            "graceful_leaves_reported_failed": sum(len(r["leave_seen_as_failed_by"]) for r in recs),
        }

    def loadavg(self, what):
        try:
            with open("/proc/loadavg") as f:
                la = [float(x) for x in f.read().split()[:3]]
        except OSError:
            return
        self.load_samples.append({"phase": what, "t": round(time.monotonic() - self.t0, 1),
                                  "loadavg": la})

    def run_cluster(self, kind, n, latency):
        self.loadavg("%s-%d start" % (kind, n))
        log("%s: starting %d agents" % (kind, n))
        self.check_time(10)
        agents, conv = self.start_cluster(kind, n)
        log("%s: %d agents converged in %.1f s" % (kind, n, conv))
        out = {"agents": n, "converge_s": conv, "pids": [a.pid for a in agents]}
        try:
            out["rpc_check"] = self.rpc_check(kind, agents)
            log("%s: settling %g s, then a %g s window" % (kind, self.args.settle, self.args.window))
            out.update(self.window(kind, agents))
            self.loadavg("%s-%d after window" % (kind, n))
            log("%s x%d: rss %.0f kB, cpu %.3f s/agent, %s B/member/s" % (
                kind, n, out["rss_kb"]["mean"], out["cpu_s"]["mean"],
                "%.0f" % out["net"]["bytes_per_member_per_s"] if out["net"] else "n/a"))
            lat = {}
            if latency:
                if self.args.kills:
                    lat["detection"] = self.detection(kind, agents)
                    self.loadavg("%s-%d after kills" % (kind, n))
                if self.args.freezes:
                    lat["detection_freeze"] = self.detection(kind, agents, freeze=True)
                    self.loadavg("%s-%d after freezes" % (kind, n))
                if self.args.joins:
                    lat["join"] = self.joins(kind, agents)
            return out, lat
        finally:
            self.stop_all(agents)


def fmt_s(v):
    return "-" if v is None else "%.2f s" % v


# --------------------------------------------------------------------------
# meta data, ratios, table


def git(*args):
    try:
        return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:
        return ""


def sha256(path):
    import hashlib
    p = shutil.which(path)
    if not p:
        return None
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def link_mode(path):
    """'static' or 'dynamic' from the ELF program headers (PT_INTERP = 3
    means a dynamic loader is requested), None if not an ELF file."""
    import struct
    p = shutil.which(path)
    if not p:
        return None
    try:
        with open(p, "rb") as f:
            h = f.read(64)
            if h[:4] != b"\x7fELF" or h[4] != 2:
                return None
            end = "<" if h[5] == 1 else ">"
            phoff, = struct.unpack(end + "Q", h[32:40])
            phentsize, phnum = struct.unpack(end + "HH", h[54:58])
            f.seek(phoff)
            ph = f.read(phentsize * phnum)
        types = [struct.unpack(end + "I", ph[i * phentsize:i * phentsize + 4])[0] for i in range(phnum)]
        return "dynamic" if 3 in types else "static"
    except (OSError, struct.error):
        return None


def bin_version(path):
    try:
        r = subprocess.run([path, "version"], capture_output=True, text=True, timeout=10)
        return r.stdout.strip().splitlines()[0] if r.stdout.strip() else None
    except Exception:
        return None


def machine():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1])
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_kb": mem,
            "kernel": platform.release(), "hostname_hash": None}


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def compute_ratios(res):
    kinds = res["kinds"]
    if "vigil" not in kinds or "serf" not in kinds:
        return {}, []
    v, s = kinds["vigil"], kinds["serf"]
    r = {}
    for size in res["config"]["sizes"]:
        key = str(size)
        cv, cs = v["clusters"].get(key), s["clusters"].get(key)
        if not cv or not cs:
            continue
        r["rss_%d" % size] = ratio(cv["rss_kb"]["mean"], cs["rss_kb"]["mean"])
        for name in ("rss_anon_kb", "pss_kb"):
            if cv.get(name) and cs.get(name):
                r["%s_%d" % (name[:-3], size)] = ratio(cv[name]["mean"], cs[name]["mean"])
        r["cpu_%d" % size] = ratio(cv["cpu_s"]["mean"], cs["cpu_s"]["mean"])
        if cv.get("net") and cs.get("net"):
            r["bytes_%d" % size] = ratio(cv["net"]["bytes_per_member_per_s"],
                                         cs["net"]["bytes_per_member_per_s"])
            r["packets_%d" % size] = ratio(cv["net"]["packets_per_member_per_s"],
                                           cs["net"]["packets_per_member_per_s"])
    ci = {}
    for key, prefix in (("detection", "detect"), ("detection_freeze", "freeze")):
        dv, ds = v.get(key), s.get(key)
        if dv and ds and dv["all_s"] and ds["all_s"]:
            r[prefix + "_median"] = ratio(dv["all_s"]["median"], ds["all_s"]["median"])
            r[prefix + "_p99"] = ratio(dv["all_s"]["p99"], ds["all_s"]["p99"])
            a = [k["all_s"] for k in dv["kills"] if k["all_s"] is not None]
            b = [k["all_s"] for k in ds["kills"] if k["all_s"] is not None]
            ci[prefix + "_median"] = bootstrap_ratio_ci(a, b, statistics.median)
            ci[prefix + "_p99"] = bootstrap_ratio_ci(a, b, lambda x: quantile(x, 0.99))
    jv, js = v.get("join"), s.get("join")
    if jv and js and jv["all_s"] and js["all_s"]:
        r["join_median"] = ratio(jv["all_s"]["median"], js["all_s"]["median"])
        r["join_p99"] = ratio(jv["all_s"]["p99"], js["all_s"]["p99"])
        a = [k["all_s"] for k in jv["joins"] if k["all_s"] is not None]
        b = [k["all_s"] for k in js["joins"] if k["all_s"] is not None]
        ci["join_median"] = bootstrap_ratio_ci(a, b, statistics.median)
    res["ratio_ci95"] = ci

    targets = []
    rss = [("rss_%d" % n, r.get("rss_%d" % n)) for n in res["config"]["sizes"]
           if r.get("rss_%d" % n) is not None]
    if rss:
        worst = max(x for _, x in rss)
        targets.append({"target": "idle RSS <= 1/5 of serf's", "limit": 0.2,
                        "measured": {k: x for k, x in rss}, "met": worst <= 0.2})
    big = max(res["config"]["sizes"])
    if r.get("cpu_%d" % big) is not None:
        targets.append({"target": "CPU per agent in a %d-agent cluster <= 1/3 of serf's" % big,
                        "limit": 1 / 3, "measured": {"cpu_%d" % big: r["cpu_%d" % big]},
                        "met": r["cpu_%d" % big] <= 1 / 3,
                        "note": None if big == 64 else "target is defined at 64 agents"})
    if r.get("detect_median") is not None:
        targets.append({"target": "detection latency <= serf's (same timings)", "limit": 1.0,
                        "measured": {"detect_median": r["detect_median"],
                                     "detect_p99": r["detect_p99"]},
                        "met": r["detect_median"] <= 1.0 and r["detect_p99"] <= 1.0})
    sim = res.get("simulator") or {}
    for n, run in sorted((sim.get("runs") or {}).items(), key=lambda x: int(x[0])):
        if not run.get("available"):
            continue
        if int(n) >= 10000 or n == str(max(int(k) for k in sim["runs"])):
            mps = run.get("steady_messages_per_s") if run.get("ok") else None
            targets.append({"target": "simulator: 10,000 members, >= 1 M messages/s on one core",
                            "limit": 1e6, "measured": {"messages_per_s@%s" % n: mps},
                            "met": bool(mps is not None and mps >= 1e6 and int(n) >= 10000),
                            "note": None if run.get("ok") else
                            "sim_bench %s members did not finish: %s" % (n, run.get("reason") or
                                                                         "exit %s" % run.get("exit"))})
    big_ok = sim.get("largest_ok")
    if big_ok:
        for name, ru in sorted((sim["runs"][str(big_ok)].get("rumours") or {}).items()):
            x = ru.get("rounds_99_over_expected")
            if x is not None:
                targets.append({"target": "simulator: %s to 99%% within 1.2 x log bound" % name,
                                "limit": 1.2, "measured": {"rounds_99/bound@%d" % big_ok: x},
                                "met": x <= 1.2,
                                "note": None if big_ok >= 10000 else "measured at %d members" % big_ok})
    fp = res.get("falsepos") or {}
    if fp.get("ok") and fp.get("by_delay"):
        plain = sum(d["plain"].get("healthy_incidents", 0) for d in fp["by_delay"].values())
        lg = sum(d["lifeguard"].get("healthy_incidents", 0) for d in fp["by_delay"].values())
        from sim import plain_over_lifeguard  # bench/sim.py
        x = plain_over_lifeguard(plain, lg)
        targets.append({"target": "simulator: > 50 x fewer false positives with Lifeguard than "
                        "plain SWIM, slow members (Lifeguard paper)", "limit": 50,
                        "measured": {"plain/lifeguard": x}, "met": x > 50,
                        "note": "healthy members falsely declared dead, all delays: plain %d, "
                        "Lifeguard %d%s" % (plain, lg, "; a lower bound" if lg == 0 else "")})
    return r, targets


def print_table(res):
    kinds = res["kinds"]
    ks = [k for k in ("vigil", "serf") if k in kinds]
    rows = []

    def val(kind, path):
        x = kinds[kind]
        for p in path:
            if x is None:
                return None
            x = x.get(p) if isinstance(x, dict) else None
        return x

    for size in res["config"]["sizes"]:
        key = str(size)
        rows.append(("idle RSS per agent, %d agents (MiB)" % size,
                     [(val(k, ["clusters", key, "rss_kb", "mean"]) or 0) / 1024 if val(k, ["clusters", key, "rss_kb", "mean"]) else None for k in ks],
                     res["ratios"].get("rss_%d" % size), "%.2f"))
        mib = lambda k, name: (val(k, ["clusters", key, name, "mean"]) / 1024
                               if val(k, ["clusters", key, name, "mean"]) is not None else None)
        rows.append(("  anonymous part of RSS (MiB)", [mib(k, "rss_anon_kb") for k in ks],
                     res["ratios"].get("rss_anon_%d" % size), "%.2f"))
        rows.append(("  PSS per agent (MiB)", [mib(k, "pss_kb") for k in ks],
                     res["ratios"].get("pss_%d" % size), "%.2f"))
        rows.append(("CPU s per agent per %gs, %d agents" % (res["config"]["window_s"], size),
                     [val(k, ["clusters", key, "cpu_s", "mean"]) for k in ks],
                     res["ratios"].get("cpu_%d" % size), "%.3f"))
        rows.append(("bytes sent per member per s, %d agents" % size,
                     [val(k, ["clusters", key, "net", "bytes_per_member_per_s"]) for k in ks],
                     res["ratios"].get("bytes_%d" % size), "%.0f"))
        rows.append(("packets sent per member per s, %d agents" % size,
                     [val(k, ["clusters", key, "net", "packets_per_member_per_s"]) for k in ks],
                     res["ratios"].get("packets_%d" % size), "%.2f"))
    ls = res["config"]["latency_size"]
    rows.append(("detection to all, median (s), %d agents" % ls,
                 [val(k, ["detection", "all_s", "median"]) for k in ks],
                 res["ratios"].get("detect_median"), "%.2f"))
    rows.append(("detection to all, p99 (s), %d agents" % ls,
                 [val(k, ["detection", "all_s", "p99"]) for k in ks],
                 res["ratios"].get("detect_p99"), "%.2f"))
    rows.append(("  kill -> first failed probe, median (s)",
                 [val(k, ["detection", "first_probe_failure_s", "median"]) for k in ks], None, "%.2f"))
    rows.append(("  failed probe -> first verdict, median (s)",
                 [val(k, ["detection", "suspicion_s", "median"]) for k in ks], None, "%.2f"))
    rows.append(("  first -> last member, median (s)",
                 [val(k, ["detection", "spread_s", "median"]) for k in ks], None, "%.2f"))
    rows.append(("SIGSTOP (no ICMP) to all, median (s)",
                 [val(k, ["detection_freeze", "all_s", "median"]) for k in ks],
                 res["ratios"].get("freeze_median"), "%.2f"))
    rows.append(("SIGSTOP (no ICMP) to all, p99 (s)",
                 [val(k, ["detection_freeze", "all_s", "p99"]) for k in ks],
                 res["ratios"].get("freeze_p99"), "%.2f"))
    rows.append(("join known by all, median (s), %d agents" % ls,
                 [val(k, ["join", "all_s", "median"]) for k in ks],
                 res["ratios"].get("join_median"), "%.2f"))
    rows.append(("join known by all, p99 (s), %d agents" % ls,
                 [val(k, ["join", "all_s", "p99"]) for k in ks],
                 res["ratios"].get("join_p99"), "%.2f"))

    def f(fmt, x):
        return "-" if x is None else fmt % x

    w = max(len(r[0]) for r in rows)
    hdr = "%-*s  %12s  %12s  %10s" % (w, "metric", ks[0] if ks else "", ks[1] if len(ks) > 1 else "",
                                      "vigil/serf")
    print(hdr)
    print("-" * len(hdr))
    for name, vals, rt, fmt in rows:
        vals = vals + [None] * (2 - len(vals))
        print("%-*s  %12s  %12s  %10s" % (w, name, f(fmt, vals[0]), f(fmt, vals[1]), f("%.3f", rt)))
    if res.get("targets"):
        print()
        for t in res["targets"]:
            m = ", ".join("%s=%s" % (k, "-" if x is None else "%.3g" % x) for k, x in t["measured"].items())
            print("%-55s %-8s (%s; limit %.3g)" % (t["target"], "MET" if t["met"] else "NOT MET",
                                                  m, t["limit"]))
    if res.get("incomplete"):
        print("\nINCOMPLETE RUN: %s" % res["incomplete"])


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="bench/run.sh also takes --at-head (build vigil and "
                                 "build/sim_bench from the committed HEAD in a temporary "
                                 "directory) and --publish (copy the results to "
                                 "docs/bench-results.json and the plots to docs/).  "
                                 "See docs/BENCHMARKS.md.")
    ap.add_argument("--quick", action="store_true",
                    help="small run: 4 agents, 5 s windows, 3 kills, 1 freeze, 3 joins")
    ap.add_argument("--sizes", help="cluster sizes, comma separated (default 32,64)")
    ap.add_argument("--latency-size", type=int,
                    help="cluster size in which kills and joins are done (default: smallest size)")
    ap.add_argument("--window", type=float, help="CPU/bytes window, seconds (default 60)")
    ap.add_argument("--settle", type=float, help="seconds after convergence before the window (default 15)")
    ap.add_argument("--kills", type=int, help="kill -9 rounds per kind (default 20)")
    ap.add_argument("--freezes", type=int, help="SIGSTOP rounds per kind: a hung process, "
                    "no ICMP for its port (default 20)")
    ap.add_argument("--joins", type=int, help="new-member joins per kind (default 10)")
    ap.add_argument("--between", type=float, help="pause between kill/join rounds (default 2)")
    ap.add_argument("--kinds", default="vigil,serf")
    ap.add_argument("--vigil-bin", default=os.environ.get("VIGIL_BIN", os.path.join(ROOT, "build/vigil")))
    ap.add_argument("--serf-bin", default=os.environ.get("SERF_BIN", "serf"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/latest.json"))
    ap.add_argument("--plots-dir", help="where PNGs go (default: next to --out)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--no-net", action="store_true", help="skip the nftables byte counters")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--pidfile", help="append the pid of every agent started (bench/run.sh uses it)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--spawn-gap", type=float, default=0.02)
    ap.add_argument("--converge-timeout", type=float, default=180)
    ap.add_argument("--detect-timeout", type=float, default=90)
    ap.add_argument("--rejoin-timeout", type=float, default=60)
    ap.add_argument("--join-timeout", type=float, default=60)
    ap.add_argument("--max-time", type=float, help="hard bound on the whole run, seconds "
                    "(default 2400; 150 with --quick)")
    ap.add_argument("--sim", default="auto", choices=["auto", "yes", "no"],
                    help="also run the simulator benchmarks (build/sim_bench, build/sim_falsepos) "
                    "and include their numbers (auto: those that are built)")
    ap.add_argument("--sim-members", help="member counts for build/sim_bench, comma separated "
                    "(default 100,1000,10000; 200 with --quick)")
    ap.add_argument("--sim-dir", default=ROOT, help="tree whose build/sim_* are run")
    ap.add_argument("--sim-timeout", type=float, default=900)
    ap.add_argument("--fp-members", type=int, default=100,
                    help="build/sim_falsepos: cluster size (default 100)")
    ap.add_argument("--fp-slow", type=float, default=0.1,
                    help="build/sim_falsepos: fraction of members slowed (default 0.1)")
    ap.add_argument("--fp-delays", help="build/sim_falsepos: maximum extra delay of a slow member, "
                    "ms, comma separated (default 5000,10000,20000; 20000 with --quick)")
    ap.add_argument("--fp-seconds", type=int, help="build/sim_falsepos: virtual seconds per run "
                    "(default 600; 60 with --quick)")
    ap.add_argument("--fp-seeds", type=int, help="build/sim_falsepos: seeds per delay "
                    "(default 3; 1 with --quick)")
    ap.add_argument("--source", help="where the vigil binary was built from (recorded)")
    args = ap.parse_args()

    q = args.quick
    args.sizes = [int(x) for x in (args.sizes or ("4" if q else "32,64")).split(",")]
    args.latency_size = args.latency_size or min(args.sizes)
    if args.latency_size not in args.sizes:
        ap.error("--latency-size must be one of --sizes")
    dflt = lambda v, quick, full: v if v is not None else (quick if q else full)
    args.window = dflt(args.window, 5.0, 60.0)
    args.settle = dflt(args.settle, 2.0, 15.0)
    args.kills = dflt(args.kills, 3, 20)
    args.freezes = dflt(args.freezes, 1, 20)
    args.joins = dflt(args.joins, 3, 10)
    args.between = dflt(args.between, 0.5, 2.0)
    args.max_time = dflt(args.max_time, 150.0, 2400.0)
    args.kinds = [k for k in args.kinds.split(",") if k]
    for k in args.kinds:
        if k not in ("vigil", "serf"):
            ap.error("unknown kind %s" % k)
        b = args.vigil_bin if k == "vigil" else args.serf_bin
        if not shutil.which(b):
            ap.error("%s binary %s not found (make?)" % (k, b))
    # the quick form runs the simulator benchmarks small: the harness, not the figures
    args.sim_members = [int(x) for x in dflt(args.sim_members, "200", "100,1000,10000").split(",") if x]
    args.fp_delays = dflt(args.fp_delays, "20000", "5000,10000,20000")
    args.fp_seconds = dflt(args.fp_seconds, 60, 600)
    args.fp_seeds = dflt(args.fp_seeds, 1, 3)

    t_start = time.time()
    res = {
        "schema": 1,
        "started_utc": datetime.datetime.fromtimestamp(t_start, datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": ({"commit": args.source.split()[-1], "dirty": False,
                 "note": "vigil built from this commit (git archive); harness from the working tree at %s"
                 % git("rev-parse", "HEAD")[:12]}
                if args.source and args.source.startswith("git archive ") else
                {"commit": git("rev-parse", "HEAD"),
                 "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}),
        "vigil_source": args.source or ("working tree" + (" with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")),
        "vigil_sha256": sha256(args.vigil_bin) if "vigil" in args.kinds else None,
        "link_mode": {"vigil": link_mode(args.vigil_bin) if "vigil" in args.kinds else None,
                      "serf": link_mode(args.serf_bin) if "serf" in args.kinds else None},
        "versions": {"vigil": bin_version(args.vigil_bin) if "vigil" in args.kinds else None,
                     "serf": bin_version(args.serf_bin) if "serf" in args.kinds else None},
        "config": {"quick": q, "sizes": args.sizes, "latency_size": args.latency_size,
                   "window_s": args.window, "settle_s": args.settle, "kills": args.kills, "freezes": args.freezes,
                   "joins": args.joins, "between_s": args.between, "kinds": args.kinds,
                   "timings": "agent defaults (LAN profile) for both kinds",
                   "vigil_bin": args.vigil_bin, "serf_bin": shutil.which(args.serf_bin),
                   "command": os.environ.get("VIGIL_BENCH_COMMAND") or " ".join(["bench/bench.py"] + sys.argv[1:])},
        "kinds": {k: {"clusters": {}} for k in args.kinds},
    }
    h = Harness(args)
    res["config"]["port_ranges"] = {k: list(v) for k, v in h.ranges.items()}
    res["net_method"] = ("nftables counters (table inet %s, output hook, oifname lo) on packets "
                         "with source or destination port in the kind's gossip port range; "
                         "bytes are IP packet lengths" % h.net.table) if h.net and h.net.ok else \
        ("unavailable: %s" % (h.net.error if h.net else "--no-net"))

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rc = 0
    try:
        for size in args.sizes:
            for kind in args.kinds:
                out, lat = h.run_cluster(kind, size, size == args.latency_size)
                res["kinds"][kind]["clusters"][str(size)] = out
                res["kinds"][kind].update(lat)
    except Aborted as e:
        log("ABORTED: %s" % e)
        res["incomplete"] = str(e)
        rc = 3
    except KeyboardInterrupt as e:
        log("interrupted (%s)" % (e or "SIGINT"))
        res["incomplete"] = "interrupted"
        rc = 130
    except RuntimeError as e:
        log("ERROR: %s" % e)
        res["incomplete"] = str(e)
        rc = 2
    finally:
        h.cleanup()
    res["all_pids"] = h.all_pids
    # load of the (shared) machine: other processes compete for the CPUs,
    # which stretches latencies (not CPU seconds)
    res["loadavg_samples"] = h.load_samples
    res["leftover_pids"] = [p for p in h.all_pids if os.path.exists("/proc/%d" % p)
                            and not open("/proc/%d/stat" % p).read().split(") ")[1].startswith("Z")]

    if rc == 0 and args.sim != "no":
        from sim import run_sims, run_falsepos  # bench/sim.py
        res["simulator"] = run_sims(args.sim_dir, args.sim_members, timeout=args.sim_timeout, log=log)
        log("simulator: build/sim_falsepos %d members, %g slow, delays %s ms, %d s x %d seeds" % (
            args.fp_members, args.fp_slow, args.fp_delays, args.fp_seconds, args.fp_seeds))
        res["falsepos"] = run_falsepos(args.sim_dir, args.fp_members, args.fp_slow, args.fp_delays,
                                       args.fp_seconds, args.fp_seeds, timeout=args.sim_timeout)

    res["duration_s"] = time.time() - t_start
    res["ratios"], res["targets"] = compute_ratios(res)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if os.path.abspath(os.path.dirname(args.out)) == os.path.join(ROOT, "bench", "results"):
        gi = os.path.join(ROOT, "bench", "results", ".gitignore")
        if not os.path.exists(gi):
            with open(gi, "w") as f:
                f.write("# generated by bench/bench.py: run outputs are not committed\n*\n")
    with open(args.out + ".tmp", "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(args.out + ".tmp", args.out)
    print()
    print_table(res)
    print("\nresults: %s (%.0f s)" % (args.out, res["duration_s"]))
    if not args.no_plots:
        pdir = args.plots_dir or os.path.dirname(os.path.abspath(args.out))
        r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "plot.py"), args.out, pdir])
        if r.returncode != 0:
            log("plotting failed")
    return rc


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
