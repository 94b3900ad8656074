"""The evaluation batch that fits a GPU budget, from the doctor's own model of the config.

Generation holds the frozen model (doctor fit's exact weight terms, without the fp32 upcast that
only training's PEFT preparation does), the adapter, the CUDA context, and per sequence its KV
cache over prompt + answer plus the prefill's transient tensors (one layer's activations, eager
attention's score matrix where the model's code has no SDPA, the last position's logits).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from doctor.fit import config as fit_config
from doctor.fit.estimate import CUDA_CONTEXT_GIB, lora_numel, weight_terms

GiB = 1024**3
MAX_BATCH = 64  # beyond this the CPU-side tokenization and padding dominate
SLACK = 0.10  # of the budget, for the allocator's fragmentation


@dataclass
class BatchPlan:
    batch: int
    fixed_gib: float  # weights + adapter + context
    per_seq_gib: float
    budget_gib: float

    def describe(self) -> str:
        return (f"batch {self.batch}: {self.fixed_gib:.2f} GiB model + {self.batch} x "
                f"{self.per_seq_gib * 1024:.1f} MiB per sequence within "
                f"{self.budget_gib:.1f} GiB (doctor fit's weights, KV cache per token)")


def plan(config_path, *, seq_tokens: int, gpu_gib: float = 8.0, adapter: bool = True) -> BatchPlan:
    """The largest batch (1..64) whose generation of `seq_tokens` (prompt + new) fits `gpu_gib`.
    Raises doctor's ConfigError for a config it cannot read."""
    loaded = fit_config.read(config_path)
    setup = replace(loaded.setup, upcast=False, batch=1, seq=seq_tokens)
    arch = setup.arch
    weights = sum(weight_terms(setup).values())
    lora = lora_numel(setup) * 4 if adapter else 0  # PEFT keeps adapters fp32
    fixed = weights + lora + CUDA_CONTEXT_GIB * GiB
    act = 2  # 16-bit compute
    kv = 2 * arch.layers * arch.kv_heads * arch.head_dim * act * seq_tokens
    prefill = seq_tokens * (4 * arch.hidden + 3 * arch.intermediate) * act
    if arch.attn == "eager":
        prefill += arch.heads * seq_tokens * seq_tokens * 4  # fp32 softmax of the scores
    logits = arch.vocab * 4
    per_seq = kv + prefill + logits
    free = gpu_gib * GiB * (1 - SLACK) - fixed
    batch = int(max(1, min(MAX_BATCH, free // per_seq))) if free > 0 else 1
    return BatchPlan(batch, fixed / GiB, per_seq / GiB, gpu_gib)
