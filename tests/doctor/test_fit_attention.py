"""`doctor fit` on a Turing card: where the config's attention would still run torch's math kernel
(patches.sdpa_gqa off, bf16, a head size no fused kernel takes), it says so, with the fix;
otherwise nothing. The GPU is a fake nvidia-smi (tests/doctor/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from doctor.fit import attention, main
from doctor.fit.config import read
from tests.helpers import REPO

LLAMA32 = REPO / "configs" / "llama3_2_3b_qlora_alpaca_e2.py"  # 24 query, 8 key heads, fp16
RTX_2070 = ("NVIDIA GeForce RTX 2070", 8192, 7800, "7.5")
RTX_3070 = ("NVIDIA GeForce RTX 3070", 8192, 7800, "8.6")


def fit_on(fake, gpu, *args, **env):
    fake.smi(gpus=(gpu,))
    proc = subprocess.run(
        [sys.executable, "-m", "doctor", "fit", str(LLAMA32), *args],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**fake.env, "PYTHONPATH": os.pathsep.join(fake.pythonpath), **env})
    return proc.stdout


def test_a_turing_card_with_the_patch_in_force_hears_nothing(fake):
    report = json.loads(fit_on(fake, RTX_2070, "--json"))
    assert report["gpu_mem_gb"] == 8.0 and "attention" not in report


def test_a_turing_card_without_the_patch_is_told_of_the_math_kernel(fake):
    out = fit_on(fake, RTX_2070, XTUNER_PACK_PATCHES="-sdpa_gqa")
    assert "attention on sm_75: torch's math kernel" in out
    assert "sdpa_gqa is not in force" in out and "1.50 GiB a layer at 4096 tokens" in out
    assert "fix the attention first" in out  # the verdict says FITS without the scores


def test_an_ampere_card_runs_flash_attention_with_or_without_the_patch(fake):
    report = json.loads(fit_on(fake, RTX_3070, "--json", XTUNER_PACK_PATCHES="-sdpa_gqa"))
    assert "attention" not in report


@pytest.mark.parametrize("cc, change, patched, why", [
    ((7, 5), dict(attn_dtype="bfloat16"), True, "no bf16 kernel"),
    ((7, 5), dict(attn_dtype="float32"), True, None),  # fp32: the memory-efficient kernel
    ((7, 5), dict(attn_dtype="float32"), False, "sdpa_gqa is not in force"),
    ((8, 6), dict(attn_dtype="float32"), True, None),
    ((8, 6), dict(attn_dtype="bfloat16"), False, None),  # FlashAttention takes bf16 GQA
    ((7, 5), dict(head_dim=36), True, "not a multiple of 8"),
    ((7, 0), dict(), True, None),  # Volta: the memory-efficient kernel, repeated heads
    ((3, 7), dict(), True, "outside the fused kernels' range"),
])
def test_the_note_follows_torchs_kernel_choice(cc, change, patched, why):
    loaded = read(LLAMA32)
    if "head_dim" in change:
        arch = replace(loaded.setup.arch, head_dim=change.pop("head_dim"))
        loaded = replace(loaded, setup=replace(loaded.setup, arch=arch))
    note = attention.math_kernel(replace(loaded, **change), cc, patched=patched)
    assert (note is None) == (why is None), note
    if why:
        assert note["kernel"] == "math" and why in note["why"]


def test_deepspeeds_auto_bf16_on_turing_is_the_math_kernel_even_with_the_patch():
    loaded = read(LLAMA32, deepspeed="zero2")  # "bf16": {"enabled": "auto"}: XTuner picks bf16
    assert loaded.attn_dtype == "bfloat16"
    note = attention.math_kernel(loaded, (7, 5), patched=True)
    assert note and '"bf16": {"enabled": false}' in note["fix"]


def test_the_note_imports_no_torch():
    code = ("import sys; from doctor.fit import main; "
            f"main([{str(LLAMA32)!r}, '--gpu-mem', '8', '--capability', '7.5']); "
            "print('torch imported:', 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO),
                                                      "XTUNER_PACK_PATCHES": "-sdpa_gqa"})
    assert "attention on sm_75" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().endswith("torch imported: False")


def test_capability_without_a_gpu(capsys, monkeypatch):
    monkeypatch.setenv("XTUNER_PACK_PATCHES", "-sdpa_gqa")
    main([str(LLAMA32), "--gpu-mem", "8", "--capability", "7.5", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["attention"]["capability"] == "7.5"
    assert report["attention"]["scores_gb_per_layer"] == 1.5
    with pytest.raises(SystemExit):
        main([str(LLAMA32), "--gpu-mem", "8", "--capability", "sm75"])
    assert "a compute capability is MAJOR.MINOR" in capsys.readouterr().err
