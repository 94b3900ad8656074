# Llama-2-7B-chat, QLoRA (4-bit nf4 base), DPO on HH-RLHF's chosen/rejected pairs, 1 epoch, on
# one 8 GB GPU.
#
#   xtuner train configs/llama2_7b_qlora_dpo_hh_rlhf_e1.py
#
# Model: meta-llama/Llama-2-7b-chat-hf (gated on the hub: accept Meta's licence first).
# Trainer: XTuner's DPO (sigmoid loss, beta 0.1) on the LoRA adapters; the reference policy is
#   the same model with its adapters disabled, so there is no second 7B copy in memory.
# Data: Anthropic/hh-rlhf, MIT, as its card means it: preference pairs. Each row's shared dialogue
#   is the prompt and its two last replies the chosen and rejected answers
#   (curation/convert/converters/hh_rlhf.py, HHRLHFPairConverter).
# Memory: a pair is two sequences of up to max_length tokens each, with full logits for both
#   (DPO reads per-token log-probs); `python -m doctor fit` on this file models that.
# Offline: XTUNER_PACK_DATA=DIR, or --cfg-options train_dataloader.dataset.dataset.data_files=FILE
# (docs/training.md "Local data"). The shared recipe: configs/_base_/recipe_8gb.py.
from mmengine.config import read_base

with read_base():
    from ._base_.datasets import hh_rlhf_pairs
    from ._base_.models import llama2_7b_chat
    from ._base_.recipe_8gb import recipe

# ---- knobs ----
max_epochs = 1
max_dataset_length = 20000  # the first 20k pairs of 161k: a full pass is days on 8 GB
max_length = 2048  # per sequence (chosen, rejected): 4096 tokens a step, as the SFT configs of this model
lr = 5e-6  # DPO moves the policy away from the reference; SFT's 2e-4 overshoots (alignment
# handbook: 5e-7 full, ~5e-6 LoRA)

globals().update(
    recipe(
        **{**llama2_7b_chat, "max_length": max_length},  # hub id, chat template: _base_/models.py
        **hh_rlhf_pairs,  # the pairs loader and chat-hook prompts: _base_/datasets.py
        preference="dpo",
        beta=0.1,
        dpo_loss_type="sigmoid",
        max_dataset_length=max_dataset_length,
        max_epochs=max_epochs,
        lr=lr,
    )
)
