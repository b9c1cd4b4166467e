#!/usr/bin/env python3
"""Peer of `steertool bench merge`: PEFT's merge_and_unload on transformers' LlamaForCausalLM plus
save_pretrained (safetensors), on the folders `steertool bench merge` creates under <work>/merge
(run it first). Prints JSON lines {"name", "unit", "value", "threads", "peer"}.

Usage: python bench/peers/merge.py [--work bench/work] [--threads 1] [--repeats 3]
"""
import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="bench/work")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch
    from peft import PeftModel
    from transformers import LlamaForCausalLM
    torch.set_num_threads(args.threads)
    folder = os.path.join(args.work, "merge")
    base_file = os.path.join(folder, "base", "model.safetensors")
    size = os.path.getsize(base_file)
    best = float("inf")
    for _ in range(args.repeats):
        os.sync()  # earlier benchmarks' dirty pages are written back before the clock starts (as steertool does)
        t = time.perf_counter()
        base = LlamaForCausalLM.from_pretrained(os.path.join(folder, "base"), dtype=torch.float32)
        merged = PeftModel.from_pretrained(base, os.path.join(folder, "lora")).merge_and_unload()
        merged.save_pretrained(os.path.join(folder, "peer-out"), safe_serialization=True)
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"name": "merge lora into f32 weights (155 MB, r 16)", "unit": "GB/s",
                      "value": round(size / best / 1e9, 3), "threads": args.threads,
                      "peer": "PEFT merge_and_unload + save_pretrained"}))


if __name__ == "__main__":
    main()
