"""llama.cpp's side of the paper table's vector row (issue 33): a control vector scored on
generation-scored tasks by llama.cpp itself (llama-cpp-python), as `steertool eval --tasks`
scores them.

The model is the GGUF file; the control vector (written by `steertool convert adapter.safetensors
cv.gguf`) is read with gguf-py (`direction.<layer>`, layers 1 and up) and applied with
`llama_set_adapter_cvec` (llama.cpp adds direction.l to the output of block l). Per item: the
prompt tokenized by llama.cpp with its special tokens, greedy decoding until an end-of-generation
token, a newline in the decoded text, or `max_tokens`; the text before the first newline compared
with the answer as steertool's AnswerNormalization does (trim ASCII whitespace, lowercase A-Z, drop
one trailing '.', trim again; exact match, or for a numeric answer the output's first word).
Prints one JSON line: {"accuracy", "correct", "items", "outputs": [text ...]}.

usage: python bench/peers/cvec_eval.py --gguf MODEL.gguf --control-vector CV.gguf --tasks test.jsonl
       [--max-tokens 4] [--threads 2]
"""
import argparse
import ctypes
import json
import re

import numpy as np


SPACE = " \t\n\x0b\x0c\r"


def normalize(text):
    """AnswerNormalization.normalize: cut at the first newline, trim ASCII whitespace, lowercase
    A-Z, drop one trailing '.', trim again."""
    t = text.split("\n")[0].strip(SPACE)
    t = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in t)
    if t.endswith("."):
        t = t[:-1]
    return t.strip(SPACE)


def matches(output, answer):
    """AnswerNormalization.matches: equal, or for a numeric answer the output's first word (one
    trailing '.' dropped)."""
    o, a = normalize(output), normalize(answer)
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", a):
        return o == a
    word = re.match(r"[^ \t\n\x0b\x0c\r]*", o).group(0)
    if word.endswith("."):
        word = word[:-1]
    return word == a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--control-vector", required=True)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--max-tokens", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import gguf
    import llama_cpp
    from llama_cpp import Llama
    m = Llama(model_path=a.gguf, n_threads=a.threads, n_ctx=512, verbose=False)
    d, L = m.n_embd(), llama_cpp.llama_model_n_layer(m.model)
    reader = gguf.GGUFReader(a.control_vector)
    data = np.zeros((L - 1, d), dtype=np.float32)
    for t in reader.tensors:
        layer = int(t.name.split(".")[1])
        if not 1 <= layer < L:
            raise SystemExit(f"{a.control_vector}: {t.name} outside layers 1..{L - 1}")
        data[layer - 1] = np.asarray(t.data, dtype=np.float32).reshape(-1)
    data = np.ascontiguousarray(data.reshape(-1))
    rc = llama_cpp.llama_set_adapter_cvec(m._ctx.ctx, data.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), data.size, d, 1, L - 1)
    if rc != 0:
        raise SystemExit(f"llama_set_adapter_cvec failed ({rc})")
    correct, outputs, items = 0, [], 0
    with open(a.tasks) as f:
        for line in f:
            if not line.strip():
                continue
            item = json.loads(line)
            items += 1
            m.reset()
            tokens = m.tokenize(item["prompt"].encode(), add_bos=True, special=False)
            new = []
            for tok in m.generate(tokens, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
                if llama_cpp.llama_token_is_eog(m._model.vocab, tok):
                    break
                new.append(tok)
                text = m.detokenize(new).decode("utf-8", errors="replace")
                if "\n" in text or len(new) >= item.get("max_tokens", a.max_tokens):
                    break
            text = m.detokenize(new).decode("utf-8", errors="replace").split("\n")[0]
            outputs.append(text)
            correct += matches(text, item["answer"])
    print(json.dumps({"accuracy": correct / items if items else None, "correct": correct, "items": items, "outputs": outputs}))


if __name__ == "__main__":
    main()
