"""python -m doctor.fit.sweep [--gpu-mem GIB] [--grid]: the longest sequence that fits, per model.

For each model the pack ships configs for (and Llama-3.1-8B, for Unsloth's published figure),
the longest max_length (in steps of 128 tokens) whose estimate at the top of its error band
(doctor fit's upper_gb) is within the usable memory of the card (7.6 GiB of an 8 GiB one), with
the recipe as it was before the long-sequence patches (fp16 autocast, keep_16bit, 128-token loss
chunks, paged 8-bit AdamW, LoRA r=16, dropout 0.05, batch 1, expandable segments), with each
long-sequence patch alone on top of it, and with all of them. The 7B/8B models are QLoRA (nf4 +
double quant); Llama-3.2-3B is shown both ways, QLoRA (its configs) and LoRA on a 16-bit base.
Where a patch does not apply (SDPA on a model that already has it, offloading a tied embedding)
its column repeats the recipe's.
`--grid` also prints the estimate at 1024/2048/4096 tokens x r 8/16/32 with every patch on.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from itertools import product

from .advice import upper_bytes
from .arch import resolve
from .band import usable_gib
from .estimate import LABELS, GiB, Setup, estimate

MODELS = [  # (hub id, 4-bit base?, LoRA targets of the pack's configs)
    ("internlm/internlm-7b", True, None),
    ("internlm/internlm2-math-plus-7b", True, ("wqkv", "wo", "w1", "w2", "w3")),
    ("Qwen/Qwen2.5-7B-Instruct", True, None),
    ("meta-llama/Llama-2-7b-chat-hf", True, None),
    ("meta-llama/Llama-3.2-3B-Instruct", True, None),
    ("meta-llama/Llama-3.2-3B-Instruct", False, None),  # 16-bit LoRA, as the configs once were
    ("meta-llama/Llama-3.1-8B-Instruct", True, None),
]
# Unsloth's published longest sequence for Llama-3.1-8B QLoRA on an 8 GB card (its README's
# context-length benchmarks: Unsloth 2,972 tokens, Hugging Face + FlashAttention-2 out of memory).
UNSLOTH_LLAMA31_8B_8GB = 2972
STEP = 128
MAX_SEQ = 65536
PATCHES = {  # column: Setup changes
    "recipe": {},
    "+sdpa": dict(sdpa_attention=True),
    "+emb CPU": dict(offload_embeddings=True),
    "+ckpt CPU": dict(offload_checkpoints=True),
    "+liger": dict(fused_loss="liger"),
    "all": dict(sdpa_attention=True, offload_embeddings=True, offload_checkpoints=True,
                fused_loss="liger"),
}


def recipe_setup(model_id: str, quantized: bool, seq: int, r: int = 16,
                 targets=None, **patches) -> Setup:
    arch = resolve(model_id)
    if arch.tied:
        patches.pop("offload_embeddings", None)  # the patch refuses a tied table
    return Setup(arch, quant="nf4" if quantized else None, double_quant=quantized,
                 weight_bytes=2, amp=True, upcast=False, lora_r=r, lora_targets=targets,
                 lora_dropout=0.05, optimizer="paged_adamw8bit", batch=1, seq=seq,
                 loss_chunk=128, expandable_segments=True, **patches)


def longest(setup: Setup, budget: int) -> int:
    """The longest multiple of STEP tokens whose upper_gb is within `budget` bytes (0: none)."""
    lo, hi = 0, MAX_SEQ // STEP
    while lo < hi:  # upper_gb grows with the length
        mid = (lo + hi + 1) // 2
        if upper_bytes(replace(setup, seq=mid * STEP)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo * STEP


def label(model_id: str, quantized: bool) -> str:
    return model_id if quantized else f"{model_id.split('/')[-1]} 16-bit"


def table(gpu_mem: float) -> list[str]:
    budget = int(usable_gib(gpu_mem) * GiB)
    lines = [f"longest max_length within {usable_gib(gpu_mem):.2f} GiB ({gpu_mem:g} GiB card) at "
             f"the top of the error band, LoRA r=16, batch 1 (tokens, steps of {STEP})",
             f"{'model':<34}" + "".join(f"{c:>11}" for c in PATCHES)]
    for model_id, quantized, targets in MODELS:
        cells = [longest(recipe_setup(model_id, quantized, STEP, targets=targets, **ch), budget)
                 for ch in PATCHES.values()]
        lines.append(f"{label(model_id, quantized):<34}" + "".join(f"{n:>11}" for n in cells))
    lines.append(f"{'Unsloth, Llama-3.1-8B QLoRA, 8 GB':<34}{UNSLOTH_LLAMA31_8B_8GB:>11}"
                 "  (published; its own kernels, not this estimator)")
    return lines


def grid(limit: float) -> list[str]:
    lengths, ranks = (1024, 2048, 4096), (8, 16, 32)
    lines = [f"\nestimated upper_gb with every patch on; * = within {limit:.2f} GiB",
             f"{'model':<34}" + "".join(f"{f'{n} r{r}':>12}" for n, r in product(lengths, ranks))]
    for model_id, quantized, targets in MODELS:
        cells = []
        for n, r in product(lengths, ranks):
            s = recipe_setup(model_id, quantized, n, r, targets, **PATCHES["all"])
            up = upper_bytes(s) / GiB
            cells.append(f"{up:>11.2f}{'*' if up <= limit else ' '}")
        lines.append(f"{label(model_id, quantized):<34}" + "".join(cells))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-mem", type=float, default=8.0, help="card GiB (default 8)")
    parser.add_argument("--grid", action="store_true", help="also the length x rank grid")
    args = parser.parse_args(argv)
    print("\n".join(table(args.gpu_mem)))
    if args.grid:
        print("\n".join(grid(usable_gib(args.gpu_mem))))
        s = recipe_setup("Qwen/Qwen2.5-7B-Instruct", True, 2048, 8, **PATCHES["all"])
        est = estimate(s)
        parts = ", ".join(f"{LABELS[k].split(' (')[0]} {v / GiB:.2f}"
                          for k, v in est.parts.items() if v)
        print(f"\nQwen2.5-7B, 2048 tokens, r=8, every patch: {est.total_gib:.2f} GiB ({parts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
