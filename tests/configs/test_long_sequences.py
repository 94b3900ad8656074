"""Every config trains at the length issues 10 and 20 set for its model, and `doctor fit` says it
fits an 8 GiB card at the top of its error band (upper_gb within 7.6 GiB usable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from doctor.fit import fit_report

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TARGETS = {  # run-file prefix: the shortest max_length allowed
    "internlm_7b_": 4096,
    "internlm2_math_plus_7b_": 4096,
    "qwen2_5_7b_": 3584,
    "llama2_7b_": 4096,
    "llama3_2_3b_": 4096,
}
RUN_FILES = [p for p in sorted(CONFIGS.glob("*.py")) if p.name != "__init__.py"]


def target(path: Path) -> int:
    (length,) = [n for prefix, n in TARGETS.items() if path.name.startswith(prefix)]
    return length


@pytest.mark.parametrize("path", RUN_FILES, ids=lambda p: p.stem)
def test_max_length_meets_the_target_and_fits_8gib_at_the_top_of_the_band(path):
    report = fit_report(path, gpu_mem=8)
    assert report["fits"], report
    assert report["upper_gb"] <= 7.6
    from doctor.fit.config import read

    setup = read(path).setup
    # tokens a step: a DPO pair is two sequences (doctor fit counts them as a batch of 2)
    assert setup.batch * setup.seq >= target(path)
