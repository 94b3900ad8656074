"""`xtuner train CONFIG --deepspeed ...` fails before training, on any machine, with DeepSpeed 0.19.

mmengine 0.10's `DeepSpeedStrategy.__init__` calls `register_deepspeed_optimizers()`
(mmengine/_strategy/deepspeed.py), which imports DeepSpeed's 1-bit optimizers from
`deepspeed.runtime.fp16.onebit`; DeepSpeed 0.19 no longer has that module (0.17.6 still had it):
`ModuleNotFoundError: No module named 'deepspeed.runtime.fp16.onebit'`.

The patch registers, in mmengine's OPTIMIZERS registry, each of those DeepSpeed optimizers that
this DeepSpeed still has, and skips the others; the pack's configs name none of them (their
optimizer is bitsandbytes' 8-bit AdamW, a DeepSpeed client optimizer).
"""

from __future__ import annotations

TARGET = "mmengine._strategy.deepspeed"

# what mmengine 0.10.7 registers, by module
DEEPSPEED_OPTIMIZERS = (
    ("deepspeed.ops.adam", "DeepSpeedCPUAdam"),
    ("deepspeed.ops.adam", "FusedAdam"),
    ("deepspeed.ops.lamb", "FusedLamb"),
    ("deepspeed.runtime.fp16.onebit", "OnebitAdam"),
    ("deepspeed.runtime.fp16.onebit", "OnebitLamb"),
    ("deepspeed.runtime.fp16.onebit", "ZeroOneAdam"),
)


def apply(strategy_module) -> None:
    import importlib

    registry = strategy_module.OPTIMIZERS

    def register_deepspeed_optimizers() -> list[str]:
        names = []
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            return names
        for module_name, name in DEEPSPEED_OPTIMIZERS:
            try:
                cls = getattr(importlib.import_module(module_name), name)
            except (ImportError, AttributeError):
                continue  # gone from this DeepSpeed
            registry.register_module(module=cls, force=True)  # once per strategy built
            names.append(name)
        return names

    register_deepspeed_optimizers.__doc__ = strategy_module.register_deepspeed_optimizers.__doc__
    strategy_module.register_deepspeed_optimizers = register_deepspeed_optimizers
