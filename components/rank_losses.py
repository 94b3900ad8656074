"""The losses of every iteration on every rank, for `make smoke-dist`'s comparison of 2 processes
with 1 (mmengine logs rank 0's loss only, and only every `log_interval` iterations)."""

from __future__ import annotations

import json
from pathlib import Path

from mmengine.hooks import Hook


class RankLossHook(Hook):
    """Every rank writes the loss of each of its iterations to work_dir/losses_rank<R>.json."""

    priority = "LOW"

    def before_train(self, runner) -> None:
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses.append(float(outputs["loss"].detach()))

    def after_train(self, runner) -> None:
        from mmengine.dist import get_rank, get_world_size

        out = Path(runner.work_dir) / f"losses_rank{get_rank()}.json"
        out.write_text(json.dumps(dict(world_size=get_world_size(), losses=self.losses)))
