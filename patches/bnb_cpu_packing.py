"""On a CPU with AVX512-BF16, QLoRA loses its gradients after the first eval-mode forward.

bitsandbytes 0.50's `Linear4bit.forward` converts its 4-bit weight to a CPU inference layout
(`_convert_weight_packed_for_cpu`: codes reordered for the AVX512-BF16 kernel, scales dequantized
and rounded to bf16, `quant_state.packing_format_for_cpu = True`) the first time it runs on the
CPU in eval mode with an input that needs no gradient, and never converts back. XTuner's
EvaluateChatHook does exactly that before the first step (model.eval(), generate, model.train()),
so does any evaluation during training. Every later training forward then goes through
`bitsandbytes::gemv_4bit`, which has no autograd kernel: torch warns once ("This may lead to
silently incorrect behavior") and the input gradient of every frozen 4-bit layer is lost, so the
LoRA weights of every layer but the top one train on wrong or no gradients. The base weights
also change: the scales come back from bf16, not as they were quantized.

The patch keeps the inference layout for inference and gives training the weights it had:
- packing keeps the quantization state it replaces (the scales and their double quantization:
  1/32 of the 4-bit weight's bytes with double quantization, 1/8 without);
- unpacking restores that state exactly (bitsandbytes' own inverse re-quantizes the bf16 scales,
  a second rounding); the codes' reordering is a permutation, undone exactly;
- `Linear4bit.forward` unpacks when the call is a training one (module in train mode, or an input
  that needs a gradient): the layout follows the call, not the history.
"""

from __future__ import annotations

import functools

TARGET = "bitsandbytes.nn.modules"
SAVED = "_pack_saved_training_state"  # on the QuantState while it is packed


def _keeping_state(pack):
    @functools.wraps(pack)
    def convert(qweight, quant_state, *args, **kwargs):
        saved = dict(absmax=quant_state.absmax, nested=quant_state.nested,
                     dtype=quant_state.dtype, offset=quant_state.offset,
                     state2=getattr(quant_state, "state2", None))
        packed, state = pack(qweight, quant_state, *args, **kwargs)
        setattr(state, SAVED, saved)
        return packed, state

    return convert


def _restoring_state(unpack):
    @functools.wraps(unpack)
    def convert(packed, quant_state, *args, **kwargs):
        saved = getattr(quant_state, SAVED, None)
        qweight, state = unpack(packed, quant_state, *args, **kwargs)
        if saved is not None:
            for name, value in saved.items():
                setattr(state, name, value)
            delattr(state, SAVED)
        return qweight, state

    return convert


def _unpacking_for_training(forward, modules):
    @functools.wraps(forward)
    def linear4bit_forward(self, x, *args, **kwargs):
        state = getattr(self.weight, "quant_state", None)
        if (getattr(state, "packing_format_for_cpu", False)
                and (self.training or x.requires_grad)):
            self.weight.data, self.weight.quant_state = (
                modules._convert_weight_packed_for_cpu_inverse(self.weight.data, state))
        return forward(self, x, *args, **kwargs)

    return linear4bit_forward


def apply(modules) -> None:
    if not hasattr(modules, "_convert_weight_packed_for_cpu"):
        return  # a bitsandbytes without the CPU inference layout: nothing to fix
    import bitsandbytes.functional as F

    if getattr(modules.Linear4bit.forward, "__pack_patched__", False):
        return
    pack = _keeping_state(F._convert_weight_packed_for_cpu)
    unpack = _restoring_state(F._convert_weight_packed_for_cpu_inverse)
    for where in (F, modules):  # modules.py imported both names from functional
        where._convert_weight_packed_for_cpu = pack
        where._convert_weight_packed_for_cpu_inverse = unpack
    forward = _unpacking_for_training(modules.Linear4bit.forward, modules)
    forward.__pack_patched__ = True
    modules.Linear4bit.forward = forward
