"""Text normalization shared by every matcher, so that formatting never hides a copy.

Two stages. `normalize_text` works on strings: case, and where needed Unicode NFKC, non-ASCII
punctuation and symbols to spaces, LaTeX markup commands removed (LaTeX delimiters are
punctuation). The rest happens on bytes in curation.clean.tokens: punctuation as separators,
thousands commas dropped (1,234 -> 1234), letter/digit boundaries split (5th -> 5 th).
`canon_token` finishes number formats on single tokens: number words to digits (three -> 3),
trailing fraction zeros (2.50 -> 2.5, 3.0 -> 3), leading zeros (007 -> 7).
"""

from __future__ import annotations

import re
import unicodedata

# LaTeX that only typesets: $...$, \( \) \[ \] are punctuation and go as separators anyway;
# these commands go too, so "\frac{1}{2}" reads "1 2" like "1/2", "\dbinom{10}{3}" like
# "\binom{10}{3}", and "\text{cm}" like "cm".
# \times, \cdot and ^\circ go because their plain forms (x, *, °) are punctuation or symbols.
_LATEX_MARKUP = re.compile(
    r"\\(?:[dtc]?frac|[dt]?binom|text[a-z]*|math[a-z]*|operatorname|displaystyle|left|right|"
    r"[bB]igg?[lr]?|times|cdot|circ|q?quad|[,;:! ]|(?:begin|end)\{[a-zA-Z*]*\})"
)
# Asymptote figure code (MATH draws its diagrams in it): the same preamble of axis and tick
# settings opens hundreds of distinct problems, so it would make them look alike; a figure is
# not the wording of a problem.
_FIGURE = re.compile(r"\[asy\].*?(?:\[/asy\]|$)", re.DOTALL)
_NON_WORD = re.compile(r"[^\w.,]|_")  # keeps . and , for the number rules on bytes

NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
TENS = "thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate(TENS, 3)})
NUMBER_WORDS.update(hundred="100", thousand="1000", million="1000000", billion="1000000000")


def normalize_text(text: str) -> str:
    """String-level normalization (curation.clean.tokens inlines the plain-ASCII case: lower())."""
    if "\\" in text:
        text = _LATEX_MARKUP.sub(" ", text)
    if text.isascii():
        return text.lower()
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower())


def strip_figures(text: str) -> str:
    return _FIGURE.sub(" ", text)


def canon_number(token: str) -> str:
    """'007' -> '7', '2.50' -> '2.5', '3.0' -> '3'; other digit tokens unchanged."""
    whole, dot, frac = token.partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def canon_token(token: str) -> str:
    if token[:1].isdigit():
        return canon_number(token)
    return NUMBER_WORDS.get(token, token)
