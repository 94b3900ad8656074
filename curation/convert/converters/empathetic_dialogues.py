"""facebook/empathetic_dialogues: utterance rows -> one conversation per `conv_id`.

Rows are ordered by `utterance_idx` within a conversation. The speaker who lived the situation
opens the dialogue (user); the listener, whose replies are the empathetic ones, is the model.
Speakers are told apart by `speaker_idx` (by position when it is absent). The release writes
commas as "_comma_"; they are restored. The situation (`prompt`) and the emotion (`context`) are
known only to the speaker, so they are not given to the model.
"""

from __future__ import annotations

from collections import defaultdict

from ._base import ASSISTANT, USER, Converter, Skip, Source, integer, pair_turns, text

COMMA = "_comma_"


class EmpatheticDialoguesConverter(Converter):
    def __init__(self, **options):
        super().__init__(**options)
        self.dialogues: dict[str, list] = defaultdict(list)

    def feed(self, record, stats):
        row = record.data
        conv_id = text(row, "conv_id")
        index = integer(row, "utterance_idx")
        speaker = integer(row, "speaker_idx") if row.get("speaker_idx") not in (None, "") else None
        utterance = text(row, "utterance").replace(COMMA, ",")
        self.dialogues[conv_id].append((index, speaker, utterance, record.where))
        return ()

    def finish(self, stats):
        for utterances in self.dialogues.values():
            utterances.sort(key=lambda u: u[0])
            first_speaker = utterances[0][1]
            turns = []
            for position, (_, speaker, utterance, _) in enumerate(utterances):
                opener = position % 2 == 0 if speaker is None else speaker == first_speaker
                turns.append((USER if opener else ASSISTANT, utterance))
            try:
                yield pair_turns(turns, stats.fix)
            except Skip as skip:
                stats.skip(skip.reason, utterances[0][3], skip.detail)


SOURCE = Source(
    name="empathetic_dialogues",
    converter=EmpatheticDialoguesConverter,
    hub_id="facebook/empathetic_dialogues",
    # The repo holds a loading script (refused by datasets>=4); this is the Hub's Parquet export.
    hub_revision="refs/convert/parquet",
    hub_data_files="default/{split}/*.parquet",
    splits=("train", "validation", "test"),
    licence="CC BY-NC 4.0",
    rows="train 76,673; validation 12,030; test 10,943 utterance rows (~25k dialogues)",
    rules="rows grouped by conv_id, ordered by utterance_idx; the opening speaker -> input, "
    "the listener -> output; '_comma_' -> ','",
    notes="non-commercial licence; the emotion label and situation prompt are not used",
    local_globs={"validation": ("valid.csv", "valid.csv.gz")},
)
