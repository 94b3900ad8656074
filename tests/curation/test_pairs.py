"""hh-rlhf as preference pairs (curation.convert.pairs): the public schema in, XTuner's pair
format out, every unusable row counted by reason."""

import json

import pytest

from curation.convert.load import SourceError, open_conversion
from curation.convert.pairs import PAIR_SOURCES, load_pairs
from tests.helpers import REPO

FIXTURE = REPO / "tests" / "fixtures" / "hh_rlhf.jsonl"


def _messages(*turns):
    return [{"role": role, "content": text} for role, text in turns]


def _convert(data_files):
    conversion = open_conversion(PAIR_SOURCES["hh_rlhf"], None, data_files)
    return list(conversion), conversion.stats


def test_hh_rlhf_rows_become_prompt_chosen_rejected():
    pairs = load_pairs("hh_rlhf", data_files=str(FIXTURE))
    assert len(pairs) == 2
    assert pairs[0]["prompt"][-1] == {"role": "user", "content": "you cant read"}
    assert len(pairs[0]["prompt"]) == 5  # the shared dialogue, alternating, user last
    assert pairs[0]["chosen"] == _messages(("assistant", "You can read?"))
    rejected = "there’s a lot of stuff humans don’t know"
    assert pairs[0]["rejected"] == _messages(("assistant", rejected))
    # two Human turns in a row are merged, as the SFT conversion merges them
    assert pairs[1]["prompt"] == _messages(("user", "Can you recommend a book?\n\nSomething about "
                                                    "space, please."))


def test_unusable_rows_are_skipped_and_counted_by_reason(tmp_path):
    hi = "\n\nHuman: Hi\n\nAssistant: "
    rows = [
        {"chosen": hi + "Hello!", "rejected": "\n\nHuman: Hey\n\nAssistant: Go."},
        {"chosen": hi + "Same.", "rejected": hi + "Same."},
        {"chosen": hi + "Yes.", "rejected": hi},
        {"chosen": hi + "Yes.\n\nHuman: And?", "rejected": "x"},
        {"chosen": hi + "Yes.", "rejected": hi + "No."},
    ]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    pairs, stats = _convert(str(data))
    assert [p["chosen"][0]["content"] for p in pairs] == ["Yes."]
    assert (stats.read, stats.written) == (6, 1)
    for reason, line in [("prompt_mismatch", 1), ("identical_replies", 2),
                         ("empty_reply:rejected", 3), ("no_final_reply:chosen", 4),
                         ("unparseable", 6)]:
        assert stats.skipped[reason] == 1
        assert stats.examples[reason][0].startswith(f"{data}:{line}"), stats.examples[reason]


def test_a_dataset_without_pairs_is_a_clear_error():
    with pytest.raises(SourceError, match="no preference pairs for 'alpaca'; datasets with "
                                          "pairs: hh_rlhf"):
        load_pairs("alpaca")


def test_the_smoke_pairs_convert_without_a_skip():
    pairs, stats = _convert(str(REPO / "configs/smoke/hh_rlhf_pairs_tiny.jsonl"))
    assert len(pairs) == 32 and not stats.skipped and not stats.fixed
