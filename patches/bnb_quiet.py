"""Every CPU run logs "Failed to load CPU gemm_4bit_forward from kernels-community" (twice).

bitsandbytes 0.50 (backends/cpu/ops.py), on a CPU with AVX512-BF16, tries at import to fetch an
optional faster 4-bit kernel with the `kernels` package, which downloads it from the Hugging
Face Hub; without `kernels` (or offline) it logs that warning and uses its own CPU kernel, which
is what runs anyway. `xtuner train` imports bitsandbytes in two processes, hence twice. Only
that record of that logger is dropped; every other bitsandbytes message stays.
"""

from __future__ import annotations

TARGET = "bitsandbytes"
BEFORE = True  # the warning is logged while bitsandbytes' __init__ runs
LOGGER = "bitsandbytes.backends.cpu.ops"
MESSAGE = "Failed to load CPU gemm_4bit_forward from kernels-community"


def _keep(record) -> bool:
    return not str(record.msg).startswith(MESSAGE)


def apply(_module=None) -> None:
    import logging

    logger = logging.getLogger(LOGGER)
    if _keep not in logger.filters:
        logger.addFilter(_keep)
