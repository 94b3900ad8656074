"""`python -m doctor fit CONFIG --gpus N [--deepspeed zero2|zero3]`: per-GPU estimates."""

import json
import subprocess
import sys

import pytest

from doctor.fit import fit_report
from doctor.fit.config import ConfigError, deepspeed_config, read
from doctor.fit.estimate import GiB, estimate
from tests.helpers import REPO

CONFIGS = sorted(p for p in REPO.glob("configs/*.py") if p.name != "__init__.py")
SEVEN_B = [p for p in CONFIGS if "_7b_" in p.name]


def test_there_are_7b_configs():
    assert len(SEVEN_B) >= 10


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_has_a_per_gpu_estimate_on_2_gpus(path):
    one = fit_report(path, gpu_mem=8)
    for ds in (None, "zero2", "zero3"):
        two = fit_report(path, gpu_mem=8, gpus=2, deepspeed=ds)
        assert two["gpus"] == 2 and two["total_gb"] > 1
        if ds == "zero3":
            assert two["total_gb"] < one["total_gb"], (path.name, two["total_gb"], one["total_gb"])


@pytest.mark.parametrize("path", SEVEN_B, ids=lambda p: p.stem)
def test_zero3_on_2_gpus_puts_less_on_each_than_one_gpu_carries(path):
    out = subprocess.run([sys.executable, "-m", "doctor", "fit", str(path), "--gpu-mem", "8",
                          "--json", "--gpus", "2", "--deepspeed", "zero3"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    two = json.loads(out.stdout)
    one = fit_report(path, gpu_mem=8)
    assert two["total_gb"] < one["total_gb"]
    assert two["upper_gb"] < one["upper_gb"]
    # the 4-bit base is what ZeRO-3 shards: half of it on each GPU
    assert two["breakdown"]["weights_4bit"] == pytest.approx(one["breakdown"]["weights_4bit"] / 2,
                                                             abs=0.002)


def test_zero_stages_shard_what_deepspeed_shards():
    path = REPO / "configs" / "internlm_7b_qlora_oasst_e3.py"

    def parts(gpus, ds):
        return estimate(read(path, deepspeed=ds, gpus=gpus).setup).parts

    z2_1, z2_2 = parts(1, "zero2"), parts(2, "zero2")
    assert z2_2["optimizer"] == pytest.approx(z2_1["optimizer"] / 2, rel=1e-6)
    assert z2_2["gradients"] == pytest.approx(z2_1["gradients"] / 2, rel=1e-6)
    assert z2_2["weights_4bit"] == z2_1["weights_4bit"]  # ZeRO-2 keeps every parameter whole
    z3_2 = parts(2, "zero3")
    assert z3_2["weights_4bit"] * 2 == pytest.approx(z2_1["weights_4bit"], abs=1)
    assert z3_2["quant_constants"] == z2_1["quant_constants"]  # quant_state: not parameters
    assert z3_2["deepspeed_gathered"] > 0  # a layer (or the head) gathered whole for use
    # DDP without DeepSpeed: every GPU holds the whole model plus the reducer's gradient buckets
    ddp = parts(2, None)
    assert ddp["ddp_buckets"] == parts(1, None)["gradients"]


def test_the_packs_deepspeed_names_are_its_8gb_jsons():
    z2, z3 = deepspeed_config("zero2"), deepspeed_config("zero3")
    assert (z2.stage, z3.stage) == (2, 3)
    assert z2.reduce_bucket_size * 2 * 2 < 0.1 * GiB  # XTuner's JSONs: DeepSpeed's 5e8 elements
    xtuner_z2 = deepspeed_config("deepspeed_zero2")
    assert xtuner_z2.reduce_bucket_size == 5e8


def test_zero_gpus_is_a_clear_error():
    with pytest.raises(ConfigError, match="--gpus 0"):
        read(CONFIGS[0], gpus=0)
