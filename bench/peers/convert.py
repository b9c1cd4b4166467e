#!/usr/bin/env python3
"""Peer for `steertool convert HF → GGUF`: the same conversion with gguf-py, following
llama.cpp's convert_hf_to_gguf.py for llama (names, Q/K row permutation, 1-D tensors in F32).
Usage: convert.py <hf-dir> <out.gguf> <f32|f16>"""
import json
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

src, out, kind = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
cfg = json.loads((src / "config.json").read_text())
heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
w = gguf.GGUFWriter(out, arch="llama")
w.add_context_length(cfg["max_position_embeddings"])
w.add_embedding_length(cfg["hidden_size"])
w.add_block_count(cfg["num_hidden_layers"])
w.add_feed_forward_length(cfg["intermediate_size"])
w.add_head_count(heads)
w.add_head_count_kv(kv)
w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
w.add_rope_dimension_count(cfg["head_dim"])
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if kind == "f16" else gguf.LlamaFileType.ALL_F32)
tensors = load_file(str(src / "model.safetensors"))
for name, t in tensors.items():
    if name == "model.embed_tokens.weight":
        g = "token_embd.weight"
    elif name == "model.norm.weight":
        g = "output_norm.weight"
    elif name == "lm_head.weight":
        g = "output.weight"
    else:
        parts = name.split(".")
        layer, rest = parts[2], ".".join(parts[3:-1])
        g = f"blk.{layer}.{NAMES[rest]}.weight"
        if rest == "self_attn.q_proj":
            t = permute(t, heads)
        elif rest == "self_attn.k_proj":
            t = permute(t, kv)
    if kind == "f16" and t.ndim > 1:
        t = t.astype(np.float16)
    w.add_tensor(g, t)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
