"""Every config runs only the hub code its architecture needs: `trust_remote_code` is on for
InternLM and InternLM2 (their modeling code is not in transformers) and off for every other
model, in every place a config loads a model or a tokenizer (train, the hooks, eval, export),
and every model and dataset preset has a `revision` knob that reaches those loads."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from mmengine.config import Config

from tests.configs.test_configs_load import RUN_FILES
from tests.helpers import REPO
from tests.patches.remote_edits import with_spy_code

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"
REMOTE_CODE_MODELS = ("internlm/internlm-7b", "internlm/internlm2-math-plus-7b")


def loads(node, path=""):
    """Every dict of a built config that loads a model or tokenizer (a `type` built from a
    path), with where it is."""
    if isinstance(node, dict):
        if "pretrained_model_name_or_path" in node and "type" in node:
            yield path, node
        for key, value in node.items():
            yield from loads(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from loads(value, f"{path}.{i}")


@pytest.mark.parametrize("path", RUN_FILES, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_trust_remote_code_only_where_the_architecture_needs_it(path: Path):
    from aftertrain.config import read_config

    cfg = Config.fromfile(path)
    model = str(cfg.model.llm.pretrained_model_name_or_path)
    wanted = model in REMOTE_CODE_MODELS
    places = dict(loads(cfg._cfg_dict.to_dict()))
    # the model, the tokenizer, the dataset's and both hooks' tokenizers
    assert {"model.llm", "tokenizer", "train_dataloader.dataset.tokenizer"} <= set(places)
    for where, load in places.items():
        assert load.get("trust_remote_code") is wanted, (path.name, where)
        assert "revision" in load and load["revision"] is None, (path.name, where)  # the knob
    spec = read_config(path)  # what `python -m aftertrain eval|export` take from it
    assert spec.trust_remote_code is wanted and spec.revision is None


@pytest.mark.parametrize("path", [p for p in RUN_FILES if p.parent.name != "smoke"],
                         ids=lambda p: p.stem)
def test_every_hub_dataset_preset_has_a_revision_knob(path: Path):
    data = Config.fromfile(path).train_dataloader.dataset.dataset
    if not data.get("source") or data.get("data_files"):
        pytest.skip("local files: their sha256 is their provenance")
    assert "revision" in data and data["revision"] is None, path.name


def _swap_model(cfg, model_dir: Path):
    real = cfg.model.llm.pretrained_model_name_or_path
    for _, load in loads(cfg._cfg_dict):
        if load["pretrained_model_name_or_path"] == real:
            load["pretrained_model_name_or_path"] = str(model_dir)
    cfg.pretrained_model_name_or_path = str(model_dir)
    return cfg


@pytest.fixture(scope="module")
def spy_model(tmp_path_factory):
    """The smoke config's tiny Llama, in a repository that has added its own modeling code."""
    from components import tiny

    path = tmp_path_factory.mktemp("spy") / "spy_tiny_llama"
    shutil.copytree(tiny.build(REPO / ".cache" / "tiny-llama"), path)
    return with_spy_code(path)


def test_train_eval_and_export_never_run_a_repositorys_added_code(spy_model, tmp_path,
                                                                  monkeypatch):
    """The smoke config (a Llama: transformers' own architecture) on a model whose repository
    names code of its own in auto_map: training's model and tokenizer, the evaluation's and the
    export's merge and round-trip loads all use transformers' classes; the code never runs."""
    from xtuner.registry import BUILDER

    from aftertrain.config import read_config
    from aftertrain.eval import harness
    from aftertrain.export.merge import merge_as_trained
    from aftertrain.export.roundtrip import greedy_hf

    mark = tmp_path / "spy.log"
    monkeypatch.setenv("SPY_MARK", str(mark))
    cfg = _swap_model(Config.fromfile(SMOKE), spy_model)

    trained = BUILDER.build(cfg.model)  # xtuner train's model (nf4 QLoRA), and its tokenizer
    assert type(trained.llm.get_base_model()).__name__ == "LlamaForCausalLM"
    BUILDER.build(cfg.tokenizer)
    spec = replace(read_config(SMOKE), cfg=cfg, model_path=str(spy_model))  # aftertrain eval
    assert type(harness.build_model(spec)).__name__ == "LlamaForCausalLM"
    harness.build_tokenizer(spec)
    adapter = tmp_path / "adapter"  # aftertrain export: merge, then the round trip's HF side
    trained.llm.save_pretrained(adapter)
    merged = merge_as_trained(spec, adapter, tmp_path / "merged")
    assert len(greedy_hf(merged, [1, 5, 9], 2, spec.trust_remote_code)) == 2
    assert not mark.exists()

    # the spy is real: a config that trusts the repository runs its code
    cfg.model.llm.trust_remote_code = True
    harness.build_model(replace(spec, cfg=cfg))
    assert "modeling_spy" in mark.read_text()


def test_the_documented_command_line_pins_every_load():
    """docs/provenance.md: the --cfg-options that pin the model reach every place it loads."""
    import re

    doc = (REPO / "docs" / "provenance.md").read_text()
    block = doc.split("xtuner train configs/qwen2_5_7b_qlora_alpaca_e2.py --cfg-options", 1)[1]
    keys = re.findall(r"([\w.]+)=<(model|dataset) commit>", block.split("```", 1)[0])
    cfg = Config.fromfile(REPO / "configs" / "qwen2_5_7b_qlora_alpaca_e2.py")
    cfg.merge_from_dict({k: f"{what}-sha" for k, what in keys})
    assert {where for where, load in loads(cfg._cfg_dict.to_dict())
            if load.get("revision") != "model-sha"} == set()
    assert cfg.train_dataloader.dataset.dataset.revision == "dataset-sha"
