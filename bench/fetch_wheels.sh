#!/usr/bin/env bash
# Downloads into .whl/ the wheels a GPU machine without internet lacks for bench/vram.py, for
# CPython 3.12 on x86-64 Linux (the lent GPU machines' python3; see bench/vram_gpu.sh). Their
# image has torch, accelerate, safetensors, numpy, pyarrow, pandas, rich, scipy, einops,
# sentencepiece, tiktoken, opencv and psutil; it lacks (or has too new for xtuner 0.2.0) these.
# Versions are the pack's pins (env/stack.txt); the others are those packages' own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-python3 -m pip}
pin() { grep -E "^(#@[a-z-]+ )?$1==" env/stack.txt | sed -E 's/^#@[a-z-]+ //' | head -1; }
WHEELS=(
  "$(pin xtuner)" "$(pin mmengine)" "$(pin transformers)" "$(pin tokenizers)"
  "$(pin huggingface-hub)" "$(pin peft)" "$(pin bitsandbytes)" "$(pin datasets)" "$(pin loguru)"
  addict==2.4.0 yapf==0.43.0 termcolor==3.1.0 platformdirs==4.3.8 dill==0.3.8
  multiprocess==0.70.16
)
mkdir -p .whl
for w in "${WHEELS[@]}"; do
  $PIP download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$w"
done
du -ch .whl/*.whl | tail -1
