"""Dashboards: a real `xtuner train` of the smoke config writes TensorBoard events (by default) and
an offline W&B run (when asked), with the loss and tokens/s the log line shows."""

import json
import re

import pytest

from tests.helpers import REPO, xtuner

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"


def _scalars_json(work_dir):
    (path,) = work_dir.glob("*/vis_data/scalars.json")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_training_writes_tensorboard_events_and_an_offline_wandb_run(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    wandb_home = tmp_path / "wandb_home"  # W&B's staging/cache/settings, not ~/.local/share
    out = xtuner(
        "train", SMOKE, "--work-dir", tmp_path / "run",
        "--cfg-options", "train_cfg.max_epochs=1", "visualizer.report_to=tensorboard,wandb",
        WANDB_MODE="offline", WANDB_DATA_DIR=str(wandb_home), WANDB_CACHE_DIR=str(wandb_home),
        WANDB_CONFIG_DIR=str(wandb_home), WANDB_SILENT="true", timeout=1800,
    )
    assert out.returncode == 0, out.stdout[-3000:]

    # the log line: eta from mmengine, tokens/s from components.dashboards.ThroughputHook
    line = re.search(r"Iter\(train\) \[10/11\].*", out.stdout).group(0)
    assert "eta: " in line
    assert float(re.search(r"tokens_per_sec: ([\d.]+)", line).group(1)) > 0

    (events,) = (tmp_path / "run").glob("*/vis_data/events.out.tfevents.*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    assert {"loss", "tokens_per_sec", "lr", "grad_norm"} <= set(acc.Tags()["scalars"])
    tb_loss = {e.step: e.value for e in acc.Scalars("loss")}
    json_loss = {r["step"]: r["loss"] for r in _scalars_json(tmp_path / "run") if "loss" in r}
    assert sorted(tb_loss) == sorted(json_loss) == [5, 10]
    assert all(tb_loss[s] == pytest.approx(json_loss[s], rel=1e-6) for s in json_loss)
    assert min(e.value for e in acc.Scalars("tokens_per_sec")) > 0

    (run_file,) = (tmp_path / "run").glob("*/vis_data/wandb/offline-run-*/run-*.wandb")
    blob = run_file.read_bytes()  # protobuf records: the config and artifact manifest as text
    assert b"components.finetune.PatchedFinetune" in blob  # the lazy config, sent as strings
    assert b"components/dashboards.py" in blob  # the pack's code is logged...
    assert b"site-packages/torch/" not in blob  # ...and not the .venv under the checkout


def test_report_to_rejects_an_unknown_dashboard():
    from components.dashboards import PackVisualizer

    with pytest.raises(ValueError, match=r"unknown dashboard\(s\) \['mlflow'\]"):
        PackVisualizer(name="x", report_to=("tensorboard", "mlflow"))


def test_tokens_are_counted_from_the_attention_mask():
    import torch

    from components.dashboards import count_tokens

    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    assert count_tokens({"data": {"input_ids": torch.zeros(2, 4), "attention_mask": mask}}) == 5
    # packed varlen batches have no mask: every position is a token
    assert count_tokens({"data": {"input_ids": torch.zeros(1, 7), "attention_mask": None}}) == 7
