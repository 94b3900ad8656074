"""timdettmers/openassistant-guanaco: `text` = "### Human: ...### Assistant: ..." threads.

Converted by XTuner's own `oasst1_map_fn` (the one its oasst1 configs use), with the pack's
skip counting around it.
"""

from __future__ import annotations

from ._base import RowConverter, Skip, Source, text


class GuanacoConverter(RowConverter):
    def conversation(self, row, fix):
        from xtuner.dataset.map_fns import oasst1_map_fn  # imports torch: only when used

        conversation = oasst1_map_fn({"text": text(row, "text")})["conversation"]
        if not conversation:
            raise Skip("no_exchange", "no '### Human:' turn answered by '### Assistant:'")
        if not all(turn["input"] and turn["output"] for turn in conversation):
            raise Skip("empty_turn", "a '### Human:' or '### Assistant:' turn with no text")
        return conversation


SOURCE = Source(
    name="guanaco",
    converter=GuanacoConverter,
    hub_id="timdettmers/openassistant-guanaco",
    splits=("train", "test"),
    licence="Apache-2.0",
    rows="train 9,846; test 518",
    rules="text split by XTuner's oasst1_map_fn on '###' into Human/Assistant turns",
    notes="the highest-rated paths of oasst1's trees (all languages); the form XTuner's "
    "oasst1 configs train on",
    local_globs={"train": ("*best_replies_train*",), "test": ("*best_replies_eval*",)},
)
