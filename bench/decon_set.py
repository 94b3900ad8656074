"""Writing the decontamination test data in the public schemas and the pack's formats, and
reading reports back."""

from __future__ import annotations

import json
from pathlib import Path

from bench.decon_items import ITEMS


def public_test_row(item: dict) -> dict:
    """A test item as its benchmark publishes it."""
    if item["kind"] == "gsm8k":
        return {"question": item["test"], "answer": item["answer"]}
    return {"problem": item["test"], "level": "Level 2", "type": "Algebra",
            "solution": item["answer"]}


def write_test_files(directory: Path) -> tuple[Path, Path]:
    gsm, math = directory / "gsm8k_test.jsonl", directory / "math_test.jsonl"
    with open(gsm, "w") as g, open(math, "w") as m:
        for item in ITEMS:
            (g if item["kind"] == "gsm8k" else m).write(json.dumps(public_test_row(item)) + "\n")
    return gsm, math


# A train row in each of the pack's formats, in turn, so every reader is exercised.
def train_row(k: int, text: str) -> dict:
    answer = "Let us compute it step by step. The answer is 42."
    return [
        {"conversation": [{"input": text, "output": answer}]},
        {"question": text, "answer": answer},
        {"problem": text, "solution": answer, "level": "Level 3", "type": "Prealgebra"},
        {"instruction": "Solve the problem.", "input": text, "output": answer},
        {"text": f"{text}\n{answer}"},
        {"conversation": [{"system": "You are a math tutor.", "input": text, "output": answer},
                          {"input": "Thanks!", "output": "You are welcome."}]},
    ][k % 6]


CATEGORIES = ("verbatim", "edit", "rephrase", "new_numbers", "distinct", "hard_negative")


def train_rows() -> list[tuple[str, int, str]]:
    """(category, item index, text) for every train row made from the test items."""
    rows = []
    for k, item in enumerate(ITEMS):
        rows.append(("verbatim", k, item["test"]))
        rows += [("edit", k, text) for text in item["edits"]]
        rows.append(("rephrase", k, item["rephrase"]))
        if item["new_numbers"]:
            rows.append(("new_numbers", k, item["new_numbers"]))
        rows += [("distinct", k, text) for text in item["distinct"]]
        rows += [("hard_negative", k, text) for text in item.get("hard_negatives", ())]
    return rows


def write_train_file(path: Path) -> list[tuple[str, int, str]]:
    rows = train_rows()
    with open(path, "w") as f:
        for n, (_, _, text) in enumerate(rows):
            f.write(json.dumps(train_row(n, text)) + "\n")
    return rows


def read_report(path: Path) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert "summary" in lines[-1], "the report ends with its summary"
    return lines[:-1], lines[-1]["summary"]
