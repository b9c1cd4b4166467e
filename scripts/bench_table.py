#!/usr/bin/env python3
"""Rewrites the table under "### Speed" in docs/benchmarks.md from bench/results.json
(run after `make bench`; the prose around the table is kept). The README's short speed table is
edited by hand.

Usage: python3 scripts/bench_table.py
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def main() -> None:
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    rows = ["| figure | unit | steertool | peer | peer value | ratio |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        rows.append(f"| {r['name']} | {r['unit']} | {fmt(r['steertool'])} | {r['peer'] or '—'} | "
                    f"{fmt(r['peer_value'])} | {fmt(r['ratio'])} |")
    readme = ROOT / "docs" / "benchmarks.md"
    lines = readme.read_text().split("\n")
    start = lines.index("### Speed")
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("| figure |"))
    last = first
    while last < len(lines) and lines[last].startswith("|"):
        last += 1
    lines[first:last] = rows
    readme.write_text("\n".join(lines))
    print(f"docs/benchmarks.md: {len(results)} rows")


if __name__ == "__main__":
    main()
