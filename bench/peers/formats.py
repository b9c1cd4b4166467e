"""Peer of `steertool bench formats`: the same figures measured with the Python reference
libraries (safetensors' numpy safe_open; gguf-py's numpy dequantizers), printed as JSON lines
{"name", "unit", "value", "threads"}.

Usage: python bench/peers/formats.py [--work bench/work] [--repeats 3]
Reads bench/work/formats-1gib.safetensors (run `steertool bench formats` first to create it).
"""
import argparse
import json
import time

import numpy as np


def best(fn, repeats):
    t = float("inf")
    for _ in range(repeats):
        s = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - s)
    return t


def emit(name, unit, value):
    print(json.dumps({"name": name, "unit": unit, "value": round(value, 3), "threads": 1}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="bench/work")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    from safetensors import safe_open
    path = f"{a.work}/formats-1gib.safetensors"

    emit("formats.safetensors.open", "ms", best(lambda: safe_open(path, "np"), a.repeats) * 1000)
    total = 0

    def read_all():
        nonlocal total
        total = 0
        with safe_open(path, "np") as f:
            for k in f.keys():
                total += f.get_tensor(k).nbytes

    t = best(read_all, a.repeats)
    emit("formats.safetensors.read_all", "GB/s", total / t / 1e9)

    import gguf
    rng = np.random.default_rng(7)
    elements = 1 << 24
    T = gguf.GGMLQuantizationType
    scale_offsets = {T.Q8_0: [0], T.Q4_K: [0, 2], T.Q6_K: [208]}
    for qtype, offs in scale_offsets.items():
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, size=(elements // block, size), dtype=np.uint8)
        for o in offs:
            raw[:, o:o + 2] = ((rng.random(raw.shape[0]) - 0.5) * 0.1).astype(np.float16).view(np.uint8).reshape(-1, 2)
        data = raw.reshape(1, -1)
        t = best(lambda: gguf.quants.dequantize(data, qtype), a.repeats)
        emit(f"formats.dequant.{qtype.name.lower()}", "GB/s", elements * 4 / t / 1e9)

    src = np.ones(1 << 28, dtype=np.uint8)
    dst = np.empty_like(src)
    t = best(lambda: np.copyto(dst, src), a.repeats)
    emit("formats.memcpy", "GB/s", src.nbytes / t / 1e9)


if __name__ == "__main__":
    main()
