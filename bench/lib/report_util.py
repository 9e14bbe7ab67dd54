"""Formatting shared by the bench report scripts (report.py,
imap_report.py, pop3_report.py): memory in MiB, optional numbers, and
plain-text tables with left- or right-aligned columns."""


def mib(kib):
    return f"{kib / 1024:.1f}" if kib else "-"


def num(x, fmt="{:.1f}"):
    return fmt.format(x) if x else "-"


def table(hdr, rows, left=(0,)):
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(hdr)]
    fmt = "  ".join(f"{{:<{x}}}" if i in left else f"{{:>{x}}}" for i, x in enumerate(w))
    print(fmt.format(*hdr).rstrip())
    for r in rows:
        print(fmt.format(*r).rstrip())


def print_problems(rows, unit, where):
    """Prints every mismatch and error in rows, each placed by where(row);
    returns whether there was any. unit names what a row measures."""
    problems = [(r, m, "MISMATCH") for r in rows for m in r.get("mismatch") or []]
    problems += [(r, e, "ERROR") for r in rows for e in r.get("errors") or []]
    if not problems:
        return False
    print()
    print(f"!!! problems (a figure from a {unit} with an error or mismatch is not comparable):")
    for r, m, kind in problems:
        print(f"  {kind}: {r['server']} conc {r['conc']} {where(r)}: {m}")
    return True
