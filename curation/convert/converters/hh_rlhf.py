"""Anthropic/hh-rlhf: SFT on the `chosen` transcript ("\\n\\nHuman: ...\\n\\nAssistant: ..."), or
chosen/rejected pairs for DPO/ORPO (`hh_rlhf_pairs`, read by curation.convert.pairs).

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


class HHRLHFPairConverter(RowConverter):
    """A row -> {"prompt": [messages], "chosen": [reply], "rejected": [reply]}, the pair format of
    XTuner's build_preference_dataset (OpenAI-style {"role", "content"} messages).

    Both transcripts share the dialogue up to their last Assistant turn, which is the pair's two
    replies. The prompt is repaired by the same rules as the SFT conversion (pair_turns)."""

    def conversation(self, row, fix):
        chosen, rejected = (self._turns(row, key) for key in ("chosen", "rejected"))
        prompt_turns = chosen[:-1]
        if [(r, t.strip()) for r, t in rejected[:-1]] != [(r, t.strip()) for r, t in prompt_turns]:
            raise Skip("prompt_mismatch", "chosen and rejected differ before their last reply")
        replies = [turns[-1][1].strip() for turns in (chosen, rejected)]
        if replies[0] == replies[1]:
            raise Skip("identical_replies")
        conversation = pair_turns([*prompt_turns, (ASSISTANT, replies[0])], fix)
        messages = []
        for turn in conversation:
            if turn.get("system"):
                messages.append({"role": "system", "content": turn["system"]})
            messages += [{"role": USER, "content": turn["input"]},
                         {"role": ASSISTANT, "content": turn["output"]}]
        return {"prompt": messages[:-1], "chosen": [messages[-1]],
                "rejected": [{"role": ASSISTANT, "content": replies[1]}]}

    @staticmethod
    def _turns(row, key):
        transcript = row.get(key)
        if transcript is None:
            raise Skip(f"missing_field:{key}")
        if not isinstance(transcript, str):
            raise Skip(f"wrong_type:{key}", type(transcript).__name__)
        turns = transcript_turns(transcript)
        if turns[-1][0] != ASSISTANT:
            raise Skip(f"no_final_reply:{key}", "the transcript ends with a Human turn")
        if not turns[-1][1].strip():
            raise Skip(f"empty_reply:{key}")
        return turns


PAIRS = Source(
    name="hh_rlhf_pairs",
    converter=HHRLHFPairConverter,
    hub_id=SOURCE.hub_id,
    splits=SOURCE.splits,
    licence=SOURCE.licence,
    rows=SOURCE.rows,
    rules="`chosen` and `rejected` split into turns; the shared dialogue before their last "
    "Assistant turn is the prompt, the two last turns the chosen and rejected replies; pairs "
    "whose dialogues differ before the replies, or whose replies are equal or empty, skipped",
    notes="what the data was collected for (preference learning); contains offensive content "
    "by design",
)
