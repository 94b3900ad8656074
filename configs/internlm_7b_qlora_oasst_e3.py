# InternLM-7B, QLoRA (4-bit nf4 base), on OpenAssistant-Guanaco, 3 epochs, on one 8 GB GPU.
#
#   xtuner train configs/internlm_7b_qlora_oasst_e3.py
#
# XTuner's stock internlm_7b_qlora_oasst1_e3 (r=64, 2048 packed tokens) does not fit in 8 GB;
# this one keeps the dataset, template and schedule and takes the pack's 8 GB recipe
# (configs/_base_/recipe_8gb.py). `python -m doctor fit` on this file shows the budget.
from mmengine.config import read_base
from xtuner.utils import PROMPT_TEMPLATE

from curation.load import load_conversations

with read_base():
    from ._base_.recipe_8gb import *

# ---- knobs ----
model_path = "internlm/internlm-7b"  # base model, remote code (trust_remote_code)
# data: timdettmers/openassistant-guanaco, 9.8k best-ranked oasst1 threads, Apache-2.0
prompt_template = PROMPT_TEMPLATE.default  # the base model has no chat format; XTuner's choice
max_length = 1024  # packed; 2048 does not fit next to InternLM's 103k-token vocabulary
lora_r = 16
max_epochs = 3  # 9.8k threads pack into ~4k sequences of 1024 tokens: ~3 h per epoch on 8 GB

globals().update(
    recipe(
        model_path=model_path,
        # XTuner's oasst1_map_fn inside curation's guanaco converter, which skips and counts
        # malformed threads instead of stopping a run on them
        dataset=dict(type=load_conversations, source="guanaco"),
        dataset_map_fn=None,
        prompt_template=prompt_template,
        max_length=max_length,
        lora_r=lora_r,
        max_epochs=max_epochs,
        evaluation_inputs=["请给我介绍五个上海的景点", "Please tell me five scenic spots in Shanghai"],
    )
)
