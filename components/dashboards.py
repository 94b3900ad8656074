"""What a run shows while it trains: TensorBoard / W&B curves and tokens/s in the log line.

The recipe names these as types the runner builds (configs are read in lazy-import mode):

    visualizer=dict(type=PackVisualizer, report_to=("tensorboard",), wandb_init=None)
    custom_hooks=[..., dict(type=ThroughputHook)]

`PackVisualizer` is mmengine's Visualizer with LocalVisBackend always on (vis_data/scalars.json,
which `make smoke` and the tests read) plus the dashboards `report_to` asks for; from the command
line: `xtuner train CONFIG --cfg-options visualizer.report_to=tensorboard,wandb`.

W&B and the lazy configs: mmengine before 0.10 gave `wandb.config.update` the config with its
LazyObjects in it, which cannot be serialized (the crash XTuner users reported). mmengine 0.10.7
turns them into strings, but its WandbVisBackend.add_config then calls `run.log_code()` on the
current directory, which snapshots every .py file under it: run from a checkout of the pack that
is the whole .venv (~16k files, ~290 MB staged per run). `PackWandbBackend` sends the config as
plain JSON (anything not serializable as its string) and logs only the pack's own code.

`ThroughputHook` puts `tokens_per_sec` (this process's tokens over the last iterations; times the
number of GPUs for a multi-GPU total) beside the eta and GPU memory mmengine's log line has.
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path

from mmengine.hooks import Hook
from mmengine.visualization import (
    LocalVisBackend,
    TensorboardVisBackend,
    Visualizer,
    WandbVisBackend,
)
from mmengine.visualization.vis_backend import force_init_env

REPORT_TO = ("tensorboard", "wandb")
REPO = Path(__file__).resolve().parents[1]
# Folders of a checkout that are not the pack's code (environments, caches, runs).
NOT_CODE = {".venv", ".conda", ".cache", ".git", "work_dirs", "wandb", "__pycache__"}


def _names(report_to) -> list[str]:
    """("tensorboard", "wandb"), ["wandb"], "tensorboard,wandb", "none" or None -> names."""
    if report_to is None:
        return []
    if isinstance(report_to, str):
        report_to = report_to.split(",")
    names = [str(n).strip().lower() for n in report_to if str(n).strip()]
    names = [n for n in names if n != "none"]
    unknown = sorted(set(names) - set(REPORT_TO))
    if unknown:
        raise ValueError(f"report_to: unknown dashboard(s) {unknown}; choose from "
                         f"{', '.join(REPORT_TO)} or none")
    return list(dict.fromkeys(names))


def _require(module: str, name: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(
            f"report_to={name!r} needs the `{module}` package, which is not installed: run "
            f"`make env` (env/stack.txt pins it), or drop {name!r} from report_to")


class PackWandbBackend(WandbVisBackend):
    """mmengine's W&B backend, sending the config as JSON and logging only the pack's code."""

    @force_init_env
    def add_config(self, config, **kwargs) -> None:
        allow_val_change = (self._init_kwargs or {}).get("allow_val_change", False)
        plain = json.loads(json.dumps(config.to_dict(), default=str))
        self._wandb.config.update(plain, allow_val_change=allow_val_change)
        self._wandb.run.log_code(root=str(REPO), name=self._log_code_name,
                                 include_fn=lambda path, root: path.endswith(".py"),
                                 exclude_fn=_not_code)


def _not_code(path: str, root: str) -> bool:
    folders = Path(path).relative_to(root).parts[:-1]
    return any(p in NOT_CODE or p.startswith(".") for p in folders)


def PackVisualizer(*, name, save_dir=None, report_to=("tensorboard",),  # noqa: N802
                   wandb_init=None, **kwargs):
    """mmengine's Visualizer with LocalVisBackend plus the dashboards in `report_to`.

    wandb_init: keyword arguments for `wandb.init` (project, name, mode="offline", ...);
    W&B's own environment variables (WANDB_PROJECT, WANDB_MODE...) work as well.
    """
    backends = [dict(type=LocalVisBackend)]  # vis_data/scalars.json
    for dashboard in _names(report_to):
        if dashboard == "tensorboard":
            _require("tensorboard", dashboard)
            backends.append(dict(type=TensorboardVisBackend))  # vis_data/events.out.tfevents.*
        else:
            _require("wandb", dashboard)
            backends.append(dict(type=PackWandbBackend, init_kwargs=dict(wandb_init or {})))
    return Visualizer.get_instance(name=name, save_dir=save_dir, vis_backends=backends, **kwargs)


class ThroughputHook(Hook):
    """Adds `tokens_per_sec` to the training log (and so to the dashboards).

    Tokens are those the model attends to (the batch's attention mask; every position of a
    packed varlen batch), chosen and rejected sequences both for DPO. The rate is over the last
    `window` iterations, timed from one iteration's end to the next, data loading included, as
    mmengine's `time` and `eta` are.
    """

    priority = "NORMAL"  # before LoggerHook (BELOW_NORMAL) formats the line

    def __init__(self, window: int = 10):
        self.window = window
        self._recent: deque[tuple[int, float]] = deque(maxlen=window)
        self._last = None

    def before_train(self, runner) -> None:
        self._last = time.perf_counter()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self._recent.append((count_tokens(data_batch), now - self._last))
        self._last = now
        seconds = sum(s for _, s in self._recent)
        if seconds > 0:
            tokens = sum(t for t, _ in self._recent)
            runner.message_hub.update_scalar("train/tokens_per_sec", tokens / seconds)


def count_tokens(data_batch) -> int:
    """Tokens in one of XTuner's batches ({"data": {"input_ids", "attention_mask"?, ...}})."""
    data = (data_batch or {}).get("data", data_batch) or {}
    mask = data.get("attention_mask")
    if mask is not None:
        return int(mask.sum())
    ids = data.get("input_ids")
    return int(ids.numel()) if ids is not None else 0
