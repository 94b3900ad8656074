"""openai/gsm8k `main`: question / answer, the answer ending in "#### N".

The reasoning is kept, its calculator annotations ("<<48/2=24>>") are removed, and the "#### N"
line becomes a plain sentence ("The answer is N.") so the model learns to state its result.
"""

from __future__ import annotations

import re

from ._base import RowConverter, Skip, Source, text

CALCULATOR = re.compile(r"<<[^<>]*>>")


class GSM8KConverter(RowConverter):
    OPTIONS = {"answer_format": "The answer is {answer}."}

    def conversation(self, row, fix):
        question = text(row, "question")
        reasoning, marker, final = text(row, "answer").rpartition("####")
        final = final.strip()
        if not marker or not final:
            raise Skip("no_final_answer", "no '#### N' line")
        reasoning = CALCULATOR.sub("", reasoning).strip()
        stated = self.answer_format.format(answer=final)
        return [{"input": question, "output": f"{reasoning}\n{stated}" if reasoning else stated}]


SOURCE = Source(
    name="gsm8k",
    converter=GSM8KConverter,
    hub_id="openai/gsm8k",
    hub_configs=("main",),
    splits=("train", "test"),
    licence="MIT",
    rows="train 7,473; test 1,319",
    rules="question -> input; answer with <<calculator>> annotations removed and "
    "'#### N' replaced by 'The answer is N.' -> output",
    notes="the test split is the benchmark: train on `train` only (and decontaminate)",
)
