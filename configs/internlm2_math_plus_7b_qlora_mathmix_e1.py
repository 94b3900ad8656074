# InternLM2-Math-Plus-7B, QLoRA (4-bit nf4 base), on a decontaminated math mixture, 1 epoch, on
# one 8 GB GPU.
#
#   make mathmix                                     (writes data/mathmix_clean.jsonl, once)
#   xtuner train configs/internlm2_math_plus_7b_qlora_mathmix_e1.py
#
# Model: internlm/internlm2-math-plus-7b (remote code (trust_remote_code)).
# Data: GSM8K-train + orca-math-word-problems-200k + MATH-train in XTuner's conversation format
#   (`python -m curation prepare`), minus every row that leaks a GSM8K-test or MATH-test problem
#   (`python -m curation decontaminate`; what was removed and why: data/mathmix_report.jsonl).
#   docs/curation.md has the recipe step by step.
# The shared recipe and its 8 GB settings: configs/_base_/recipe_8gb.py; `python -m doctor fit`
# on this file shows the memory budget.
from datasets import load_dataset
from mmengine.config import read_base

with read_base():
    from ._base_.models import internlm2_math_plus_7b
    from ._base_.recipe_8gb import recipe

# ---- knobs ----
here = __file__.rsplit("/", 1)[0]  # mmengine 0.10 cannot call os.path in a config
data_file = here + "/../data/mathmix_clean.jsonl"  # written by `make mathmix`
max_epochs = 1  # ~215k problems (orca-math is 200k of them)

globals().update(
    recipe(
        **internlm2_math_plus_7b,  # hub id, chat template, max_length: configs/_base_/models.py
        dataset=dict(type=load_dataset, path="json", data_files=dict(train=data_file)),
        max_epochs=max_epochs,
        evaluation_inputs=[
            "Natalie has 24 stickers. She gives a third of them to her sister and buys 9 more. "
            "How many stickers does she have now?",
            "Find all real $x$ such that $x^2 - 5x + 6 = 0$.",
        ],
    )
)
