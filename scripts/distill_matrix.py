#!/usr/bin/env python3
"""Distillation matrix on the fixture pairs: every method × kind × rank, evaluated on held-out text.

For the full fine-tune (fixtures/tiny/finetuned) and the LoRA (fixtures/tiny/lora) of
fixtures/tiny/base: `steertool distill` with method first-order / oracle / sequential and kind
vector / linear / silu at ranks 4, 16, 64, calibrated on the start of corpus B's training text;
then one `steertool eval` per pair on held-out corpus-B token lists (fixtures/eval/tokens.json,
context 64, stride 32) with the fine-tune as reference. Prints a markdown table and writes
results/distill-matrix.json. Uses the release binary and the standard library only.

Usage: python3 scripts/distill_matrix.py [--ranks 4 16 64]
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ST = str(ROOT / ".build/release/steertool")
OUT = ROOT / ".cache/distill-matrix"


def run(args: list[str]) -> str:
    p = subprocess.run([ST] + args, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"steertool {' '.join(args[:1])} failed: {p.stderr.strip().splitlines()[-1:]}")
    return p.stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks", type=int, nargs="+", default=[4, 16, 64])
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    calib = OUT / "calib-b.txt"
    with gzip.open(ROOT / "fixtures/corpus/b.txt.gz", "rt", encoding="utf-8") as f:
        calib.write_text(f.read()[:48000])
    pairs = {
        "finetuned": (["--finetuned", "fixtures/tiny/finetuned"], ["--reference", "fixtures/tiny/finetuned"]),
        "lora": (["--lora", "fixtures/tiny/lora"], ["--reference", "fixtures/tiny/base", "--reference-adapter", "fixtures/tiny/lora"]),
    }
    results = []
    for pair, (delta_args, ref_args) in pairs.items():
        variants = []
        for method in ("first-order", "oracle", "sequential"):
            for kind in ("vector", "linear", "silu"):
                for rank in ([None] if kind == "vector" else args.ranks):
                    name = f"{pair}-{method}-{kind}" + (f"-r{rank}" if rank else "")
                    path = OUT / f"{name}.safetensors"
                    cmd = ["distill", "--base", "fixtures/tiny/base", *delta_args, "--calib", str(calib),
                           "--sequence-length", "128", "--method", method, "--kind", kind,
                           "--output", str(path), "--report", str(OUT / f"{name}.json"), "--force"]
                    if rank:
                        cmd += ["--rank", str(rank)]
                    print(f"distill {name}", file=sys.stderr, flush=True)
                    run(cmd)
                    variants.append((name, method, kind, rank, path))
        ev = json.loads(run(["eval", "--model", "fixtures/tiny/base", *sum((["--adapter", str(v[4])] for v in variants), []),
                             *ref_args, "--tokens", "fixtures/eval/tokens.json", "--context", "64", "--stride", "32", "--json"]))
        rows = ev["variants"]
        base, ref = rows[0], ev["reference"]
        for (name, method, kind, rank, _), row in zip(variants, rows[1:]):
            report = json.loads((OUT / f"{name}.json").read_text())
            results.append({
                "pair": pair, "method": method, "kind": kind, "rank": rank,
                "loss_base": base["nll"], "loss_reference": ref["nll"], "loss_steered": row["nll"],
                "recovered_fraction": row.get("recovered_fraction"), "kl_to_reference": row.get("kl_to_reference"),
                "parameters": report["parameters"], "parameter_fraction": report["parameter_fraction"],
            })
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results/distill-matrix.json").write_text(json.dumps(results, indent=1) + "\n")
    print("| pair | method | kind | rank | loss base | loss ref | loss steered | recovered | KL→ref | params (fraction) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['pair']} | {r['method']} | {r['kind']} | {r['rank'] or '—'} | {r['loss_base']:.3f} | "
              f"{r['loss_reference']:.3f} | {r['loss_steered']:.3f} | {r['recovered_fraction']:.3f} | "
              f"{r['kl_to_reference']:.3f} | {r['parameters']} ({100 * r['parameter_fraction']:.2f}%) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
