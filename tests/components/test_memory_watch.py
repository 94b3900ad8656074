"""During a run: memory.json from MemoryWatchHook (the recipe's custom_hooks) and a CUDA OOM that
ends with doctor fit's knobs instead of a traceback (patches/oom_advice.py). Real `xtuner train`
of the CPU smoke config, shortened; the OOM is raised inside a training step by a test hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmengine.config import Config

from tests.helpers import REPO, xtuner

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"
SCHEMA = {"config", "gpu", "gpu_total_gb", "seq", "steps", "peak_allocated_gb",
          "peak_reserved_gb", "nvml_used_gb", "estimate_gb", "upper_gb", "headroom_pct", "torch",
          "date"}


def short_smoke(tmp_path: Path, epochs: int, oom_at: int | None = None) -> Path:
    """The smoke config for a few epochs, with its own tiny model (REPO/.cache/tiny-llama)."""
    from components import tiny

    tiny.build(REPO / ".cache" / "tiny-llama")
    cfg = Config.fromfile(SMOKE)
    cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.checkpoint.interval = 10**6
    for hook in cfg.custom_hooks:
        if "every_n_iters" in hook:
            hook.update(every_n_iters=10**6, max_new_tokens=4)
    if oom_at is not None:
        cfg.custom_hooks.append(dict(type="tests.components.inject.RaiseOOM", at_iter=oom_at))
    path = tmp_path / "short_smoke.py"
    cfg.dump(path)
    return path


@pytest.mark.slow
def test_an_oom_in_a_step_ends_with_the_knobs_and_memory_json_is_written(tmp_path):
    config = short_smoke(tmp_path, epochs=4, oom_at=5)
    out = xtuner("train", config, "--work-dir", tmp_path / "work",
                 HF_DATASETS_CACHE=str(tmp_path / "hf_datasets"))
    assert out.returncode != 0
    assert "Traceback" not in out.stdout, out.stdout[-3000:]
    tail = out.stdout[out.stdout.index("xtuner-8gb-pack: CUDA out of memory"):]
    assert f"while training {config}." in tail
    assert "torch: CUDA out of memory. Tried to allocate 1.16 GiB." in tail
    assert "doctor fit: " in tail and "Turn these knobs" in tail and "turn first: " in tail
    saved = Path(tail.split("Full traceback: ")[1].split()[0])
    assert "torch.OutOfMemoryError" in saved.read_text() or "OutOfMemoryError" in saved.read_text()
    saved.unlink()

    # the two optimizer steps before it were measured: on the CPU, what a CPU can measure
    data = json.loads((tmp_path / "work" / "memory.json").read_text())
    assert SCHEMA <= set(data)
    assert data["steps"] == 2 and data["seq"] == 128
    assert data["gpu"] is None and data["peak_allocated_gb"] is None
    assert data["nvml_used_gb"] is None and data["headroom_pct"] is None
    assert 0 < data["estimate_gb"] <= data["upper_gb"]
    assert data["cpu_rss_peak_gb"] > 0.1
    assert "memory after 2 optimizer steps of 128 tokens, on the CPU: peak RSS" in out.stdout


def test_another_error_keeps_python_s_report():
    from tests.helpers import python

    out = python("import sys; sys.argv[0] = '/x/xtuner/tools/train.py'\n"
                 "import mmengine.runner\nraise ValueError('not an OOM')")
    assert out.returncode == 1
    assert "Traceback" in out.stdout and "ValueError: not an OOM" in out.stdout
