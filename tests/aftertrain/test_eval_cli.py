"""`python -m aftertrain eval` end to end on the smoke config's tiny model, offline: 20 GSM8K and
20 MATH items in their public schema, base and base+adapter, eval.json per item."""

from __future__ import annotations

import json
import sys

import pytest

from tests.aftertrain.test_answers import GSM8K_ROWS, MATH_ROWS, write_jsonl
from tests.helpers import REPO, run

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"


def eval_cmd(*args):
    return run([sys.executable, "-m", "aftertrain", "eval", *args])


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A LoRA adapter for the smoke model in the layout `xtuner convert pth_to_hf` writes."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from components import tiny

    base = tiny.build(REPO / ".cache" / "tiny-llama")
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=8, lora_alpha=16, init_lora_weights=False,
                                      task_type="CAUSAL_LM"))
    out = tmp_path_factory.mktemp("adapter") / "hf_adapter"
    model.save_pretrained(out)
    return out


@pytest.mark.slow
def test_eval_gsm8k_and_math_before_and_after(tmp_path, adapter):
    gsm8k = write_jsonl(tmp_path / "gsm8k_test.jsonl", (GSM8K_ROWS * 7)[:20])
    math = write_jsonl(tmp_path / "math_test.jsonl", (MATH_ROWS * 4)[:20])
    out = eval_cmd(SMOKE, "--adapter", adapter, "--gsm8k", gsm8k, "--math", math,
                   "--max-new-tokens", "12", "--work-dir", tmp_path / "wd")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "template default" in out.stdout and "batch " in out.stdout
    for line in ("gsm8k  base ", "gsm8k  base+adapter", "math   base ", "math   change"):
        assert line in out.stdout
    assert "test items seen in training: unknown" in out.stdout  # the smoke data has no report
    result = json.loads((tmp_path / "wd" / "eval.json").read_text())
    items = result["items"]
    assert len(items) == 80
    assert {(r["task"], r["model"]) for r in items} == {
        (t, m) for t in ("gsm8k", "math") for m in ("base", "base+adapter")}
    first = items[0]
    assert set(first) >= {"prompt", "answer", "extracted", "correct", "reply", "where",
                          "gold_loss", "gold_tokens"}
    assert first["gold_tokens"] > 5 and first["gold_loss"] > 0  # the gold solution's loss
    assert first["prompt"] == f"<s><|User|>:{GSM8K_ROWS[0]['question']}\n<|Bot|>:"
    assert first["answer"] == "18" and first["where"] == f"{gsm8k}:1"
    assert [r["answer"] for r in items if r["task"] == "math"][:2] == ["-\\frac{1}{8}", "\\$40"]
    runs = result["tasks"]["gsm8k"]["runs"]
    assert runs["base"]["n"] == 20 and 0 <= runs["base"]["ci95"][0] <= runs["base"]["ci95"][1]
    assert 0 <= runs["base"]["format"] <= 20 and len(runs["base"]["format_ci95"]) == 2
    change = result["tasks"]["gsm8k"]["change"]
    lo, hi = change["gold_loss_ci95"]
    assert lo <= change["gold_loss"] <= hi
    assert change["gold_loss"] == pytest.approx(
        runs["base+adapter"]["gold_loss"] - runs["base"]["gold_loss"])
    assert "gold-solution loss" in out.stdout and "trained format" in out.stdout
    # the adapter changes what the model says
    base = [r["reply"] for r in items if r["model"] == "base"]
    tuned = [r["reply"] for r in items if r["model"] == "base+adapter"]
    assert base != tuned


def test_bad_input_is_a_message_not_a_traceback(tmp_path):
    out = eval_cmd(tmp_path / "nope.py")
    assert out.returncode == 2 and "nope.py: no such config" in out.stdout
    assert "Traceback" not in out.stdout
    out = eval_cmd(SMOKE, "--gsm8k", tmp_path / "missing.jsonl")
    assert out.returncode == 2 and "missing.jsonl" in out.stdout and "Traceback" not in out.stdout
    good = write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS)
    out = eval_cmd(SMOKE, "--gsm8k", good, "--tasks", "gsm8k", "--adapter", tmp_path)
    assert out.returncode == 2 and "no adapter_config.json" in out.stdout
