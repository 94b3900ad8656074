"""bavard/personachat_truecased: one row per utterance -> one conversation per dialogue.

A row holds `personality` (the persona of the speaker the model plays), `history` (the dialogue
so far, alternating speakers) and `candidates` (distractors, the gold reply LAST). Each dialogue
(`conv_id`) appears once per reply of that speaker with a longer history each time, so only the
row with the highest `utterance_idx` is used: its history plus its gold reply is the whole
dialogue. The persona becomes the system text; the gold replies and the persona speaker's earlier
lines are the outputs. The raw release (`personachat_truecased_full_*.json`: records of
`personality` + `utterances`) is read too, one record per dialogue.
"""

from __future__ import annotations

from ._base import (
    ASSISTANT,
    USER,
    Converter,
    Skip,
    Source,
    integer,
    pair_turns,
    text_list,
)

SILENCE = "__ SILENCE __"  # ConvAI2's marker for "the partner has not spoken yet"


def persona_system(personality: list[str]) -> str:
    return "Your persona:\n" + "\n".join(p for p in personality if p)


def dialogue(personality: list[str], history: list[str], gold: str, fix) -> list[dict]:
    """History + gold reply, roles assigned backwards from the reply (the persona speaker)."""
    lines = [*history, gold]
    turns = [
        (ASSISTANT if (len(lines) - 1 - i) % 2 == 0 else USER, "" if line == SILENCE else line)
        for i, line in enumerate(lines)
    ]
    return pair_turns(turns, fix, system=persona_system(personality))


def _utterance(row: dict) -> tuple[list[str], list[str], str]:
    personality = text_list(row, "personality")
    history = text_list(row, "history", allow_empty=True)
    candidates = text_list(row, "candidates")
    if not candidates[-1]:
        raise Skip("empty_text:candidates", "empty gold reply")
    return personality, history, candidates[-1]


class PersonachatConverter(Converter):
    def __init__(self, **options):
        super().__init__(**options)
        self.latest: dict = {}  # conv_id -> (utterance_idx, personality, history, gold, where)

    def feed(self, record, stats):
        row = record.data
        if "utterances" in row:  # raw release: a whole dialogue in one record
            utterances = row["utterances"]
            if not isinstance(utterances, list) or not utterances:
                raise Skip("empty_text:utterances")
            last = utterances[-1]
            if not isinstance(last, dict):
                raise Skip("wrong_type:utterances", "not a list of objects")
            personality, history, gold = _utterance({**last, "personality": row.get("personality")})
            return [dialogue(personality, history, gold, stats.fix)]
        if row.get("conv_id") is None:
            raise Skip("missing_field:conv_id")
        if not isinstance(row["conv_id"], int | str) or isinstance(row["conv_id"], bool):
            raise Skip("wrong_type:conv_id", type(row["conv_id"]).__name__)
        index = integer(row, "utterance_idx")
        personality, history, gold = _utterance(row)
        kept = self.latest.get(row["conv_id"])
        if kept is None or index > kept[0]:
            self.latest[row["conv_id"]] = (index, personality, history, gold, record.where)
        return ()

    def finish(self, stats):
        for _, personality, history, gold, where in self.latest.values():
            try:
                yield dialogue(personality, history, gold, stats.fix)
            except Skip as skip:
                stats.skip(skip.reason, where, skip.detail)


SOURCE = Source(
    name="personachat",
    converter=PersonachatConverter,
    hub_id="bavard/personachat_truecased",
    hub_configs=("full",),
    # The repo's main branch holds a loading script, which datasets>=4 refuses; the Hub's
    # automatic Parquet export of it is on this branch.
    hub_revision="refs/convert/parquet",
    hub_data_files="{config}/{split}/*.parquet",
    splits=("train", "validation"),
    licence="CC BY 4.0",
    rows="full: train ~131k utterance rows (~17.9k dialogues); validation ~7.8k rows",
    rules="rows grouped by conv_id, the row with the highest utterance_idx kept: its history "
    "+ its last candidate (the gold reply) = the dialogue; personality -> system; one sample "
    "per dialogue",
    notes="the other candidates are distractors for a ranking loss and are not used",
    local_globs={
        "train": ("*full_train*.json",),
        "validation": ("*full_valid*.json",),
    },
)
