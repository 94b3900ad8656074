# The DPO recipe (configs/llama2_7b_qlora_dpo_hh_rlhf_e1.py) on a tiny random Llama, on the CPU,
# offline: XTuner's DPO trainer on hh-rlhf chosen/rejected pairs, nf4 QLoRA, the reference being
# the model with its adapters disabled.
#
#   xtuner train configs/smoke/tiny_llama_qlora_dpo_hh_rlhf_cpu.py
#
# The data: 32 pairs in hh-rlhf's public schema written for the pack (the chosen reply answers,
# the rejected one refuses). Only what a CPU needs differs from the real config, each marked.
from mmengine.config import read_base
from xtuner.utils import PROMPT_TEMPLATE

from components.tiny import TinyDPO
from curation.convert.pairs import load_pairs

with read_base():
    from .._base_.recipe_8gb import recipe

# ---- knobs ----
here = __file__.rsplit("/", 1)[0]  # mmengine 0.10 cannot call os.path in a config
model_path = here + "/../../.cache/tiny-llama"
data_file = here + "/hh_rlhf_pairs_tiny.jsonl"

globals().update(
    recipe(
        model_path=model_path,
        preference="dpo",
        model_type=TinyDPO,  # makes the tiny model before XTuner reads its config.json
        dtype="float32",  # CPU: no fp16/bf16 AMP
        amp=False,  # CPU: mmengine's AmpOptimWrapper refuses it
        dataset=dict(type=load_pairs, source="hh_rlhf", data_files=data_file),
        prompt_template=PROMPT_TEMPLATE.llama2_chat,
        max_length=128,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        batch_size=4,  # 4 pairs = 8 sequences a step
        accumulative_counts=1,
        max_epochs=2,  # 16 steps
        lr=2e-3,
        warmup_ratio=0.25,  # 4 steps: a warmup under 2 steps never leaves LinearLR's 1e-5 start
        map_num_proc=1,  # CPU: one tokenizer process for 32 pairs
        infinite_sampler=True,  # CPU: skips mmengine's 2 s pause at each epoch end
        save_steps=1000,
        evaluation_freq=1000,
        evaluation_inputs=["What is the capital of France?"],
        max_new_tokens=8,
        log_interval=4,
        seed=42,
    )
)
