"""Distributed training (`NPROC_PER_NODE=2 xtuner train CONFIG`) cannot start on a CPU-only torch.

xtuner's launcher runs torchrun, and mmengine 0.10 assumes one GPU per process in two places:

1. `mmengine.dist.utils._init_dist_pytorch` calls `torch.cuda.set_device(LOCAL_RANK)` before
   `init_process_group`, whatever the backend: on torch 2.13's CPU build `AttributeError: module
   'torch._C' has no attribute '_cuda_setDevice'`, even with backend gloo, and on the DeepSpeed
   path (`--deepspeed`) too.
2. `Runner.wrap_model` gives `MMDistributedDataParallel` `device_ids=[LOCAL_RANK]`, which DDP
   rejects for a module on the CPU: `ValueError: DistributedDataParallel device_ids and
   output_device arguments only work with single-device/multiple-device GPU modules or CPU
   modules, but got device_ids [0], output_device None, and module parameters
   {device(type='cpu')}.`

The patch skips `set_device` when CUDA is not available, and drops `device_ids` when the module's
parameters are all on the CPU (DDP's own rule for CPU modules). It also resolves the recipe's
`dist_backend="auto"` (configs/_base_/recipe_8gb.py) when the process group is created: nccl where
CUDA is available, gloo elsewhere; a backend named explicitly is passed through unchanged.
"""

from __future__ import annotations

import functools

TARGET = ("mmengine.dist.utils", "mmengine.model.wrappers.distributed")


def resolve_backend(backend):
    """The recipe's "auto" (or None) as the backend this machine can run: nccl on GPUs, gloo on the
    CPU. Anything else is what the user asked for."""
    if backend not in (None, "auto"):
        return backend
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def _init_with_backend(original, *, cpu_safe: bool):
    @functools.wraps(original)
    def init(backend, *args, **kwargs):
        backend = resolve_backend(backend)
        import torch

        if not cpu_safe or torch.cuda.is_available():
            return original(backend, *args, **kwargs)
        # mmengine's body is right for the CPU once set_device is not called: swap it for the
        # call only (process-group setup is single-threaded; nothing else runs meanwhile).
        set_device = torch.cuda.set_device
        torch.cuda.set_device = lambda device: None
        try:
            return original(backend, *args, **kwargs)
        finally:
            torch.cuda.set_device = set_device

    init.__pack_patch__ = "cpu_distributed"
    return init


def _patch_dist_utils(utils) -> None:
    if getattr(utils._init_dist_pytorch, "__pack_patch__", None):
        return
    # init_dist looks these up by name at call time, so replacing the module attributes is enough.
    utils._init_dist_pytorch = _init_with_backend(utils._init_dist_pytorch, cpu_safe=True)
    for name in ("_init_dist_mpi", "_init_dist_slurm"):  # "auto" only: they need GPUs anyway
        if hasattr(utils, name):
            setattr(utils, name, _init_with_backend(getattr(utils, name), cpu_safe=False))


def _patch_ddp(wrappers) -> None:
    cls = wrappers.MMDistributedDataParallel
    if getattr(cls.__init__, "__pack_patch__", None):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, module, *args, **kwargs):  # noqa: N807
        if kwargs.get("device_ids") and all(p.device.type == "cpu" for p in module.parameters()):
            kwargs["device_ids"] = None
        original(self, module, *args, **kwargs)

    __init__.__pack_patch__ = "cpu_distributed"
    cls.__init__ = __init__


def apply(module) -> None:
    if module.__name__ == "mmengine.dist.utils":
        _patch_dist_utils(module)
    else:
        _patch_ddp(module)
