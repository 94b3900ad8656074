"""masked_ngram10: n-grams with every number masked (strict policy)."""

from __future__ import annotations

from ..testindex import TestItems
from .ngram import NgramContainment


class MaskedNgram(NgramContainment):
    """NgramContainment with every number replaced by one symbol: the same problem with new
    numbers (GSM-Symbolic-style variants) matches. A masked number weighs nothing, and a masked
    n-gram counts only with `min_words` words in it: MATH's "What is (20*(2/5)^2*(3/4)^2*5/9)^5?"
    masks to "what is" and ten #, which any row with ten numbers in a row would contain; with
    the gate it has no usable n-gram and is left to the exact methods."""

    name = "masked_ngram"
    METHODS = ("masked_ngram10",)
    mask_numbers = True

    def __init__(self, items: TestItems, ns=(10,), coverage=0.5, template_df=None,
                 min_words=7):
        super().__init__(items, ns=ns, coverage=coverage, template_df=template_df,
                         min_short=10**9, min_words=min_words)


