"""Final answers: the gold one from a test item, the model's from its reply, and whether they agree.

GSM8K: the number after the answer format the pack trains with (the gsm8k converter's "The
answer is {answer}."), else after GSM8K's own "#### ", else the reply's last number (what
lm-eval's "flexible-extract" does); numbers compare as decimals ("1,000" = "1000.00").
MATH: the last \\boxed{} (curation's parser, the one the converter checks with), compared with
math-verify, which knows that \\dfrac{1}{2}, \\frac12 and 0.5 are one answer and drops units and
\\text{}.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .._curation import GSM8KConverter, boxed_answer

NUMBER = re.compile(r"-?[$]?\s*\d[\d,]*(?:\.\d+)?|-?\.\d+")
GSM8K_FORMAT = GSM8KConverter.OPTIONS["answer_format"]  # "The answer is {answer}."
_CUE = GSM8K_FORMAT.split("{answer}")[0].strip()  # "The answer is"


def _number(text: str) -> str | None:
    """`text`'s number without "$", "," and trailing zeros: "$1,200.50" -> "1200.5"."""
    cleaned = text.replace("$", "").replace(",", "").replace(" ", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if value == value.to_integral():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def _first_number(text: str) -> str | None:
    found = NUMBER.search(text)
    return _number(found.group()) if found else None


def gsm8k_extract(reply: str) -> tuple[str | None, str]:
    """(number, how): how is "format" (after "The answer is"), "####", "last number" or "none"."""
    for cue, how in ((_CUE, "format"), ("####", "####")):
        at = reply.lower().rfind(cue.lower())
        if at >= 0:
            value = _first_number(reply[at + len(cue):])
            if value is not None:
                return value, how
    numbers = NUMBER.findall(reply)
    for candidate in reversed(numbers):
        value = _number(candidate)
        if value is not None:
            return value, "last number"
    return None, "none"


def gsm8k_gold(output: str) -> str | None:
    """The gold number of a converted GSM8K item (its output ends with the answer format)."""
    value, how = gsm8k_extract(output)
    return value if how in ("format", "####") else None


def gsm8k_correct(gold: str, extracted: str | None) -> bool:
    return extracted is not None and Decimal(gold) == Decimal(extracted)


def math_extract(reply: str) -> tuple[str | None, str]:
    """(answer, how): the last \\boxed{} content ("boxed"), else what math-verify finds in the
    reply ("math-verify"), else (None, "none")."""
    boxed = boxed_answer(reply)
    if boxed is not None:
        return boxed, "boxed"
    parsed = _parse(reply)
    if parsed:
        return str(parsed[-1]), "math-verify"
    return None, "none"


def math_gold(output: str) -> str | None:
    return boxed_answer(output)


def _parse(text: str):
    from math_verify import parse

    return parse(text, parsing_timeout=5)


def math_correct(gold: str, reply: str) -> bool:
    """math-verify's verdict on the reply against the gold \\boxed{} answer."""
    from math_verify import verify

    gold_parsed = _parse("$\\boxed{" + gold + "}$")
    boxed = boxed_answer(reply)
    pred_parsed = _parse("$\\boxed{" + boxed + "}$" if boxed is not None else reply)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=5))
