#!/usr/bin/env bash
# One command on a GPU machine without internet access:
#     bash bench/vram_gpu.sh [CONFIG...]        (default: every configs/*.py and XTuner's stock
#                                               internlm_7b_qlora_oasst1_e3 for comparison)
# Installs the wheels that bench/fetch_wheels.sh put in .whl/ (run that first, where there is
# internet) into /tmp/site ahead of the machine's own packages, then runs bench/vram.py; the
# table goes to stdout and the rows to $OUT/vram.json (or work_dirs/vram.json).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
  stock=$($PY -c 'import os, xtuner; print(os.path.dirname(xtuner.__file__))')
  configs=(configs/*.py "$stock/configs/internlm/internlm_7b/internlm_7b_qlora_oasst1_e3.py")
fi
out=${OUT:-work_dirs}
mkdir -p "$out"
$PY -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
if [ "${PATCHES:-0}" = 1 ]; then
  # issue 10: peak memory and tokens/s of one 7B config per family with and without each
  # long-sequence patch, capped at 8 GiB (make vram-patches)
  $PY bench/vram.py configs/qwen2_5_7b_qlora_alpaca_e2.py configs/internlm2_math_plus_7b_qlora_gsm8k_e3.py \
    configs/llama2_7b_qlora_alpaca_e2.py --patches --json "$out/vram_patches.json"
  exit $?
fi
$PY bench/vram.py "${configs[@]}" --json "$out/vram.json"
