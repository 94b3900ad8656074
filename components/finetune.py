"""How a config turns the memory patches on: a model type it builds.

mmengine reads configs in lazy-import mode, so a config cannot call patch code itself; it can
name a `type` that the runner builds. `PatchedFinetune` is that type: it builds XTuner's
SupervisedFinetune (or `base`, e.g. the smoke config's TinyFinetune) with the memory patches the
config asks for, so the same config works for `xtuner train`, `xtuner convert pth_to_hf` and
`python -m doctor fit` (which reads these keyword arguments to estimate the run):

    model = dict(type=PatchedFinetune, keep_16bit=True, loss_chunk=128, llm=..., lora=...)

The optimizer patch is an optimizer type instead (components.paged_adamw_8bit.PagedAdamW8bit).
"""

from __future__ import annotations

from contextlib import nullcontext

from patches import applied


def PatchedFinetune(*, base=None, keep_16bit: bool = True, norms_fp32: bool = False,  # noqa: N802
                    loss_chunk: int | None = 128, sdpa_attention: bool = False,
                    offload_embeddings: bool = False, offload_checkpoints: bool = False,
                    fused_loss: str | None = None, **kwargs):
    """`base(**kwargs)` (XTuner's SupervisedFinetune by default, or a dotted name) with the
    memory patches on.

    keep_16bit: frozen weights stay 16-bit (patches.keep_16bit); norms_fp32 keeps the norms fp32.
    loss_chunk: tokens per chunk of the chunked loss (patches.chunked_ce); None or 0 = off.
    sdpa_attention: InternLM/InternLM2 remote-code attention through SDPA (patches.sdpa_attention;
        no effect on models without their eager attention classes).
    offload_embeddings: the frozen input embedding table in CPU memory (patches.offload_embeddings).
    offload_checkpoints: the checkpointed layer inputs in pinned CPU memory
        (patches.offload_checkpoints).
    fused_loss: "auto" | "liger" | "cce" | "chunked" | None (patches.fused_loss); any but None
        computes the loss from the hidden states, chunked with loss_chunk (default 128) where no
        fused kernel runs.
    """
    from patches import chunked_ce
    from patches import fused_loss as fused
    from patches import keep_16bit as keep
    from patches import offload_checkpoints as ckpt
    from patches import offload_embeddings as embeddings
    from patches import sdpa_attention as sdpa

    fused.validate(fused_loss)  # before the model loads: a missing library fails in seconds

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
    if sdpa_attention and sdpa.install(model.llm):
        applied.add("sdpa_attention")
    if offload_embeddings:
        embeddings.install(model.llm)
        applied.add("offload_embeddings")
    if offload_checkpoints:
        ckpt.install(model.llm)
        applied.add("offload_checkpoints")
    if loss_chunk or fused_loss:
        chunked_ce.install(model.llm, loss_chunk or 128, fused_loss=fused_loss)
        applied.add("chunked_ce")
        if fused_loss not in (None, "chunked"):
            applied.add("fused_loss")
    return model
