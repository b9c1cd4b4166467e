#!/usr/bin/env python3
"""Small sweep of `steertool distill --method kl` on the fixture pair (the target of 0.9 of the gain at ≤ 2% of the parameters).

fixtures/tiny/base → fixtures/tiny/finetuned, calibration fixtures/kl/calib.json (109 windows of
held-out corpus-B text, the evaluation spans removed), held-out fixtures/eval/tokens.json (the
command's own whole-sequence evaluation, as in docs/benchmarks.md's kl table), --held-out 0, batch 4
unless stated, seed 0. Each configuration is one run; its report's curve (held-out recovered
fraction every --eval-every steps, and at the end) is kept, so the best logged point and the
final one are both reported (with a cosine schedule the k-th step of a longer run is not a
k-step run). Prints a markdown table and writes results/kl-sweep.json (wall seconds are
indicative: 2 shared cores, one BLAS thread). Uses the release binary and the standard library.

Usage: python3 scripts/kl_sweep.py [--work DIR] [--only NAME ...] [--reuse]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ST = str(ROOT / ".build/release/steertool")

# name, kind, rank, steps, lr, batch, eval-every, extra arguments
CONFIGS = [
    ("linear-r16-300", "linear", 16, 300, 1e-2, 4, 100, []),
    ("linear-r16-1000", "linear", 16, 1000, 1e-2, 4, 250, []),
    ("linear-r16-3000", "linear", 16, 3000, 1e-2, 4, 500, []),
    ("linear-r16-1000-lr3e-2", "linear", 16, 1000, 3e-2, 4, 250, []),
    ("linear-r16-1000-lr3e-3", "linear", 16, 1000, 3e-3, 4, 250, []),
    ("linear-r16-1000-b16", "linear", 16, 1000, 1e-2, 16, 250, []),
    ("silu-r16-1000", "silu", 16, 1000, 1e-2, 4, 250, []),
    ("linear-r12-3000", "linear", 12, 3000, 1e-2, 4, 500, []),
    ("linear-r64-3000", "linear", 64, 3000, 1e-2, 4, 500, []),
    ("linear-r16-3000-lr3e-2", "linear", 16, 3000, 3e-2, 4, 500, []),
    ("silu-r16-1000-lr3e-2", "silu", 16, 1000, 3e-2, 4, 250, []),
    ("linear-r64-3000-lr3e-2", "linear", 64, 3000, 3e-2, 4, 500, []),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=str(ROOT / ".cache/kl-sweep"), help="folder for adapters and reports")
    ap.add_argument("--only", nargs="*", help="run only these configuration names")
    ap.add_argument("--output", default=str(ROOT / "results/kl-sweep.json"))
    ap.add_argument("--reuse", action="store_true", help="read a run's existing report in --work instead of rerunning it")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.output)
    previous = {r["name"]: r for r in json.loads(out.read_text())["runs"]} if out.exists() else {}
    runs = []
    for name, kind, rank, steps, lr, batch, every, extra in CONFIGS:
        if args.only and name not in args.only:
            if name in previous:
                runs.append(previous[name])
            continue
        report = work / f"{name}.json"
        cmd = [ST, "distill", "--base", "fixtures/tiny/base", "--finetuned", "fixtures/tiny/finetuned",
               "--calib", "fixtures/kl/calib.json", "--method", "kl", "--kind", kind, "--rank", str(rank),
               "--held-out", "0", "--steps", str(steps), "--batch", str(batch), "--lr", str(lr),
               "--eval-every", str(every), "--eval-tokens", "fixtures/eval/tokens.json", "--threads", "1",
               "--output", str(work / f"{name}.safetensors"), "--report", str(report), "--force", *extra]
        if args.reuse and report.exists() and name in previous:
            seconds = previous[name]["wall_seconds"]
        else:
            print(f"kl sweep: {name}", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=os.environ | {"OPENBLAS_NUM_THREADS": "1"})
            seconds = time.monotonic() - t0
            if p.returncode != 0:
                raise SystemExit(f"{name} failed: {p.stderr.strip().splitlines()[-1:]}")
        rep = json.loads(report.read_text())
        train_kl = [c["train_kl"] for c in rep["curve"] if c["train_kl"] is not None]
        curve = [{"step": c["step"], "recovered_fraction": c["recovered_fraction"], "heldout_kl": c["heldout_kl"]}
                 for c in rep["curve"] if c["recovered_fraction"] is not None]
        best = max(curve, key=lambda c: c["recovered_fraction"])
        runs.append({"name": name, "kind": kind, "rank": rank, "steps": steps, "lr": lr, "batch": batch,
                     "parameters": rep["parameters"], "parameter_fraction": rep["parameter_fraction"],
                     "initial_recovered": curve[0]["recovered_fraction"], "final_recovered": curve[-1]["recovered_fraction"],
                     "final_heldout_kl": curve[-1]["heldout_kl"],
                     "train_kl_last100": sum(train_kl[-100:]) / len(train_kl[-100:]), "best_recovered": best["recovered_fraction"],
                     "best_step": best["step"], "wall_seconds": round(seconds, 1), "curve": curve})
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"pair": "fixtures/tiny/base -> fixtures/tiny/finetuned", "calibration": "fixtures/kl/calib.json",
                               "heldout": "fixtures/eval/tokens.json", "runs": runs}, indent=1) + "\n")
    os.replace(tmp, out)
    print("| run | kind | rank | steps | lr | batch | params (fraction) | recovered: init → final (best @ step) | KL held-out (train, last 100 steps) | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        print(f"| {r['name']} | {r['kind']} | {r['rank']} | {r['steps']} | {r['lr']:g} | {r['batch']} | "
              f"{r['parameters']:,} ({100 * r['parameter_fraction']:.2f}%) | {r['initial_recovered']:.3f} → "
              f"{r['final_recovered']:.3f} ({r['best_recovered']:.3f} @ {r['best_step']}) | {r['final_heldout_kl']:.3f} ({r['train_kl_last100']:.3f}) | "
              f"{r['wall_seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
