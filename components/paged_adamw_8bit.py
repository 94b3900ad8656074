"""XTuner's recipes train the LoRA adapters with torch's fp32 AdamW: 8 bytes of state per param.

bitsandbytes' 8-bit AdamW keeps both moments in blockwise 8-bit (2 bytes per parameter plus an
fp32 absmax per 256; tensors under 4096 elements stay 32-bit): r=16 on a 7B model is 40M
adapter parameters, 0.30 GiB of fp32 AdamW state against 0.08 GiB. The paged variant allocates
those states in CUDA unified memory, which the driver pages out to the CPU when the GPU runs out
instead of failing, so a peak from an unusually long batch does not end the run.

bitsandbytes 0.50 runs 8-bit AdamW on the CPU too, but its paged variant warns there and falls
back to plain memory; `PagedAdamW8bit` below picks the paged class only for CUDA parameters, so a
config can name one optimizer for both. Use it as the optimizer `type` of a config
(the recipe's `optimizer="paged_adamw_8bit"` does).
"""

from __future__ import annotations

from patches import applied


def PagedAdamW8bit(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,  # noqa: N802
                   **kwargs):
    """bitsandbytes.optim.PagedAdamW8bit for CUDA parameters, AdamW8bit elsewhere."""
    import bitsandbytes as bnb

    params = list(params)
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict)
                                                 else [group])]
    on_cuda = any(t.device.type == "cuda" for t in tensors)
    cls = bnb.optim.PagedAdamW8bit if on_cuda else bnb.optim.AdamW8bit
    applied.add("paged_adamw_8bit")
    return cls(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, **kwargs)
