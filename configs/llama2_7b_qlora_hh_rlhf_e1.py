# Llama-2-7B-chat, QLoRA (4-bit nf4 base), on HH-RLHF, 1 epoch, on one 8 GB GPU.
#
#   xtuner train configs/llama2_7b_qlora_hh_rlhf_e1.py
#
# Model: meta-llama/Llama-2-7b-chat-hf (gated on the hub: accept Meta's licence first; its 32k
#   vocabulary leaves room for 2048 tokens).
# Data: Anthropic/hh-rlhf, SFT on the `chosen` dialogues, MIT. Its card says the data is meant for
#   preference models, not for SFT; converted to XTuner's conversation format by
#   curation/convert/converters. Kept because the notes asked for it; for what the data is meant
#   for, DPO on its chosen/rejected pairs: configs/llama2_7b_qlora_dpo_hh_rlhf_e1.py.
# Offline: XTUNER_PACK_DATA=DIR, or --cfg-options train_dataloader.dataset.dataset.data_files=FILE
# (docs/training.md "Local data"). The shared recipe and its 8 GB settings: configs/_base_/recipe_8gb.py;
# `python -m doctor fit` on this file shows the memory budget.
from mmengine.config import read_base

with read_base():
    from ._base_.datasets import hh_rlhf
    from ._base_.models import llama2_7b_chat
    from ._base_.recipe_8gb import recipe

# ---- knobs ----
max_epochs = 1  # 161k dialogues
max_dataset_length = 40000  # a random 40k: a pass over all 161k dialogues is days on 8 GB

globals().update(
    recipe(
        **llama2_7b_chat,  # hub id, chat template, max_length: _base_/models.py
        **hh_rlhf,  # converter and chat-hook prompts: _base_/datasets.py
        max_dataset_length=max_dataset_length,
        max_epochs=max_epochs,
    )
)
