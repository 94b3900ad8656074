"""`load_conversations` inside a real `xtuner train` run: a lazy-import config names it as the
dataset type, --cfg-options points it at a local file, the conversion counts reach the training
log, and the tiny model trains on the converted data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curation.convert.load import ENV_VAR
from tests.curation.conv_helpers import (  # noqa: F401 (autouse fixture)
    FIXTURE,
    private_datasets_cache,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("load_smoke_cfg.py")


@pytest.mark.slow
def test_xtuner_train_reads_the_converted_dataset(tmp_path):
    xtuner = shutil.which("xtuner", path=str(Path(sys.executable).parent)) or "xtuner"
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf_datasets"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop(ENV_VAR, None)
    run = subprocess.run(
        [xtuner, "train", str(CONFIG), "--work-dir", str(tmp_path),
         "--cfg-options", f"train_dataloader.dataset.dataset.data_files={FIXTURE['gsm8k']}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert f"[curation] gsm8k/train from data_files: {FIXTURE['gsm8k']}" in log
    assert "skipped       2 no_final_answer" in log  # the counts reach the training log
    assert "Num train samples 2" in log
    scalars = sorted(tmp_path.glob("*/vis_data/scalars.json"))[-1]
    losses = [json.loads(line)["loss"] for line in scalars.read_text().splitlines()
              if '"loss"' in line]
    assert len(losses) >= 5 and losses[-1] < losses[0]
