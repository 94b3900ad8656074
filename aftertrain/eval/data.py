"""Test items from local files: GSM8K / MATH in their public schema (question/answer,
problem/solution) or as `python -m curation prepare ... --split test` writes them (XTuner
conversations). Both go through curation's converter, so a file is read one way everywhere;
nothing comes from the hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .._curation import DataFileError, Stats, get_source, iter_records
from . import answers

TASKS = {"gsm8k": "gsm8k", "math": "math"}  # task -> curation source


class EvalDataError(ValueError):
    """A test file that gives no usable item; the message names the file (and line)."""


@dataclass
class Item:
    task: str
    where: str  # "path:line"
    question: str
    gold: str  # the final answer
    solution: str  # the reference solution as trained on


def gold_of(task: str, output: str) -> str | None:
    return answers.gsm8k_gold(output) if task == "gsm8k" else answers.math_gold(output)


def load_items(task: str, path, limit: int | None = None) -> tuple[list[Item], Stats]:
    """The first `limit` usable items of `path`; rows that are not are counted in the Stats by
    reason with their file:line (never a traceback), and a file with none raises EvalDataError."""
    if task not in TASKS:
        raise EvalDataError(f"unknown task {task!r}: one of {sorted(TASKS)}")
    path = Path(path)
    converter = get_source(TASKS[task]).converter()
    stats = Stats()
    items: list[Item] = []
    try:
        for record in iter_records(path):
            if limit is not None and len(items) >= limit:
                break
            for conversation in converter.convert([record], stats):
                turn = conversation[0]
                gold = gold_of(task, turn["output"])
                if gold is None:
                    stats.skip("no_final_answer", record.where)
                    continue
                items.append(Item(task, record.where, turn["input"], gold, turn["output"]))
    except DataFileError as exc:
        raise EvalDataError(str(exc)) from None
    except OSError as exc:
        raise EvalDataError(f"{path}: {exc.strerror or exc}") from None
    if not items:
        raise EvalDataError(f"{path}: no {task} test item (problem and final answer)\n"
                            f"{stats.summary()}")
    return items, stats
