#!/usr/bin/env python3
"""Prepares the inputs of `make bench` in a work folder (cached; nothing here is committed).

  model/            random Llama, ~125M parameters (vocab 32000, d 768, 12 layers, 12 heads / 4 KV
                    heads, d_ff 2048, untied), f32 safetensors + config.json
  lora/             PEFT LoRA adapter for model/ (r 16, alpha 32, all seven projections, B != 0)
  big.safetensors   >= 1 GB of f32 tensors (load throughput)
  quant.gguf        4096×4096 tensors in F16, Q8_0, Q4_0 (dequantization throughput), gguf-py
  tokens.json       512 random token ids for the runtime benchmarks

Weights are random normal (std 0.02, norms 1): speed does not depend on the values.
Runs inside .venv-bench (numpy, safetensors, gguf).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

VERSION = "1"
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
    "hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12,
    "num_attention_heads": 12, "num_key_value_heads": 4, "head_dim": 64, "rms_norm_eps": 1e-5,
    "max_position_embeddings": 2048, "tie_word_embeddings": False, "attention_bias": False,
    "mlp_bias": False, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
}
PROJECTIONS = {  # name: (out, in) for d 768, kv 256, d_ff 2048
    "self_attn.q_proj": (768, 768), "self_attn.k_proj": (256, 768), "self_attn.v_proj": (256, 768),
    "self_attn.o_proj": (768, 768), "mlp.gate_proj": (2048, 768), "mlp.up_proj": (2048, 768),
    "mlp.down_proj": (768, 2048),
}


def random_model(rng: np.random.Generator) -> dict[str, np.ndarray]:
    c = CONFIG
    t = {"model.embed_tokens.weight": rng.normal(0, 0.02, (c["vocab_size"], c["hidden_size"])).astype(np.float32)}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = np.ones(c["hidden_size"], np.float32)
        t[p + "post_attention_layernorm.weight"] = np.ones(c["hidden_size"], np.float32)
        for name, shape in PROJECTIONS.items():
            t[p + name + ".weight"] = rng.normal(0, 0.02, shape).astype(np.float32)
    t["model.norm.weight"] = np.ones(c["hidden_size"], np.float32)
    t["lm_head.weight"] = rng.normal(0, 0.02, (c["vocab_size"], c["hidden_size"])).astype(np.float32)
    return t


def write_model(work: Path, rng: np.random.Generator) -> None:
    d = work / "model"
    d.mkdir(parents=True, exist_ok=True)
    save_file(random_model(rng), str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text(json.dumps(CONFIG, indent=2))


def write_lora(work: Path, rng: np.random.Generator, r: int = 16) -> None:
    d = work / "lora"
    d.mkdir(parents=True, exist_ok=True)
    t = {}
    for l in range(CONFIG["num_hidden_layers"]):
        for name, (out, inp) in PROJECTIONS.items():
            p = f"base_model.model.model.layers.{l}.{name}"
            t[p + ".lora_A.weight"] = rng.normal(0, 0.02, (r, inp)).astype(np.float32)
            t[p + ".lora_B.weight"] = rng.normal(0, 0.02, (out, r)).astype(np.float32)
    save_file(t, str(d / "adapter_model.safetensors"), metadata={"format": "pt"})
    (d / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": 2 * r,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
        "base_model_name_or_path": str(work / "model"),
    }, indent=2))


def write_big(work: Path, rng: np.random.Generator) -> None:
    tensors = {f"block.{i}.weight": rng.standard_normal((4096, 4096), dtype=np.float32) for i in range(17)}
    save_file(tensors, str(work / "big.safetensors"))  # 17 × 64 MiB = 1.07 GiB


def write_quant(work: Path, rng: np.random.Generator) -> None:
    import gguf
    w = gguf.GGUFWriter(str(work / "quant.gguf"), arch="llama")
    x = rng.standard_normal((4096, 4096), dtype=np.float32)
    for qtype in (gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0):
        data = gguf.quants.quantize(x, qtype)
        w.add_tensor(f"x.{qtype.name.lower()}", data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> int:
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    marker = work / ".prepared"
    if marker.exists() and marker.read_text() == VERSION:
        return 0
    rng = np.random.default_rng(20261125)
    write_model(work, rng)
    write_lora(work, rng)
    write_big(work, rng)
    write_quant(work, rng)
    (work / "tokens.json").write_text(json.dumps(rng.integers(3, CONFIG["vocab_size"], 512).tolist()))
    marker.write_text(VERSION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
