#!/usr/bin/env python3
"""One benchmark run: drive smtp-source at a target, wait until every
message is in the recipient's mailbox, and sample the target's memory.

Prints one JSON object (one line) on stdout. Exit status 0 when the run
completed, 1 when it failed (the JSON then carries "error").

Timing: t0 is taken just before smtp-source is spawned.
  acked_s   smtp-source exited: every message got its 250 (queued/accepted).
  seconds   every message was counted in the mailbox (the figure that
            counts). With --count none (smtp-sink) seconds == acked_s.
A poll that confirms the count is timed at its *end*, so a slow count
command makes a target look slower, never faster.

Memory: every 0.2 s the process trees under the --pid roots are read
from /proc; the peak of the summed RSS (and PSS, which splits shared
pages between processes) over the run is reported.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time


def read_tree():
    """Map ppid -> [pid] for every process visible in /proc."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split after the last ')'.
        rest = data[data.rfind(b")") + 2:].split()
        ppid = int(rest[1])
        children.setdefault(ppid, []).append(int(name))
    return children


def descendants(roots, children):
    seen, stack = set(), [r for r in roots if os.path.exists(f"/proc/{r}")]
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        stack.extend(children.get(p, []))
    return seen


def mem_kib(pid):
    """(rss_kib, pss_kib) of one process, (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss = int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
                pss = rss
        except OSError:
            pass
    return rss, pss


class Sampler(threading.Thread):
    def __init__(self, roots, interval=0.2):
        super().__init__(daemon=True)
        self.roots, self.interval = roots, interval
        self.peak_rss = self.peak_pss = self.peak_procs = 0
        self.stop_ev = threading.Event()

    def sample(self):
        pids = descendants(self.roots, read_tree())
        rss = pss = 0
        for p in pids:
            r, s = mem_kib(p)
            rss += r
            pss += s
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_procs = max(self.peak_procs, len(pids))

    def run(self):
        while True:
            self.sample()
            if self.stop_ev.wait(self.interval):
                break
        self.sample()


def count_maildir(path):
    n = 0
    for sub in ("new", "cur"):
        try:
            with os.scandir(os.path.join(path, sub)) as it:
                n += sum(1 for e in it if not e.name.startswith("."))
        except FileNotFoundError:
            pass
    return n


def make_counter(spec, timeout):
    """spec: none | maildir:PATH | cmd:SHELL-COMMAND (prints an integer)."""
    if spec == "none":
        return None
    kind, _, arg = spec.partition(":")
    if kind == "maildir":
        return lambda: count_maildir(arg)
    if kind == "cmd":
        def run():
            out = subprocess.run(["bash", "-c", arg], capture_output=True,
                                 text=True, timeout=timeout)
            s = out.stdout.strip().splitlines()
            if not s or not s[-1].strip().isdigit():
                raise RuntimeError(f"count command printed {out.stdout[-200:]!r}, "
                                   f"stderr {out.stderr[-300:]!r}")
            return int(s[-1])
        return run
    raise SystemExit(f"bad --count {spec!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--conc", type=int, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--rcpt", default="bench@bench.test")
    ap.add_argument("--sender", default="load@source.test")
    ap.add_argument("--reuse", action="store_true",
                    help="smtp-source -d: all of a session's messages over one connection")
    ap.add_argument("--count", default="none")
    ap.add_argument("--poll", choices=("during", "after"), default="during",
                    help="during: count while the load runs (cheap counters); "
                         "after: only once smtp-source has exited (expensive counters)")
    ap.add_argument("--pid", type=int, action="append", default=[])
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--stall", type=float, default=60,
                    help="fail when the count has not moved for this long after the load ended")
    ap.add_argument("--log", required=True)
    ap.add_argument("--smtp-source", default="/usr/sbin/smtp-source")
    a = ap.parse_args()

    res = {"target": a.target, "size": a.size, "conc": a.conc, "n": a.n,
           "reuse": a.reuse}
    counter = make_counter(a.count, a.timeout)
    baseline = counter() if counter else 0
    res["baseline"] = baseline

    cmd = [a.smtp_source, "-4", "-s", str(a.conc), "-l", str(a.size), "-m", str(a.n),
           "-f", a.sender, "-t", a.rcpt, "-M", "source.test"]
    if a.reuse:
        cmd.append("-d")
    cmd.append(f"inet:{a.host}:{a.port}")
    res["cmd"] = " ".join(cmd)

    sampler = Sampler(a.pid)
    sampler.start()
    log = open(a.log, "ab")
    t0 = time.monotonic()
    src = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = t0 + a.timeout
    acked = done = None
    err = None
    last_n, last_change = 0, t0
    try:
        while True:
            now = time.monotonic()
            if acked is None:
                rc = src.poll()
                if rc is not None:
                    acked = time.monotonic() - t0
                    # The stall window starts when the load has ended.
                    last_change = max(last_change, t0 + acked)
                    if rc != 0:
                        err = f"smtp-source exited {rc} (see {a.log})"
                        break
                    if counter is None:
                        done = acked
                        break
            if now > deadline:
                err = f"timeout after {a.timeout:.0f}s (counted {last_n}/{a.n})"
                break
            if counter and (a.poll == "during" or acked is not None):
                got = counter() - baseline
                t = time.monotonic()
                if got != last_n:
                    last_n, last_change = got, t
                if got >= a.n and acked is not None:
                    done = t - t0
                    break
                if acked is not None and t - last_change > a.stall:
                    err = f"stalled at {got}/{a.n} for {a.stall:.0f}s after the load ended"
                    break
            time.sleep(0.05 if a.poll == "during" else 0.2)
    except Exception as e:  # count command failed, etc.
        err = f"{type(e).__name__}: {e}"
    finally:
        if src.poll() is None:
            try:
                os.killpg(src.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            src.wait()
        sampler.stop_ev.set()
        sampler.join()
        log.close()

    res.update({
        "acked_s": round(acked, 3) if acked is not None else None,
        "seconds": round(done, 3) if done is not None else None,
        "msgs_per_s": round(a.n / done, 1) if done else None,
        "peak_rss_kib": sampler.peak_rss,
        "peak_pss_kib": sampler.peak_pss,
        "peak_procs": sampler.peak_procs,
    })
    if err:
        res["error"] = err
    print(json.dumps(res), flush=True)
    return 1 if err else 0


if __name__ == "__main__":
    sys.exit(main())
