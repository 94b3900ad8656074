"""Gradient checkpointing still keeps every layer's input on the GPU until the backward pass.

With checkpointing (XTuner turns it on for every run) each decoder layer saves only its input,
the residual stream: layers x tokens x hidden 16-bit values, 0.42 GiB for InternLM-7B at 2048
tokens, 1 GiB for Llama-2-7B at 4096, growing with the length. Those inputs are read once more,
when the layer is recomputed in the backward pass, so they can wait in CPU memory, as torchtune
and Unsloth do.

The patch runs the decoder's forward under autograd saved-tensor hooks
(torch.autograd.graph.saved_tensors_hooks, like torch.autograd.graph.save_on_cpu): every saved
floating tensor of at least `min_bytes` (the layer inputs that reentrant checkpointing saves,
and the final norm's input) is copied into pinned CPU memory as it is saved, and copied back to
its device when the backward pass asks for it, so at most the layer being recomputed has its
input on the GPU. A tensor saved twice is copied once. Cost: one device-to-host and one
host-to-device copy of each checkpoint per step (2048 tokens x 4096 hidden x 2 bytes = 16 MiB
per layer), asynchronous from pinned memory, overlapping the compute on the same CUDA stream.
Only the decoder's training forward with gradient checkpointing on is hooked. Opt-in per config,
through components.finetune.PatchedFinetune(offload_checkpoints=True).
"""

from __future__ import annotations

import types
import weakref
from contextlib import contextmanager

TARGET = None  # installed on a built model by install(), not on an import

MIN_BYTES = 1 << 20  # small saved tensors (norm statistics, masks of a few tokens) stay


@contextmanager
def offloaded_saves(min_bytes: int = MIN_BYTES, stats: dict | None = None):
    """Saved tensors of at least `min_bytes` go to (pinned) CPU memory while this is active."""
    import torch

    # A tensor saved twice is copied once. Copies are found by the storage object itself, held
    # weakly: an address is not an identity (a freed block is handed to the next tensor of the
    # same size, whose copy would then be the freed one's), and a strong reference would keep
    # the device memory the offload exists to free.
    copies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    stats = {} if stats is None else stats
    stats.update(tensors=0, bytes=0)

    def pack(t):
        nbytes = t.numel() * t.element_size()
        if not t.is_floating_point() or nbytes < min_bytes:
            return t
        views = copies.setdefault(t.untyped_storage(), {})
        key = (t.storage_offset(), tuple(t.shape), t.stride(), t._version)
        if key not in views:
            # page-locked host memory for a device tensor, so that both copies are asynchronous
            # on its stream; a new host tensor even for a host source: the same path everywhere
            pin = t.device.type != "cpu"
            cpu = torch.empty(t.shape, dtype=t.dtype, layout=t.layout, pin_memory=pin)
            cpu.copy_(t, non_blocking=pin)
            views[key] = (t.device, cpu, pin)
            stats["tensors"] += 1
            stats["bytes"] += nbytes
        return views[key]

    def unpack(packed):
        if isinstance(packed, tuple):
            device, cpu, pin = packed
            return cpu.to(device, non_blocking=pin)
        return packed

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield stats


def install(causal_lm, min_bytes: int = MIN_BYTES) -> None:
    """Offload the saved tensors of `causal_lm`'s decoder (PEFT-wrapped or not) to the CPU
    during training forwards with gradient checkpointing."""
    import torch

    model = causal_lm.get_base_model() if hasattr(causal_lm, "get_base_model") else causal_lm
    decoder = getattr(model, model.base_model_prefix)
    original = decoder.forward
    decoder._pack_offload_stats = {}

    def forward(self, *args, **kwargs):
        if not (torch.is_grad_enabled() and self.training
                and getattr(self, "gradient_checkpointing", False)):
            return original(*args, **kwargs)
        with offloaded_saves(min_bytes, self._pack_offload_stats):
            return original(*args, **kwargs)

    decoder.forward = types.MethodType(forward, decoder)
