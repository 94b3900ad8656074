"""The real-model loop (`make demo`) in its short form: SmolLM2-135M-Instruct through the real
`xtuner train`, `pth_to_hf`, `aftertrain eval`, `merge`, `aftertrain export --check` and the
answer in transformers and llama.cpp, on a few rows, items and tokens."""

from __future__ import annotations

import json
import sys

import pytest

from aftertrain.export import llamacpp
from configs._base_.models import smollm2_135m_instruct
from tests.helpers import REPO, run

CONFIG = REPO / "configs" / "demo" / "smollm2_135m_qlora_gsm8k_cpu.py"


def test_demo_config_trains_smollm2_in_its_own_chat_template(smollm2):
    """What the demo trains on, token for token, is what SmolLM2's own chat template (the GGUF's,
    default system prompt included) renders for the same problem and solution."""
    from mmengine.config import Config
    from xtuner.registry import BUILDER

    from curation.convert.load import load_conversations

    cfg = Config.fromfile(CONFIG)
    data = cfg.train_dataloader.dataset
    data.dataset.limit = 1
    data.pack_to_max_length = False
    ids = BUILDER.build(data)[0]["input_ids"]
    tokenizer = BUILDER.build(cfg.tokenizer)
    turn = load_conversations("gsm8k", data_files=str(data.dataset.data_files),
                              limit=1)[0]["conversation"][0]
    own = tokenizer.apply_chat_template(  # the model directory's template: SmolLM2's own
        [{"role": "user", "content": turn["input"]},
         {"role": "assistant", "content": turn["output"]}], tokenize=False)
    assert own.startswith("<|im_start|>system\n" + smollm2_135m_instruct["system"])
    assert ids == tokenizer(own, add_special_tokens=False).input_ids
    assert cfg.model.llm.quantization_config.bnb_4bit_quant_type == "nf4"


@pytest.mark.slow
def test_make_demo_short_runs_the_whole_loop(tmp_path, smollm2):
    out = run([sys.executable, "-m", "demo.real", "--short", "--work-dir", tmp_path / "demo"],
              timeout=1500)  # ~2 min idle
    assert out.returncode == 0, out.stdout[-4000:]
    for n in range(1, 8):
        assert f"[{n}/7]" in out.stdout
    result = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert result["steps"] >= 3  # the recipe's warm-up and a few steps at the full rate
    assert result["export"]["roundtrip"]["ok"] is True
    gguf = result["export"]["gguf"]
    meta = llamacpp.gguf_metadata(gguf["Q4_K_M"])
    assert meta["eos_token"] == "<|im_end|>"
    assert smollm2_135m_instruct["system"] in meta["chat_template"]  # its default system prompt
    modelfile = (tmp_path / "demo" / "gguf" / "Modelfile").read_text()
    assert f'SYSTEM """{smollm2_135m_instruct["system"]}"""' in modelfile
    runs = result["eval"]["gsm8k"]["runs"]
    assert set(runs) == {"base", "base+adapter"}
    assert all(r["n"] == 2 and r["gold_loss"] > 0 for r in runs.values())
    assert result["eval"]["gsm8k"]["change"]["gold_loss"] != 0  # the adapter changed the model
    assert result["answer"]["hf"] and result["answer"]["llama_cpp"]
    assert "gold-solution loss" in out.stdout and "demo OK" in out.stdout
