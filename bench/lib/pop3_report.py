#!/usr/bin/env python3
"""Turn pop3load's JSON lines into the POP3 results tables: every round,
then per step (concurrency x mode) the median of the warm rounds for
both servers side by side, the ratio and the verdict on issue 4's target
(Pillarbox >= 1.5x Dovecot).

usage: pop3_report.py RESULTS.jsonl
"""
import json
import statistics
import sys

from report_util import mib, num, print_problems, table

SERVERS = ["dovecot", "pillarbox"]
TARGET = 1.5  # issue 4: at least 1.5x Dovecot


def mode_name(r):
    return f'pipelined/{r["window"]}' if r.get("mode") == "pipelined" else "serial"


def bad(r):
    return bool(r.get("errors") or r.get("mismatch"))


def check(r):
    return "ERROR" if r.get("errors") else ("MISMATCH" if r.get("mismatch") else "ok")


def summarize(rs):
    """Median of the rounds (msgs/s, MB/s), their range, peak RSS."""
    if not rs:
        return None
    good = [r for r in rs if not bad(r)]
    use = good or rs
    return {
        "msgs": statistics.median(r["msgs_per_s"] for r in use),
        "mb": statistics.median(r["mb_per_s"] for r in use),
        "lo": min(r["msgs_per_s"] for r in use),
        "hi": max(r["msgs_per_s"] for r in use),
        "rss": max(r.get("peak_rss_kib") or 0 for r in rs),
        "pss": max(r.get("peak_pss_kib") or 0 for r in rs),
        "n": len(rs),
        "bad": len(rs) - len(good),
    }


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows.sort(key=lambda r: (r["conc"], SERVERS.index(r["server"]) if r["server"] in SERVERS else 9, r["round"]))
    failed = False

    print("every round (RETR phase: from the first RETR of all clients to the last byte of the last one;")
    print("MB = message octets as LIST counts them, 10^6 bytes; setup = connect+USER/PASS+STAT+UIDL+LIST of all clients):")
    table(("server", "conc", "round", "mode", "msgs", "MB", "seconds", "msgs/s", "MB/s", "setup s",
           "peak RSS MiB", "peak PSS MiB", "procs", "login RSS MiB", "check"),
          [(r["server"], str(r["conc"]), str(r["round"]) + (" first" if r.get("first") else ""), mode_name(r),
            str(r["retrs"]), f'{r["bytes"] / 1e6:.1f}', f'{r["seconds"]:.2f}', num(r["msgs_per_s"]),
            num(r["mb_per_s"]), f'{r["setup_seconds"]:.2f}', mib(r.get("peak_rss_kib")),
            mib(r.get("peak_pss_kib")), str(r.get("procs", "-")), mib(r.get("setup_peak_rss_kib")), check(r))
           for r in rows], left=(0, 2, 3, 14))

    # steps: (conc, label) -> server -> rounds
    steps = {}
    for r in rows:
        label = "first (cold)" if r.get("first") else mode_name(r)
        steps.setdefault((r["conc"], label), {}).setdefault(r["server"], []).append(r)

    def order(k):
        conc, label = k
        return (conc, 0 if label.startswith("first") else 1 if label == "serial" else 2, label)

    print()
    print("side by side: median of the warm rounds (the first round on fresh maildrops is shown apart,")
    print(f"informative only); range = slowest..fastest round; ratio = pillarbox / dovecot; target >= {TARGET:g}x:")
    out, spread, verdicts = [], [], []
    for key in sorted(steps, key=order):
        conc, label = key
        d, p = (summarize(steps[key].get(s, [])) for s in SERVERS)
        ratio = p["msgs"] / d["msgs"] if d and p and d["msgs"] and p["msgs"] else None
        wrong = any(x and x["bad"] for x in (d, p))
        if ratio is None:
            verdict = "n/a"
        elif wrong:
            verdict = "INVALID (error/mismatch)"
        elif label.startswith("first"):
            verdict = "(info)"
        else:
            verdict = "MET" if ratio >= TARGET else "NOT MET"
        if not label.startswith("first"):
            verdicts.append((conc, label, ratio, verdict))
        out.append((str(conc), label, num(d and d["msgs"]), num(p and p["msgs"]), f"{ratio:.2f}x" if ratio else "n/a",
                    num(d and d["mb"]), num(p and p["mb"]), verdict))
        rng = lambda s: f'{s["lo"]:.0f}..{s["hi"]:.0f} ({s["n"]})' if s else "-"
        mem = lambda s: f'{mib(s["rss"])} / {mib(s["pss"])}' if s else "-"
        spread.append((str(conc), label, rng(d), rng(p), mem(d), mem(p)))
    table(("conc", "step", "dovecot msgs/s", "pillarbox msgs/s", "ratio", "dovecot MB/s", "pillarbox MB/s", "verdict"),
          out, left=(1, 7))
    print()
    print("spread and memory: slowest..fastest round (rounds), peak RSS / PSS MiB of the RETR phase:")
    table(("conc", "step", "dovecot msgs/s range", "pillarbox msgs/s range", "dovecot RSS / PSS", "pillarbox RSS / PSS"),
          spread, left=(1,))

    print()
    print("peak memory over all rounds (RETR phase; whole process tree: Dovecot = master + every child):")
    for s in SERVERS:
        rs = [r for r in rows if r["server"] == s]
        if rs:
            top = max(rs, key=lambda r: r.get("peak_rss_kib") or 0)
            print(f"  {s:<10} {mib(top.get('peak_rss_kib'))} MiB RSS, {mib(top.get('peak_pss_kib'))} MiB PSS, "
                  f"{top.get('procs', '-')} processes (conc {top['conc']}, round {top['round']}); "
                  f"during logins up to {mib(max(r.get('setup_peak_rss_kib') or 0 for r in rs))} MiB RSS")

    if print_problems(rows, "round", lambda r: f"round {r['round']} {mode_name(r)}"):
        failed = True

    print()
    print(f"issue 4 target (Pillarbox >= {TARGET:g}x Dovecot, msgs/s of the RETR phase, median of warm rounds):")
    if not any(v[2] for v in verdicts):
        print("  n/a (needs both servers)")
        verdicts = []
    for conc, label, ratio, verdict in verdicts:
        rs = f"{ratio:6.2f}x" if ratio else "   n/a "
        print(f"  conc {conc:>2} {label:<13} pillarbox/dovecot {rs} -> {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
