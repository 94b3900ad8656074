"""microsoft/orca-math-word-problems-200k: question / answer -> one turn."""

from __future__ import annotations

from ._base import RowConverter, Source, text


class OrcaMathConverter(RowConverter):
    def conversation(self, row, fix):
        return [{"input": text(row, "question"), "output": text(row, "answer")}]


SOURCE = Source(
    name="orca_math",
    converter=OrcaMathConverter,
    hub_id="microsoft/orca-math-word-problems-200k",
    licence="MIT",
    rows="train 200,035",
    rules="question -> input, answer -> output",
    notes="answers written by GPT-4 Turbo; free-form prose, no '####' final-answer line",
)
