#!/usr/bin/env python3
"""PyTorch reference of `make bench-scale`'s distill job, written as a PyTorch user would.

The job: `steertool distill --base <folder> --lora <PEFT folder> --calib <ids.json> --method
sequential --kind linear --rank 8` with its full per-layer report. Here the same computation with
transformers + PEFT + numpy/scipy:

- the base as transformers' LlamaForCausalLM in bf16 (sdpa attention), the LoRA applied unmerged
  by PEFT; the fine-tune is the model with the adapter on, the base the same model inside
  `disable_adapter()`;
- layer by layer, all calibration sequences as one batch (they have equal lengths): the base's
  decoder layer on the steered stream, with forward hooks recording the attention output (o_proj)
  and the MLP output (the mlp module), and the fine-tune's layer on its own stream; the shift
  Δ = Z_ft − Z;
- per layer, in numpy float64 on the held-in tokens (the same split as steertool's TokenSplit:
  SplitMix64 Fisher–Yates over all tokens, 20% held out, seed 0): reduced-rank regression with
  bias (np.linalg.lstsq, SVD of the fitted values, rank 8) of Δ on the block output (the
  adapter), the same fit on the attention and MLP outputs (the site errors), the rank-8 fit
  without bias on the MLP output and Theorem 3.1 for its output against the block outputs
  (scipy.linalg.orth and subspace_angles, as fixtures/generate/extra/equivalence.py);
- the steered block output Z + adapter(Z) is the stream entering the next layer.

Writes a report with steertool's fields (seconds split into forward / fit / diagnostics, per layer
the held-out error, site errors and e*) to --report, so the two can be compared layer by layer.

usage: python bench/peers/distill_scale.py --model DIR --lora DIR --calib ids.json --report OUT [--threads N]
"""
import argparse
import json
import time

import numpy as np
import scipy.linalg
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

RCOND = 1e-5


def token_split(count, held_out_fraction=0.2, seed=0):
    """steertool's TokenSplit: Fisher–Yates with SplitMix64, held-out rows first."""
    mask = (1 << 64) - 1
    state = seed
    order = list(range(count))

    def next_u64():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    for i in range(count - 1, 0, -1):
        j = next_u64() % (i + 1)
        order[i], order[j] = order[j], order[i]
    n_out = min(max(int(round(held_out_fraction * count)), 1), count - 1)
    return np.array(sorted(order[n_out:])), np.array(sorted(order[:n_out]))


def rrr(h, delta, rank, intercept=True):
    """Reduced-rank regression: (down [p, r], up [q, r], bias [q]) with Δ ≈ (H·down)·upᵀ + bias."""
    mh = h.mean(0) if intercept else np.zeros(h.shape[1])
    md = delta.mean(0) if intercept else np.zeros(delta.shape[1])
    hc, dc = h - mh, delta - md
    w, *_ = np.linalg.lstsq(hc, dc, rcond=None)
    _, _, vt = np.linalg.svd(hc @ w, full_matrices=False)
    up = vt[:rank].T
    down = w @ up
    return down, up, md - (mh @ down) @ up.T


def relative_error(h, delta, fit):
    down, up, bias = fit
    return float(np.linalg.norm(delta - ((h @ down) @ up.T + bias)) / np.linalg.norm(delta))


def theorem31(t, z):
    nt = np.linalg.norm(t)
    qz = scipy.linalg.orth(z, rcond=RCOND)
    qt = scipy.linalg.orth(t, rcond=RCOND)
    estar = np.linalg.norm(t - qz @ (qz.T @ t)) / nt
    angles = np.sort(scipy.linalg.subspace_angles(qt, qz))
    k = qt.shape[1]
    sig = np.linalg.svd(t, compute_uv=False)[:k]
    th = np.concatenate([angles, np.full(k - len(angles), np.pi / 2)])[:k]
    s2 = np.sin(th) ** 2
    return {"exact": float(estar), "lower": float(np.sqrt(np.sum(sig ** 2 * s2)) / nt),
            "upper": float(np.sqrt(np.sum(sig ** 2 * s2[::-1])) / nt)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--lora", required=True)
    ap.add_argument("--calib", required=True, help="JSON list of token-id lists of equal length")
    ap.add_argument("--report", required=True)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-layers", type=int, help="stop after this many layers (a quick check)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seconds = {"forward": 0.0, "fit": 0.0, "diagnostics": 0.0}
    start = time.perf_counter()

    sequences = json.load(open(a.calib))
    if len({len(s) for s in sequences}) != 1:
        raise SystemExit("distill_scale.py: the calibration sequences must have equal lengths (one batch)")
    ids = torch.tensor(sequences)
    b, t = ids.shape
    held_in, held_out = token_split(b * t)

    base = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation="sdpa")
    model = PeftModel.from_pretrained(base, a.lora).eval()
    layers = model.base_model.model.model.layers
    inner = model.base_model.model.model

    def rows(x):
        return x.reshape(b * t, -1).float().numpy().astype(np.float64)

    with torch.inference_mode():
        phase = time.perf_counter()
        embedded = inner.embed_tokens(ids)
        position_ids = torch.arange(t).unsqueeze(0).expand(b, t)
        rotary = inner.rotary_emb(embedded, position_ids)
        stream, ft_stream = embedded, embedded
        seconds["forward"] += time.perf_counter() - phase
        reports = []
        for l, layer in enumerate(layers[:a.max_layers]):
            phase = time.perf_counter()
            captured = {}
            hooks = [layer.self_attn.o_proj.register_forward_hook(lambda m, i, o: captured.__setitem__("attn", o)),
                     layer.mlp.register_forward_hook(lambda m, i, o: captured.__setitem__("mlp", o))]
            with model.disable_adapter():
                z_t = layer(stream, attention_mask=None, position_ids=position_ids, position_embeddings=rotary)
            for h in hooks:
                h.remove()
            z_t = z_t[0] if isinstance(z_t, tuple) else z_t
            ft_t = layer(ft_stream, attention_mask=None, position_ids=position_ids, position_embeddings=rotary)
            ft_stream = ft_t[0] if isinstance(ft_t, tuple) else ft_t
            z, delta = rows(z_t), rows(ft_stream) - rows(z_t)
            seconds["forward"] += time.perf_counter() - phase

            phase = time.perf_counter()
            zi, di = z[held_in], delta[held_in]
            fit = rrr(zi, di, a.rank)
            error = relative_error(z[held_out], delta[held_out], fit)
            steered = z + (z @ fit[0]) @ fit[1].T + fit[2]
            stream = torch.from_numpy(steered.reshape(b, t, -1)).to(torch.bfloat16)
            seconds["fit"] += time.perf_counter() - phase

            phase = time.perf_counter()
            sites = {"post_block": error}
            for name, key in [("pre_mlp", "attn"), ("post_mlp", "mlp")]:
                x = rows(captured[key])
                sites[name] = relative_error(x[held_out], delta[held_out], rrr(x[held_in], di, a.rank))
            x = rows(captured["mlp"])[held_in]
            down, _, _ = rrr(x, di, a.rank, intercept=False)
            report = {"layer": l, "rank": a.rank, "heldout_relative_error": error,
                      "theorem31": theorem31(x @ down, zi), "sites": sites}
            seconds["diagnostics"] += time.perf_counter() - phase
            reports.append(report)
            print(f"layer {l}: held-out {error:.4f}, e* {report['theorem31']['exact']:.4f}", flush=True)
    seconds["total"] = time.perf_counter() - start
    json.dump({"method": "sequential", "kind": "linear", "layers": reports, "seconds": seconds,
               "threads": a.threads, "source": f"torch {torch.__version__}, transformers, peft, numpy {np.__version__}, "
                                               f"scipy {scipy.__version__}"},
              open(a.report, "w"), indent=1)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
