"""Machines for the run-time tests: a fake nvidia-smi (answering `--query-gpu=... --format=csv,
noheader,nounits` as the real one does, tests/doctor/fake_smi.py) on PATH, in front of this
environment's `xtuner`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


@pytest.fixture
def empty_hf_home(tmp_path, monkeypatch) -> dict[str, str]:
    """A Hugging Face cache with nothing in it, and no XTUNER_PACK_DATA."""
    home = tmp_path / "hf"
    home.mkdir()
    monkeypatch.delenv("XTUNER_PACK_DATA", raising=False)
    monkeypatch.delenv("XTUNER_PACK_FORCE", raising=False)
    return {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
            "HF_DATASETS_CACHE": str(home / "datasets")}


@pytest.fixture
def no_real_gpu():
    if real_gpu():
        pytest.skip("these tests describe machines without a real GPU (NVML answers here)")
