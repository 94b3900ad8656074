"""A fused linear cross-entropy for the loss, where the GPU and the library allow it.

patches.chunked_ce computes the loss 128 tokens at a time in plain PyTorch: each chunk's logits
exist twice (the 16-bit head output and its fp32 upcast) and are recomputed in the backward.
liger-kernel's and cut-cross-entropy's Triton kernels compute the head matmul and the
cross-entropy together (liger: chunks sized from vocab/hidden, the gradient written into the
logits buffer in the forward pass; cut-cross-entropy: logits never stored at all), which is
faster and smaller. Both are CUDA-only (Triton); neither runs on the CPU.

`fused_loss` is what PatchedFinetune takes:
  "auto"    liger-kernel where it is installed and the batch is on a CUDA device, else
            cut-cross-entropy likewise, else the chunked loss (CPU, library missing, a LoRA
            adapter on the head, which the fused kernels cannot see);
  "liger" / "cce"   that library; an error where it is missing or the batch is not on CUDA;
  "chunked" the pack's chunked loss; None: the model's own loss (unless loss_chunk is set).
liger-kernel is installed by `make env` beside a CUDA torch (env/stack.txt, group cuda).
"""

from __future__ import annotations

import importlib.util

TARGET = None  # chosen per batch by the loss installed through patches.chunked_ce

KINDS = ("auto", "liger", "cce", "chunked")
MODULES = {"liger": "liger_kernel", "cce": "cut_cross_entropy"}
INSTALL = {"liger": "pip install -c env/stack.txt liger-kernel==0.8.5",
           "cce": "pip install -c env/stack.txt cut-cross-entropy==25.1.1"}


def available(kind: str) -> bool:
    """The library is importable (found without importing it: no Triton start-up)."""
    return importlib.util.find_spec(MODULES[kind]) is not None


def fusable_head(head) -> bool:
    """A plain linear head: no LoRA adapter (PEFT's LoraLayer has lora_A), no 4-bit weight."""
    import torch

    return (isinstance(head, torch.nn.Linear) and not hasattr(head, "lora_A")
            and head.weight.is_floating_point())


def liger_loss(hidden, head, labels, ignore_index=-100):
    import torch.nn.functional as F
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

    shifted = F.pad(labels[:, 1:], (0, 1), value=ignore_index).reshape(-1)
    flat = hidden.reshape(-1, hidden.shape[-1])
    return liger_fused_linear_cross_entropy(flat, head.weight, shifted, bias=head.bias,
                                            ignore_index=ignore_index, reduction="mean")


def cce_loss(hidden, head, labels, ignore_index=-100):
    from cut_cross_entropy import linear_cross_entropy

    if head.bias is not None:
        raise ValueError("cut-cross-entropy: the LM head has a bias, which it does not take")
    return linear_cross_entropy(hidden, head.weight, labels, ignore_index=ignore_index,
                                reduction="mean", shift=True)


FUNCTIONS = {"liger": liger_loss, "cce": cce_loss}


def validate(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"fused_loss must be one of {', '.join(KINDS)} or None, not {kind!r}")
    if kind in MODULES and not available(kind):
        raise ValueError(f"fused_loss={kind!r}: {MODULES[kind]} is not installed "
                         f"({INSTALL[kind]}; CUDA GPUs only)")


def choose(kind: str, hidden, head) -> str:
    """The loss one batch runs with: "liger", "cce" or "chunked"."""
    if kind == "chunked":
        return "chunked"
    usable = hidden.is_cuda and fusable_head(head)
    if kind in MODULES:
        if not usable:
            raise ValueError(f"fused_loss={kind!r} needs the batch on a CUDA GPU and a plain "
                             "linear LM head (no LoRA on it); use fused_loss='auto'")
        return kind
    for name in ("liger", "cce"):  # auto
        if usable and available(name):
            return name
    return "chunked"
