"""components.template_map: the config's system prompt is the default system prompt of training
conversations, as a model's own chat template makes it (SmolLM2's)."""

from __future__ import annotations

import copy

from xtuner.utils import PROMPT_TEMPLATE

from components.template_map import template_map_fn_factory, with_default_system

CONV = {"conversation": [{"input": "Q1", "output": "A1"}, {"input": "Q2", "output": "A2"}]}


def test_first_turn_without_a_system_prompt_gets_the_default():
    before = copy.deepcopy(CONV)
    out = with_default_system(CONV, "Be brief.")
    assert out["conversation"][0]["system"] == "Be brief."
    assert "system" not in out["conversation"][1]
    assert CONV == before  # the caller's conversation is not modified


def test_a_conversation_with_its_own_system_prompt_keeps_it():
    conv = {"conversation": [{"system": "Mine.", "input": "Q", "output": "A"}]}
    assert with_default_system(conv, "Be brief.")["conversation"][0]["system"] == "Mine."


def test_training_text_starts_with_the_default_system_prompt():
    mapped = template_map_fn_factory(PROMPT_TEMPLATE.qwen_chat, "Be brief.")(
        copy.deepcopy(CONV))["conversation"]
    assert mapped[0]["input"] == ("<|im_start|>system\nBe brief.<|im_end|>\n"
                                  "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n")
    assert mapped[1]["input"] == "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n"


def test_without_a_system_prompt_it_is_xtuners_own_map_function():
    from xtuner.dataset.map_fns.template_map_fn import template_map_fn

    fn = template_map_fn_factory(PROMPT_TEMPLATE.qwen_chat)
    assert fn.func is template_map_fn
