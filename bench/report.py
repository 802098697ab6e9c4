#!/usr/bin/env python3
"""Turn bench/run.sh's results into the table docs/performance.md shows.

Usage: bench/report.py WORKDIR [--mkconfig ok|na|unknown]

Reads WORKDIR/results.tsv, steps.tsv and machine.txt; prints Markdown:
the machine, one row per pipeline (median wall time over the runs, spread,
ratio to the classic pipeline, bytes written, peak RSS, output size), the
4x rootfs rows, the goals with PASS/MISS, and the median time of each step.
"""

import csv
import statistics
import sys
from pathlib import Path

PIPELINES = ["classic", "mkimg-template", "mkimg-mkconfig"]
MIB = 1 << 20


def read_tsv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def median(values):
    return statistics.median(values) if values else None


def mib(n) -> str:
    return "—" if n is None else f"{n / MIB:,.0f} MiB"


def secs(s) -> str:
    return "—" if s is None else f"{s:.1f}"


class Pipeline:
    """The successful runs of one pipeline on one rootfs."""

    def __init__(self, rows: list[dict]):
        self.all = rows
        self.ok = [r for r in rows if r["rc"] == "0" and r["check"] == "ok"]

    def col(self, key: str) -> list[float]:
        return [float(r[key]) for r in self.ok]

    @property
    def wall(self):
        return median(self.col("wall_s"))

    def spread(self) -> str:
        w = self.col("wall_s")
        if not w:
            return "—"
        half = (max(w) - min(w)) / 2 / statistics.median(w) * 100
        return f"{min(w):.1f}–{max(w):.1f} (±{half:.0f}%)"

    def med(self, key: str):
        return median(self.col(key))

    def peak_rss(self):
        rss = self.col("maxrss_kib")
        return max(rss) * 1024 if rss else None

    def runs(self) -> str:
        return f"{len(self.ok)}/{len(self.all)}"


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    work = Path(sys.argv[1])
    mkconfig_state = "unknown"
    if "--mkconfig" in sys.argv:
        mkconfig_state = sys.argv[sys.argv.index("--mkconfig") + 1]
    results = read_tsv(work / "results.tsv")
    steps = read_tsv(work / "steps.tsv")

    def pipe(set_: str, name: str) -> Pipeline:
        return Pipeline([r for r in results if r["set"] == set_ and r["pipeline"] == name])

    out = []
    out.append("```")
    out.append((work / "machine.txt").read_text().rstrip())
    out.append("```")
    out.append("")
    classic = pipe("1x", "classic")
    header = ("| pipeline | rootfs | median wall s | spread min–max | ratio | "
              "bytes written (device) | written by own processes | peak RSS | "
              "output size | load1 | runs ok |")
    out.append(header)
    out.append("|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|")
    rows = {}
    for set_ in ("1x", "4x"):
        for name in PIPELINES:
            p = pipe(set_, name)
            rows[(set_, name)] = p
            if not p.all:
                has_set = any(r["set"] == set_ for r in results)
                if name == "mkimg-mkconfig" and has_set and mkconfig_state != "ok":
                    out.append(f"| {name} | {set_} | n/a (not implemented) | | | | | | | | |")
                continue
            ratio = "—"
            if p.wall is not None and classic.wall:
                ratio = f"{p.wall / classic.wall:.2f}×"
            if set_ == "4x":
                base = pipe("1x", name).wall
                ratio = f"{p.wall / base:.2f}× its 1x" if p.wall and base else "—"
            out.append(
                f"| {name} | {set_} | {secs(p.wall)} | {p.spread()} | {ratio} | "
                f"{mib(p.med('dev_bytes'))} | {mib(p.med('proc_bytes'))} | "
                f"{mib(p.peak_rss())} | {mib(p.med('out_bytes'))} | "
                f"{median(p.col('load1')) or 0:.2f} | {p.runs()} |")
    out.append("")

    # Goals.
    out.append("| goal | measured | |")
    out.append("|---|---|---|")

    def goal(text: str, value, limit: float, fmt: str):
        if value is None:
            out.append(f"| {text} | n/a | — |")
        else:
            verdict = "PASS" if value <= limit else "MISS"
            out.append(f"| {text} | {fmt.format(value)} | {verdict} |")

    t1 = rows[("1x", "mkimg-template")]
    m1 = rows[("1x", "mkimg-mkconfig")]
    t4 = rows[("4x", "mkimg-template")]
    goal("mkimg template ≤ 0.20 × classic time",
         t1.wall / classic.wall if t1.wall and classic.wall else None, 0.20, "{:.2f}×")
    goal("mkimg mkconfig ≤ 0.60 × classic time",
         m1.wall / classic.wall if m1.wall and classic.wall else None, 0.60, "{:.2f}×")
    for name, p in (("template", t1), ("mkconfig", m1)):
        dev, size = p.med("dev_bytes"), p.med("out_bytes")
        goal(f"mkimg {name}: bytes written ≤ 1.2 × qcow2 size (device counter)",
             dev / size if dev and size else None, 1.2, "{:.2f}×")
    mk_rss = [p.peak_rss() for (s, n), p in rows.items() if n != "classic" and p.peak_rss()]
    goal("mkimg peak RSS ≤ 256 MiB (1x and 4x)",
         max(mk_rss) / MIB if mk_rss else None, 256, "{:.0f} MiB")
    goal("mkimg template: 4× rootfs ≤ 4.8 × the time",
         t4.wall / t1.wall if t4.wall and t1.wall else None, 4.8, "{:.2f}×")
    m4 = rows[("4x", "mkimg-mkconfig")]
    if m4.ok:
        goal("mkimg mkconfig: 4× rootfs ≤ 4.8 × the time",
             m4.wall / m1.wall if m4.wall and m1.wall else None, 4.8, "{:.2f}×")
    out.append("")

    # Where the time goes: median seconds per step.
    out.append("Median seconds per step (classic: GNU time per step, RSS in MiB; "
               "mkimg: its own progress lines, the time up to each line):")
    out.append("")
    for set_ in ("1x", "4x"):
        for name in PIPELINES:
            mine = [s for s in steps if s["set"] == set_ and s["pipeline"] == name]
            if not mine:
                continue
            order, by = [], {}
            for s in mine:
                if s["step"] not in by:
                    order.append(s["step"])
                    by[s["step"]] = []
                by[s["step"]].append(s)
            parts = []
            for step in order:
                sec = median([float(s["seconds"]) for s in by[step]])
                rss = [float(s["maxrss_kib"]) for s in by[step] if s["maxrss_kib"] not in ("-", "")]
                extra = f", {max(rss) / 1024:.0f} MiB" if rss else ""
                parts.append(f"{step} {sec:.1f}s{extra}")
            out.append(f"- {name} ({set_}): " + "; ".join(parts))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
