"""Multi-process training: `make smoke-dist`, the recipe's backend knob, the DeepSpeed JSONs."""

import importlib.util
import json
import re
import sys

import pytest

from tests.helpers import REPO, run

DS_DIR = REPO / "configs" / "deepspeed"
GiB = 1024**3


@pytest.mark.slow
def test_make_smoke_dist_two_processes_match_one_within_tolerance(tmp_path):
    from demo.smoke_dist import STEPS, TOLERANCE, deepspeed_installed

    out = run([sys.executable, "-m", "demo.smoke_dist", "--work-dir", tmp_path], timeout=900)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "smoke-dist OK" in out.stdout
    diffs = re.findall(r"max \|step loss - 1 process\| = (\S+) ", out.stdout)
    # DDP, and ZeRO-2 where DeepSpeed is installed: both held to the same tolerance
    assert len(diffs) == (2 if deepspeed_installed() else 1), out.stdout
    assert all(float(d) <= TOLERANCE for d in diffs)
    if deepspeed_installed():
        assert "DeepSpeed ZeRO-2 x accumulation 2" in out.stdout
    assert f"{STEPS} steps" in out.stdout
    # really 2 ranks: both wrote their losses, through torchrun
    assert sorted(p.name for p in (tmp_path / "1").glob("losses_rank*.json")) == [
        "losses_rank0.json", "losses_rank1.json"]
    log = (tmp_path / "1" / "train.log").read_text()
    assert "Distributed launcher: pytorch" in log and "GPU number: 2" in log  # mmengine's words


@pytest.mark.slow
@pytest.mark.skipif(not importlib.util.find_spec("deepspeed"),
                    reason="DeepSpeed is not installed (make env DEEPSPEED=1)")
def test_zero2_without_the_init_order_patch_fails_the_comparison(tmp_path, monkeypatch):
    """The ZeRO-2 comparison is meaningful: the run that did not match (LoRA initialized after the
    dataloader's draw, patches/deepspeed_init_order off) fails it; 3 steps show it."""
    from components import tiny
    from demo.smoke_dist import ZERO2, DistSmokeFailure, compare, train

    tiny.build(REPO / ".cache" / "tiny-llama")
    for run_dir in ("one", "zero2"):
        (tmp_path / run_dir).mkdir()
    reference, _ = train(tmp_path / "one", 1, steps=3)
    monkeypatch.setenv("XTUNER_PACK_PATCHES", "-deepspeed_init_order")
    curve, _ = train(tmp_path / "zero2", 2, "--deepspeed", str(ZERO2), steps=3)
    assert abs(curve[0] - reference[0]) <= 1e-6  # step 1 cannot see LoRA A (B starts at zero)
    with pytest.raises(DistSmokeFailure, match="differ from the 1-process run"):
        compare("ZeRO-2 without deepspeed_init_order", curve, reference)


def test_the_dist_comparison_catches_a_shifted_batch(tmp_path):
    """The tolerance is meaningful: one sample moved between steps is caught."""
    from demo.smoke_dist import DistSmokeFailure, compare, step_losses

    losses = [6.0 - 0.1 * i + 0.05 * (i % 3) for i in range(8)]
    (tmp_path / "losses_rank0.json").write_text(json.dumps(dict(world_size=1, losses=losses)))
    reference = step_losses(tmp_path, 4)
    shifted = losses[1:] + losses[:1]
    (tmp_path / "losses_rank0.json").write_text(json.dumps(dict(world_size=1, losses=shifted)))
    with pytest.raises(DistSmokeFailure, match="differ from the 1-process run"):
        compare("shifted", step_losses(tmp_path, 4), reference)


def test_every_config_takes_the_backend_from_the_knob():
    from mmengine.config import Config

    for path in sorted(REPO.glob("configs/*.py")):
        if path.name == "__init__.py":
            continue
        cfg = Config.fromfile(str(path), lazy_import=True)
        assert cfg.env_cfg.dist_cfg.backend == "auto", path


@pytest.mark.parametrize("path", sorted(DS_DIR.glob("*.json")), ids=lambda p: p.name)
def test_deepspeed_jsons_are_sized_for_8gb_cards(path):
    ds = json.loads(path.read_text())
    zero = ds["zero_optimization"]
    # every "auto" is filled by xtuner train from the config (batch, accumulation, clipping, dtype)
    assert ds["train_micro_batch_size_per_gpu"] == ds["gradient_accumulation_steps"] == "auto"
    assert ds["zero_allow_untested_optimizer"] is True  # the recipe's 8-bit AdamW is a client
    # DeepSpeed's default buckets (5e8 elements) take 1.86 GiB of 16-bit buffers with overlap_comm
    buckets = [k for k in zero if k.endswith("bucket_size")]
    assert buckets
    for key in buckets:
        assert zero[key] * 2 * 2 <= 0.1 * GiB, key
    if zero["stage"] == 3:
        assert zero["stage3_max_live_parameters"] * 2 <= 0.25 * GiB
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True  # pth_to_hf needs it
