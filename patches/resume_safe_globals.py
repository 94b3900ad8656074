"""`xtuner train --resume` fails under torch >= 2.6.

torch.load defaults to weights_only=True since torch 2.6, and an mmengine checkpoint holds more
than tensors: its message hub keeps HistoryBuffer objects with numpy arrays. mmengine 0.10.7's
load_checkpoint and xtuner's get_seed_from_checkpoint (tools/utils.py:186) call torch.load without
weights_only, so resuming dies with `Weights only load failed ... Unsupported global: GLOBAL
mmengine.logging.history_buffer.HistoryBuffer`.

Rather than turning the safe loader off (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, or mmengine 0.11's
weights_only=False), the patch allow-lists exactly the types an mmengine checkpoint contains, so
a checkpoint carrying anything else is still refused.
"""

from __future__ import annotations

TARGET = "mmengine.logging.history_buffer"


def safe_globals(history_buffer_module) -> list:
    """The globals torch.serialization.get_unsafe_globals_in_checkpoint lists for mmengine."""
    import numpy as np

    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    dtypes = (np.float64, np.float32, np.int64, np.int32, np.bool_)
    dtype_classes = [type(np.dtype(t)) for t in dtypes]
    return [
        history_buffer_module.HistoryBuffer,
        # HistoryBuffer pickles its statistics methods as getattr(buffer, "mean"). The safe loader
        # only calls allow-listed functions, so getattr can fetch attributes, never call them.
        getattr,
        multiarray._reconstruct,  # numpy arrays and scalars in the log history
        multiarray.scalar,
        np.ndarray,
        np.dtype,
        *dtype_classes,
    ]


def apply(history_buffer_module) -> None:
    # Deferred to torch's own import: reading a config with mmengine imports this module, and
    # `python -m doctor fit` must not pull torch in for that. Every torch.load imports torch first.
    from ._hooks import after_import

    after_import(
        "torch.serialization",
        lambda serialization: serialization.add_safe_globals(safe_globals(history_buffer_module)),
    )
