# The embedded default: the InternLM-7B/oasst recipe on a tiny random Llama, on the CPU, offline.
#
#   xtuner train configs/smoke/tiny_llama_qlora_oasst_cpu.py      (or: make smoke)
#
# Same recipe as configs/internlm_7b_qlora_oasst_e3.py (nf4 QLoRA, the guanaco converter around
# XTuner's oasst1 map function, the default template, the chat and dataset hooks); only what a
# CPU needs differs, each marked.
# The model (2 layers, 64 wide) and its tokenizer are written on first use to .cache/tiny-llama.
from mmengine.config import read_base
from xtuner.utils import PROMPT_TEMPLATE

from components.tiny import TinyFinetune
from curation.convert.load import load_conversations

with read_base():
    from .._base_.recipe_8gb import recipe

# ---- knobs ----
here = __file__.rsplit("/", 1)[0]  # mmengine 0.10 cannot call os.path in a config
model_path = here + "/../../.cache/tiny-llama"
data_file = here + "/oasst_tiny.jsonl"  # 36 guanaco-format threads written for the pack
prompt_template = PROMPT_TEMPLATE.default

globals().update(
    recipe(
        model_path=model_path,
        model_type=TinyFinetune,  # makes the tiny model before XTuner reads its config.json
        dtype="float32",  # CPU: no fp16/bf16 AMP
        amp=False,  # CPU: mmengine's AmpOptimWrapper refuses it
        dataset=dict(type=load_conversations, source="guanaco", data_files=data_file),
        prompt_template=prompt_template,
        max_length=128,  # a few threads per packed sequence
        loss_chunk=32,  # four chunks per sequence, so the smoke run takes the chunked-loss path
        lora_r=32,
        lora_alpha=64,
        lora_dropout=0.0,
        accumulative_counts=1,
        max_epochs=40,  # 440 steps of a few ms: long enough for the answers to take shape
        lr=4e-3,
        warmup_ratio=0.05,
        map_num_proc=1,  # CPU: no worker processes for 36 rows
        infinite_sampler=True,  # CPU: skips mmengine's 2 s pause at each of 60 epoch ends
        save_steps=100,
        evaluation_freq=1000,
        evaluation_inputs=["What is the capital of France?"],
        max_new_tokens=16,
        log_interval=5,
        seed=42,
    )
)
