"""patches/cpu_distributed.py: mmengine's process-group setup and DDP wrapper on a CPU torch.

Each failure is reproduced in a 1-process gloo group (cheap, no torchrun) with the patch off, and
shown gone with it on; tests/configs/test_smoke_dist.py runs the real 2-process `xtuner train`.
"""

import socket

import pytest
import torch

from tests.helpers import python

pytestmark = pytest.mark.skipif(torch.cuda.is_available(),
                                reason="a GPU is visible: the CPU failures cannot happen here")


def _rank0_env() -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port))


INIT = """
from mmengine.dist import init_dist
import torch.distributed as dist
init_dist("pytorch", backend={backend!r})
print("backend", dist.get_backend())
"""

WRAP = """
import torch
from mmengine.dist import init_dist
from mmengine.model import MMDistributedDataParallel
init_dist("pytorch", backend="gloo")
# what Runner.wrap_model builds
ddp = MMDistributedDataParallel(module=torch.nn.Linear(4, 2), device_ids=[0],
                                broadcast_buffers=False, find_unused_parameters=False)
ddp(torch.ones(3, 4)).sum().backward()
print("wrapped", ddp.device_ids)
"""


def test_init_dist_without_the_patch_needs_cuda_even_for_gloo():
    code = INIT.format(backend="gloo")
    broken = python(code, XTUNER_PACK_PATCHES="-cpu_distributed", **_rank0_env())
    assert broken.returncode != 0
    assert "module 'torch._C' has no attribute '_cuda_setDevice'" in broken.stdout
    fixed = python(code, **_rank0_env())
    assert fixed.returncode == 0, fixed.stdout
    assert fixed.stdout.strip().endswith("backend gloo")


def test_the_recipes_auto_backend_is_gloo_on_the_cpu():
    out = python(INIT.format(backend="auto"), **_rank0_env())
    assert out.returncode == 0, out.stdout
    assert out.stdout.strip().endswith("backend gloo")


def test_ddp_wrapper_without_the_patch_rejects_a_cpu_module():
    # init_dist itself needs the patch on the CPU: keep that half on, the DDP half off
    code = WRAP.replace("from mmengine.model import MMDistributedDataParallel",
                        "from mmengine.model import MMDistributedDataParallel\n"
                        "MMDistributedDataParallel.__init__ = "
                        "MMDistributedDataParallel.__init__.__wrapped__")
    broken = python(code, **_rank0_env())
    assert broken.returncode != 0
    assert "device_ids and output_device arguments only work with" in broken.stdout
    fixed = python(WRAP, **_rank0_env())
    assert fixed.returncode == 0, fixed.stdout
    assert fixed.stdout.strip().endswith("wrapped None")


def test_resolve_backend_keeps_an_explicit_choice():
    from patches.cpu_distributed import resolve_backend

    assert resolve_backend("nccl") == "nccl"
    assert resolve_backend("gloo") == "gloo"
    assert resolve_backend("auto") == "gloo"  # no CUDA here (module skip above)
    assert resolve_backend(None) == "gloo"


AUTO_DTYPE = """
import json
from xtuner.tools.utils import auto_dtype_of_deepspeed_config
ds = json.load(open("configs/deepspeed/zero2_8gb.json"))
print("fp16", auto_dtype_of_deepspeed_config(ds)["fp16"]["enabled"])
"""


def test_xtuner_auto_fp16_without_the_patch_turns_fp16_on_for_the_cpu():
    # DeepSpeed then refuses: "Type fp16 is not supported on your device."
    broken = python(AUTO_DTYPE, XTUNER_PACK_PATCHES="-cpu_distributed")
    assert broken.stdout.strip().endswith("fp16 True"), broken.stdout
    fixed = python(AUTO_DTYPE)
    assert fixed.stdout.strip().endswith("fp16 False"), fixed.stdout
