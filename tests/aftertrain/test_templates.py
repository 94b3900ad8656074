"""The chat template in the GGUF renders exactly the text XTuner trains on, for each of the
pack's templates: XTuner's own template_map_fn + encode_fn on one side, llama.cpp's converter
(a vocab-only GGUF of the tiny tokenizer) and llama-cpp-python's Jinja renderer on the other."""

from __future__ import annotations

import pytest
from xtuner.utils import PROMPT_TEMPLATE

from aftertrain import templates
from aftertrain.export import llamacpp

PACK_TEMPLATES = ["default", "internlm2_chat", "qwen_chat", "llama2_chat", "llama3_chat"]
TWO_TURNS = [
    {"role": "system", "content": "You are a careful math tutor."},
    {"role": "user", "content": "What is 12 + 30?"},
    {"role": "assistant", "content": "12 + 30 = 42.\nThe answer is 42."},
    {"role": "user", "content": "And twice that?"},
    {"role": "assistant", "content": "2 * 42 = 84.\nThe answer is 84."},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.mark.parametrize("name", PACK_TEMPLATES)
def test_jinja_renders_what_xtuner_trains_on(name, tokenizer):
    template = PROMPT_TEMPLATE[name]
    expected = templates.xtuner_render(template, TWO_TURNS, tokenizer)
    tokenizer.chat_template = templates.jinja(template)
    rendered = tokenizer.apply_chat_template(TWO_TURNS, tokenize=False)
    assert rendered == expected
    assert "You are a careful math tutor." in expected and "And twice that?" in expected


def test_jinja_prompt_ends_with_the_assistant_cue(tokenizer):
    template = PROMPT_TEMPLATE.qwen_chat
    tokenizer.chat_template = templates.jinja(template)
    prompt = tokenizer.apply_chat_template(TWO_TURNS[:2], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n")


def test_stop_words():
    assert templates.stop_words(PROMPT_TEMPLATE.qwen_chat, "<|endoftext|>") == [
        "<|im_end|>", "<|endoftext|>"]
    assert templates.stop_words(PROMPT_TEMPLATE.llama3_chat, "<|eot_id|>") == ["<|eot_id|>"]
    assert templates.stop_words(PROMPT_TEMPLATE.default, "</s>") == ["</s>"]


def test_an_untranslatable_template_is_an_error():
    bad = dict(PROMPT_TEMPLATE.default, INSTRUCTION="<|User|>:{question}\n")
    with pytest.raises(templates.TemplateError, match="question"):
        templates.jinja(bad)


@pytest.fixture(scope="module")
def vocab_ggufs(tiny_model, tmp_path_factory):
    """One vocab-only GGUF per template, by llama.cpp's converter in one process."""
    out = tmp_path_factory.mktemp("gguf")
    jobs, staged = [], {}
    for name in PACK_TEMPLATES:
        s = llamacpp.stage(tiny_model, PROMPT_TEMPLATE[name], out / f"staged-{name}")
        staged[name] = s
        jobs.append([str(s.path), "--vocab-only", "--outfile", str(out / f"{name}.gguf")])
    llamacpp.convert(jobs, out / "convert.log")
    return {name: (out / f"{name}.gguf", staged[name]) for name in PACK_TEMPLATES}


@pytest.mark.parametrize("name", PACK_TEMPLATES)
def test_gguf_template_renders_xtuners_prompt(name, vocab_ggufs, tokenizer):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    path, staged = vocab_ggufs[name]
    meta = llamacpp.gguf_metadata(path)
    template = PROMPT_TEMPLATE[name]
    assert meta["chat_template"] == templates.jinja(template)
    if template.get("SUFFIX_AS_EOS"):  # the end-of-turn token is where llama.cpp stops
        assert meta["eos_token"] == template["SUFFIX"]
    else:
        assert meta["eos_token"] == tokenizer.eos_token
    formatter = Jinja2ChatFormatter(template=meta["chat_template"], eos_token=meta["eos_token"],
                                    bos_token=meta["bos_token"])
    rendered = formatter(messages=TWO_TURNS).prompt
    assert rendered == templates.xtuner_render(template, TWO_TURNS, tokenizer)
    assert staged.stop[0] == (template.get("STOP_WORDS") or [tokenizer.eos_token])[0]


@pytest.mark.parametrize("name", PACK_TEMPLATES)
def test_modelfile_has_template_stops_and_system(name):
    template = PROMPT_TEMPLATE[name]
    stop = templates.stop_words(template, "</s>")
    text = llamacpp.modelfile("model-Q4_K_M.gguf", template, bos_token="<s>", eos_token="</s>",
                              stop=stop, system="You are a careful math tutor.")
    assert text.startswith("FROM ./model-Q4_K_M.gguf\n")
    assert 'TEMPLATE """{{- $bos := false }}' in text
    for s in stop:
        assert f'PARAMETER stop "{s}"' in text
    assert 'SYSTEM """You are a careful math tutor."""' in text
