"""Anthropic/hh-rlhf: SFT on the `chosen` transcript ("\\n\\nHuman: ...\\n\\nAssistant: ...").

The dataset card says the preference data is "not meant for supervised training of dialogue
agents": it was collected to train reward models, and `chosen` is only the better of two
replies, not a good one. It is converted because the notes ask for it; docs/datasets.md says so.
"""

from __future__ import annotations

import re

from ._base import ASSISTANT, USER, RowConverter, Skip, Source, pair_turns

MARKER = re.compile(r"\n\n(Human|Assistant):[ \t]?")


def transcript_turns(transcript: str) -> list[tuple[str, str]]:
    if transcript.startswith(("Human:", "Assistant:")):
        transcript = "\n\n" + transcript
    parts = MARKER.split(transcript)
    if parts[0].strip():
        raise Skip("unparseable", "text before the first '\\n\\nHuman:'")
    if len(parts) < 3:
        raise Skip("unparseable", "no '\\n\\nHuman:' / '\\n\\nAssistant:' turns")
    speakers, said = parts[1::2], parts[2::2]
    roles = [USER if who == "Human" else ASSISTANT for who in speakers]
    return list(zip(roles, said, strict=True))


class HHRLHFConverter(RowConverter):
    def conversation(self, row, fix):
        chosen = row.get("chosen")
        if chosen is None:
            raise Skip("missing_field:chosen")
        if not isinstance(chosen, str):
            raise Skip("wrong_type:chosen", type(chosen).__name__)
        return pair_turns(transcript_turns(chosen), fix)


SOURCE = Source(
    name="hh_rlhf",
    converter=HHRLHFConverter,
    hub_id="Anthropic/hh-rlhf",
    splits=("train", "test"),
    licence="MIT",
    rows="train 160,800; test 8,552 (harmless-base, helpful-base, helpful-online, "
    "helpful-rejection-sampled together)",
    rules="`chosen` split on '\\n\\nHuman:' / '\\n\\nAssistant:' into turns; `rejected` unused",
    notes="its card says the preference data is NOT meant for supervised fine-tuning of "
    "dialogue agents (it is for reward models); red-team-attempts (another schema) is "
    "not included; contains offensive content by design",
)
