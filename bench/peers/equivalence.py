"""Peer of `steertool bench equivalence`: the same figures measured with the Python references,
printed as the same JSON lines {name, unit, value, threads}.

- equivalence.linear_fit.d576_r16: reduced-rank regression with bias, closed form in numpy
  (float64 lstsq, SVD of the fitted values, rank 16), ms per 1k tokens.
- equivalence.block_jvp.d576_t<T>: torch.func.jvp of transformers' LlamaDecoderLayer (float32,
  eager attention, SmolLM2-135M shape) along dense deltas on all seven projections, forward
  included, 4 sequences of T tokens, ms per 1k tokens.

usage: python bench/peers/equivalence.py [--threads 1] [--tokens 2048] [--sequence-length 256] [--repeats 3]
"""
import argparse
import json
import time

import numpy as np
import torch
from torch.func import functional_call, jvp
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding


def emit(name, value, threads):
    print(json.dumps({"name": name, "unit": "ms per 1k tokens", "value": round(value, 3), "threads": threads}))


def rrr(h, delta, rank):
    mh, md = h.mean(0), delta.mean(0)
    hc, dc = h - mh, delta - md
    w, *_ = np.linalg.lstsq(hc, dc, rcond=None)
    _, _, vt = np.linalg.svd(hc @ w, full_matrices=False)
    vr = vt[:rank].T
    down = w @ vr
    return down, vr, md - mh @ down @ vr.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--sequence-length", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(a.threads)
    except ImportError:
        pass
    d = 576
    rng = np.random.default_rng(1)
    h = rng.standard_normal((a.tokens, d)).astype(np.float32)
    delta = (h @ (0.05 * rng.standard_normal((d, 32))) @ rng.standard_normal((32, d))
             + 0.1 * rng.standard_normal((a.tokens, d))).astype(np.float32)
    best = float("inf")
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        rrr(h.astype(np.float64), delta.astype(np.float64), 16)
        best = min(best, (time.perf_counter() - t0) * 1000)
    emit("equivalence.linear_fit.d576_r16", best * 1000 / a.tokens, a.threads)

    cfg = LlamaConfig(hidden_size=d, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3,
                      head_dim=64, num_hidden_layers=1, vocab_size=49152, rms_norm_eps=1e-5)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    layer = LlamaDecoderLayer(cfg, layer_idx=0).eval()
    params = {k: v.detach() for k, v in layer.named_parameters()}
    tangents = {k: (0.002 * torch.randn_like(v)) if v.dim() == 2 else torch.zeros_like(v) for k, v in params.items()}
    t = a.sequence_length
    rotary = LlamaRotaryEmbedding(cfg)
    pos = torch.arange(t).unsqueeze(0)
    xs = [torch.randn(1, t, d) for _ in range(4)]
    cos, sin = rotary(xs[0], pos)
    mask = torch.full((t, t), torch.finfo(torch.float32).min).triu(1)[None, None]

    def f(p, x):
        return functional_call(layer, p, (x,), dict(attention_mask=mask, position_ids=pos, position_embeddings=(cos, sin)))

    best = float("inf")
    with torch.no_grad():
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for x in xs:
                jvp(lambda p: f(p, x), (params,), (tangents,))
            best = min(best, (time.perf_counter() - t0) * 1000)
    emit(f"equivalence.block_jvp.d576_t{t}", best * 1000 / (4 * t), a.threads)


if __name__ == "__main__":
    main()
