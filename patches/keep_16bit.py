"""XTuner's LoRA models keep an fp32 copy of every frozen 16-bit weight.

`SupervisedFinetune._prepare_for_lora` (xtuner/model/sft.py) calls PEFT's
`prepare_model_for_kbit_training` for every LoRA model, quantized or not, and that function
(peft/utils/other.py) casts every fp16/bf16 parameter that is not 4-bit to fp32. Under QLoRA that
is the embedding, the untied LM head, the norms and biases: +1.58 GiB on InternLM-7B, +2.03 GiB on
Qwen2.5-7B. On a 16-bit base (plain LoRA) it is every weight: Llama-3.2-3B goes from 6.0 to
12.0 GiB. The fp32 embedding also makes the residual stream fp32 (checkpoints cost twice as much)
and autocast keeps a 16-bit copy of the fp32 LM head for each step's matmul.

The patch does the rest of what prepare_model_for_kbit_training does (freeze the base model,
make the embedding output require grad for reentrant checkpointing, enable gradient
checkpointing) without the cast. The frozen weights stay in the dtype they were loaded in; layer
norms can be kept fp32 (`norms_fp32=True`), at the price of an fp32 residual stream under QLoRA
(bitsandbytes' 4-bit linears return their input's dtype). The LoRA adapters are untouched: PEFT
keeps them fp32. It is opt-in per config, through
components.finetune.PatchedFinetune(keep_16bit=True).
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager

TARGET = "xtuner.model.sft"

NORM_CLASS_MARKERS = ("Norm",)  # LlamaRMSNorm, Qwen2RMSNorm, InternLM2RMSNorm, ...


def prepare_keep_16bit(model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=None,
                       norms_fp32=False):
    """peft.prepare_model_for_kbit_training (0.21.2) without the fp32 cast."""
    import torch

    for param in model.parameters():
        param.requires_grad = False
    if norms_fp32:
        for module in model.modules():
            if any(m in type(module).__name__ for m in NORM_CLASS_MARKERS):
                for param in module.parameters(recurse=False):
                    if param.dtype in (torch.float16, torch.bfloat16):
                        param.data = param.data.float()
    kwargs = dict(gradient_checkpointing_kwargs or {})
    if use_gradient_checkpointing:
        if kwargs.get("use_reentrant", True):
            # reentrant checkpointing only backpropagates into a layer whose input requires grad
            model.enable_input_require_grads()
        if "gradient_checkpointing_kwargs" in inspect.signature(
            model.gradient_checkpointing_enable
        ).parameters:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable()
    return model


@contextmanager
def active(norms_fp32: bool = False):
    """While the model is built: XTuner's LoRA preparation keeps 16-bit weights 16-bit."""
    from xtuner.model import sft

    original = sft.prepare_model_for_kbit_training

    def prepare(model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=None,
                **_ignored):
        return prepare_keep_16bit(model, use_gradient_checkpointing,
                                  gradient_checkpointing_kwargs, norms_fp32=norms_fp32)

    sft.prepare_model_for_kbit_training = prepare
    try:
        yield
    finally:
        sft.prepare_model_for_kbit_training = original


def apply(sft_module) -> None:
    """For `patches.enable("keep_16bit")`: every XTuner model of the process keeps 16 bits."""
    sft_module.prepare_model_for_kbit_training = prepare_keep_16bit
