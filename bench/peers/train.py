"""Peer of `steertool bench train`: the same training steps with PyTorch autograd + AdamW.

train.step.linear_r8.<shape> and train.step.lora_r8_all7.<shape>: transformers' LlamaForCausalLM
(float32, CPU, its default attention) with SmolLM2-135M's shape (d 576, 9 / 3 heads, head_dim 64,
d_ff 1536, vocab 49152, --layers decoder layers), random weights, frozen; a batch of 8 random
sequences of 64 tokens in one forward, the cross-entropy on the last 16 tokens of each (labels
−100 elsewhere, transformers' shifted loss); then backward, clip_grad_norm_(1.0), AdamW step.
Kinds: a rank-8 linear post-block adapter (h + (h·D)·Uᵀ by a forward hook on every decoder layer)
and PEFT's LoRA (r 8, alpha 16, all seven projections). Best of --steps timed steps after one
warm-up; training tokens per second.

usage: python bench/peers/train.py [--threads 1] [--layers 30] [--steps 3]
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

BATCH, LENGTH, COMPLETION = 8, 64, 16


def model_of(layers):
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
                      num_attention_heads=9, num_key_value_heads=3, head_dim=64, rms_norm_eps=1e-5,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def linear_adapters(model, d=576, r=8):
    params = []
    for layer in model.model.layers:
        down = (torch.randn(d, r) / (3 * d) ** 0.5).requires_grad_(True)
        up = torch.zeros(d, r, requires_grad=True)
        params += [down, up]

        def hook(_m, _i, out, down=down, up=up):
            h = out[0] if isinstance(out, tuple) else out
            h = h + (h @ down) @ up.T
            return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h
        layer.register_forward_hook(hook)
    return model, params


def lora(model):
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, cfg)
    return model, [p for p in model.parameters() if p.requires_grad]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for kind in ["linear_r8", "lora_r8_all7"]:
        torch.manual_seed(0)
        model = model_of(a.layers)
        model, params = linear_adapters(model) if kind == "linear_r8" else lora(model)
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
        best = float("inf")
        for i in range(a.steps + 1):
            ids = torch.randint(0, 49152, (BATCH, LENGTH))
            labels = ids.clone()
            labels[:, :LENGTH - COMPLETION] = -100
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            t = time.perf_counter() - t0
            if i > 0:
                best = min(best, t)
        print(json.dumps({"name": f"train.step.{kind}.d576_l{a.layers}_b{BATCH}_t{LENGTH}", "unit": "tokens/s",
                          "value": round(BATCH * LENGTH / best, 1), "threads": a.threads}), flush=True)


if __name__ == "__main__":
    main()
