"""Each converter on its fixture: the expected conversations, and every bad record skipped and
counted by reason (with the repairs that kept a record counted too)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from curation.convert.converters import SOURCES, Skip, Stats, get, pair_turns
from curation.convert.converters.hendrycks_math import boxed_answer
from curation.convert.load import open_conversion
from curation.convert.readers import Record
from tests.curation.conv_helpers import (  # noqa: F401 (autouse fixture)
    FIXTURE,
    private_datasets_cache,
)


def convert(name, path=None, **options):
    conversion = open_conversion(name, data_files=str(path or FIXTURE[name]), **options)
    return list(conversion), conversion.stats


def where(stats, reason):
    """Line numbers where `reason` was counted (first few)."""
    return [int(place.split(":")[1].split(" ")[0]) for place in stats.examples[reason]]


def test_every_dataset_of_the_issue_is_registered_with_its_metadata():
    assert set(SOURCES) == {
        "alpaca", "ultrachat", "sharegpt", "orca_math", "gsm8k", "math", "personachat",
        "blended_skill_talk", "hh_rlhf", "oasst1", "guanaco", "empathetic_dialogues",
    }
    for source in SOURCES.values():
        assert "/" in source.hub_id and source.licence and source.rows and source.rules
        assert source.default_split in source.splits
    assert get("math").hub_id == "EleutherAI/hendrycks_math"  # the original was taken down
    assert len(get("math").hub_configs) == 7
    assert get("ultrachat").default_split == "train_sft"
    assert "not meant for supervised" in get("hh_rlhf").notes.replace("NOT", "not")
    with pytest.raises(KeyError, match="known: alpaca"):
        get("alpacca")


def test_alpaca():
    raw = json.loads(FIXTURE["alpaca"].read_text())
    conversations, stats = convert("alpaca")
    assert conversations == [
        [{"input": "Give three tips for staying healthy.", "output": raw[0]["output"].strip()}],
        [{"input": "Create a classification task by clustering the given list of items.\n"
                   "Apples, oranges, bananas, strawberries, pineapples",
          "output": "Class 1: Apples, Oranges\nClass 2: Bananas, Strawberries\n"
                    "Class 3: Pineapples"}],
    ]
    assert stats.skipped == {"nooutput": 1, "missing_field:output": 1,
                             "empty_text:instruction": 1, "wrong_type:output": 1}
    assert (stats.read, stats.written) == (6, 2)
    assert where(stats, "nooutput") == [12]  # the line the record starts on


def test_alpaca_matches_xtuners_alpaca_map_fn_where_the_row_has_an_input():
    from xtuner.dataset.map_fns import alpaca_map_fn

    row = json.loads(FIXTURE["alpaca"].read_text())[1]
    ours = get("alpaca").converter().conversation(row, lambda _: None)
    assert ours == alpaca_map_fn(row)["conversation"]


def test_ultrachat():
    conversations, stats = convert("ultrachat")
    first = json.loads(FIXTURE["ultrachat"].read_text().splitlines()[0])["messages"]
    assert conversations == [
        [{"input": first[0]["content"], "output": first[1]["content"]},
         {"input": first[2]["content"], "output": first[3]["content"]}],
        [{"system": "You are a poet who writes only haiku.",
          "input": "Write a haiku about autumn rain.",
          "output": "Cold rain on red leaves\nthe gutter hums a low song\nlamps wake one by one"}],
    ]
    assert stats.skipped == {"no_exchange": 1, "wrong_role": 1, "missing_field:messages": 1,
                             "unparseable": 1}
    assert where(stats, "unparseable") == [6]
    # the trailing "Thank you!" of the kept record; the skipped record's repairs are not counted
    assert stats.fixed == {"dropped_trailing_user_turn": 1}


def test_sharegpt_repairs_broken_alternation_empty_and_leading_gpt_turns():
    raw = json.loads(FIXTURE["sharegpt"].read_text())
    conversations, stats = convert("sharegpt")
    turns = raw[0]["conversations"]
    assert conversations[0] == [
        {"input": turns[0]["value"], "output": turns[1]["value"]},
        {"input": turns[2]["value"], "output": turns[3]["value"]},
    ]
    assert conversations[1] == [{  # the chunk hRPPgZT_11 starts with a gpt turn: dropped
        "input": "How do I make it stop after ten iterations?",
        "output": "Add a counter: `for i in range(10):` instead of `while True:`.",
    }]
    assert conversations[2] == [{  # human, human, gpt, "" , gpt
        "input": "Translate 'good morning' into French.\n\nAnd into Spanish, please.",
        "output": "French: bonjour. Spanish: buenos días.\n\nAnything else?",
    }]
    assert conversations[3] == [{"system": "You are a terse assistant.",
                                 "input": "What is the capital of Japan?", "output": "Tokyo."}]
    assert len(conversations) == 4
    assert stats.skipped == {"no_exchange": 1, "wrong_role": 1,
                             "missing_field:conversations": 1}
    assert stats.fixed == {"dropped_leading_assistant_turn": 1, "dropped_empty_turn": 1,
                           "merged_consecutive_user_turns": 1,
                           "merged_consecutive_assistant_turns": 1}


def test_orca_math():
    conversations, stats = convert("orca_math")
    assert conversations[0] == [{
        "input": "Jungkook is the 5th place. Find the number of people who crossed the finish "
                 "line faster than Jungkook.",
        "output": "If Jungkook is in 5th place, then 4 people crossed the finish line faster "
                  "than him.",
    }]
    assert len(conversations) == 2
    assert stats.skipped == {"empty_text:answer": 1, "missing_field:question": 1}


def test_gsm8k_keeps_the_reasoning_drops_calculator_annotations_states_the_answer():
    conversations, stats = convert("gsm8k")
    assert conversations[0] == [{
        "input": "Natalia sold clips to 48 of her friends in April, and then she sold half as "
                 "many clips in May. How many clips did Natalia sell altogether in April and "
                 "May?",
        "output": "Natalia sold 48/2 = 24 clips in May.\n"
                  "Natalia sold 48+24 = 72 clips altogether in April and May.\n"
                  "The answer is 72.",
    }]
    assert conversations[1][0]["output"] == (
        "Weng earns 12/60 = $0.2 per minute.\n"
        "Working 50 minutes, she earned 0.2 x 50 = $10.\nThe answer is 10.")
    assert len(conversations) == 2
    assert stats.skipped == {"no_final_answer": 2, "empty_text:question": 1}
    assert where(stats, "no_final_answer") == [3, 5]


def test_gsm8k_answer_format_option():
    conversations, _ = convert("gsm8k", answer_format="#### {answer}")
    assert conversations[0][0]["output"].endswith("April and May.\n#### 72")


def test_math_keeps_the_solution_and_needs_a_boxed_answer():
    rows = [json.loads(line) for line in FIXTURE["math"].read_text().splitlines()]
    conversations, stats = convert("math")
    assert conversations == [
        [{"input": rows[0]["problem"], "output": rows[0]["solution"]}],
        [{"input": rows[1]["problem"], "output": rows[1]["solution"]}],
    ]
    assert stats.skipped == {"no_boxed_answer": 2, "missing_field:problem": 1}


@pytest.mark.parametrize("solution, answer", [
    ("so $x=\\boxed{\\frac{1}{4}}$.", "\\frac{1}{4}"),
    ("first \\boxed{1}, then \\boxed{2}", "2"),
    ("which is $\\boxed 3$.", "3"),
    ("\\fbox{7}", "7"),
    ("$x = \\boxed{2$.", None),
    ("no box at all", None),
])
def test_boxed_answer(solution, answer):
    assert boxed_answer(solution) == answer


def test_personachat_one_sample_per_dialogue_from_its_last_row():
    conversations, stats = convert("personachat")
    persona = ("Your persona:\nI like to ski.\nMy wife does not like me anymore.\n"
               "I have went to Mexico 4 times this year.\nI hate Mexican food.\n"
               "I like to eat cheetos.")
    assert conversations[0] == [
        {"system": persona, "input": "Hi, how are you doing today?",
         "output": "I am doing well, thanks. I just got back from skiing."},
        {"input": "Skiing sounds fun! Where do you like to go?",
         "output": "Mostly Colorado. Have you been?"},
        {"input": "No, but I love Mexico. Do you travel much?",
         "output": "Not really. I went there four times this year, but I hate the food."},
    ]
    # conv 2: its last row has no candidates (skipped); its earlier row is the dialogue
    assert conversations[1] == [{
        "system": "Your persona:\nI am a nurse.\nI have two dogs.",
        "input": "Hello there, long day?",
        "output": "Hello! I just finished a night shift at the hospital.",
    }]
    # conv 1 opens with "__ SILENCE __": the persona speaker's unprompted greeting is dropped
    assert conversations[2] == [{
        "system": "Your persona:\nI am a student.\nI play the guitar.",
        "input": "Cool, what kind of music do you play?",
        "output": "Mostly rock, some blues.",
    }]
    assert len(conversations) == 3  # 8 rows, 4 dialogues, one with no usable row
    assert stats.read == 8
    assert stats.skipped == {"empty_text:candidates": 1, "missing_field:personality": 1}


def test_personachat_raw_release_file():
    path = FIXTURE["personachat"].with_name("personachat_truecased_full_train.json")
    conversations, stats = convert("personachat", path)
    assert conversations == [[
        {"system": "Your persona:\nI have a cat named Tom.\nI work from home.",
         "input": "Hi! What are you up to?",
         "output": "Hi! I am working from home today, with my cat Tom."},
        {"input": "Nice. Does Tom help you work?", "output": "He sleeps on my keyboard, mostly."},
    ]]
    assert stats.skipped == {"empty_text:utterances": 1}


def test_blended_skill_talk_model_is_the_guided_worker():
    rows = [json.loads(line) for line in FIXTURE["blended_skill_talk"].read_text().splitlines()]
    conversations, stats = convert("blended_skill_talk")
    first = conversations[0]
    assert first[0]["system"] == (
        "Your persona:\ni work as an electrician.\ni always sleep 8 hours a day.\n\n"
        "Topic: Electrician\n\n"
        "The conversation so far:\n"
        "Them: That sounds dangerous. Is it worth doing such a dangerous job?\n"
        "You: Wekk it is okay is you are well trained.  There are three levels: Apprentice, "
        "journeyman and Master.")
    assert [(t["input"], t["output"]) for t in first] == [
        (f.strip(), g) for f, g in zip(rows[0]["free_messages"], rows[0]["guided_messages"],
                                       strict=True)]
    assert all("system" not in t for t in first[1:])
    # more free than guided messages: the unanswered last one is dropped; no topic line
    assert conversations[1] == [
        {"system": "Your persona:\ni have three sisters.\ni like to paint landscapes.\n\n"
                   "The conversation so far:\nThem: I just got back from my sister's wedding.\n"
                   "You: Congratulations to her! Was it a big wedding?",
         "input": "Huge, about three hundred guests.",
         "output": "Wow, that is a lot of people to feed!"},
        {"input": "Do you have any siblings?", "output": "Yes, three sisters. We are very close."},
    ]
    assert len(conversations) == 2
    assert stats.skipped == {"missing_field:free_messages": 1, "no_exchange": 1}


def test_hh_rlhf_trains_on_chosen():
    conversations, stats = convert("hh_rlhf")
    assert conversations[0] == [
        {"input": "What kind of noises did dinosaurs make?",
         "output": "Humans and dinosaurs didn’t live at the same time, so it’s really hard to "
                   "say. The best place to find out what noises dinosaurs made would be"},
        {"input": "yes they did",
         "output": "to guess, and that would probably require lots of reading and a certain "
                   "amount of imagination, so we’re not really prepared to do that."},
        {"input": "you cant read", "output": "You can read?"},  # chosen, not rejected
    ]
    assert conversations[1] == [{"input": "Hi there", "output": "Hello! How can I help?"}]
    assert conversations[2] == [{"input": "Can you recommend a book?\n\nSomething about space, "
                                          "please.", "output": 'Try "Cosmos" by Carl Sagan.'}]
    assert stats.skipped == {"unparseable": 1, "missing_field:chosen": 1}
    assert stats.fixed == {"dropped_empty_turn": 1, "dropped_trailing_user_turn": 1,
                           "merged_consecutive_user_turns": 1}


def test_oasst1_rebuilds_threads_along_the_best_ranked_replies():
    conversations, stats = convert("oasst1")
    assert [[(t["input"][:30], t["output"][:30]) for t in c] for c in conversations] == [
        [('Can you write a short introduc', '"Monopsony" refers to a market'),  # rank 0 of 2
         ("Now explain it to a five-year-", "Imagine there is only one shop")],  # rank 0 deleted
        [("Wie spät ist es in Tokio, wenn", "Dann ist es in Tokio 20 Uhr (i")],
    ]
    assert stats.read == 14
    assert stats.skipped == {"deleted": 2, "failed_review": 1, "orphan": 1, "no_reply": 1,
                             "wrong_role": 1, "empty_text:text": 1}
    assert where(stats, "orphan") == [8]  # the reply under the prompt that failed review


def test_oasst1_language_filter():
    conversations, stats = convert("oasst1", lang="de")
    assert len(conversations) == 1 and conversations[0][0]["input"].startswith("Wie spät")
    assert stats.skipped["lang_filtered"] == 2  # both English trees
    conversations, _ = convert("oasst1", lang=["en"])
    assert len(conversations) == 1 and "monopsony" in conversations[0][0]["input"]


def test_guanaco_through_xtuners_oasst1_map_fn():
    conversations, stats = convert("guanaco")
    assert conversations[1] == [
        {"input": "What is the capital of France?", "output": "The capital of France is Paris."},
        {"input": "And of Italy?", "output": "Rome is the capital of Italy."},
    ]
    assert conversations[2] == [{"input": "Hi", "output": "Hello! How can I help?"}]
    assert len(conversations) == 3
    assert stats.skipped == {"no_exchange": 1, "empty_text:text": 1, "missing_field:text": 1}


def test_empathetic_dialogues_grouped_ordered_and_commas_restored():
    conversations, stats = convert("empathetic_dialogues")
    assert conversations[0] == [
        {"input": "I remember going to see the fireworks with my best friend. It was the first "
                  "time we ever spent time alone together. Although there was a lot of people, "
                  "we felt like the only people in the world.",
         "output": "Was this a friend you were in love with, or just a best friend?"},
        {"input": "This was a best friend. I miss her.", "output": "Where has she gone?"},
    ]
    # rows out of order in the file; the speaker's last line has no reply and is dropped
    assert conversations[1] == [{
        "input": "I heard footsteps in the attic last night, and I live alone.",
        "output": "That sounds scary! Did you check what it was?",
    }]
    assert len(conversations) == 2
    assert stats.skipped == {"unparseable": 1, "empty_text:utterance": 1, "no_exchange": 1}
    assert where(stats, "unparseable") == [9]  # a CSV line with 10 fields


def test_rows_already_in_xtuner_form_pass_through(tmp_path):
    path = tmp_path / "prepared.jsonl"
    path.write_text(
        json.dumps({"conversation": [{"system": "S", "input": "a", "output": "b"},
                                     {"input": "c", "output": "d"}]}) + "\n"
        + json.dumps({"conversation": [{"input": "a", "output": "b", "output_with_loss": False}]})
        + "\n" + json.dumps({"conversation": []}) + "\n")
    conversations, stats = convert("gsm8k", path)
    assert conversations == [[{"system": "S", "input": "a", "output": "b"},
                              {"input": "c", "output": "d"}]]
    assert stats.skipped == {"bad_conversation": 2}


def test_pair_turns_rules():
    fixes = []
    conversation = pair_turns(
        [("assistant", "hi"), ("system", "ignored?"), ("user", "q1"), ("user", " "),
         ("user", "q1b"), ("assistant", "a1"), ("user", "q2")], fixes.append, system="S")
    assert conversation == [{"system": "S\n\nignored?", "input": "q1\n\nq1b", "output": "a1"}]
    assert sorted(fixes) == ["dropped_empty_turn", "dropped_leading_assistant_turn",
                             "dropped_trailing_user_turn", "merged_consecutive_user_turns"]
    with pytest.raises(Skip, match="misplaced_system"):
        pair_turns([("user", "q"), ("assistant", "a"), ("system", "s")], fixes.append)
    with pytest.raises(Skip, match="no_exchange"):
        pair_turns([("user", "q")], fixes.append)


def test_unknown_option_is_refused_before_reading():
    with pytest.raises(TypeError, match="unknown option.*'lang'"):
        open_conversion("alpaca", data_files=str(FIXTURE["alpaca"]), lang="en")


JUNK = [None, "", "  ", "text", 0, 7, 2.5, True, [], ["a", ""], [1, 2], {}, {"role": "user"},
        [{"role": "user", "content": 5}], [{"from": "gpt"}], [None], "\n\nHuman:", "#### ",
        "\\boxed{", [["a"]], {"x": [1]}]
SCHEMA_KEYS = {
    "alpaca": ["instruction", "input", "output"],
    "ultrachat": ["prompt", "prompt_id", "messages"],
    "sharegpt": ["id", "conversations"],
    "orca_math": ["question", "answer"],
    "gsm8k": ["question", "answer"],
    "math": ["problem", "level", "type", "solution"],
    "personachat": ["conv_id", "utterance_idx", "personality", "history", "candidates",
                    "utterances"],
    "blended_skill_talk": ["personas", "additional_context", "previous_utterance",
                           "free_messages", "guided_messages"],
    "hh_rlhf": ["chosen", "rejected"],
    "oasst1": ["message_id", "parent_id", "role", "text", "rank", "lang", "deleted",
               "review_result", "created_date"],
    "guanaco": ["text"],
    "empathetic_dialogues": ["conv_id", "utterance_idx", "speaker_idx", "utterance"],
}


@pytest.mark.parametrize("name", sorted(SCHEMA_KEYS))
def test_malformed_records_are_counted_never_raised(name):
    """3000 records with every field a random junk value (or absent): no exception, and every
    row converter accounts for each record as written or skipped."""
    rng = random.Random(name)
    records = []
    for i in range(3000):
        row = {key: rng.choice(JUNK) for key in SCHEMA_KEYS[name] if rng.random() < 0.9}
        if rng.random() < 0.05:
            row = rng.choice([None, [], "a string", 3])
        records.append(Record(row, f"fuzz:{i}"))
    stats = Stats()
    conversations = list(get(name).converter().convert(records, stats))
    assert stats.read == 3000
    assert stats.written == len(conversations)
    assert not [r for r in stats.skipped if r.startswith("unexpected_error")], stats.examples
    if name not in ("personachat", "oasst1", "empathetic_dialogues"):  # rows -> groups
        assert stats.written + sum(stats.skipped.values()) == 3000
    for conversation in conversations:
        assert conversation and all(isinstance(t["output"], str) and t["output"].strip()
                                    for t in conversation)


def test_docs_table_lists_every_dataset():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "datasets.md").read_text()
    for source in SOURCES.values():
        assert f"| `{source.name}` | " in docs and source.hub_id in docs, source.name
