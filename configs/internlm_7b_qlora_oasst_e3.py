# InternLM-7B, QLoRA (4-bit nf4 base), on OpenAssistant-Guanaco, 3 epochs, on one 8 GB GPU.
#
#   xtuner train configs/internlm_7b_qlora_oasst_e3.py
#
# XTuner's stock internlm_7b_qlora_oasst1_e3 (r=64, 2048 packed tokens) does not fit in 8 GB;
# this one keeps the dataset, template and schedule and takes the pack's 8 GB recipe
# (configs/_base_/recipe_8gb.py). `python -m doctor fit` on this file shows the budget.
from mmengine.config import read_base

with read_base():
    from ._base_.datasets import guanaco
    from ._base_.models import internlm_7b
    from ._base_.recipe_8gb import recipe

# ---- knobs ----
# model: internlm/internlm-7b, XTuner's `default` template, 1024 packed tokens (2048: 8.95 GiB)
# data: timdettmers/openassistant-guanaco, 9.8k best-ranked oasst1 threads, Apache-2.0
lora_r = 16  # XTuner's r=64 alone costs ~2.6 GB of fp32 LoRA state on a 7B model
max_epochs = 3  # as XTuner's; 9.8k threads pack into ~4k sequences of 1024 tokens

globals().update(
    recipe(
        **internlm_7b,  # hub id, chat template, max_length: _base_/models.py
        **guanaco,  # converter and chat-hook prompts: _base_/datasets.py
        lora_r=lora_r,
        max_epochs=max_epochs,
    )
)
