"""The chat template in the GGUF, in eval and in training render the same prompt, for each of the
pack's templates (default, internlm2_chat, qwen_chat, llama2_chat, llama3_chat, and SmolLM2's:
ChatML with its default system prompt), with and without a system prompt, on the tiny test
tokenizer and on SmolLM2's real byte-level BPE (whose BOS is ChatML's <|im_start|>). XTuner's own
template_map_fn + encode_fn on one side (with the pack's rules: no doubled BOS, the config's
system prompt as the default), `apply_chat_template`, llama.cpp's converter (vocab-only GGUFs)
and llama.cpp's tokenizer on the other."""

from __future__ import annotations

import re

import pytest
from xtuner.utils import PROMPT_TEMPLATE

from aftertrain.export import llamacpp, roundtrip
from components import chat_template as templates
from configs._base_.models import smollm2_135m_instruct
from tests.helpers import python

SMOLLM2_SYSTEM = smollm2_135m_instruct["system"]
# name -> (XTuner template, the config's system prompt)
CASES = {name: (PROMPT_TEMPLATE[name], "") for name in
         ("default", "internlm2_chat", "qwen_chat", "llama2_chat", "llama3_chat")}
CASES["smollm2"] = (smollm2_135m_instruct["prompt_template"], SMOLLM2_SYSTEM)
SYSTEM = [{"role": "system", "content": "You are a careful math tutor."}]
TWO_TURNS = [
    {"role": "user", "content": "What is 12 + 30?"},
    {"role": "assistant", "content": "12 + 30 = 42.\nThe answer is 42."},
    {"role": "user", "content": "And twice that?"},
    {"role": "assistant", "content": "2 * 42 = 84.\nThe answer is 84."},
]
QUESTION = [{"role": "user", "content": "Natalia sold 48 clips in April. How many in May?"}]


@pytest.fixture(scope="module", params=["tiny", "smollm2"])
def tokenizer(request):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(request.getfixturevalue(
        "tiny_model" if request.param == "tiny" else "smollm2"))


def markers_are_tokens(template, tokenizer) -> bool:
    """Whether the template's <|...|> markers are single tokens of this tokenizer, as they are for
    the model a template belongs to. Otherwise XTuner's tokenization of the turns one piece at a
    time and a tokenization of the whole text may split a marker differently (llama3_chat's
    markers on SmolLM2's vocabulary): the text is still the same."""
    text = "".join(str(v) for v in templates.as_dict(template).values())
    return all(len(tokenizer.tokenize(m)) == 1 for m in re.findall(r"<\|[^|<>]+\|>", text))


def with_template(tokenizer, name):
    template, system = CASES[name]
    tokenizer.chat_template = templates.jinja(template, bos_token=templates.xtuner_bos(tokenizer),
                                              system=system)
    return template, system


@pytest.mark.parametrize("system", [True, False], ids=["system", "no-system"])
@pytest.mark.parametrize("name", CASES)
def test_jinja_renders_what_xtuner_trains_on(name, system, tokenizer):
    messages = (SYSTEM if system else []) + TWO_TURNS
    template, default = with_template(tokenizer, name)
    ids = templates.xtuner_ids(template, messages, tokenizer, system=default)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    assert rendered == tokenizer.decode(ids, skip_special_tokens=False,
                                        clean_up_tokenization_spaces=False)
    if markers_are_tokens(template, tokenizer):
        assert tokenizer(rendered, add_special_tokens=False).input_ids == ids
    assert ("You are a careful math tutor." in rendered) == system
    assert rendered.count("And twice that?") == 1


@pytest.mark.parametrize("system", [True, False], ids=["system", "no-system"])
@pytest.mark.parametrize("name", CASES)
def test_prompt_of_one_question_is_xtuners(name, system, tokenizer):
    """What eval and the round trip compare: XTuner's prompt (up to the answer) for a single
    unanswered question; every template with a SUFFIX broke here (its suffix was appended to the
    empty answer of the very conversation the prompt was then read from)."""
    messages = (SYSTEM if system else []) + QUESTION
    template, default = with_template(tokenizer, name)
    ids = roundtrip.xtuner_prompt_ids(template, messages, tokenizer, system=default)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == tokenizer.decode(ids, skip_special_tokens=False,
                                        clean_up_tokenization_spaces=False)
    if markers_are_tokens(template, tokenizer):
        assert tokenizer(rendered, add_special_tokens=False).input_ids == ids
    assert ids[-1] != tokenizer.eos_token_id  # the prompt ends where the answer starts


def test_smollm2_bos_is_not_doubled(smollm2):
    """SmolLM2's BOS is <|im_start|>: XTuner's encode_fn alone trained it on
    <|im_start|><|im_start|>user (patches/xtuner_template_bos.py)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    assert tok.bos_token == "<|im_start|>"
    for system in ("", SMOLLM2_SYSTEM):
        ids = templates.xtuner_ids(PROMPT_TEMPLATE.qwen_chat, TWO_TURNS, tok, system=system)
        assert ids[0] == tok.bos_token_id
        assert [tok.bos_token_id] * 2 not in [ids[i:i + 2] for i in range(len(ids) - 1)]


def test_without_the_patch_xtuner_doubles_a_bos_that_starts_the_template(smollm2):
    code = ("from transformers import AutoTokenizer\n"
            "from xtuner.utils import PROMPT_TEMPLATE\n"
            "from components import chat_template as templates\n"
            f"tok = AutoTokenizer.from_pretrained({str(smollm2)!r})\n"
            f"ids = templates.xtuner_ids(PROMPT_TEMPLATE.qwen_chat, {QUESTION!r}, tok, "
            "prompt_only=True)\n"
            "print('IDS', tok.convert_ids_to_tokens(ids[:3]))\n")
    broken = python(code, XTUNER_PACK_PATCHES="-xtuner_template_bos")
    assert "IDS ['<|im_start|>', '<|im_start|>', 'user']" in broken.stdout, broken.stdout[-2000:]
    fixed = python(code)
    assert "IDS ['<|im_start|>', 'user', 'Ċ']" in fixed.stdout, fixed.stdout[-2000:]


@pytest.mark.parametrize("system", [True, False], ids=["system", "no-system"])
def test_smollm2_trains_and_prompts_in_its_own_chat_template(system, smollm2):
    """The model's own chat template (the GGUF's, with its default system prompt) renders exactly
    what the pack trains SmolLM2 on, and exactly the prompt eval and export give it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    own = tok.chat_template
    assert SMOLLM2_SYSTEM in own  # the preset's default is the model's own
    template, default = CASES["smollm2"]
    for messages, prompt in (((SYSTEM if system else []) + TWO_TURNS, False),
                             ((SYSTEM if system else []) + QUESTION, True)):
        ids = templates.xtuner_ids(template, messages, tok, system=default, prompt_only=prompt)
        expected = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt,
                                           chat_template=own)
        assert tok.decode(ids, skip_special_tokens=False) == expected


def test_stop_words():
    assert templates.stop_words(PROMPT_TEMPLATE.qwen_chat, "<|endoftext|>") == [
        "<|im_end|>", "<|endoftext|>"]
    assert templates.stop_words(PROMPT_TEMPLATE.llama3_chat, "<|eot_id|>") == ["<|eot_id|>"]
    assert templates.stop_words(PROMPT_TEMPLATE.default, "</s>") == ["</s>"]


def test_an_untranslatable_template_is_an_error():
    bad = dict(PROMPT_TEMPLATE.default, INSTRUCTION="<|User|>:{question}\n")
    with pytest.raises(templates.TemplateError, match="question"):
        templates.jinja(bad, bos_token="<s>")


def test_a_prompt_is_one_unanswered_turn(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    with pytest.raises(llamacpp.ExportError, match="one unanswered user turn"):
        roundtrip.xtuner_prompt_ids(PROMPT_TEMPLATE.qwen_chat, TWO_TURNS, tok)


@pytest.fixture(scope="module")
def vocab_ggufs(tokenizer, tmp_path_factory):
    """One vocab-only GGUF per template, by llama.cpp's converter in one process."""
    out = tmp_path_factory.mktemp("gguf")
    jobs, staged = [], {}
    for name, (template, system) in CASES.items():
        try:
            s = llamacpp.stage(tokenizer.name_or_path, template, out / f"staged-{name}",
                               system=system)
        except llamacpp.ExportError as exc:  # a template whose end of turn is not a token
            staged[name] = exc
            continue
        staged[name] = s
        jobs.append([str(s.path), "--vocab-only", "--outfile", str(out / f"{name}.gguf")])
    llamacpp.convert(jobs, out / "convert.log")
    return {name: (out / f"{name}.gguf", staged[name]) for name in CASES}


@pytest.fixture(scope="module")
def loaded():
    """llama.cpp vocabularies, loaded once per file (seconds each), closed with the module."""
    llms: dict = {}
    yield llms
    for llm in llms.values():
        llm.close()


@pytest.mark.parametrize("system", [True, False], ids=["system", "no-system"])
@pytest.mark.parametrize("name", CASES)
def test_gguf_template_and_llama_cpp_tokens_are_xtuners(name, system, vocab_ggufs, tokenizer,
                                                       loaded):
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    path, staged = vocab_ggufs[name]
    template, default = CASES[name]
    if isinstance(staged, Exception):  # llama3_chat on SmolLM2: <|eot_id|> is not its token
        assert not markers_are_tokens(template, tokenizer)
        assert "not a special token of this tokenizer" in str(staged)
        return
    meta = llamacpp.gguf_metadata(path)
    assert meta["chat_template"] == staged.chat_template
    if template.get("SUFFIX_AS_EOS"):  # the end-of-turn token is where llama.cpp stops
        assert meta["eos_token"] == template["SUFFIX"]
    else:
        assert meta["eos_token"] == tokenizer.eos_token
    formatter = Jinja2ChatFormatter(template=meta["chat_template"], eos_token=meta["eos_token"],
                                    bos_token=meta["bos_token"] or "")
    messages = (SYSTEM if system else []) + TWO_TURNS
    assert formatter(messages=messages).prompt == templates.xtuner_render(
        template, messages, tokenizer, system=default)
    prompt = formatter(messages=(SYSTEM if system else []) + QUESTION).prompt
    if not markers_are_tokens(template, tokenizer):
        return  # the text above is the same; the ids need the template's own model
    if path not in loaded:
        loaded[path] = Llama(model_path=str(path), vocab_only=True, verbose=False)
    assert loaded[path].tokenize(prompt.encode(), add_bos=False, special=True) == \
        roundtrip.xtuner_prompt_ids(template, (SYSTEM if system else []) + QUESTION, tokenizer,
                                    system=default)
    assert staged.stop[0] == (template.get("STOP_WORDS") or [tokenizer.eos_token])[0]


@pytest.mark.parametrize("name", CASES)
def test_modelfile_has_template_stops_and_system(name):
    template, default = CASES[name]
    stop = templates.stop_words(template, "</s>")
    text = llamacpp.modelfile("model-Q4_K_M.gguf", template, bos_token="<s>", eos_token="</s>",
                              stop=stop, system="You are a careful math tutor.")
    assert text.startswith("FROM ./model-Q4_K_M.gguf\n")
    assert 'TEMPLATE """{{- $bos := false }}' in text
    for s in stop:
        assert f'PARAMETER stop "{s}"' in text
    assert 'SYSTEM """You are a careful math tutor."""' in text
