#!/usr/bin/env python3
"""Peer for `steertool merge lora`: PEFT's merge_and_unload on transformers' LlamaForCausalLM,
then save_pretrained (safetensors). Usage: merge_lora.py <base-dir> <adapter-dir> <out-dir>"""
import sys

import torch
from peft import PeftModel
from transformers import LlamaForCausalLM

torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
base = LlamaForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
merged = PeftModel.from_pretrained(base, sys.argv[2]).merge_and_unload()
merged.save_pretrained(sys.argv[3], safe_serialization=True)
