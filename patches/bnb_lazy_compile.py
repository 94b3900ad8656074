"""Every process that imports bitsandbytes spends ~5 s (on 2 cores) setting up torch.compile.

bitsandbytes 0.50's default backend (backends/default/ops.py) wraps four of its kernels in
`torch.compile(fn)` while it is imported; that call loads TorchDynamo's and Inductor's machinery
at once, in every process that imports bitsandbytes (`xtuner train` and each `xtuner convert`),
whether or not those kernels ever run (on a GPU the CUDA backend's kernels do). The patch makes
that module's `torch.compile(fn, ...)` return a function that calls the real
`torch.compile(fn, ...)` on its first call: torch.compile itself compiles on the first call, so
what runs is unchanged; only the set-up waits until it is needed. bitsandbytes' own fallback to
the uncompiled kernel, when compiling fails, stays as it is.
"""

from __future__ import annotations

import functools

TARGET = "bitsandbytes.backends.default.ops"
BEFORE = True  # the calls are in the module's body

_real = None


def _lazy_compile(fn=None, **kwargs):
    if fn is None:  # used as @torch.compile(dynamic=False)
        return lambda f: _lazy_compile(f, **kwargs)
    compiled = None

    @functools.wraps(fn)
    def first_call_compiles(*args, **kw):
        nonlocal compiled
        if compiled is None:
            compiled = _real(fn, **kwargs)
        return compiled(*args, **kw)

    return first_call_compiles


def apply(_module=None) -> None:
    global _real
    import torch

    if _real is None:
        _real = torch.compile
        torch.compile = _lazy_compile  # for the body of that one module


def after(_module) -> None:
    import torch

    if _real is not None and torch.compile is _lazy_compile:
        torch.compile = _real
