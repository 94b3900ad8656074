"""Machines for the tests that run `xtuner train` (the preflight, the memory watch): a fake
nvidia-smi (answering `--query-gpu=... --format=csv,noheader,nounits` as the real one does,
tests/doctor/fake_smi.py) on PATH, in front of this environment's `xtuner`. Their fixtures
(`empty_hf_home`, `no_real_gpu`) are in tests/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

from tests.doctor import fake_smi as smi_tool
from tests.helpers import BIN

RTX_2060 = ("NVIDIA GeForce RTX 2060", 6144, 5980, "7.5")  # 6 GB
RTX_4090 = ("NVIDIA GeForce RTX 4090", 24564, 24080, "8.9")


def real_gpu() -> bool:
    from doctor.probe import nvml_report

    return bool(nvml_report().gpus)


def fake_smi(directory: Path, gpu, driver: str = "550.90.07", more=()) -> dict[str, str]:
    """Environment with an nvidia-smi that reports `gpu`; PATH keeps this interpreter first."""
    smi_tool.write(directory / "nvidia-smi", [gpu, *more], driver)
    return {"PATH": os.pathsep.join([str(BIN), str(directory), "/usr/bin", "/bin"])}
