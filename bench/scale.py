#!/usr/bin/env python3
"""`make bench-scale`: steertool's main job on checkpoints of the sizes users fine-tune.

For each shape (Llama-3.2-1B, Llama-3.2-3B, Llama-3.1-8B; random weights, bf16 safetensors, and a
random PEFT LoRA r 16 on all seven projections) this script writes the checkpoint once into
.cache/bench-scale/<shape>/ (git-ignored; 2.5 / 6.4 / 16 GB) and runs, each as a child process
with its wall time and peak RSS (wait4's ru_maxrss):

  distill --lora   sequential, linear, rank 8, 2,048 calibration tokens (16 × 128), full
                   diagnostics; the report's own timings split forward passes from fits
  kl               distill --method kl, 5 Adam steps of batch 4 after the sequential start:
                   seconds per step (from the report's tokens/s) and peak RSS
  eval --tokens    the same 2,048 tokens, base + the distilled adapter, reference base + LoRA
                   (both bf16 in place, `--weights native`)
  generate         32 tokens after an 8-token prompt
  reference        (1B only) the distill job by PyTorch + transformers + PEFT in bf16 with numpy/
                   scipy fits (bench/peers/distill_scale.py, in .venv-bench), compared with the
                   distill row: seconds and their ratio, and the per-layer held-out errors' gap

Every job runs in its own memory cgroup (bench/memlimit.py) limited to --memory-limit GB (default
the smaller of 16 and 80% of the machine's memory): a job that outgrows it is killed alone and its
row says so, instead of the OOM killer taking the machine. Rows go to the table printed at the end
and into bench/results.json (names `scale.<shape>.<job>`, replacing rows of the same name); each
row records its job's inputs (checkpoint version, command, threads), and a job whose rows are
there for the same inputs is skipped unless --force, so an interrupted run resumes.

Not yet here: the decode comparison with llama.cpp on Q4_K_M / Q8_0 files of the 1B shape.

Uses numpy only (the bench venv or the system python3 with numpy); the reference job runs in
.venv-bench, which bench/run.py's ensure_venv creates when it is missing.
usage: python3 bench/scale.py [--shapes 1b 3b 8b] [--threads N] [--skip-build]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ensure_venv, run_command, venv_python  # noqa: E402  (bench/run.py: the same child-process measurement)

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench-scale"
DEFAULT_STEERTOOL = ROOT / ".build" / "release" / "steertool"
# STEERTOOL_BINARY runs another build of the same code (e.g. a copy, so that a long background
# run survives rebuilding .build meanwhile); it does not change a job's recorded inputs.
STEERTOOL = Path(os.environ.get("STEERTOOL_BINARY", DEFAULT_STEERTOOL)).resolve()
VERSION = "1"

SHAPES = {
    "1b": ("llama-3.2-1b", dict(hidden_size=2048, num_hidden_layers=16, intermediate_size=8192, num_attention_heads=32,
                                num_key_value_heads=8, head_dim=64, tie_word_embeddings=True)),
    "3b": ("llama-3.2-3b", dict(hidden_size=3072, num_hidden_layers=28, intermediate_size=8192, num_attention_heads=24,
                                num_key_value_heads=8, head_dim=128, tie_word_embeddings=True)),
    "8b": ("llama-3.1-8b", dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=14336, num_attention_heads=32,
                                num_key_value_heads=8, head_dim=128, tie_word_embeddings=False)),
}
VOCAB = 128256
PROJECTIONS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
LORA_RANK, LORA_ALPHA = 16, 32
CALIB_SEQUENCES, CALIB_LENGTH = 16, 128


def log(msg: str) -> None:
    print(f"bench-scale: {msg}", file=sys.stderr, flush=True)


def config(shape: dict) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB,
        "rms_norm_eps": 1e-5, "max_position_embeddings": 8192, "attention_bias": False, "mlp_bias": False,
        "rope_theta": 500000.0, "bos_token_id": 128000, "eos_token_id": 128001, "torch_dtype": "bfloat16", **shape,
    }


def projection_shapes(c: dict) -> dict[str, tuple[int, int]]:
    d, hd, ff = c["hidden_size"], c["head_dim"], c["intermediate_size"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    return {"self_attn.q_proj": (q, d), "self_attn.k_proj": (kv, d), "self_attn.v_proj": (kv, d),
            "self_attn.o_proj": (d, q), "mlp.gate_proj": (ff, d), "mlp.up_proj": (ff, d), "mlp.down_proj": (d, ff)}


def tensor_list(c: dict) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, kind) in file order; kind 'normal' or 'ones'."""
    d = c["hidden_size"]
    out = [("model.embed_tokens.weight", (VOCAB, d), "normal")]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out.append((p + "input_layernorm.weight", (d,), "ones"))
        out.append((p + "post_attention_layernorm.weight", (d,), "ones"))
        out += [(p + n + ".weight", s, "normal") for n, s in projection_shapes(c).items()]
    out.append(("model.norm.weight", (d,), "ones"))
    if not c["tie_word_embeddings"]:
        out.append(("lm_head.weight", (VOCAB, d), "normal"))
    return out


def write_safetensors_streaming(path: Path, tensors: list[tuple[str, tuple[int, ...], str, str]], fill) -> None:
    """Writes a safetensors file tensor by tensor (never the whole model in memory).
    tensors: (name, shape, dtype 'BF16'|'F32', kind); fill(name, shape, kind, dtype) -> bytes."""
    size = {"BF16": 2, "F32": 4}
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, dtype, _ in tensors:
        n = int(np.prod(shape)) * size[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape, dtype, kind in tensors:
            f.write(fill(name, shape, kind, dtype))
    tmp.rename(path)


def bf16_bytes(a: np.ndarray) -> bytes:
    return (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()


def prepare(key: str) -> Path:
    name, shape = SHAPES[key]
    c = config(shape)
    d = CACHE / name
    stamp = d / ".version"
    if stamp.exists() and stamp.read_text() == VERSION:
        return d
    log(f"writing {name} (random bf16 weights, PEFT LoRA r {LORA_RANK}) into {d}")
    (d / "lora").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def fill(tname, tshape, kind, dtype):
        if kind == "ones":
            a = np.ones(tshape, np.float32)
        else:
            a = rng.standard_normal(tshape, dtype=np.float32) * np.float32(0.02)
        return bf16_bytes(a) if dtype == "BF16" else a.astype(np.float32).tobytes()

    write_safetensors_streaming(d / "model.safetensors", [(n, s, "BF16", k) for n, s, k in tensor_list(c)], fill)
    (d / "config.json").write_text(json.dumps(c, indent=2))
    lora = []
    for l in range(c["num_hidden_layers"]):
        for p, (o, i) in projection_shapes(c).items():
            base = f"base_model.model.model.layers.{l}.{p}"
            lora.append((base + ".lora_A.weight", (LORA_RANK, i), "F32", "normal"))
            lora.append((base + ".lora_B.weight", (o, LORA_RANK), "F32", "normal"))
    write_safetensors_streaming(d / "lora" / "adapter_model.safetensors", lora, fill)
    (d / "lora" / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": str(d), "r": LORA_RANK,
        "lora_alpha": LORA_ALPHA, "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
        "target_modules": [p.split(".")[1] for p in PROJECTIONS], "use_rslora": False}, indent=2))
    ids = np.random.default_rng(1).integers(0, VOCAB, (CALIB_SEQUENCES, CALIB_LENGTH))
    (d / "calib.json").write_text(json.dumps(ids.tolist()))
    stamp.write_text(VERSION)
    return d


def parameter_count(key: str) -> int:
    c = config(SHAPES[key][1])
    return sum(int(np.prod(s)) for _, s, _ in tensor_list(c))


def meminfo_mb(key: str) -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("inf")


def job_inputs(key: str, cmd: list[str], threads: int) -> str:
    """What a job's result depends on besides the code: the checkpoint, the command, threads."""
    args = [str(DEFAULT_STEERTOOL)] + cmd[1:] if cmd and cmd[0] == str(STEERTOOL) else cmd
    args = [c.replace(str(ROOT) + "/", "") for c in args]
    return hashlib.sha1(json.dumps([VERSION, key, args, threads]).encode()).hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per job")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--jobs", nargs="*", default=["distill", "reference", "kl", "eval", "generate"],
                    choices=["distill", "reference", "kl", "eval", "generate"],
                    help="eval uses the adapter the distill job wrote (run distill once first); reference (1B "
                         "only) is the distill job by PyTorch + transformers + PEFT + numpy, compared with "
                         "the distill row")
    ap.add_argument("--memory-limit", type=float, default=min(16.0, 0.8 * meminfo_mb("MemTotal") / 1024),
                    help="GB per job (a memory cgroup; the job alone is killed past it)")
    ap.add_argument("--force", action="store_true", help="rerun jobs whose results are already recorded")
    ap.add_argument("--prepare-only", choices=list(SHAPES), help=argparse.SUPPRESS)
    a = ap.parse_args()
    # A SIGTERM (kill, a timeout) unwinds like Ctrl-C: run_command's cleanup stops the job and
    # removes its memory cgroup.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.prepare_only:
        prepare(a.prepare_only)
        return 0
    if not a.skip_build and "STEERTOOL_BINARY" not in os.environ:
        subprocess.run(["swift", "build", "-c", "release", "--product", "steertool"], check=True, cwd=ROOT)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads))
    rows, problems = [], []
    machine = f"{os.cpu_count()} cores, {meminfo_mb('MemTotal') / 1024:.0f} GB"
    limit = int(a.memory_limit * 2**30)
    results_path = ROOT / "bench" / "results.json"
    recorded = json.loads(results_path.read_text()) if results_path.exists() else []

    def save():
        """Writes the rows so far into the file as it is now (an interrupted run keeps its
        finished jobs; rows another run wrote meanwhile stay), through a renamed temporary file."""
        fresh = {(r["name"], r["unit"]) for r in rows}
        current = json.loads(results_path.read_text()) if results_path.exists() else []
        kept = [r for r in current if (r["name"], r["unit"]) not in fresh]
        tmp = results_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(kept + rows, indent=2) + "\n")
        tmp.rename(results_path)

    def row(name, unit, value, inputs):
        rows.append({"name": name, "unit": unit, "steertool": value, "peer": "", "peer_value": None, "ratio": None,
                     "threads": a.threads, "machine": machine, "inputs": inputs})

    def compare_reference(name, ours, peer, inputs):
        """Rows of the distill job against its PyTorch reference (ratio = reference / steertool
        seconds), and how far apart their per-layer held-out errors are."""
        peer_name = "PyTorch + transformers + PEFT (bf16) + numpy/scipy, bench/peers/distill_scale.py"
        for unit, ours_s, peer_s in [
            ("s", ours["seconds"]["total"], peer["seconds"]["total"]),
            ("s in forward passes", ours["seconds"]["forward"], peer["seconds"]["forward"]),
            ("s in fits", ours["seconds"]["fit"] + ours["seconds"]["diagnostics"],
             peer["seconds"]["fit"] + peer["seconds"]["diagnostics"]),
        ]:
            rows.append({"name": f"scale.{name}.distill vs reference", "unit": unit, "steertool": round(ours_s, 2),
                         "peer": peer_name, "peer_value": round(peer_s, 2), "ratio": round(peer_s / ours_s, 3),
                         "threads": a.threads, "machine": machine, "inputs": inputs})
        gap = max(abs(x["heldout_relative_error"] - y["heldout_relative_error"]) for x, y in zip(ours["layers"], peer["layers"]))
        row(f"scale.{name}.distill vs reference", "largest held-out error difference", round(gap, 5), inputs)

    for key in a.shapes:
        name = SHAPES[key][0]
        # The checkpoint is written by a child process: Linux keeps a process's pre-exec
        # high-water RSS in ru_maxrss, so a job forked from this process after it had held
        # gigabytes of numpy buffers would report them as its own peak.
        subprocess.run([sys.executable, __file__, "--prepare-only", key], check=True, cwd=ROOT)
        d = CACHE / name
        out = CACHE / "out"
        out.mkdir(parents=True, exist_ok=True)
        model, lora, calib = str(d), str(d / "lora"), str(d / "calib.json")
        adapter, report = out / f"{name}-steer.safetensors", out / f"{name}-report.json"
        kl_report = out / f"{name}-kl-report.json"
        reference_report = out / f"{name}-reference-report.json"
        jobs = [
            ("distill", [str(STEERTOOL), "distill", "--base", model, "--lora", lora, "--calib", calib,
                         "--method", "sequential", "--kind", "linear", "--rank", "8", "--output", str(adapter),
                         "--report", str(report), "--force", "--threads", str(a.threads)]),
            ("reference", [str(venv_python()), str(ROOT / "bench" / "peers" / "distill_scale.py"), "--model", model,
                           "--lora", lora, "--calib", calib, "--report", str(reference_report),
                           "--threads", str(a.threads)]),
            ("kl", [str(STEERTOOL), "distill", "--base", model, "--lora", lora, "--calib", calib,
                    "--method", "kl", "--kind", "linear", "--rank", "8", "--steps", "5", "--batch", "4",
                    "--eval-every", "5", "--output", str(out / f"{name}-kl.safetensors"),
                    "--report", str(kl_report), "--force", "--threads", str(a.threads)]),
            ("eval", [str(STEERTOOL), "eval", "--model", model, "--adapter", str(adapter), "--reference", model,
                      "--reference-adapter", lora, "--reference-weights", "native", "--tokens", calib,
                      "--threads", str(a.threads)]),
            ("generate", [str(STEERTOOL), "generate", "--model", model, "--tokens", "128000,9906,11,1268,527,499,30,220",
                          "--max-tokens", "32", "--ids", "--threads", str(a.threads)]),
        ]
        row(f"scale.{name}.file", "MB", (d / "model.safetensors").stat().st_size / 2**20, VERSION)
        for job, cmd in jobs:
            if job not in a.jobs or (job == "reference" and key != "1b"):
                continue
            inputs = job_inputs(key, cmd, a.threads)
            done = [r for r in recorded if r["name"].startswith(f"scale.{name}.{job}") and r.get("inputs") == inputs]
            if done and not a.force:
                log(f"{name}: {job}: recorded for the same inputs, skipped (--force reruns)")
                rows.extend(done)
                continue
            if job == "reference":
                ensure_venv()
            log(f"{name}: {job} (memory limit {a.memory_limit:.1f} GB)")
            r = run_command(cmd, env, a.timeout, memory_limit=limit)
            if isinstance(r, str):
                problems.append(f"{name} {job}: {r}")
                if job == "distill":
                    break
                continue
            if r["memory_limit_mb"] is None:
                problems.append(f"{name} {job}: no writable memory cgroup here; ran without a limit")
            row(f"scale.{name}.{job}", "s", round(r["seconds"], 2), inputs)
            row(f"scale.{name}.{job}", "MB peak RSS", round(r["peak_rss_mb"], 1), inputs)
            if r["group_peak_mb"] is not None:
                # What the kernel charged to the job's group: its own memory and the file pages it
                # read first; pages an earlier job left in the page cache stay charged to that job.
                row(f"scale.{name}.{job}", "MB charged to its cgroup", round(r["group_peak_mb"], 1), inputs)
            if job == "distill":
                sec = json.loads(report.read_text())["seconds"]
                row(f"scale.{name}.distill", "s in forward passes", round(sec["forward"], 2), inputs)
                row(f"scale.{name}.distill", "s in fits", round(sec["fit"] + sec["diagnostics"], 2), inputs)
            if job == "reference":
                compare_reference(name, json.loads(report.read_text()), json.loads(reference_report.read_text()), inputs)
            if job == "kl":
                curve = json.loads(kl_report.read_text())["curve"]
                rates = [p["tokens_per_second"] for p in curve if p.get("step", 0) > 0 and p.get("tokens_per_second")]
                if rates:
                    tokens_per_step = 4 * CALIB_LENGTH
                    row(f"scale.{name}.kl", "s per step", round(sum(tokens_per_step / t for t in rates) / len(rates), 2), inputs)
            save()

    problems.append("decode against llama.cpp on Q4_K_M / Q8_0 files of the 1B shape: not implemented yet")
    save()
    print(f"threads: {a.threads}   machine: {machine}")
    print(f"{'figure':40} {'unit':22} {'steertool':>12}")
    for r in rows:
        print(f"{r['name']:40} {r['unit']:22} {r['steertool']:>12}")
    if problems:
        print("\nnot measured:")
        for p in problems:
            print("  " + p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
