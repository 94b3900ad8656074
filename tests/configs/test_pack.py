"""The config pack, file by file: names, models, templates, methods; and one real CPU training
run per chat template, each on a run file of the pack turned into its tiny twin."""

import json
import re
from pathlib import Path

import pytest
from mmengine.config import Config

from components import tiny
from tests.curation.conv_helpers import FIXTURE
from tests.helpers import REPO, xtuner

RUN_FILES = sorted(p for p in (REPO / "configs").glob("*.py") if p.name != "__init__.py")
SMOKE_DATA = REPO / "configs" / "smoke" / "oasst_tiny.jsonl"

# The chat format each model was tuned with (its model card / chat template), and XTuner's name for
# it. InternLM-7B is a base model: XTuner's own configs train it with `default`.
TEMPLATE_OF = {
    "internlm/internlm-7b": "default",
    "internlm/internlm2-math-plus-7b": "internlm2_chat",
    "Qwen/Qwen2.5-7B-Instruct": "qwen_chat",
    "meta-llama/Llama-2-7b-chat-hf": "llama2_chat",
    "meta-llama/Llama-3.2-3B-Instruct": "llama3_chat",
}
NAME = re.compile(
    r"(?P<model>[a-z0-9_]+?)_(?P<method>qlora|lora)_(?P<data>[a-z0-9_]+)_e(?P<epochs>\d+)"
)


def template_name(template) -> str:
    from xtuner.utils import PROMPT_TEMPLATE

    return next(name for name, t in PROMPT_TEMPLATE.items() if dict(t) == dict(template))


@pytest.mark.parametrize("path", RUN_FILES, ids=lambda p: p.name)
def test_run_file_says_what_it_trains(path: Path):
    """The name is XTuner's <model>_<method>_<dataset>_e<epochs>, and the file does just that."""
    name = NAME.fullmatch(path.stem)
    assert name, f"{path.name} does not follow <model>_<method>_<dataset>_e<epochs>.py"
    cfg = Config.fromfile(path)
    model_id = cfg.model.llm.pretrained_model_name_or_path
    assert model_id in TEMPLATE_OF, f"{path.name}: no known chat format for {model_id}"
    assert cfg.train_cfg.max_epochs == int(name["epochs"])

    quant = cfg.model.llm.get("quantization_config")
    if name["method"] == "qlora":
        assert quant and quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4"
    else:
        assert not quant  # standard LoRA on a 16-bit base

    data = cfg.train_dataloader.dataset
    expected = TEMPLATE_OF[model_id]
    preference = cfg.get("preference")
    data_name = name["data"]
    if preference:  # <model>_<method>_dpo_<data>: pairs, formatted by the tokenizer's template
        assert data_name.startswith(preference + "_")
        data_name = data_name.removeprefix(preference + "_")
        assert template_name(data.tokenizer.prompt_template) == expected
    else:
        assert template_name(data.template_map_fn.template) == expected
    chat_hook = next(h for h in cfg.custom_hooks if "prompt_template" in h)
    assert template_name(chat_hook.prompt_template) == expected  # samples as it trains
    for tok in (data.tokenizer, chat_hook.tokenizer, cfg.tokenizer):
        assert tok.pretrained_model_name_or_path == model_id
    if data.dataset.get("path") == "json":  # a mixture: the local file `make <data>` writes
        assert data.dataset.data_files["train"].endswith(f"data/{data_name}_clean.jsonl")
        assert f"\n{data_name}:" in (REPO / "Makefile").read_text()
    else:  # curation's converter of the dataset the name says (XTuner's name for guanaco: oasst)
        source = data.dataset.source
        assert {"oasst": "guanaco"}.get(data_name, data_name) == source
    assert data.dataset_map_fn is None  # the converter already wrote the conversations


ONE_PER_TEMPLATE = {
    "default": ("internlm_7b_qlora_oasst_e3.py", "smoke"),
    "internlm2_chat": ("internlm2_math_plus_7b_qlora_gsm8k_e3.py", "gsm8k"),
    "qwen_chat": ("qwen2_5_7b_qlora_alpaca_e2.py", "alpaca"),
    "llama2_chat": ("llama2_7b_qlora_oasst1_e3.py", "oasst1"),
    "llama3_chat": ("llama3_2_3b_qlora_gsm8k_e3.py", "gsm8k"),
}


@pytest.mark.slow
@pytest.mark.parametrize("template", sorted(ONE_PER_TEMPLATE))
def test_each_chat_template_trains_on_the_cpu(template, tiny_model, tmp_path):
    """A run file per template, on a tiny model and its data's fixture, through `xtuner train`."""
    run_file, source = ONE_PER_TEMPLATE[template]
    cfg = Config.fromfile(REPO / "configs" / run_file)
    data = SMOKE_DATA if source == "smoke" else FIXTURE[source]  # guanaco's fixture has bad rows
    twin = tiny.cpu_twin(cfg, tiny_model, data, max_length=256, max_epochs=8)
    twin.dump(tmp_path / "twin.py")

    out = xtuner("train", tmp_path / "twin.py", "--work-dir", tmp_path / "work",
                 HF_DATASETS_CACHE=str(tmp_path / "hf_datasets"))
    assert out.returncode == 0, out.stdout[-3000:]
    scalars = next((tmp_path / "work").glob("*/vis_data/scalars.json"))
    losses = [json.loads(line)["loss"] for line in scalars.read_text().splitlines()
              if '"loss"' in line]
    assert len(losses) >= 8
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first, losses
