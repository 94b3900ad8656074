"""Which kernel torch's scaled_dot_product_attention runs on a CUDA GPU, in plain Python.

One source for the rule, read by three: `patches.sdpa_gqa` (transformers asks for GQA only where
a kernel that takes it runs), the fake GPU (bench/fakedevice.py routes its SDPA calls the same
way) and `doctor fit` (a config that would run the math kernel on the user's GPU). Nothing here
imports torch: callers pass what they know of the call.

The rule is torch 2.13's (env/stack.txt) `select_sdp_backend`
(aten/src/ATen/native/transformers/cuda/sdp_utils.cpp, its checks in sdp_utils_cpp.h): the first
of FlashAttention-2, the memory-efficient kernel and the math kernel whose checks pass.
- FlashAttention: sm80 to sm121; fp16 or bf16; no mask; q, k and v of the same head size, at
  most 256; on sm86/89/120/121, in training, a head size above 192 only without dropout and
  above 224; `is_causal` only with as many queries as keys; takes GQA (enable_gqa).
- memory-efficient: sm50 to sm121; fp16 or fp32, bf16 too from sm80; any mask; the head sizes
  of q and k equal and those of q and v a multiple of the GEMM alignment (fp16/bf16: 8; fp32:
  4 from sm80, none below); no GQA (torch 2.13's docstring of scaled_dot_product_attention:
  "GQA ... works only for Flash_attention and math kernel on CUDA tensor").
- math: everything, at the cost of the scores: a query x key matrix per head, in fp32 for 16-bit
  inputs (torch's default; allowFP16BF16ReductionMathSDP is off).
cuDNN attention comes first only on sm90/sm100 (check_prefer_cudnn_attention), no 8 GB card.
"""

from __future__ import annotations

FLASH_SM = ((8, 0), (12, 1))  # check_flash_attention_hardware_support
MEM_EFFICIENT_SM = ((5, 0), (12, 1))  # check_mem_efficient_hardware_support
FLASH_MAX_HEAD_DIM = 256  # check_head_dim_size_flash
SIXTEEN_BIT = ("float16", "bfloat16")
KERNELS = ("flash", "efficient", "math")


def flash(cc: tuple[int, int], dtype: str, head_dim: int, *, mask: bool = False,
          grad: bool = True, dropout: bool = False, square: bool = True,
          value_head_dim: int | None = None) -> bool:
    """FlashAttention-2 takes the call (GQA included). `grad`: autograd will differentiate it;
    `square`: not `is_causal` with fewer queries than keys."""
    value_head_dim = head_dim if value_head_dim is None else value_head_dim
    if not FLASH_SM[0] <= tuple(cc) <= FLASH_SM[1] or dtype not in SIXTEEN_BIT or mask:
        return False
    if value_head_dim != head_dim or head_dim > FLASH_MAX_HEAD_DIM or not square:
        return False
    # check_requires_grad_and_head_dim_gt192_constraints_on_sm86_89_or_120
    if grad and ((8, 6) <= tuple(cc) <= (8, 9) or (12, 0) <= tuple(cc) <= (12, 1)):
        return head_dim <= 192 or (not dropout and head_dim > 224)
    return True


def gemm_alignment(cc: tuple[int, int], dtype: str) -> int:
    """minimum_gemm_alignment: the memory-efficient kernel's head sizes are multiples of it."""
    half = dtype in SIXTEEN_BIT
    tensor_cores = cc[0] >= 8 or (cc[0] >= 7 and half)
    alignment = 4 if cc[0] >= 8 else 1
    return max(alignment, 128 // (16 if half else 32)) if tensor_cores else alignment


def efficient(cc: tuple[int, int], dtype: str, head_dim: int, *, gqa: bool = False,
              value_head_dim: int | None = None) -> bool:
    """The memory-efficient kernel takes the call. `gqa`: fewer key than query heads."""
    value_head_dim = head_dim if value_head_dim is None else value_head_dim
    if not MEM_EFFICIENT_SM[0] <= tuple(cc) <= MEM_EFFICIENT_SM[1] or gqa:
        return False
    if dtype not in (("float16", "float32", "bfloat16") if cc[0] >= 8 else ("float16", "float32")):
        return False
    align = gemm_alignment(cc, dtype)
    return head_dim % align == 0 and value_head_dim % align == 0


def kernel(cc: tuple[int, int], dtype: str, head_dim: int, *, gqa: bool = False,
           mask: bool = False, grad: bool = True, dropout: bool = False, square: bool = True,
           value_head_dim: int | None = None, enabled: tuple[str, ...] = KERNELS) -> str:
    """"flash", "efficient" or "math": the kernel SDPA runs on a GPU of compute capability `cc`
    ("none" when every enabled one refuses: torch's "No available kernel"). `enabled`: the kernels
    torch.backends.cuda.*_sdp_enabled() leaves on (torch.nn.attention.sdpa_kernel sets them)."""
    if "flash" in enabled and flash(cc, dtype, head_dim, mask=mask, grad=grad, dropout=dropout,
                                    square=square, value_head_dim=value_head_dim):
        return "flash"
    if "efficient" in enabled and efficient(cc, dtype, head_dim, gqa=gqa,
                                            value_head_dim=value_head_dim):
        return "efficient"
    return "math" if "math" in enabled else "none"


def parse_capability(text: str) -> tuple[int, int]:
    """"7.5" -> (7, 5), as nvidia-smi's compute_cap prints it; ValueError otherwise."""
    major, dot, minor = str(text).strip().partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise ValueError(f"{text!r}: a compute capability is MAJOR.MINOR, e.g. 7.5")
    return int(major), int(minor)


def score_bytes(heads: int, queries: int, keys: int) -> int:
    """One layer's attention scores in the math kernel: fp32, a query x key matrix per head."""
    return 4 * heads * queries * keys


__all__ = ["FLASH_SM", "KERNELS", "MEM_EFFICIENT_SM", "efficient", "flash", "gemm_alignment",
           "kernel", "parse_capability", "score_bytes"]
