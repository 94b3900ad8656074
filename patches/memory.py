"""How a config turns the memory patches on: a model type it builds.

mmengine reads configs in lazy-import mode, so a config cannot call patch code itself; it can
name a `type` that the runner builds. `PatchedFinetune` is that type: it builds XTuner's
SupervisedFinetune (or `base`, e.g. the smoke config's TinyFinetune) with the memory patches the
config asks for, so the same config works for `xtuner train`, `xtuner convert pth_to_hf` and
`python -m doctor fit` (which reads these keyword arguments to estimate the run):

    model = dict(type=PatchedFinetune, keep_16bit=True, loss_chunk=128, llm=..., lora=...)

The optimizer patch is an optimizer type instead (patches.paged_adamw_8bit.PagedAdamW8bit).
"""

from __future__ import annotations

from contextlib import nullcontext

from . import applied

TARGET = None  # a model type, not an import hook


def PatchedFinetune(*, base=None, keep_16bit: bool = True, norms_fp32: bool = False,  # noqa: N802
                    loss_chunk: int | None = 128, **kwargs):
    """`base(**kwargs)` (XTuner's SupervisedFinetune by default, or a dotted name) with the
    memory patches on.

    keep_16bit: frozen weights stay 16-bit (patches.keep_16bit); norms_fp32 keeps the norms fp32.
    loss_chunk: tokens per chunk of the chunked loss (patches.chunked_ce); None or 0 = off.
    """
    from . import chunked_ce
    from . import keep_16bit as keep

    if base is None:
        from xtuner.model import SupervisedFinetune as base
    elif isinstance(base, str):  # a dotted name, as `xtuner train --cfg-options model.base=...`
        import importlib

        module, _, name = base.rpartition(".")
        base = getattr(importlib.import_module(module), name)
    with keep.active(norms_fp32=norms_fp32) if keep_16bit else nullcontext():
        model = base(**kwargs)
    if keep_16bit:
        applied.add("keep_16bit")
    if loss_chunk:
        chunked_ce.install(model.llm, loss_chunk)
        applied.add("chunked_ce")
    return model
