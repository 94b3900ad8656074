# InternLM2-Math-Plus-7B, QLoRA (4-bit nf4 base), on Orca-Math-200k, 1 epoch, on one 8 GB GPU.
#
#   xtuner train configs/internlm2_math_plus_7b_qlora_orca_math_e1.py
#
# Model: internlm/internlm2-math-plus-7b (remote code (trust_remote_code); 92.5k-token
#   vocabulary).
# Data: microsoft/orca-math-word-problems-200k, MIT; converted to XTuner's conversation format by
#   curation/converters.
# Offline: XTUNER_PACK_DATA=DIR, or --cfg-options train_dataloader.dataset.dataset.data_files=FILE
# (README "Local data"). The shared recipe and its 8 GB settings: configs/_base_/recipe_8gb.py;
# `python -m doctor fit` on this file shows the memory budget.
from mmengine.config import read_base

from curation.load import load_conversations

with read_base():
    from ._base_.models import internlm2_math_plus_7b
    from ._base_.recipe_8gb import *

# ---- knobs ----
max_epochs = 1  # 200k problems
max_dataset_length = 50000  # a random 50k: a pass over all 200k problems is days on 8 GB

globals().update(
    recipe(
        **internlm2_math_plus_7b,  # hub id, chat template, max_length: configs/_base_/models.py
        dataset=dict(type=load_conversations, source="orca_math"),
        max_dataset_length=max_dataset_length,
        dataset_map_fn=None,  # the converter already wrote XTuner's conversation format
        max_epochs=max_epochs,
        evaluation_inputs=[
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
            "clips in May. How many clips did Natalia sell altogether in April and May?",
        ],
    )
)
