"""Every converter's fixture through XTuner's REAL dataset pipeline (process_hf_dataset with
dataset_map_fn=None and the template of each config that trains on it), with a tiny local
tokenizer: loss falls on the outputs only, EOS comes where the template wants it, and
max_length truncates."""

from __future__ import annotations

import pytest

from curation.convert.load import load_conversations
from tests.curation.conv_helpers import (  # noqa: F401 (autouse fixture)
    FIXTURE,
    PAIRS,
    decode,
    loss_runs,
    private_datasets_cache,
    tokenizer,
    xtuner_process,
)


def template(name):
    from xtuner.utils import PROMPT_TEMPLATE

    return PROMPT_TEMPLATE[name]


def rendered(conversation, t, bos: str, eos: str) -> str:
    """What a template asks the model to see: SYSTEM once, INSTRUCTION per turn, the output,
    then SUFFIX (a template whose suffix is its end-of-turn token) or EOS, then SEP; a BOS
    opens the sample and every turn after an EOS."""
    text = bos
    for i, turn in enumerate(conversation):
        if i and not t.get("SUFFIX_AS_EOS", False):
            text += bos
        if turn.get("system"):
            text += t.SYSTEM.format(system=turn["system"])
        text += t.INSTRUCTION.format(input=turn["input"], round=i + 1)
        text += turn["output"] + t.get("SUFFIX", "")
        text += "" if t.get("SUFFIX_AS_EOS", False) else eos
        text += t.get("SEP", "")
    return text


@pytest.fixture(scope="module")
def converted():
    return {name: load_conversations(name, data_files=str(path)) for name, path in FIXTURE.items()}


@pytest.mark.parametrize("source, template_name", PAIRS)
def test_loss_only_on_outputs_and_eos_as_the_template_wants(converted, source, template_name):
    t, tok = template(template_name), tokenizer()
    suffix_is_eos = t.get("SUFFIX_AS_EOS", False)
    end = t.get("SUFFIX", "") + ("" if suffix_is_eos else tok.eos_token)
    dataset = converted[source]
    processed = xtuner_process(dataset, template_name)
    assert len(processed) == len(dataset)  # XTuner keeps every converted sample, in order
    for row, sample in zip(dataset, processed, strict=True):
        conversation = [{k: v for k, v in turn.items() if v is not None}
                        for turn in row["conversation"]]
        ids, labels = sample["input_ids"], sample["labels"]
        # what the model sees is the template around the converted text ...
        assert decode(ids) == rendered(conversation, t, tok.bos_token, tok.eos_token)
        # ... and the loss falls on each output and its end marker, on nothing else
        runs = loss_runs(ids, labels)
        assert [decode(run) for run in runs] == [turn["output"] + end for turn in conversation]
        if suffix_is_eos:  # the template's end-of-turn token closes each reply; no EOS token
            assert tok.eos_token_id not in ids
            assert all(run[-1] == tok.convert_tokens_to_ids(t.SUFFIX) for run in runs)
        else:
            assert all(run[-1] == tok.eos_token_id for run in runs)


def test_llama2_chat_personachat_literal(converted):
    """One sample spelled out: Llama-2's [INST] <<SYS>> layout with the persona as system,
    EOS after each reply, a BOS before each later turn."""
    processed = xtuner_process(converted["personachat"], "llama2_chat")
    ids = processed[1]["input_ids"]
    assert decode(ids) == (
        "<s>[INST] <<SYS>>\n You are a helpful, respectful and honest assistant. Always answer "
        "as helpfully as possible, while being safe. Your answers should not include any "
        "harmful, unethical, racist, sexist, toxic, dangerous, or illegal content. Please "
        "ensure that your responses are socially unbiased and positive in nature.\n"
        "Your persona:\nI am a nurse.\nI have two dogs.\n<</SYS>>\n [/INST] "
        "[INST] Hello there, long day? [/INST]"
        "Hello! I just finished a night shift at the hospital.</s>\n"
    )
    assert decode(t for t, lab in zip(ids, processed[1]["labels"], strict=True) if lab != -100) \
        == "Hello! I just finished a night shift at the hospital.</s>"


def test_internlm2_chat_gsm8k_literal(converted):
    processed = xtuner_process(converted["gsm8k"], "internlm2_chat")
    assert decode(processed[1]["input_ids"]) == (
        "<s><|im_start|>user\nWeng earns $12 an hour for babysitting. Yesterday, she just did "
        "50 minutes of babysitting. How much did she earn?<|im_end|>\n<|im_start|>assistant\n"
        "Weng earns 12/60 = $0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $10.\n"
        "The answer is 10.<|im_end|>\n"
    )


def first_loss_index(sample) -> int:
    return next(i for i, label in enumerate(sample["labels"]) if label != -100)


@pytest.mark.parametrize("source, template_name", [("sharegpt", "qwen_chat"),
                                                   ("oasst1", "llama2_chat"),
                                                   ("empathetic_dialogues", "llama3_chat")])
def test_truncation_at_max_length(converted, source, template_name):
    full = xtuner_process(converted[source], template_name)
    cut_at = first_loss_index(full[0]) + 5  # five tokens into the first sample's first reply
    short = xtuner_process(converted[source], template_name, max_length=cut_at)
    by_conversation = {repr(s["conversation"]): s for s in full}
    assert repr(short[0]["conversation"]) == repr(full[0]["conversation"])
    for cut in short:
        whole = by_conversation.pop(repr(cut["conversation"]))
        assert len(cut["input_ids"]) == min(cut_at, len(whole["input_ids"]))
        assert cut["input_ids"] == whole["input_ids"][:cut_at]
        assert cut["labels"] == whole["labels"][:cut_at]
    assert sum(label != -100 for label in short[0]["labels"]) == 5
    # XTuner drops a sample cut before its first output token: nothing would be learned
    for dropped in by_conversation.values():
        assert first_loss_index(dropped) >= cut_at


def test_packed_as_the_configs_do(converted):
    """The configs pack samples into max_length chunks; the converted set packs the same way:
    the chunks are the truncated samples laid end to end."""
    full = xtuner_process(converted["hh_rlhf"], "llama2_chat")
    length = max(first_loss_index(s) for s in full) + 2  # every sample keeps some loss
    stream = [t for s in full for t in s["labels"][:length]]
    packed = xtuner_process(converted["hh_rlhf"], "llama2_chat", max_length=length, pack=True)
    assert len(packed) == len(stream) // length >= 1
    assert [t for s in packed for t in s["labels"]] == stream[: len(packed) * length]
