# InternLM2-Math-Plus-7B, QLoRA (4-bit nf4 base), on MATH, 3 epochs, on one 8 GB GPU.
#
#   xtuner train configs/internlm2_math_plus_7b_qlora_math_e3.py
#
# Model: internlm/internlm2-math-plus-7b (remote code (trust_remote_code); 92.5k-token
#   vocabulary).
# Data: EleutherAI/hendrycks_math, the live mirror of MATH (hendrycks/competition_math was taken
#   down), MIT; converted to XTuner's conversation format by curation/convert/converters.
# Offline: XTUNER_PACK_DATA=DIR, or --cfg-options train_dataloader.dataset.dataset.data_files=FILE
# (docs/training.md "Local data"). The shared recipe and its 8 GB settings: configs/_base_/recipe_8gb.py;
# `python -m doctor fit` on this file shows the memory budget.
from mmengine.config import read_base

with read_base():
    from ._base_.datasets import math
    from ._base_.models import internlm2_math_plus_7b
    from ._base_.recipe_8gb import recipe

# ---- knobs ----
max_epochs = 3  # 7,500 problems

globals().update(
    recipe(
        **internlm2_math_plus_7b,  # hub id, chat template, max_length: _base_/models.py
        **math,  # converter and chat-hook prompts: _base_/datasets.py
        max_epochs=max_epochs,
    )
)
