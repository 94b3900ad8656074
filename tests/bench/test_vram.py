"""bench/vram.py runs the configs' real training steps (CPU, scaled-down architectures) and
reports peak memory next to the estimate."""

from __future__ import annotations

import json
import sys

from tests.helpers import REPO, run

CONFIGS = [REPO / "configs" / "internlm_7b_qlora_oasst_e3.py",
           REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"]


def test_cpu_tiny_run_of_two_configs(tmp_path):
    from components import tiny

    tiny.build(REPO / ".cache" / "tiny-llama")  # the smoke config's model directory
    out = tmp_path / "vram.json"
    result = run([sys.executable, REPO / "bench" / "vram.py", *CONFIGS, "--device", "cpu",
                  "--tiny", "--steps", "2", "--json", out], timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    rows = json.loads(out.read_text())
    assert [r["config"] for r in rows] == [str(c) for c in CONFIGS]
    for row in rows:
        assert row["error"] is None
        assert row["tokens_per_s"] > 0
        # a scaled-down model on the CPU: the estimate's allocated part is close to what the
        # dispatcher saw (the CUDA-only terms are left out for the CPU)
        ratio = row["peak_allocated_gib"] / row["estimate_allocated_gib"]
        assert 0.75 < ratio < 1.33, row
    table = result.stdout
    assert "peak alloc" in table and "internlm_7b_qlora_oasst_e3.py" in table
    from doctor.fit.config import read

    setup = read(CONFIGS[0]).setup
    assert rows[0]["tokens"] == setup.seq * setup.batch  # the config's max_length x batch size


def test_cuda_without_a_gpu_says_so():
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run([sys.executable, REPO / "bench" / "vram.py", CONFIGS[0]])
    assert result.returncode == 2
    assert "no CUDA device; use --device cpu --tiny" in result.stdout
