"""Shared by the converter, loader and prepare tests: fixture paths, a tiny tokenizer, and
XTuner's real dataset pipeline on a converted dataset."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

#: the fixture of each dataset, written in its public schema and file format
FIXTURE = {
    "alpaca": FIXTURES / "alpaca.json",
    "ultrachat": FIXTURES / "ultrachat.jsonl",
    "sharegpt": FIXTURES / "sharegpt.json",
    "orca_math": FIXTURES / "orca_math.jsonl",
    "gsm8k": FIXTURES / "gsm8k.jsonl",
    "math": FIXTURES / "math.jsonl",
    "personachat": FIXTURES / "personachat.jsonl",
    "blended_skill_talk": FIXTURES / "blended_skill_talk.jsonl",
    "hh_rlhf": FIXTURES / "hh_rlhf.jsonl",
    "oasst1": FIXTURES / "oasst1.jsonl",
    "guanaco": FIXTURES / "guanaco.jsonl",
    "empathetic_dialogues": FIXTURES / "empathetic_dialogues.csv",
}

#: the chat template of each model the lead's configs train, and the datasets it is used with
TEMPLATE_DATASETS = {
    "internlm2_chat": ("gsm8k", "orca_math", "math"),  # InternLM2-math-plus-7B
    "qwen_chat": ("alpaca", "ultrachat", "sharegpt", "orca_math"),  # Qwen2.5-7B-Instruct
    "llama2_chat": ("alpaca", "oasst1", "personachat", "hh_rlhf"),  # Llama-2-7b-chat
    "llama3_chat": ("alpaca", "blended_skill_talk", "empathetic_dialogues", "gsm8k"),  # 3.2-3B
    "default": ("guanaco",),  # InternLM-7B base
}
PAIRS = [(d, t) for t, datasets in TEMPLATE_DATASETS.items() for d in datasets]


@pytest.fixture(autouse=True, scope="session")
def private_datasets_cache(tmp_path_factory):
    """load_conversations (and load_dataset) write Arrow files to the datasets cache: keep the
    tests out of the user's. Session-scoped so module-scoped fixtures see it too; import it into
    a test module to make it apply there."""
    from datasets import config

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf_datasets")))
        yield


@lru_cache(maxsize=1)
def tokenizer():
    """The pack's tiny byte-level BPE (with the templates' special tokens), trained on the
    fixtures' own text."""
    from components.tiny import build_tokenizer

    corpus = [line for path in FIXTURE.values() for line in path.read_text().splitlines()]
    return build_tokenizer(corpus)


def decode(ids) -> str:
    return tokenizer().decode(list(ids), clean_up_tokenization_spaces=False)


def xtuner_process(dataset, template_name: str, max_length: int = 4096, pack: bool = False):
    """XTuner's real process_hf_dataset, as the configs call it (dataset_map_fn=None)."""
    from xtuner.dataset import process_hf_dataset
    from xtuner.dataset.map_fns import template_map_fn_factory
    from xtuner.utils import PROMPT_TEMPLATE

    return process_hf_dataset(
        dataset=dataset,
        tokenizer=tokenizer(),
        max_length=max_length,
        dataset_map_fn=None,
        template_map_fn=template_map_fn_factory(PROMPT_TEMPLATE[template_name]),
        remove_unused_columns=False,  # keeps `conversation` beside the tokens (packing drops it)
        shuffle_before_pack=False,
        pack_to_max_length=pack,
        map_num_proc=1,
    )


def loss_runs(ids, labels) -> list[list[int]]:
    """The maximal runs of tokens that carry loss (label != -100)."""
    runs, current = [], []
    for token, label in zip(ids, labels, strict=True):
        if label != -100:
            assert label == token, "a label differs from its input token"
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs
