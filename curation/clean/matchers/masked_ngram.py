"""masked_ngram10: n-grams with every number masked (strict policy)."""

from __future__ import annotations

from ..testindex import TestItems
from .ngram import NgramContainment


class MaskedNgram(NgramContainment):
    """NgramContainment with every number replaced by one symbol: the same problem with new
    numbers (GSM-Symbolic-style variants) matches. Strict policy only: it also removes problems
    that share a whole template with a test item, which some recipes keep on purpose."""

    name = "masked_ngram"
    METHODS = ("masked_ngram10",)
    mask_numbers = True

    def __init__(self, items: TestItems, ns=(10,), coverage=0.5, template_df=None):
        super().__init__(items, ns=ns, coverage=coverage, template_df=template_df,
                         min_short=10**9)


