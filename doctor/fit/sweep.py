"""python -m doctor.fit.sweep [--limit GIB]: which settings of the pack's recipe fit, per model.

For each model the pack ships configs for, the estimate of the recipe's defaults (fp16 autocast,
keep_16bit, 128-token loss chunks, LoRA dropout 0.05, batch 1) at each max_length, LoRA rank and
optimizer, marked where it is within the limit; then the breakdown of the largest setting that
fits. The 7B models are QLoRA (nf4 + double quant), Llama-3.2-3B is LoRA on a 16-bit base.
"""

from __future__ import annotations

import argparse
import sys
from itertools import product

from .arch import resolve
from .estimate import LABELS, GiB, Setup, estimate

MODELS = [  # (hub id, 4-bit base?)
    ("internlm/internlm-7b", True),
    ("internlm/internlm2-math-plus-7b", True),
    ("Qwen/Qwen2.5-7B-Instruct", True),
    ("meta-llama/Llama-2-7b-chat-hf", True),
    ("meta-llama/Llama-3.2-3B-Instruct", False),
]
LENGTHS = (1024, 2048)
RANKS = (8, 16, 32)
OPTIMIZERS = ("paged_adamw8bit", "adamw")


def recipe_setup(model_id: str, quantized: bool, seq: int, r: int, optimizer: str) -> Setup:
    return Setup(resolve(model_id), quant="nf4" if quantized else None, double_quant=quantized,
                 weight_bytes=2, amp=True, upcast=False, lora_r=r, lora_dropout=0.05,
                 optimizer=optimizer, batch=1, seq=seq, loss_chunk=128)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=7.5, help="GiB (default 7.5)")
    args = parser.parse_args(argv)
    head = "".join(f"{f'{n} r{r} {o[:5]}':>18}" for n, r, o in product(LENGTHS, RANKS, OPTIMIZERS))
    print(f"estimated peak GiB; * = within {args.limit:g} GiB\n{'model':<34}{head}")
    best = {}
    for model_id, quantized in MODELS:
        cells = []
        for n, r, opt in product(LENGTHS, RANKS, OPTIMIZERS):
            est = estimate(recipe_setup(model_id, quantized, n, r, opt))
            ok = est.total_gib <= args.limit
            cells.append(f"{est.total_gib:>17.2f}{'*' if ok else ' '}")
            if ok and opt == OPTIMIZERS[0]:
                key = (n, r)
                if model_id not in best or key > best[model_id][0]:
                    best[model_id] = (key, est)
        print(f"{model_id:<34}" + "".join(cells))
    print()
    for model_id, ((n, r), est) in best.items():
        parts = ", ".join(f"{LABELS[k].split(' (')[0]} {v / GiB:.2f}"
                          for k, v in est.parts.items() if v)
        print(f"{model_id}: max_length={n}, lora_r={r}, paged 8-bit AdamW -> "
              f"{est.total_gib:.2f} GiB ({parts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
