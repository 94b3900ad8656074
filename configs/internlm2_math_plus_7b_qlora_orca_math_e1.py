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
from xtuner.utils import PROMPT_TEMPLATE

from curation.load import load_conversations

with read_base():
    from ._base_.recipe_8gb import *

# ---- knobs ----
model_path = "internlm/internlm2-math-plus-7b"
prompt_template = PROMPT_TEMPLATE.internlm2_chat  # the format InternLM2-Math-Plus was tuned in
max_length = 1024  # tokens per packed sequence
lora_r = 16
max_epochs = 1  # 200k problems
max_dataset_length = 50000  # a random 50k: a pass over all 200k problems is days on 8 GB

globals().update(
    recipe(
        model_path=model_path,
        # every linear but the LM head: XTuner's default misses InternLM2's head (`output`)
        lora_targets=("wqkv", "wo", "w1", "w2", "w3"),
        dataset=dict(type=load_conversations, source="orca_math"),
        max_dataset_length=max_dataset_length,
        dataset_map_fn=None,  # the converter already wrote XTuner's conversation format
        prompt_template=prompt_template,
        max_length=max_length,
        lora_r=lora_r,
        max_epochs=max_epochs,
        evaluation_inputs=[
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
            "clips in May. How many clips did Natalia sell altogether in April and May?",
        ],
    )
)
