"""xtuner 0.2.0 cannot build a model on a CPU-only machine.

`SupervisedFinetune._prepare_for_flash_attn` (xtuner/model/sft.py:237, also llava.py, reward.py
and tools/utils.py for --deepspeed) calls `get_torch_device().is_bf16_supported()`, which is
`torch.cpu.is_bf16_supported()` when there is no GPU, and torch has no such function:
`AttributeError: module 'torch.cpu' has no attribute 'is_bf16_supported'`.

The patch gives `torch.cpu` the function, answering False: mmengine's AMP wrappers refuse the CPU
anyway, so XTuner must not pick bf16 there. It is registered on xtuner's device module, so it
is in place before any of those call sites runs.
"""

from __future__ import annotations

TARGET = "xtuner.utils.device"


def apply(_device_module) -> None:
    import torch

    if not hasattr(torch.cpu, "is_bf16_supported"):
        torch.cpu.is_bf16_supported = lambda including_emulation=True: False
