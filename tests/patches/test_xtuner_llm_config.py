"""patches.xtuner_llm_config: XTuner reads a model's config as the run's `model.llm` says
(trust_remote_code, revision), not with trust_remote_code=True whatever it says."""

import shutil

import pytest

from tests.helpers import REPO, python
from tests.patches.remote_edits import with_spy_code

BUILD = """
import torch
from mmengine.config import ConfigDict
from transformers import AutoModelForCausalLM
from xtuner.model import SupervisedFinetune
llm = ConfigDict(type=AutoModelForCausalLM.from_pretrained, pretrained_model_name_or_path={path!r},
                 trust_remote_code=False, torch_dtype=torch.float32)
model = SupervisedFinetune(llm=llm, use_activation_checkpointing=False)
print("BUILT", type(model.llm).__name__)
"""


@pytest.fixture(scope="module")
def spy_model(tmp_path_factory):
    from components import tiny

    path = tmp_path_factory.mktemp("spy") / "spy_llama"
    shutil.copytree(tiny.build(REPO / ".cache" / "tiny-llama"), path)
    return with_spy_code(path)


def test_a_repositorys_added_code_runs_without_the_patch_and_not_with_it(spy_model, tmp_path):
    mark = tmp_path / "ran"
    broken = python(BUILD.format(path=str(spy_model)), SPY_MARK=str(mark),
                    XTUNER_PACK_PATCHES="-xtuner_llm_config")
    assert broken.returncode == 0, broken.stdout[-2000:]
    assert "modeling_spy" in mark.read_text()  # XTuner's AutoConfig(trust_remote_code=True)
    mark.unlink()
    fixed = python(BUILD.format(path=str(spy_model)), SPY_MARK=str(mark))
    assert fixed.returncode == 0, fixed.stdout[-2000:]
    assert "BUILT LlamaForCausalLM" in fixed.stdout  # transformers' own class
    assert not mark.exists()


def test_the_pinned_revision_reaches_xtuners_config_read(spy_model):
    """A revision the model directory cannot have: the config read asks for it (a local
    directory ignores revisions in transformers, so the hub id path is what is checked)."""
    from mmengine.config import ConfigDict
    from xtuner.model.sft import SupervisedFinetune

    seen = {}

    class Probe(SupervisedFinetune):
        def __init__(self):  # only the dispatch is exercised
            pass

        @staticmethod
        def _prepare_for_qlora_zero3(cfg):
            return cfg

        @staticmethod
        def _prepare_for_flash_attn(cfg, llm_cfg):
            seen["llm_cfg"] = llm_cfg
            return cfg

    import xtuner.model.sft as sft

    real = sft.AutoConfig.from_pretrained
    calls = []
    sft.AutoConfig.from_pretrained = lambda *a, **k: calls.append(k) or real(*a, **k)
    try:
        Probe()._dispatch_lm_model_cfg(ConfigDict(
            pretrained_model_name_or_path=str(spy_model), revision="0" * 40,
            trust_remote_code=False))
    finally:
        sft.AutoConfig.from_pretrained = real
    assert calls == [dict(trust_remote_code=False, revision="0" * 40)]
    assert type(seen["llm_cfg"]).__name__ == "LlamaConfig"
