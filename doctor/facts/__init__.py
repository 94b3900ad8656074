"""Facts about the environment, gathered once per run through `probe.Machine` and cached.

One module per domain, each a mixin of the one `Facts` class that checks read:

    system     the distro, its apt sources, dpkg, kernel modules, container / VM / WSL2
    gpu        the driver, what NVML or nvidia-smi answer, the GPUs the run will see
    packages   installed distributions and packages, torch's build, libraries' own sources
    cuda       CUDA_HOME as torch finds it, nvcc, host gcc, toolkits, arch lists, libraries
    pack       env/stack.txt, `xtuner` on PATH, the startup patches' .pth
    resources  RAM, disk, /dev/shm, the directories a run writes
    deep       --deep imports in subprocesses

A fact is computed the first time a check asks for it (so one check probes only what it needs)
and recorded in `Facts.gathered` for `-v` and `--json`. Nothing here imports torch, deepspeed,
bitsandbytes or flash_attn: the imports happen only in `--deep` probes, in subprocesses.
"""

from __future__ import annotations

from ._base import REPO, STACK, FactsBase, fact, jsonable, keyed
from .cuda import ArchFacts, CudaFacts, CudaHome, LibraryFacts, Nvcc, Toolkit
from .deep import Deep, DeepProbes
from .gpu import GpuFacts
from .pack import PackFacts, Pin, Stack, interpreter_matches, parse_stack
from .packages import PackageFacts, TorchInfo, canonical, ds_minor_ok, version_matches
from .resources import ResourceFacts
from .system import AptSource, Platform, SystemFacts

__all__ = [
    "REPO", "STACK", "AptSource", "CudaHome", "Deep", "Facts", "Nvcc", "Pin", "Platform", "Stack",
    "Toolkit", "TorchInfo", "canonical", "ds_minor_ok", "fact", "interpreter_matches", "jsonable",
    "keyed", "parse_stack", "version_matches",
]


class Facts(SystemFacts, GpuFacts, PackageFacts, CudaFacts, ArchFacts, LibraryFacts, PackFacts,
            ResourceFacts, DeepProbes, FactsBase):
    """Every fact of one run: `Facts(Machine())`, or `Facts(Machine(root=...))` for a fake."""
