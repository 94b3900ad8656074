"""doctor/sdpa.py: the SDPA kernel a CUDA GPU runs, as torch 2.13's select_sdp_backend picks it
(aten/src/ATen/native/transformers/cuda/sdp_utils.cpp; each case names the check it follows)."""

from __future__ import annotations

import pytest

from doctor import sdpa

TURING, AMPERE_A100, AMPERE, ADA = (7, 5), (8, 0), (8, 6), (8, 9)
HOPPER, BLACKWELL = (9, 0), (12, 0)


@pytest.mark.parametrize("cc, dtype, head_dim, kwargs, expected", [
    # check_flash_attention_hardware_support: sm80..sm121; below, GQA leaves only the math kernel
    # (check_batch_size_and_num_heads_dense: the memory-efficient kernel wants equal heads)
    (TURING, "float16", 128, dict(gqa=True), "math"),
    (TURING, "float16", 128, dict(), "efficient"),
    (AMPERE, "float16", 128, dict(gqa=True), "flash"),
    (BLACKWELL, "bfloat16", 128, dict(gqa=True), "flash"),
    ((12, 2), "float16", 128, dict(gqa=True), "math"),
    # check_dtypes_low_precision: flash takes 16-bit only; below sm80 the memory-efficient kernel
    # takes fp16 and fp32, not bf16
    (AMPERE, "float32", 128, dict(gqa=True), "math"),
    (AMPERE, "float32", 128, dict(), "efficient"),
    (TURING, "bfloat16", 128, dict(), "math"),
    (AMPERE, "bfloat16", 128, dict(mask=True), "efficient"),
    # check_for_attn_mask: flash takes no mask
    (AMPERE, "float16", 128, dict(gqa=True, mask=True), "math"),
    (AMPERE, "float16", 128, dict(mask=True), "efficient"),
    # check_head_dim_size_flash: equal head sizes, at most 256
    (HOPPER, "float16", 320, dict(gqa=True), "math"),
    (HOPPER, "float16", 320, dict(), "efficient"),
    (HOPPER, "float16", 192, dict(gqa=True, value_head_dim=128), "math"),
    (HOPPER, "float16", 192, dict(value_head_dim=128), "efficient"),
    # check_requires_grad_and_head_dim_gt192_constraints_on_sm86_89_or_120
    (AMPERE, "float16", 256, dict(gqa=True, dropout=True), "math"),
    (AMPERE, "float16", 256, dict(gqa=True), "flash"),
    (ADA, "float16", 208, dict(), "efficient"),
    (ADA, "float16", 208, dict(grad=False), "flash"),
    (AMPERE_A100, "float16", 256, dict(gqa=True, dropout=True), "flash"),
    # check_flash_causal_non_square_seqlens
    (AMPERE, "float16", 128, dict(gqa=True, square=False), "math"),
    # check_head_dim_size_mem_efficient: multiples of minimum_gemm_alignment
    (TURING, "float16", 36, dict(), "math"),
    (TURING, "float32", 36, dict(), "efficient"),
    (AMPERE, "float32", 102, dict(), "math"),
    # check_mem_efficient_hardware_support: sm50..sm121
    ((5, 0), "float16", 64, dict(), "efficient"),
    ((3, 7), "float16", 64, dict(), "math"),
    # check_runtime_disabled_*: torch.backends.cuda.enable_*_sdp / sdpa_kernel
    (AMPERE, "float16", 128, dict(gqa=True, enabled=("efficient", "math")), "math"),
    (TURING, "float16", 128, dict(gqa=True, enabled=("flash", "efficient")), "none"),
])
def test_the_kernel_is_the_first_whose_checks_pass(cc, dtype, head_dim, kwargs, expected):
    assert sdpa.kernel(cc, dtype, head_dim, **kwargs) == expected


@pytest.mark.parametrize("cc, dtype, alignment", [
    (TURING, "float16", 8), (TURING, "float32", 1), (AMPERE, "float32", 4),
    (AMPERE, "bfloat16", 8), ((6, 1), "float16", 1)])
def test_gemm_alignment_is_torchs_minimum_gemm_alignment(cc, dtype, alignment):
    assert sdpa.gemm_alignment(cc, dtype) == alignment


def test_the_installed_torch_still_says_only_flash_and_math_take_gqa_on_cuda():
    # The rule's "no GQA in the memory-efficient kernel" is torch 2.13's; a torch whose kernel
    # takes GQA says otherwise here, and doctor/sdpa.py (and patches.sdpa_gqa) must follow it.
    import torch.nn.functional as F

    doc = " ".join(F.scaled_dot_product_attention.__doc__.split())
    assert "It currently works only for Flash_attention and math kernel on CUDA tensor" in doc
