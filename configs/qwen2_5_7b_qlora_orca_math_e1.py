# Qwen2.5-7B-Instruct, QLoRA (4-bit nf4 base), on Orca-Math-200k, 1 epoch, on one 8 GB GPU.
#
#   xtuner train configs/qwen2_5_7b_qlora_orca_math_e1.py
#
# Model: Qwen/Qwen2.5-7B-Instruct (its 152k-token vocabulary makes the logits the largest
#   per-token cost).
# Data: microsoft/orca-math-word-problems-200k, MIT; converted to XTuner's conversation format by
#   curation/convert/converters.
# Offline: XTUNER_PACK_DATA=DIR, or --cfg-options train_dataloader.dataset.dataset.data_files=FILE
# (docs/training.md "Local data"). The shared recipe and its 8 GB settings: configs/_base_/recipe_8gb.py;
# `python -m doctor fit` on this file shows the memory budget.
from mmengine.config import read_base

with read_base():
    from ._base_.datasets import orca_math
    from ._base_.models import qwen2_5_7b_instruct
    from ._base_.recipe_8gb import recipe

# ---- knobs ----
max_epochs = 1  # 200k problems
max_dataset_length = 50000  # a random 50k: a pass over all 200k problems is days on 8 GB

globals().update(
    recipe(
        **qwen2_5_7b_instruct,  # hub id, chat template, max_length: _base_/models.py
        **orca_math,  # converter and chat-hook prompts: _base_/datasets.py
        max_dataset_length=max_dataset_length,
        max_epochs=max_epochs,
    )
)
