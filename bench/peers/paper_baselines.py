"""The PyTorch rows of the paper table (issue 33): full fine-tuning and PEFT LoRA on ListOps.

Trains transformers' LlamaForCausalLM / Gemma3ForCausalLM (float32, CPU) loaded from the same GGUF
file steertool runs (transformers' gguf loader dequantizes it), on the same data, batches,
optimizer steps and schedule as `steertool train`:
  * lines {"prompt", "completion"} tokenized as steertool's TrainingData does without a chat
    template: the tokenizer's prompt ids with its special prefix, the completion's ids without,
    then the config's EOS; the loss on the completion and the EOS;
  * the data order of SteeringTrainer.schedule (per epoch a SplitMix64(seed) Fisher–Yates
    shuffle running on across epochs, cut into groups of batch × accumulation sequences);
  * each step's loss the mean over all target tokens of its group; AdamW (β 0.9 / 0.999, ε 1e-8,
    weight decay), clip_grad_norm_(1.0), transformers' linear schedule with ⌈steps · warmup⌉
    warm-up steps.
Kinds: `full` (every parameter; written as a Hugging Face folder steertool reads: config.json,
model.safetensors, the tokenizer), `lora` (PEFT LoRA r 8, alpha 16, dropout 0, all seven
projections; a PEFT folder) and `linear` (the PyTorch re-implementation of `steertool train
--kind linear --rank 8`: h + (h·D)·Uᵀ added to every decoder layer's output by a forward hook, D
[d, 8] initialised as steertool draws it — `Tensor.randomNormal(std 1/√(3d), seed + 1 + layer)`,
Box–Muller on SplitMix64 — and U = 0; written as a steertool steering file). Prints one JSON line: {"kind", "steps", "seconds", "tokens",
"tokens_per_second", "parameters", "parameter_fraction", "first_loss", "last_loss"}.

usage: python bench/peers/paper_baselines.py --gguf MODEL.gguf --data train.jsonl --kind full|lora
       --lr X --output DIR [--epochs 1 --batch 8 --grad-accum 2 --warmup 0.03 --seed 0 --threads 2 --max-steps N]
"""
import argparse
import json
import math
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, get_linear_schedule_with_warmup

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def schedule(n, epochs, per_step, seed):
    """SteeringTrainer.schedule."""
    rng = SplitMix64(seed)
    steps = []
    for _ in range(epochs):
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = rng.next() % (i + 1)
            order[i], order[j] = order[j], order[i]
        steps += [order[s:s + per_step] for s in range(0, n, per_step)]
    return steps


def swift_random_normal(shape, std, seed):
    """steertool's `Tensor.randomNormal(shape, std:, seed:)` (float32, row-major): per element,
    Box–Muller on two SplitMix64 draws u = ((x >> 11) + 0.5)·2⁻⁵³, Float(√(−2 ln u₁)·cos(2π u₂))·std."""
    import numpy as np
    rng = SplitMix64(seed)
    std32 = np.float32(std)
    out = np.empty(int(np.prod(shape)), dtype=np.float32)
    for i in range(out.size):
        u1 = ((rng.next() >> 11) + 0.5) * 2.0 ** -53
        u2 = ((rng.next() >> 11) + 0.5) * 2.0 ** -53
        out[i] = np.float32(math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)) * std32
    return out.reshape(shape)


def linear_adapters(model, seed, rank=8):
    """Post-block linear adapters on every decoder layer, initialised as steertool's."""
    import numpy as np
    d = model.config.hidden_size
    layers = model.model.layers
    adapters = []
    for l, layer in enumerate(layers):
        std = np.float32(1) / np.sqrt(np.float32(3 * d))
        down = torch.tensor(swift_random_normal((d, rank), std, seed + 1 + l), requires_grad=True)
        up = torch.zeros(d, rank, requires_grad=True)
        adapters.append((down, up))

        def hook(_m, _i, out, down=down, up=up):
            h = out[0] if isinstance(out, tuple) else out
            h = h + (h @ down) @ up.T
            return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h
        layer.register_forward_hook(hook)
    return adapters


def write_steering(adapters, path, source):
    """A steertool steering file (linear, identity, blockOutput) of the adapters."""
    tensors = {}
    for l, (down, up) in enumerate(adapters):
        tensors[f"layers.{l}.down"] = down.detach().numpy().astype("<f4")
        tensors[f"layers.{l}.up"] = up.detach().numpy().astype("<f4")
    meta = {"format": "steertool-steering", "format_version": "1", "site": "blockOutput", "kind": "linear",
            "activation": "identity", "rank": str(adapters[0][0].shape[1]), "layers": json.dumps(list(range(len(adapters)))),
            "base_model": "", "source": source, "report": "{}"}
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name in sorted(tensors):
        b = tensors[name].tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--kind", choices=["full", "lora", "linear"], required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--warmup", type=float, default=0.03)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (the schedule still spans the run)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    folder, name = os.path.split(os.path.abspath(a.gguf))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    total_params = sum(p.numel() for p in model.parameters())
    eos = model.config.eos_token_id if isinstance(model.config.eos_token_id, int) else model.config.eos_token_id[0]
    sequences = []
    with open(a.data) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            prompt = tok.encode(d["prompt"], add_special_tokens=True)
            completion = tok.encode(d["completion"], add_special_tokens=False)
            ids = prompt + completion + [eos]
            targets = [0] * len(prompt) + [1] * (len(completion) + 1)
            targets[0] = 0
            sequences.append((ids, targets))
    adapters = None
    if a.kind == "linear":
        for p in model.parameters():
            p.requires_grad_(False)
        adapters = linear_adapters(model, a.seed)
    if a.kind == "lora":
        from peft import LoraConfig, get_peft_model
        cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        model = get_peft_model(model, cfg)
    model.train()
    params = [t for pair in adapters for t in pair] if adapters else [p for p in model.parameters() if p.requires_grad]
    trained = sum(p.numel() for p in params)
    plan = schedule(len(sequences), a.epochs, a.batch * a.grad_accum, a.seed)
    warmup = math.ceil(len(plan) * a.warmup)
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, warmup, len(plan))
    t0 = time.time()
    tokens, losses = 0, []
    for k, group in enumerate(plan[:a.max_steps] if a.max_steps else plan):
        opt.zero_grad()
        count = sum(sum(sequences[i][1]) for i in group)
        step_loss = 0.0
        for start in range(0, len(group), a.batch):
            micro = group[start:start + a.batch]
            longest = max(len(sequences[i][0]) for i in micro)
            ids = torch.full((len(micro), longest), eos, dtype=torch.long)
            labels = torch.full((len(micro), longest), -100, dtype=torch.long)
            mask = torch.zeros((len(micro), longest), dtype=torch.long)
            for r, i in enumerate(micro):
                s, t = sequences[i]
                ids[r, :len(s)] = torch.tensor(s)
                mask[r, :len(s)] = 1
                labels[r, :len(s)] = torch.tensor([x if y else -100 for x, y in zip(s, t)])
                tokens += len(s)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                                     ignore_index=-100, reduction="sum") / count
            loss.backward()
            step_loss += loss.item()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(step_loss)
        if (k + 1) % 10 == 0 or k + 1 == len(plan):
            print(f"step {k + 1}/{len(plan)} loss {step_loss:.4f} {tokens / (time.time() - t0):.0f} tok/s", file=sys.stderr, flush=True)
    seconds = time.time() - t0
    model.eval()
    if a.kind == "linear":
        write_steering(adapters, a.output, f"pytorch:{a.data}")
    elif a.kind == "lora":
        model.save_pretrained(a.output)
    else:
        # transformers marks a model loaded from a GGUF as quantized and refuses save_pretrained:
        # the (dequantized, trained) tensors and the config are written directly.
        from safetensors.torch import save_file
        os.makedirs(a.output, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)
        save_file(state, os.path.join(a.output, "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["torch_dtype"] = "float32"
        with open(os.path.join(a.output, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        tok.save_pretrained(a.output)
    print(json.dumps({"kind": a.kind, "steps": len(losses), "planned_steps": len(plan), "seconds": round(seconds, 1), "tokens": tokens,
                      "tokens_per_second": round(tokens / seconds, 1), "parameters": trained,
                      "parameter_fraction": trained / total_params, "first_loss": losses[0], "last_loss": losses[-1]}))


if __name__ == "__main__":
    main()
