# Llama-2-7B-chat, QLoRA (4-bit nf4 base), on oasst1, 3 epochs, on one 8 GB GPU.
#
#   xtuner train configs/llama2_7b_qlora_oasst1_e3.py
#
# Model: meta-llama/Llama-2-7b-chat-hf (gated on the hub: accept Meta's licence first; its 32k
#   vocabulary leaves room for 2048 tokens).
# Data: OpenAssistant/oasst1, English threads rebuilt from the message tree with the best-ranked
#   reply at each step, Apache-2.0; converted to XTuner's conversation format by
#   curation/convert/converters.
# Offline: XTUNER_PACK_DATA=DIR, or --cfg-options train_dataloader.dataset.dataset.data_files=FILE
# (docs/training.md "Local data"). The shared recipe and its 8 GB settings: configs/_base_/recipe_8gb.py;
# `python -m doctor fit` on this file shows the memory budget.
from mmengine.config import read_base

with read_base():
    from ._base_.datasets import oasst1
    from ._base_.models import llama2_7b_chat
    from ._base_.recipe_8gb import recipe

# ---- knobs ----
max_epochs = 3  # ~10k threads

globals().update(
    recipe(
        **llama2_7b_chat,  # hub id, chat template, max_length: _base_/models.py
        **oasst1,  # converter and chat-hook prompts: _base_/datasets.py
        max_epochs=max_epochs,
    )
)
