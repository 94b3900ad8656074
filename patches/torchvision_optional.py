"""xtuner imports torchvision at `import xtuner.dataset`, only for its InternVL dataset.

`xtuner/dataset/__init__.py` imports `internvl_dataset`, which does `import torchvision`, so every
text-only fine-tune needs torchvision. On a CPU-only machine there is no torchvision to have: the
only torchvision on PyPI for torch 2.13 is a CUDA build whose ops cannot load beside the CPU torch
(`RuntimeError: operator torchvision::nms does not exist`, which also breaks transformers and
peft), so `make env` leaves it out there. When torchvision is not installed, this patch puts a
stand-in for `xtuner.dataset.internvl_dataset` whose dataset class says why it cannot be used.
When torchvision is installed (every CUDA machine), nothing changes.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

TARGET = "xtuner.dataset.internvl_dataset"
REPLACES = True

MESSAGE = (
    "InternVL_V1_5_Dataset needs torchvision, which is not installed in this environment "
    "(make env installs it only where a torchvision build matching torch exists)."
)


def replacement() -> ModuleType | None:
    if importlib.util.find_spec("torchvision") is not None:
        return None  # the real module imports the real torchvision
    module = ModuleType(TARGET, __doc__)

    class InternVL_V1_5_Dataset:  # noqa: N801 - XTuner's name
        def __init__(self, *args, **kwargs):
            raise ImportError(MESSAGE)

    InternVL_V1_5_Dataset.__module__ = TARGET
    module.InternVL_V1_5_Dataset = InternVL_V1_5_Dataset
    return module
