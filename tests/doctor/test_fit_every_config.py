"""Every run file in configs/ fits an 8 GB GPU at the top of its error band (upper_gb <= 7.6 GiB,
what a headless 8 GiB card leaves a process), and XTuner's own stock QLoRA recipe does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.fit import main, usable_gib
from tests.helpers import REPO

LIMIT_GIB = usable_gib(8)
# The same rule as tests/configs/test_configs_load.py: a new run file is covered automatically.
RUN_FILES = sorted(
    p for p in (REPO / "configs").rglob("*.py")
    if "_base_" not in p.parts and p.name != "__init__.py"
)
STOCK = (Path(__import__("xtuner").__file__).parent
         / "configs/internlm/internlm_7b/internlm_7b_qlora_oasst1_e3.py")


@pytest.fixture(scope="module", autouse=True)
def smoke_model():
    # the smoke config reads its tiny model's config.json from the repo's .cache, as `make smoke`
    from components import tiny

    tiny.build(REPO / ".cache" / "tiny-llama")


def estimate(path, capsys) -> tuple[int, dict]:
    rc = main([str(path), "--gpu-mem", "8", "--json"])
    return rc, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", RUN_FILES,
                         ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_fits_8gb_at_the_top_of_its_band(path, capsys):
    rc, data = estimate(path, capsys)
    assert "error" not in data, data
    assert data["upper_gb"] <= LIMIT_GIB, (
        f"{path.name}: up to {data['upper_gb']:.2f} GiB (estimate {data['total_gb']:.2f}, band "
        f"{data['band']}) > {LIMIT_GIB} GiB: "
        + ", ".join(f"{k} {v:.2f}" for k, v in data["breakdown"].items()))
    assert rc == 0 and data["fits"] is True


def test_xtuner_stock_internlm_7b_qlora_oasst1_e3_does_not_fit_8gb(capsys):
    rc, data = estimate(STOCK, capsys)
    assert rc == 1 and data["fits"] is False
    assert data["total_gb"] > 8
