"""ParlAI/blended_skill_talk: a "free" and a "guided" crowd worker, seeded with two utterances.

The model plays the guided worker (as ParlAI's BlendedSkillTalk teacher does): its persona, the
topic (`additional_context`, for Wizard-of-Wikipedia seeds) and the two seed utterances (taken from
another dataset, not written by either worker) form the system text; then free_messages[i] ->
guided_messages[i] are the turns.
"""

from __future__ import annotations

from ._base import ASSISTANT, USER, RowConverter, Skip, Source, pair_turns, text_list


def system_text(personas: list[str], topic: str, previous: list[str]) -> str:
    parts = ["Your persona:\n" + "\n".join(p for p in personas if p)]
    if topic:
        parts.append(f"Topic: {topic}")
    if len(previous) == 2 and all(previous):
        parts.append(f"The conversation so far:\nThem: {previous[0]}\nYou: {previous[1]}")
    return "\n\n".join(parts)


class BlendedSkillTalkConverter(RowConverter):
    def conversation(self, row, fix):
        personas = text_list(row, "personas")
        previous = text_list(row, "previous_utterance", allow_empty=True)
        free = text_list(row, "free_messages")
        guided = text_list(row, "guided_messages")
        topic = row.get("additional_context") or ""
        if not isinstance(topic, str):
            raise Skip("wrong_type:additional_context", type(topic).__name__)
        turns = []
        for i in range(max(len(free), len(guided))):
            if i < len(free):
                turns.append((USER, free[i]))
            if i < len(guided):
                turns.append((ASSISTANT, guided[i]))
        return pair_turns(turns, fix, system=system_text(personas, topic.strip(), previous))


SOURCE = Source(
    name="blended_skill_talk",
    converter=BlendedSkillTalkConverter,
    hub_id="ParlAI/blended_skill_talk",
    splits=("train", "validation", "test"),
    licence="unknown on the HF card; ParlAI's task page says CC BY 4.0",
    rows="train 4,819; validation 1,009; test 980",
    rules="personas + additional_context + the two previous_utterance seeds -> system; "
    "free_messages[i] -> input, guided_messages[i] -> output (the model is the guided worker)",
    notes="the hub id of the old canonical `blended_skill_talk`; suggestions and "
    "label_candidates are not used",
)
