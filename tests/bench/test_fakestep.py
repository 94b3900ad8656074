"""Every config's real training step at full size on a fake GPU (bench/fakestep.py): it runs
where a GPU would run it and fails where a GPU would fail, its traced peak is the estimate's
allocated part within 3 %, and the tracer sees on fake tensors what runs on real ones."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import vram
from bench.fakedevice import DeviceError
from bench.fakestep import cpu_pair, trace
from doctor.fit.config import read
from tests.helpers import REPO

# The same rule as tests/doctor/test_fit_every_config.py: a new run file is covered.
RUN_FILES = sorted(p for p in (REPO / "configs").rglob("*.py")
                   if "_base_" not in p.parts and p.name != "__init__.py")
QWEN = REPO / "configs" / "qwen2_5_7b_qlora_alpaca_e2.py"
INTERNLM2 = REPO / "configs" / "internlm2_math_plus_7b_qlora_gsm8k_e3.py"
SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"
TOLERANCE = 0.03  # |traced peak - estimate| as a share of the traced peak


@pytest.fixture(scope="module", autouse=True)
def patched_stack():
    from components import tiny

    tiny.build(REPO / ".cache" / "tiny-llama")  # the smoke configs' model directory
    vram.enable_compat_patches()


_traces: dict[str, dict] = {}


def traced(path) -> dict:
    """The fake-GPU step of `path`; configs whose steps are the same (the dataset differs) run
    it once: the estimator's Setup holds everything the step is made of."""
    key = repr(read(path).setup)
    if key not in _traces:
        _traces[key] = trace(path)
    return _traces[key]


@pytest.mark.parametrize("path", RUN_FILES, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_the_step_runs_on_a_fake_gpu_and_peaks_where_the_estimate_says(path):
    row = traced(path)  # a step that fails where a GPU would fails here: DeviceError
    assert row["error"] is None, row
    assert row["at_peak"]["weights"] > 0 and row["phases"], row
    assert row["checks"]["device_checks"]
    if path.parent.name == "configs":  # the pack's 3B and 7B configs
        assert abs(row["peak_gb"] - row["estimate_gb"]) <= TOLERANCE * row["peak_gb"], (
            f"{path.name}: traced {row['peak_gb']:.3f} GiB, estimated {row['estimate_gb']:.3f} "
            f"GiB; at the peak {row['at_peak']}")


def test_offloaded_embedding_rows_left_on_the_host_fail_as_on_a_gpu(monkeypatch):
    import torch.nn.functional as F

    from patches import offload_embeddings

    def rows_on_the_host(self, input_ids):  # gathered on the host, never copied to the ids'
        return F.embedding(input_ids.to(self.weight.device), self.weight, self.padding_idx)

    monkeypatch.setattr(offload_embeddings, "offloaded_forward", rows_on_the_host)
    with pytest.raises(DeviceError, match="mixes host and device tensors") as failure:
        trace(QWEN, tiny=True, steps=1, seq=256)
    assert "Expected all tensors to be on the same device" in str(failure.value)


def test_a_host_copy_read_before_its_non_blocking_copy_is_done_fails(monkeypatch):
    import torch

    original = torch.Tensor.copy_

    def copy_then_read(self, src, non_blocking=False):
        # patches.offload_checkpoints' copy to the host, then (say) a check of it there
        out = original(self, src, non_blocking=non_blocking)
        if non_blocking and self.device.type == "cpu" and src.device.type != "cpu":
            self.abs().max()
        return out

    monkeypatch.setattr(torch.Tensor, "copy_", copy_then_read)
    with pytest.raises(DeviceError, match="non-blocking device-to-host copy"):
        trace(QWEN, tiny=True, steps=1)  # 2048 tokens: layer inputs of 1 MiB are offloaded


@pytest.mark.parametrize("path", [QWEN, INTERNLM2], ids=["qwen2.5", "internlm2"])
def test_the_tiny_step_peaks_on_fake_tensors_where_it_peaks_on_real_ones(path):
    # the same step (the config's patches, InternLM2's remote code) on the CPU, once on fake
    # tensors and once on real ones, under the same tracker: byte for byte
    pair = cpu_pair(path, seq=512)
    assert pair["fake"] == pair["real"] > 0
    assert pair["fake_at_peak"] == pair["real_at_peak"]


def test_doctor_fit_trace_json_adds_the_trace_and_imports_no_torch():
    code = ("import json, sys; from doctor.fit import main; "
            f"rc = main([{str(SMOKE)!r}, '--gpu-mem', '8', '--json', '--trace']); "
            "print('torch imported:', 'torch' in sys.modules); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report_line, imported = done.stdout.strip().splitlines()[-2:]
    report = json.loads(report_line)
    assert imported == "torch imported: False"
    t = report["trace"]
    assert set(t) >= {"peak_gb", "estimate_gb", "device", "seconds"}, t
    assert t["peak_gb"] > 0 and "fake GPU" in t["device"]
    assert t["estimate_gb"] == pytest.approx(
        report["total_gb"] - report["breakdown"]["cuda_context"]
        - report["breakdown"]["allocator_reserve"], abs=0.002)
