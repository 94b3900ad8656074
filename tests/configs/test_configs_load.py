"""Every run file in configs/ loads with mmengine, as `xtuner train` loads it."""

from pathlib import Path

import pytest
from mmengine.config import Config

from tests.helpers import REPO

RUN_FILES = sorted(
    p for p in (REPO / "configs").rglob("*.py")
    if "_base_" not in p.parts and p.name != "__init__.py"
)


def test_there_are_run_files():
    assert REPO / "configs" / "internlm_7b_qlora_oasst_e3.py" in RUN_FILES


@pytest.mark.parametrize("path", RUN_FILES, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_loads_and_dumps(path: Path, tmp_path):
    cfg = Config.fromfile(path)
    for part in ("model", "train_dataloader", "optim_wrapper", "param_scheduler", "train_cfg"):
        assert part in cfg, f"{path.name} lacks {part}"
    assert cfg.recipe == "configs/_base_/recipe_8gb.py"
    # The runner dumps the config into its work_dir; a config that cannot be dumped fails there.
    cfg.dump(tmp_path / "dumped.py")
    assert Config.fromfile(tmp_path / "dumped.py").train_cfg.max_epochs == cfg.train_cfg.max_epochs
