"""The text of a row in any of the pack's formats, split into the prompt (the question side,
which is what a test item is compared with) and the rest (answers, system prompts, later turns).

Formats, by the fields that identify them:
    conversation      XTuner: {"conversation": [{"system", "input", "output"}, ...]}
    instruction       alpaca: {"instruction", "input", "output"}
    question          GSM8K, orca-math, ...: {"question", "answer"}
    problem           MATH, ...: {"problem", "solution"}
    text              plain text: {"text"} (also what alpaca rows carry as a rendered prompt);
                      its first line is taken as the prompt, the rest as the rest
A row with fields of two formats other than `text` is ambiguous; `--field NAME` settles it (and
reads formats not listed here) by taking row[NAME] as the whole text.
"""

from __future__ import annotations

# format key -> (prompt fields, rest fields)
FORMATS = {
    "conversation": None,  # handled by _conversation
    "instruction": (("instruction", "input"), ("output",)),
    "question": (("question",), ("answer",)),
    "problem": (("problem",), ("solution", "answer")),
}


class RowError(ValueError):
    """A row that has no text this tool can read; the message is the report's reason."""


def row_text(row: object, field: str | None = None) -> tuple[str, str]:
    """(prompt, rest) of one parsed JSONL row."""
    if not isinstance(row, dict):
        raise RowError(f"row is a JSON {type(row).__name__}, not an object")
    if field is not None:
        if field not in row:
            raise RowError(f"no field {field!r}")
        return _string(row, field), ""
    found = [key for key in FORMATS if key in row]
    if len(found) > 1:
        raise RowError(f"ambiguous: has fields {', '.join(found)}; pass --field NAME")
    if found == ["conversation"]:
        return _conversation(row["conversation"])
    if found:
        prompt_fields, rest_fields = FORMATS[found[0]]
        prompt = "\n".join(_string(row, k) for k in prompt_fields if k in row and row[k])
        rest = "\n".join(_string(row, k) for k in rest_fields if k in row and row[k])
        return prompt, rest
    if "text" in row:  # "Question...\nAnswer..." is the common shape: the first line asks
        head, _, tail = _string(row, "text").strip().partition("\n")
        return head, tail
    keys = ", ".join(sorted(map(str, row))) or "none"
    raise RowError(f"no text field of a known format (fields: {keys}); pass --field NAME")


def _string(row: dict, key: str) -> str:
    value = row[key]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowError(f"field {key!r} is a JSON {type(value).__name__}, not a string")
    return value


def _conversation(turns: object) -> tuple[str, str]:
    if not isinstance(turns, list) or not turns:
        raise RowError("'conversation' is not a non-empty list of turns")
    if len(turns) == 1 and isinstance(turns[0], dict):  # the common case, without the loop
        turn = turns[0]
        prompt, system, output = turn.get("input"), turn.get("system"), turn.get("output")
        if (isinstance(prompt, str) and prompt and isinstance(system, (str, type(None)))
                and isinstance(output, (str, type(None)))):
            return prompt, f"{system}\n{output}" if system and output else system or output or ""
    parts: list[tuple[str, str]] = []  # (field, text) in reading order
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RowError(f"conversation turn {i + 1} is not an object")
        for key in ("system", "input", "output"):
            value = turn.get(key)
            if value is not None and not isinstance(value, str):
                raise RowError(f"conversation turn {i + 1}: {key!r} is not a string")
            parts.append((key, value or ""))
    # The prompt is the first user input; XTuner's pretraining rows have outputs only, and
    # then the first text stands in for it.
    first = next((i for i, (k, t) in enumerate(parts) if k == "input" and t), None)
    if first is None:
        first = next((i for i, (_, t) in enumerate(parts) if t), None)
    if first is None:
        return "", ""
    return parts[first][1], "\n".join(t for i, (_, t) in enumerate(parts) if t and i != first)


def batch_texts(batch, field: str | None = None):
    """Prompts and rests of a jsonl.LineBatch; a rejected row gets empty texts and a reason
    (by line index in the batch)."""
    prompts, rests, reasons = [], [], {}
    for i, (row, error) in enumerate(zip(batch.rows, batch.errors, strict=True)):
        prompt = rest = ""
        if error is None:
            try:
                prompt, rest = row_text(row, field)
            except RowError as e:
                error = str(e)
        if error is not None:
            reasons[i] = error
        prompts.append(prompt)
        rests.append(rest)
    return prompts, rests, reasons
