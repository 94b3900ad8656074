# Llama-3.2-3B-Instruct, QLoRA (nf4 4-bit base), on EmpatheticDialogues, 3
#   epochs, on one 8 GB GPU.
#
#   xtuner train configs/llama3_2_3b_qlora_empathetic_dialogues_e3.py
#
# Model: meta-llama/Llama-3.2-3B-Instruct (gated on the hub: accept Meta's licence first).
# Data: facebook/empathetic_dialogues, CC BY-NC 4.0; converted to XTuner's conversation format by
#   curation/convert/converters.
# Offline: XTUNER_PACK_DATA=DIR, or --cfg-options train_dataloader.dataset.dataset.data_files=FILE
# (docs/training.md "Local data"). The shared recipe and its 8 GB settings: configs/_base_/recipe_8gb.py;
# `python -m doctor fit` on this file shows the memory budget.
from mmengine.config import read_base

with read_base():
    from ._base_.datasets import empathetic_dialogues
    from ._base_.models import llama3_2_3b_instruct
    from ._base_.recipe_8gb import recipe

# ---- knobs ----
max_epochs = 3  # ~19.5k dialogues

globals().update(
    recipe(
        **llama3_2_3b_instruct,  # hub id, chat template, max_length: _base_/models.py
        **empathetic_dialogues,  # converter and chat-hook prompts: _base_/datasets.py
        max_epochs=max_epochs,
    )
)
