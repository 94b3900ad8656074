"""Without it part of an 8 GB card is lost to fragmentation in torch's caching allocator.

torch's allocator cuts fixed segments: after the first optimizer step the blocks freed by the
recomputed activations and the chunked loss rarely fit the next request, and a run that fits by
the estimate stops with "reserved but unallocated" memory in its OOM message.
`expandable_segments:True` lets segments grow in place instead (torch's documented setting for
this). torch reads the variable when CUDA's allocator starts, so it is set just before torch is
first imported, in every process that imports it (`xtuner train`'s child included), and only
where the user has set neither PYTORCH_CUDA_ALLOC_CONF nor its newer name PYTORCH_ALLOC_CONF.
"""

from __future__ import annotations

import os

TARGET = "torch"
BEFORE = True
SETTING = "expandable_segments:True"
# The names doctor fit reads too (doctor.fit.config.ALLOC_CONF_VARS); not imported from there:
# this runs inside `import torch`, which nothing of the doctor may break.
VARS = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")


def apply(_module=None) -> None:
    if not any(var in os.environ for var in VARS):  # set, even empty: the user's choice
        os.environ[VARS[0]] = SETTING
