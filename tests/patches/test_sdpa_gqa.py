"""patches.sdpa_gqa: transformers asks SDPA for GQA only where FlashAttention will take it.

The decision is transformers' `use_gqa_in_sdpa` as this process has it (the startup patches are
in force in every interpreter of the environment; XTUNER_PACK_PATCHES=-sdpa_gqa runs these tests
against transformers as released, and the Turing cases fail). The keys are meta tensors standing
for CUDA ones of a given compute capability, as the fake GPU's are (bench/fakedevice.py answers
patches.sdpa_gqa.cuda_capability for its device the same way).
"""

from __future__ import annotations

import pytest
import torch
import transformers.integrations.sdpa_attention as hf_sdpa
from torch.nn.attention import SDPBackend, sdpa_kernel

from patches import sdpa_gqa


@pytest.fixture
def gpu(monkeypatch):
    """gpu(cc): meta tensors are on a CUDA device of compute capability `cc`."""
    asked = sdpa_gqa.cuda_capability

    def on(cc):
        monkeypatch.setattr(sdpa_gqa, "cuda_capability",
                            lambda t: cc if t.device.type == "meta" else asked(t))

    return on


def key(dtype=torch.float16, heads=4, head_dim=128, device="meta"):
    return torch.empty(1, heads, 16, head_dim, dtype=dtype, device=device)


@pytest.mark.parametrize("cc, dtype, head_dim, gqa", [
    ((7, 5), torch.float16, 128, False),  # Turing: no FlashAttention (the RTX 20xx 8 GB cards)
    ((7, 5), torch.float32, 128, False),
    ((8, 6), torch.float16, 128, True),  # Ampere: FlashAttention takes the GQA heads
    ((8, 9), torch.bfloat16, 64, True),
    ((12, 0), torch.float16, 128, True),
    ((8, 6), torch.float32, 128, False),  # fp32: FlashAttention takes 16-bit only
    ((9, 0), torch.float16, 320, False),  # head size above 256
    ((8, 6), torch.float16, 256, False),  # sm86 training above 192: only without dropout
    ((8, 0), torch.float16, 256, True),
])
def test_gqa_only_where_flash_attention_takes_the_maskless_call(gpu, cc, dtype, head_dim, gqa):
    gpu(cc)
    assert hf_sdpa.use_gqa_in_sdpa(None, key(dtype, head_dim=head_dim)) is gqa


def test_transformers_as_released_asks_for_gqa_on_turing(gpu):
    # the bug, in the installed transformers: still there, or this patch has become a no-op
    gpu((7, 5))
    assert hf_sdpa.use_gqa_in_sdpa.__wrapped__(None, key()) is True
    assert hf_sdpa.use_gqa_in_sdpa(None, key()) is False


def test_flash_turned_off_by_the_user_means_no_gqa(gpu):
    gpu((8, 6))
    with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
        assert hf_sdpa.use_gqa_in_sdpa(None, key()) is False
    assert hf_sdpa.use_gqa_in_sdpa(None, key()) is True


def test_under_autocast_the_dtype_is_autocasts(gpu):
    # SDPA is on CUDA autocast's 16-bit list: an fp32 key reaches it as fp16. (The flags that
    # torch.autocast("cuda") sets, set directly: it turns itself off without CUDA.)
    gpu((8, 6))
    dtype = torch.get_autocast_dtype("cuda")
    torch.set_autocast_enabled("cuda", True)
    torch.set_autocast_dtype("cuda", torch.float16)
    try:
        assert hf_sdpa.use_gqa_in_sdpa(None, key(torch.float32)) is True
    finally:
        torch.set_autocast_enabled("cuda", False)
        torch.set_autocast_dtype("cuda", dtype)
    assert hf_sdpa.use_gqa_in_sdpa(None, key(torch.float32)) is False


def test_a_mask_and_other_devices_keep_transformers_answer(gpu):
    gpu((8, 6))
    mask = torch.ones(1, 1, 16, 16, dtype=torch.bool, device="meta")
    assert hf_sdpa.use_gqa_in_sdpa(mask, key()) is False
    # the CPU's fused kernel takes GQA in every dtype: transformers' answer stands
    assert hf_sdpa.use_gqa_in_sdpa(None, key(torch.float32, device="cpu")) is True
