"""Every run file in configs/ fits an 8 GB GPU at the top of its error band (upper_gb <= 7.6 GiB,
what a headless 8 GiB card leaves a process), and XTuner's own stock QLoRA recipe does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.fit import main, usable_gib
from tests.helpers import REPO

LIMIT_GIB = usable_gib(8)
# Over the limit at the top of the calibrated band (doctor fit CONFIG --gpu-mem 8, 2026-12-01):
# issue 10's memory patches (sdpa_attention, offload_embeddings, offload_checkpoints, fused_loss)
# take the memory back. Strict: a config that fits again must leave this list.
OVER_UNTIL_ISSUE_10 = {
    "internlm2_math_plus_7b_qlora_gsm8k_e3.py", "internlm2_math_plus_7b_qlora_math_e3.py",
    "internlm2_math_plus_7b_qlora_mathmix_e1.py", "internlm2_math_plus_7b_qlora_orca_math_e1.py",
    "internlm_7b_qlora_oasst_e3.py",
    "llama3_2_3b_lora_alpaca_e2.py", "llama3_2_3b_lora_blended_skill_talk_e3.py",
    "llama3_2_3b_lora_empathetic_dialogues_e3.py", "llama3_2_3b_lora_gsm8k_e3.py",
    "qwen2_5_7b_qlora_alpaca_e2.py", "qwen2_5_7b_qlora_orca_math_e1.py",
    "qwen2_5_7b_qlora_sharegpt_e1.py", "qwen2_5_7b_qlora_ultrachat_e1.py",
}
# The same rule as tests/configs/test_configs_load.py: a new run file is covered automatically.
RUN_FILES = sorted(
    p for p in (REPO / "configs").rglob("*.py")
    if "_base_" not in p.parts and p.name not in ("__init__.py", "tiny.py", "run.py")
)
STOCK = (Path(__import__("xtuner").__file__).parent
         / "configs/internlm/internlm_7b/internlm_7b_qlora_oasst1_e3.py")


@pytest.fixture(scope="module", autouse=True)
def smoke_model():
    # the smoke config reads its tiny model's config.json from the repo's .cache, as `make smoke`
    from configs.smoke import tiny

    tiny.build(REPO / ".cache" / "tiny-llama")


def estimate(path, capsys) -> tuple[int, dict]:
    rc = main([str(path), "--gpu-mem", "8", "--json"])
    return rc, json.loads(capsys.readouterr().out)


def _marked(path):
    if path.name in OVER_UNTIL_ISSUE_10:
        return pytest.param(path, marks=pytest.mark.xfail(
            strict=True, reason="issue 10: over 7.6 GiB at the top of the calibrated band"))
    return path


@pytest.mark.parametrize("path", [_marked(p) for p in RUN_FILES],
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
