#!/usr/bin/env python3
"""Turn imapload's JSON lines into the IMAP results tables, the ratios,
the search-count comparison and the verdicts on issue 3's targets.

usage: imap_report.py RESULTS.jsonl
"""
import json
import sys

from report_util import mib, num, print_problems, table

ORDER = ["login", "select-first", "fetch-hdr-first", "select", "fetch-hdr", "fetch-body",
         "search-hdr", "search-body", "store", "append"]
SERVERS = ["dovecot", "pillarbox"]
IDLE_LIMIT_KIB = 1024 * 1024  # issue 3: under 1 GiB for 10,000 connections in IDLE


def step_key(r):
    return (r["conc"], ORDER.index(r["step"]) if r["step"] in ORDER else 99,
            SERVERS.index(r["server"]) if r["server"] in SERVERS else 9)


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    runs = sorted((r for r in rows if r["step"] != "idle"), key=step_key)
    idles = [r for r in rows if r["step"] == "idle"]
    by = {(r["server"], r["conc"], r["step"]): r for r in runs}
    bad = False

    print("per server and step (ops = units below, summed over all clients):")
    table(("server", "conc", "step", "unit", "ops", "seconds", "ops/s", "MB/s",
           "peak RSS MiB", "peak PSS MiB", "procs", "check"),
          [(r["server"], str(r["conc"]), r["step"], r["unit"], str(r["ops"]),
            f'{r["seconds"]:.2f}', num(r["ops_per_s"]), num(r["mb_per_s"]),
            mib(r.get("peak_rss_kib")), mib(r.get("peak_pss_kib")), str(r.get("procs", "-")),
            "ERROR" if r.get("errors") else ("MISMATCH" if r.get("mismatch") else "ok"))
           for r in runs], left=(0, 2, 3, 11))

    print()
    print("side by side (ratio = pillarbox ops/s / dovecot ops/s; target: >= 1x, >= 2x on fetch-hdr):")
    cmp_rows, verdicts = [], []
    for conc in sorted({r["conc"] for r in runs}):
        for step in ORDER:
            d, p = by.get(("dovecot", conc, step)), by.get(("pillarbox", conc, step))
            if not d and not p:
                continue
            need = 2.0 if step == "fetch-hdr" else 1.0
            dv = d["ops_per_s"] if d and not d.get("errors") else None
            pv = p["ops_per_s"] if p and not p.get("errors") else None
            wrong = any(x and x.get("mismatch") for x in (d, p))
            if dv and pv:
                ratio = pv / dv
                verdict = "MET" if ratio >= need else "NOT MET"
                if wrong:
                    verdict = "INVALID (mismatch)"
                rs = f"{ratio:.2f}x"
            else:
                ratio, rs = None, "n/a"
                verdict = "n/a (error)" if any(x and x.get("errors") for x in (d, p)) else "n/a"
            verdicts.append((conc, step, ratio, need, verdict))
            cmp_rows.append((str(conc), step, d["unit"] if d else p["unit"], num(dv), num(pv),
                             num(d and d["mb_per_s"]), num(p and p["mb_per_s"]),
                             mib(d and d.get("peak_rss_kib")), mib(p and p.get("peak_rss_kib")),
                             rs, f">= {need:g}x", verdict))
    table(("conc", "step", "unit", "dovecot/s", "pillarbox/s", "dovecot MB/s", "pillarbox MB/s",
           "dovecot RSS MiB", "pillarbox RSS MiB", "ratio", "target", "verdict"),
          cmp_rows, left=(1, 2, 11))

    if idles:
        print()
        print("idle: connections logged in, INBOX selected, in IDLE (memory of the server's whole process tree):")
        irows = []
        for r in idles:
            x = r.get("extra", {})
            irows.append((r["server"], str(r["conc"]), str(r["ops"]), f'{r["seconds"]:.1f}',
                          num(r["ops_per_s"]), mib(x.get("baseline_rss_kib")), mib(r.get("peak_rss_kib")),
                          mib(r.get("peak_pss_kib")), num(x.get("rss_kib_per_conn")),
                          num(x.get("pss_kib_per_conn")), str(r.get("procs", "-"))))
        table(("server", "wanted", "in IDLE", "setup s", "conns/s", "idle RSS MiB before",
               "peak RSS MiB", "peak PSS MiB", "RSS KiB/conn", "PSS KiB/conn", "procs"), irows)

    searches = {}
    for r in runs:
        for q, s in (r.get("searches") or {}).items():
            searches.setdefault((r["conc"], q), {"expected": s["expected"]})[r["server"]] = s["got"]
    if searches:
        print()
        print("search hit counts (expected: placed by the generator; every client must get it):")
        srows = []
        for (conc, q), s in sorted(searches.items()):
            got = [s.get(x) for x in SERVERS if x in s]
            agree = all(g == s["expected"] for g in got)
            bad |= not agree
            srows.append((str(conc), q, str(s["expected"]), str(s.get("dovecot", "-")),
                          str(s.get("pillarbox", "-")), "ok" if agree else "!!! MISMATCH"))
        table(("conc", "query", "expected", "dovecot", "pillarbox", "check"), srows, left=(1, 5))

    if print_problems(rows, "step", lambda r: r["step"]):
        bad = True

    print()
    print("issue 3 targets:")
    for conc, step, ratio, need, verdict in verdicts if any(v[2] for v in verdicts) else []:
        rs = f"{ratio:6.2f}x" if ratio else "   n/a "
        print(f"  conc {conc:>2} {step:<16} pillarbox/dovecot {rs} -> {verdict} (need >= {need:g}x)")
    if not any(v[2] for v in verdicts):
        print("  throughput: n/a (needs both servers)")
    for r in idles:
        if r["server"] != "pillarbox":
            continue
        rss = r.get("peak_rss_kib") or 0
        if r["ops"] < r["conc"]:
            print(f"  idle RSS: n/a (only {r['ops']} of {r['conc']} connections reached IDLE)")
        else:
            v = "MET" if rss < IDLE_LIMIT_KIB else "NOT MET"
            print(f"  idle RSS for {r['conc']} connections: {rss / 1024:.0f} MiB -> {v} (need < 1024 MiB)")
    if not any(r["server"] == "pillarbox" for r in idles):
        print("  idle RSS: n/a (no Pillarbox idle run)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
