"""`doctor fit` on a machine with a GPU: the budget is the GPU's real free memory, and memory held
by a display or another process is reported. The GPU is a fake nvidia-smi on PATH printing what
the real one prints for `--query-gpu` (tests/doctor/conftest.py), seen through DOCTOR_ROOT as
`python -m doctor check` sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from doctor.fit import HEADLESS_RESERVE_GIB, usable_gib
from tests.helpers import REPO

OURS = REPO / "configs" / "internlm_7b_qlora_oasst_e3.py"


def fit_on(fake, *args: str) -> tuple[int, str, str]:
    env = {**fake.env, "PYTHONPATH": os.pathsep.join(fake.pythonpath)}
    proc = subprocess.run([sys.executable, "-m", "doctor", "fit", str(OURS), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_usable_memory_of_a_headless_8gb_card_is_7_6_gib():
    assert usable_gib(8) == 8 - HEADLESS_RESERVE_GIB == 7.6


def test_the_budget_is_the_gpus_free_memory(fake):
    # an idle headless 12 GB card: the driver keeps about 0.4 GiB
    fake.smi(gpus=(("NVIDIA GeForce RTX 3060", 12288, 11878, "8.6"),))
    rc, out, err = fit_on(fake, "--json")
    data = json.loads(out)
    assert data["gpu_mem_gb"] == 12.0
    assert abs(data["budget_gb"] - 11878 / 1024) < 1e-3
    assert data["held_by_others_gb"] < 0.1
    assert data["fits"] is True and rc == 0, (data, err)
    rc, out, _ = fit_on(fake)
    assert "NVIDIA GeForce RTX 3060" in out and "FITS" in out
    assert "held by a display" not in out


def test_memory_held_by_a_display_is_said_and_taken_off_the_budget(fake):
    # an 8 GB card driving a desktop: 1.6 GiB more in use than the driver's own
    fake.smi(gpus=(("NVIDIA GeForce RTX 4060", 8188, 6144, "8.9"),))
    rc, out, _ = fit_on(fake)
    assert rc == 1, out
    assert "held by a display or another process" in out
    assert "6.00 usable" in out and "DOES NOT FIT" in out
    data = json.loads(fit_on(fake, "--json")[1])
    assert data["budget_gb"] == 6.0 and data["held_by_others_gb"] > 1.5
    assert data["fits"] is False and data["advice"]


def test_gpu_mem_overrides_the_gpu(fake):
    fake.smi(gpus=(("NVIDIA GeForce RTX 4060", 8188, 6144, "8.9"),))
    data = json.loads(fit_on(fake, "--json", "--gpu-mem", "24")[1])
    assert data["gpu_mem_gb"] == 24 and data["budget_gb"] == usable_gib(24)
    assert data["fits"] is True
