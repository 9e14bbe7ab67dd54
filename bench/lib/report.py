#!/usr/bin/env python3
"""Turn measure.py's JSON lines into the results table and the ratios.

usage: report.py RESULTS.jsonl
"""
import json
import sys

from report_util import mib, table

NAMES = {"sink": "smtp-sink", "postfix": "postfix+dovecot", "pillarbox": "pillarbox"}
ORDER = ["sink", "postfix", "pillarbox"]


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    by_key = {(r["target"], r["size"], r["conc"]): r for r in rows}
    hdr = ("target", "size", "conc", "msgs", "acked s", "seconds", "msgs/s",
           "peak RSS MiB", "peak PSS MiB", "procs", "note")
    lines = []
    for r in sorted(rows, key=lambda r: (r["size"], r["conc"], ORDER.index(r["target"]))):
        lines.append((NAMES.get(r["target"], r["target"]), str(r["size"]), str(r["conc"]),
                      str(r["n"]),
                      f'{r["acked_s"]:.2f}' if r.get("acked_s") is not None else "-",
                      f'{r["seconds"]:.2f}' if r.get("seconds") is not None else "-",
                      f'{r["msgs_per_s"]:.0f}' if r.get("msgs_per_s") else "-",
                      mib(r.get("peak_rss_kib")), mib(r.get("peak_pss_kib")),
                      str(r.get("peak_procs", "-")), r.get("error", "")))
    table(hdr, lines, left=(0, 10))

    print()
    print("ratios (msgs/s):")
    keys = sorted({(r["size"], r["conc"]) for r in rows})
    for size, conc in keys:
        def rate(t):
            r = by_key.get((t, size, conc))
            return r.get("msgs_per_s") if r else None
        pb, pf, sk = rate("pillarbox"), rate("postfix"), rate("sink")
        parts = []
        parts.append("pillarbox/(postfix+dovecot) = " + (f"{pb / pf:.2f}x" if pb and pf else "n/a"))
        parts.append("pillarbox/smtp-sink = " + (f"{pb / sk:.2f}x" if pb and sk else "n/a"))
        parts.append("(postfix+dovecot)/smtp-sink = " + (f"{pf / sk:.2f}x" if pf and sk else "n/a"))
        print(f"  size {size:>6}, conc {conc:>2}: " + "; ".join(parts))

    # Targets from issue 2: 20 connections, 4 KiB, fsync on.
    def rate(t):
        r = by_key.get((t, 4096, 20))
        return r.get("msgs_per_s") if r else None
    pb, pf, sk = rate("pillarbox"), rate("postfix"), rate("sink")
    print()
    print("issue 2 targets (4 KiB, 20 connections):")
    def verdict(num, den, need):
        if not (num and den):
            return "n/a (missing run)"
        x = num / den
        return f"{x:.2f}x -> {'MET' if x >= need else 'NOT MET'} (need >= {need}x)"
    print(f"  pillarbox vs postfix+dovecot: {verdict(pb, pf, 5)}")
    print(f"  pillarbox vs smtp-sink:       {verdict(pb, sk, 0.5)}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
