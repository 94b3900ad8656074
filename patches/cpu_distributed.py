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

3. With `--deepspeed`, `xtuner.tools.utils.auto_dtype_of_deepspeed_config` turns the JSON's
   `"fp16": {"enabled": "auto"}` on when `get_torch_device().is_available()`, which is
   `torch.cpu.is_available()`, True: DeepSpeed then stops with `ValueError: Type fp16 is not
   supported on your device.`

The patch skips `set_device` when CUDA is not available, drops `device_ids` when the module's
parameters are all on the CPU (DDP's own rule for CPU modules), and resolves an "auto" fp16 to
off on the CPU (fp32 training, as the CPU smoke configs run). It also resolves the recipe's
`dist_backend="auto"` (configs/_base_/recipe_8gb.py) when the process group is created: nccl where
CUDA is available, gloo elsewhere; a backend named explicitly is passed through unchanged.
"""

from __future__ import annotations

import functools

TARGET = ("mmengine.dist.utils", "mmengine.model.wrappers.distributed", "xtuner.tools.utils")


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


def _patch_auto_dtype(utils) -> None:
    original = utils.auto_dtype_of_deepspeed_config
    if getattr(original, "__pack_patch__", None):
        return

    @functools.wraps(original)
    def auto_dtype_of_deepspeed_config(ds_config):
        auto_fp16 = (ds_config.get("fp16") or {}).get("enabled") == "auto"
        ds_config = original(ds_config)
        from xtuner.utils.device import get_device_name

        if auto_fp16 and get_device_name() == "cpu":
            ds_config["fp16"]["enabled"] = False
        return ds_config

    auto_dtype_of_deepspeed_config.__pack_patch__ = "cpu_distributed"
    # train.py binds the name when it imports this module, after this hook has run
    utils.auto_dtype_of_deepspeed_config = auto_dtype_of_deepspeed_config


def apply(module) -> None:
    {"mmengine.dist.utils": _patch_dist_utils,
     "mmengine.model.wrappers.distributed": _patch_ddp,
     "xtuner.tools.utils": _patch_auto_dtype}[module.__name__](module)
