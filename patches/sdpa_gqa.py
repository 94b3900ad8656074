"""On a Turing GPU (RTX 20xx, sm75) every GQA model's attention runs torch's math kernel.

transformers 4.57 asks SDPA for grouped-query attention (`enable_gqa=True`, the key and value
heads not repeated) whenever torch is 2.5+ and there is no attention mask, which is every packed
training batch of the pack. On CUDA only FlashAttention-2 takes GQA, and it runs on sm80+ with
16-bit inputs and head sizes up to 256; the memory-efficient kernel needs as many key as query
heads. Everywhere else SDPA falls back to the math kernel, silently, and the math kernel keeps an
fp32 query x key score matrix per head: Llama-3.2-3B at 4096 tokens, 1.5 GiB a layer. On a fake
sm75 GPU (docs/memory.md) its step peaks at 7.29 GiB where doctor fit estimates 3.27, Qwen2.5-7B's
at 9.03 where it estimates 5.84: the pack's GQA configs go out of memory on an 8 GB Turing card.
The same happens on any GPU in fp32, above head size 256, or with FlashAttention turned off
(huggingface/transformers#48633, #45636, #45776).

`use_gqa_in_sdpa` now also asks that FlashAttention take the call (doctor/sdpa.py, torch's rule
in plain Python): elsewhere transformers repeats the key and value heads itself (its own
repeat_kv path, as with a mask) and the memory-efficient kernel runs. Off CUDA transformers'
answer stands (the CPU's fused kernel takes GQA).
"""

from __future__ import annotations

import functools

TARGET = "transformers.integrations.sdpa_attention"


def cuda_capability(t) -> tuple[int, int] | None:
    """(major, minor) of the CUDA device `t` is on; None off CUDA. (The fake GPU of
    bench/fakedevice.py answers for its device here.)"""
    if t.device.type != "cuda":
        return None
    import torch

    return torch.cuda.get_device_capability(t.device)


def flash_takes(key) -> bool:
    """FlashAttention-2 runs SDPA for a maskless call with this key (GQA heads as they are).
    The query has the key's dtype and head size (SDPA requires it); transformers 4.57 does not
    say whether the call drops out, so a head size that FlashAttention takes only without dropout
    counts as refused (repeated heads cost a little memory, the math kernel much more)."""
    import torch

    from doctor.sdpa import flash

    cc = cuda_capability(key)
    if cc is None or not torch.backends.cuda.flash_sdp_enabled():
        return False
    dtype = key.dtype
    if torch.is_autocast_enabled("cuda") and dtype.is_floating_point and dtype != torch.float64:
        dtype = torch.get_autocast_dtype("cuda")  # SDPA is on autocast's 16-bit list
    return flash(cc, str(dtype).removeprefix("torch."), key.shape[-1],
                 grad=torch.is_grad_enabled(), dropout=True)


def apply(module) -> None:
    original = module.use_gqa_in_sdpa

    @functools.wraps(original)
    def use_gqa_in_sdpa(attention_mask, key, *args, **kwargs):
        if not original(attention_mask, key, *args, **kwargs):
            return False
        if cuda_capability(key) is None:
            return True
        return attention_mask is None and flash_takes(key)

    module.use_gqa_in_sdpa = use_gqa_in_sdpa
