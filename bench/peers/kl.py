"""Peer of `steertool bench kl`: one KL-distillation training step with torch autograd.

kl.train_step.d576_l4_t128_b2: transformers' LlamaForCausalLM (float32, eager attention) with
SmolLM2-135M's layer shape (d 576, 9/3 heads, head_dim 64, d_ff 1536, vocab 49152) and 4 layers,
random weights, frozen; rank-16 linear post-block adapters (Δh = (h·D)·Uᵀ + b, forward hooks) on
every layer; loss = mean KL(p_ref ‖ p_model) over the first T−1 positions of 2 sequences of 128
tokens against precomputed reference log-probs; backward, global-norm clipping, Adam step.
Best of --steps timed steps after one warm-up; training tokens per second.

usage: python bench/peers/kl.py [--threads 1] [--steps 3] [--work DIR]
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=4,
                      num_attention_heads=9, num_key_value_heads=3, head_dim=64, rms_norm_eps=1e-5,
                      tie_word_embeddings=False, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    d, r = 576, 16
    params = []
    for layer in model.model.layers:
        down = (torch.randn(d, r) * 0.02).requires_grad_(True)
        up = (torch.randn(d, r) * 0.02).requires_grad_(True)
        bias = torch.zeros(d, requires_grad=True)
        params += [down, up, bias]

        def hook(_m, _i, out, down=down, up=up, bias=bias):
            h = out[0] if isinstance(out, tuple) else out
            h = h + (h @ down) @ up.T + bias
            return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h
        layer.register_forward_hook(hook)
    seqs = torch.randint(0, 49152, (2, 128))
    refs = torch.log_softmax(torch.randn(2, 128, 49152), -1)[:, :-1]
    opt = torch.optim.Adam(params, lr=1e-3)
    best = float("inf")
    for i in range(a.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        total = 0.0
        for s, ref in zip(seqs, refs):
            lp = torch.log_softmax(model(input_ids=s[None]).logits[0], -1)[:-1]
            total = total + (ref.exp() * (ref - lp)).sum()
        (total / (2 * 127)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        t = time.perf_counter() - t0
        if i > 0:
            best = min(best, t)
    print(json.dumps({"name": "kl.train_step.d576_l4_t128_b2", "unit": "tokens/s", "value": round(256 / best, 1),
                      "threads": a.threads}))


if __name__ == "__main__":
    main()
