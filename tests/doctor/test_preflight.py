"""`xtuner train CONFIG` stops in seconds, with one message, when this machine cannot run CONFIG
(doctor/preflight.py, through the startup hook patches/preflight.py). Each test runs the real
`xtuner train` of this environment."""

from __future__ import annotations

import time

import pytest

from tests.gpu_env import RTX_2060, RTX_4090, fake_smi
from tests.helpers import REPO, xtuner

QWEN = REPO / "configs" / "qwen2_5_7b_qlora_alpaca_e2.py"
LLAMA2 = REPO / "configs" / "llama2_7b_qlora_alpaca_e2.py"
SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"


def timed_train(*args, **env):
    start = time.monotonic()
    out = xtuner("train", *args, timeout=300, **env)
    return out, time.monotonic() - start


def assert_one_short_message(out, seconds):
    lines = out.stdout.strip().splitlines()
    assert out.returncode != 0, out.stdout[-2000:]
    assert seconds < 30, f"{seconds:.0f} s"
    assert len(lines) <= 20, out.stdout
    assert "Traceback" not in out.stdout
    assert lines[0].startswith("xtuner-8gb-pack preflight: ")
    assert "XTUNER_PACK_FORCE=1" in lines[-1]
    return out.stdout


def test_no_gpu_stops_a_gpu_config_in_seconds(no_real_gpu, empty_hf_home):
    out, seconds = timed_train(QWEN, **empty_hf_home)
    text = assert_one_short_message(out, seconds)
    assert "needs an NVIDIA GPU, and this machine has none" in text
    assert "`make demo`" in text
    from doctor.preflight import estimate_text, fit_report

    expected = estimate_text(fit_report(str(QWEN), gpu_mem=8.0))
    assert f"doctor fit puts its peak at {expected} on an 8 GiB card." in text


def test_a_gpu_too_small_stops_with_the_knobs(no_real_gpu, empty_hf_home, tmp_path):
    env = {**empty_hf_home, **fake_smi(tmp_path / "bin", RTX_2060)}
    out, seconds = timed_train(QWEN, **env)
    text = assert_one_short_message(out, seconds)
    assert "does not fit GPU 0 (NVIDIA GeForce RTX 2060, 6.00 GiB)" in text
    assert "turn first: " in text
    # offline and not in the (empty) cache: which, and how to get it
    assert "model Qwen/Qwen2.5-7B-Instruct is not in the local cache" in text
    assert "$ huggingface-cli download Qwen/Qwen2.5-7B-Instruct" in text
    assert "dataset tatsu-lab/alpaca (alpaca) is not in the local cache" in text
    assert "XTUNER_PACK_DATA=DIR" in text


def test_a_gpu_that_fits_is_not_stopped_for_memory(no_real_gpu, empty_hf_home, tmp_path):
    env = {**empty_hf_home, **fake_smi(tmp_path / "bin", RTX_4090)}
    out, seconds = timed_train(QWEN, **env)
    text = assert_one_short_message(out, seconds)  # the cache and the CPU torch still stop it
    assert "does not fit" not in text
    assert "torch.cuda_build: torch 2.13.0+cpu is a CPU build" in text


def upper(config, options: dict, tmp_path) -> float:
    """The top of doctor fit's band for `config` with `options` merged."""
    from doctor.preflight import Run, config_for_fit, fit_report

    return fit_report(config_for_fit(Run(str(config), options), tmp_path), gpu_mem=8.0)["upper_gb"]


def test_cfg_options_are_what_the_preflight_judges(no_real_gpu, empty_hf_home, tmp_path):
    """An 8 GB card with a desktop holding some of it: free memory between what Llama-2-7B
    needs as shipped (2048 tokens) and at 512 tokens given as --cfg-options."""
    shorter = "train_dataloader.dataset.max_length=512"
    high, low = upper(LLAMA2, {}, tmp_path), upper(LLAMA2, {shorter.split("=")[0]: 512}, tmp_path)
    assert low < high
    free_mib = int((high + low) / 2 * 1024)
    env = {**empty_hf_home,
           **fake_smi(tmp_path / "bin", ("NVIDIA GeForce RTX 2070", 8192, free_mib, "7.5"))}
    as_shipped, _ = timed_train(LLAMA2, **env)
    assert "does not fit GPU 0 (NVIDIA GeForce RTX 2070, 8.00 GiB)" in as_shipped.stdout
    out, _ = timed_train(LLAMA2, "--cfg-options", shorter, **env)
    assert out.returncode != 0  # the CPU torch and the empty cache still stop it
    assert "does not fit" not in out.stdout, out.stdout


@pytest.mark.slow
def test_with_the_override_variable_the_run_goes_on(no_real_gpu, empty_hf_home, tmp_path):
    env = {**empty_hf_home, **fake_smi(tmp_path / "bin", RTX_2060)}
    out, _ = timed_train(QWEN, XTUNER_PACK_FORCE="1", **env)
    assert "does not fit GPU 0" in out.stdout
    assert "XTUNER_PACK_FORCE=1: starting it anyway." in out.stdout
    # past the preflight: the training tool started (mmengine's environment dump) and failed
    # where it would have without the preflight, loading a model that is not there
    assert "System environment:" in out.stdout
    assert out.returncode != 0


def test_the_cpu_smoke_config_passes_the_preflight(empty_hf_home):
    from doctor import preflight

    run = preflight.parse_train_args([str(SMOKE)])
    assert run is not None and run.config == str(SMOKE)
    assert preflight.check(run) == []


def test_the_gpu_judged_is_the_one_the_run_sees(no_real_gpu, empty_hf_home, tmp_path):
    """A 24 GB card and a 6 GB card: with CUDA_VISIBLE_DEVICES=1 (PCI order) the run gets the
    6 GB one, and the preflight judges that one (`python -m doctor preflight`, the same check
    without starting the run)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, **empty_hf_home, "PYTHONPATH": str(REPO),
           **fake_smi(tmp_path / "bin", RTX_4090, more=[RTX_2060]),
           "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}

    def preflight(visible):
        return subprocess.run([sys.executable, "-m", "doctor", "preflight", str(QWEN)],
                              capture_output=True, text=True, timeout=300, cwd=REPO,
                              env={**env, "CUDA_VISIBLE_DEVICES": visible})

    out = preflight("1")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "does not fit GPU 1 (NVIDIA GeForce RTX 2060, 6.00 GiB)" in out.stdout
    assert "does not fit" not in preflight("0").stdout


@pytest.mark.parametrize("argv", [[], ["--help"], ["no/such/config.py"]])
def test_nothing_to_check_leaves_it_to_the_tool(argv):
    from doctor import preflight

    assert preflight.parse_train_args(argv) is None


@pytest.mark.parametrize("ds_json, stopped", [
    (None, False),  # the pack's zero2_8gb.json: fp16/bf16 "auto" follow the machine (fp32 here)
    ({"fp16": {"enabled": True}}, True),
    ({"bf16": {"enabled": True}}, True),
])
def test_deepspeed_needs_a_gpu_only_where_its_json_turns_16_bit_on(ds_json, stopped, tmp_path):
    """`make smoke-dist` trains ZeRO-2 on 2 CPU processes in fp32: --deepspeed alone is no
    reason to stop; 16-bit turned on in its JSON, or the config's AmpOptimWrapper, are."""
    import json

    from doctor import preflight

    path = REPO / "configs" / "deepspeed" / "zero2_8gb.json"
    if ds_json is not None:
        path = tmp_path / "ds.json"
        path.write_text(json.dumps({"zero_optimization": {"stage": 2}, **ds_json}))
    cpu = preflight.parse_train_args([str(SMOKE), "--deepspeed", str(path)])
    reason = preflight.needs_gpu(preflight.load_config(cpu), cpu)
    assert (reason is not None) == stopped, reason
    if stopped:
        assert "--deepspeed" in reason and "on, which DeepSpeed runs on a GPU" in reason
    gpu = preflight.parse_train_args([str(QWEN), "--deepspeed", "deepspeed_zero2"])
    assert "AmpOptimWrapper" in preflight.needs_gpu(preflight.load_config(gpu), gpu)
    assert preflight.deepspeed_json("deepspeed_zero2")["zero_optimization"]["stage"] == 2
