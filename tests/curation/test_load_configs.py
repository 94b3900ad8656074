"""Every run file in configs/ that reads its data with `load_conversations`: its source is a
registered dataset with valid options, its template is the one the converter tests check for
that dataset, and its own dataset pipeline builds on the dataset's fixture once the tokenizer
is swapped for the tiny local one."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.convert.load import ENV_VAR, load_conversations
from tests.curation.conv_helpers import (  # noqa: F401 (autouse fixture)
    FIXTURE,
    TEMPLATE_DATASETS,
    private_datasets_cache,
    tokenizer,
)

REPO = Path(__file__).resolve().parents[2]


def run_files_using_load_conversations() -> list[Path]:
    from mmengine.config import Config

    # read as mmengine reads them: the dataset may come from a preset in configs/_base_/
    def reader(p: Path):
        return Config.fromfile(p).train_dataloader.dataset.dataset.get("type")

    # the preference (DPO) configs read pairs with load_pairs; tests/configs/test_dpo.py covers them
    return sorted(p for p in (REPO / "configs").glob("*.py") if p.name != "__init__.py"
                  and reader(p) in (load_conversations, "curation.convert.load.load_conversations"))


def template_name(template) -> str:
    from xtuner.utils import PROMPT_TEMPLATE

    return next(name for name, t in PROMPT_TEMPLATE.items() if dict(t) == dict(template))


@pytest.mark.parametrize("path", run_files_using_load_conversations(), ids=lambda p: p.name)
def test_config_dataset_builds_on_the_fixture(path, tmp_path, monkeypatch):
    from mmengine.config import Config
    from xtuner.registry import BUILDER

    monkeypatch.delenv(ENV_VAR, raising=False)
    cfg = Config.fromfile(path)
    pipeline = cfg.train_dataloader.dataset
    source = pipeline.dataset.source
    assert pipeline.dataset.type in (load_conversations, "curation.convert.load.load_conversations")
    assert pipeline.dataset_map_fn is None  # the converter already wrote the conversations
    used_template = template_name(pipeline.template_map_fn.template)
    assert source in TEMPLATE_DATASETS[used_template], (
        f"{path.name}: {source} with {used_template} is not among the pairs the converter "
        "tests put through XTuner's pipeline (tests/curation/conv_helpers.py)")

    tokenizer().save_pretrained(tmp_path / "tok")
    cfg.merge_from_dict({
        "train_dataloader.dataset.dataset.data_files": str(FIXTURE[source]),
        "train_dataloader.dataset.tokenizer": dict(
            type="transformers.AutoTokenizer.from_pretrained",
            pretrained_model_name_or_path=str(tmp_path / "tok")),
        "train_dataloader.dataset.pack_to_max_length": False,  # a few samples fill no chunk
        "train_dataloader.dataset.map_num_proc": 1,
    })
    dataset = BUILDER.build(cfg.train_dataloader.dataset)
    options = {k: v for k, v in pipeline.dataset.items() if k not in ("type", "source", "split")}
    expected = load_conversations(source, split=pipeline.dataset.get("split"),
                                  data_files=str(FIXTURE[source]), **options)
    assert len(dataset) == len(expected) > 0  # every converted sample reaches the model
    assert all(any(label != -100 for label in s["labels"]) for s in dataset)
