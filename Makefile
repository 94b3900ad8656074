# make env    create .venv (or .conda) with the pinned stack, the pack and its patches
# make smoke  the embedded default on the CPU: tiny model, xtuner train, convert, merge, eval, GGUF export
# make demo   the same loop on a real pretrained model (SmolLM2-135M-Instruct) on the CPU, ~10 min
# make smoke-dist  the same model by 2 CPU processes (torchrun, gloo; DDP and DeepSpeed ZeRO-2)
# make test   every test, the smoke run included
# make bench  the benchmarks (ratios against anchors measured in the same run) -> docs/benchmarks.md
# make fit    doctor fit's memory estimate of every run file against an 8 GB card
# make eval   CONFIG=... [ADAPTER=...]: GSM8K/MATH accuracy before and after the adapter
# make export CONFIG=... ADAPTER=...: GGUF (f16, Q4_K_M) + Ollama Modelfile in the training template
SHELL := /bin/bash
PY := $(firstword $(wildcard .venv/bin/python .conda/bin/python) python3)
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
# torch's OpenMP threads spin while they wait: on a CPU shared with other work (a CI runner,
# the eval beside the export) that made CPU steps 10-20x slower; passive waiting costs nothing idle
export OMP_WAIT_POLICY ?= PASSIVE
export PATH := $(dir $(PY)):$(PATH)

.PHONY: env smoke demo test test-fast lint bench clean

env:
	bash env/install.sh

smoke:
	$(PY) -m demo.smoke

# SmolLM2-135M-Instruct (installed by `make env`): train on 96 GSM8K problems, eval before/after
# on held-out ones, merge, GGUF + Modelfile, round trip in llama.cpp (docs/eval-export.md)
demo:
	$(PY) -m demo.real

# 2 processes (NPROC_PER_NODE=2 xtuner train: torchrun, gloo) against 1 with the same global
# batch: DDP, and DeepSpeed ZeRO-2 where DeepSpeed is installed. The loss curves must match.
.PHONY: smoke-dist
smoke-dist:
	$(PY) -m demo.smoke_dist

test:
	$(PY) -m pytest -q

test-fast:
	$(PY) -m pytest -q -m "not slow"

lint:
	$(PY) -m ruff check .

# every benchmark, each in its own process; docs/benchmarks.md rewritten with their tables
# (DATA=../shared/data adds those on real GSM8K/MATH, PUBLIC=dir the public perturbation sets;
# ONLY="name ..." runs some)
bench:
	$(PY) bench/report.py $(if $(DATA),--data $(DATA)) $(if $(PUBLIC),--public $(PUBLIC)) \
	  $(if $(DS_REPORT),--ds-report $(DS_REPORT)) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf work_dirs .cache .pytest_cache .ruff_cache

# The doctor's speed against ds_report and torch's collect_env, measured in the same run.
# DS_REPORT=/path/to/ds_report when DeepSpeed lives in another environment.
.PHONY: bench-doctor
bench-doctor:
	$(PY) bench/doctor_speed.py $(if $(DS_REPORT),--ds-report $(DS_REPORT))

# `python -m curation prepare` on 200k synthetic rows against two anchors timed in the same run
.PHONY: bench-prepare
bench-prepare:
	$(PY) bench/prepare_speed.py

# ---- memory (docs/memory.md) ----
.PHONY: fit fit-calibration fit-sweep patch-effects vram-cpu vram-fake vram-wheels vram-gpu vram-patches
FIT_CONFIGS ?= $(filter-out configs/__init__.py,$(wildcard configs/*.py))

fit:  # doctor fit's verdict on every top-level run file, as on an 8 GB card
	@for c in $(FIT_CONFIGS); do $(PY) -m doctor fit $$c --gpu-mem 8 || exit $$?; done

fit-calibration:  # the estimator against published measurements
	$(PY) -m doctor.fit.calibration --write

fit-sweep:  # the longest max_length that fits 8 GiB per model, today and with each long-sequence patch
	$(PY) -m doctor.fit.sweep --grid

patch-effects:  # what each memory patch saves, measured on the CPU (ratios to XTuner as shipped)
	$(PY) bench/patch_effects.py $(if $(REPEATS),--repeats $(REPEATS))  # seconds a repeat on 2 cores

vram-cpu:  # bench/vram.py on the CPU with scaled-down architectures
	$(PY) bench/vram.py $(FIT_CONFIGS) --device cpu --tiny

vram-fake:  # each run file's step at full size on a fake GPU: traced peak beside the estimate
	$(PY) bench/vram.py $(FIT_CONFIGS) --device fake $(if $(CAPABILITY),--capability $(CAPABILITY))

vram-wheels:  # where there is internet: the wheels a GPU machine lacks, into .whl/
	bash bench/fetch_wheels.sh

vram-gpu:  # on a GPU machine without internet: measured peak of every config under 8 GiB
	bash bench/vram_gpu.sh

vram-patches:  # on a GPU machine: peak and tokens/s with and without each long-sequence patch
	PATCHES=1 bash bench/vram_gpu.sh

# decontaminate against MinHash-LSH with datasketch and with rensa, measured in the same run:
# train rows/s and ratios, and the planted leaks each removes. BENCH_TRAIN=20000 for a quick run;
# DATA=dir (e.g. DATA=../shared/data) runs on the real GSM8K-train + MATH-train mix x10 instead.
BENCH_REAL_SYSTEMS := rensa MinHash-LSH,decontaminate default (1 process),decontaminate default (2 workers)
.PHONY: bench-curation
bench-curation:
	$(PY) bench/decontaminate_speed.py $(if $(DATA),--real $(DATA) --systems "$(BENCH_REAL_SYSTEMS)") $(if $(BENCH_TRAIN),--train $(BENCH_TRAIN)) $(if $(BENCH_REPS),--reps $(BENCH_REPS))

# The data of configs/internlm2_math_plus_7b_qlora_mathmix_e1.py: GSM8K-train + orca-math +
# MATH-train in XTuner's conversation format (prepare: from the hub, or from
# $XTUNER_PACK_DATA/<dataset>/ when that is set), minus every row that leaks a GSM8K-test or
# MATH-test problem (decontaminate). MATHMIX_DIR=dir writes elsewhere; MATHMIX_POLICY=strict
# also removes same-problem-new-numbers variants. The report: $(MATHMIX_DIR)/mathmix_report.jsonl.
MATHMIX_DIR ?= data
MATHMIX_POLICY ?= default
MATHMIX_TRAIN := gsm8k_train orca_math_train math_train
MATHMIX_TEST := gsm8k_test math_test
MATHMIX_HUB = $(if $(XTUNER_PACK_DATA),,HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0)
.PHONY: mathmix mathmix-prepare mathmix-clean
mathmix:
	$(MAKE) mathmix-prepare
	$(MAKE) mathmix-clean

mathmix-prepare:
	$(MATHMIX_HUB) $(PY) -m curation prepare gsm8k --split train --out $(MATHMIX_DIR)/gsm8k_train.jsonl
	$(MATHMIX_HUB) $(PY) -m curation prepare orca_math --split train --out $(MATHMIX_DIR)/orca_math_train.jsonl
	$(MATHMIX_HUB) $(PY) -m curation prepare math --split train --out $(MATHMIX_DIR)/math_train.jsonl
	$(MATHMIX_HUB) $(PY) -m curation prepare gsm8k --split test --out $(MATHMIX_DIR)/gsm8k_test.jsonl
	$(MATHMIX_HUB) $(PY) -m curation prepare math --split test --out $(MATHMIX_DIR)/math_test.jsonl

mathmix-clean:
	$(PY) -m curation decontaminate \
	  $(foreach f,$(MATHMIX_TRAIN),--train $(MATHMIX_DIR)/$(f).jsonl) \
	  $(foreach f,$(MATHMIX_TEST),--test $(MATHMIX_DIR)/$(f).jsonl) \
	  --policy $(MATHMIX_POLICY) \
	  --out $(MATHMIX_DIR)/mathmix_clean.jsonl --report $(MATHMIX_DIR)/mathmix_report.jsonl

# What each decontamination method catches and wrongly removes: the handwritten set of the
# tests, and, with DATA=dir (dir/gsm8k/ and dir/math/, e.g. DATA=../shared/data; the script
# says where to get them), real GSM8K/MATH and perturbation variants made from GSM8K-test,
# against 13-gram, 10-gram and MinHash anchors in the same run. PUBLIC=dir adds the public
# perturbation sets of GSM8K-test found in dir (LLM rephrasings, GSM-Symbolic P1/P2,
# GSM-Plus; bench/perturb.py says where to get each).
.PHONY: bench-curation-quality decon-devset
bench-curation-quality:
	$(PY) bench/curation_quality.py $(if $(DATA),--data $(DATA)) $(if $(PUBLIC),--public $(PUBLIC)) $(if $(SAMPLE),--sample $(SAMPLE))

# The labelled development set behind numbers_overlap's thresholds and its precision/recall
# curve (needs DATA=dir; PUBLIC=dir for the public perturbation sets; POLICY=strict).
decon-devset:
	$(PY) bench/decon_devset.py --data $(or $(DATA),$(error decon-devset needs DATA=dir, e.g. DATA=../shared/data)) $(if $(PUBLIC),--public $(PUBLIC)) $(if $(POLICY),--policy $(POLICY))

# ---- after training (aftertrain/): did the fine-tune help, and the model as GGUF ----
# make eval CONFIG=configs/X.py [ADAPTER=dir] [GSM8K=file] [MATH=file] [LIMIT=N] [EVAL_ARGS=...]
# Test files: what `python -m curation prepare gsm8k|math --split test` writes, or the public
# schema; default data/gsm8k_test.jsonl and data/math_test.jsonl (`make mathmix-prepare`).
# make export CONFIG=configs/X.py ADAPTER=dir [QUANT=Q4_K_M] [CHECK=1]
.PHONY: eval export
eval:
	$(if $(CONFIG),,$(error CONFIG=configs/<name>.py is required))
	$(PY) -m aftertrain eval $(CONFIG) $(if $(ADAPTER),--adapter $(ADAPTER)) \
	  $(if $(GSM8K),--gsm8k $(GSM8K)) $(if $(MATH),--math $(MATH)) $(if $(LIMIT),--limit $(LIMIT)) $(EVAL_ARGS)

export:
	$(if $(CONFIG),,$(error CONFIG=configs/<name>.py is required))
	$(if $(ADAPTER)$(MERGED),,$(error ADAPTER=<xtuner convert pth_to_hf output> is required))
	$(PY) -m aftertrain export $(CONFIG) $(if $(ADAPTER),--adapter $(ADAPTER)) \
	  $(if $(MERGED),--merged $(MERGED)) $(if $(QUANT),--quant $(QUANT)) $(if $(CHECK),--check)
