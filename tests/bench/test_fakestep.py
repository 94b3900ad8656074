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
LLAMA32 = REPO / "configs" / "llama3_2_3b_qlora_alpaca_e2.py"  # GQA: 24 query, 8 key heads
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


def _math_scores(row) -> float:
    """GiB of the math kernel's score matrices (its softmax) live at the traced peak."""
    return sum(gib for _module, _kind, op, gib in row["ops"] if "softmax" in op)


def test_a_gqa_config_on_turing_runs_the_math_kernel_without_sdpa_gqa(monkeypatch):
    # An 8 GB RTX 20xx (sm75) has no FlashAttention: transformers' enable_gqa leaves SDPA only
    # the math kernel, whose fp32 scores (24 heads x 4096^2, 1.5 GiB a layer) no estimate counts.
    # patches.sdpa_gqa repeats the key heads there, and the memory-efficient kernel runs.
    import transformers.integrations.sdpa_attention as hf_sdpa

    import patches

    assert "sdpa_gqa" in patches.applied
    fixed = trace(LLAMA32, capability=(7, 5))
    assert fixed["capability"] == "7.5" and _math_scores(fixed) == 0, fixed["ops"]
    assert abs(fixed["peak_gb"] - fixed["estimate_gb"]) <= TOLERANCE * fixed["peak_gb"], fixed
    monkeypatch.setattr(hf_sdpa, "use_gqa_in_sdpa", hf_sdpa.use_gqa_in_sdpa.__wrapped__)
    broken = trace(LLAMA32, capability=(7, 5))
    assert _math_scores(broken) >= 1.5, broken["ops"]
    assert broken["peak_gb"] > 2 * broken["estimate_gb"], broken


@pytest.mark.parametrize("cc, dtype, kv_heads, masked, kernel", [
    ((7, 5), "float16", 2, False, "math"),  # GQA: FlashAttention only, from sm80
    ((7, 5), "float16", 8, False, "efficient"),
    ((7, 5), "bfloat16", 8, False, "math"),  # bf16 below sm80: no fused kernel
    ((8, 6), "float16", 2, False, "flash"),
    ((8, 6), "float32", 2, False, "math"),  # FlashAttention is 16-bit only
    ((8, 6), "float16", 8, True, "efficient"),  # a mask: not FlashAttention
])
def test_the_fake_gpu_runs_the_sdpa_kernel_cuda_runs(cc, dtype, kv_heads, masked, kernel):
    import torch
    import torch.nn.functional as F
    from torch.utils._python_dispatch import TorchDispatchMode

    from bench.fakedevice import ACCELERATOR, FakeGPU

    class Ops(TorchDispatchMode):
        seen: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.add(func.__name__)
            return func(*args, **(kwargs or {}))

    with FakeGPU(capability=cc):
        q = torch.empty(1, 8, 256, 64, dtype=getattr(torch, dtype), device=ACCELERATOR)
        k = torch.empty(1, kv_heads, 256, 64, dtype=q.dtype, device=ACCELERATOR)
        mask = torch.ones(256, 256, dtype=torch.bool, device=ACCELERATOR) if masked else None
        with Ops() as ops:
            F.scaled_dot_product_attention(q, k, k, attn_mask=mask, is_causal=not masked,
                                           enable_gqa=kv_heads != 8)
    ran = {"flash": "_scaled_dot_product_flash_attention" in " ".join(ops.seen),
           "efficient": "_scaled_dot_product_efficient_attention" in " ".join(ops.seen),
           "math": any("softmax" in op for op in ops.seen)}
    assert [name for name, yes in ran.items() if yes] == [kernel], ops.seen


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
