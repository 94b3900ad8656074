"""minhash: Jaccard of word 5-gram sets, prompt against test item (MinHash's criterion,
computed exactly)."""

from __future__ import annotations

import numpy as np

from ..testindex import TestItems
from ..tokens import sorted_unique
from .base import KeyIndex, Match, TrainRows, distinct_pairs


class MinHashSimilarity:
    """Jaccard similarity of word 5-gram sets >= `threshold`, prompt against test item, the
    near-duplicate rule of MinHash-LSH pipelines, computed exactly: every item that shares a
    5-gram with the row is counted through an index 5-gram -> items, so no pair is missed
    (an LSH misses some by chance) and there is no sketch index to build in each worker (rensa's
    for GSM8K-test + MATH-test took 0.1-0.18 s a process, more than all the counting). Only rows
    at least `prefilter` of whose 5-grams occur in the test items are counted: Jaccard >= t
    needs a share >= t of the row's distinct 5-grams in the item, so a prefilter below t drops
    no row the rule would flag, short of rows that repeat one 5-gram many times."""

    name = "minhash"
    METHODS = ("minhash",)

    def __init__(self, items: TestItems, n=5, threshold=0.7, prefilter=0.5):
        self.items = items
        self.n = n
        self.threshold = threshold
        self.prefilter = min(prefilter, threshold)
        h, seg, _ = items.tokens.ngrams(n)
        seg, h, _ = distinct_pairs(seg, h)  # each item's distinct 5-grams
        self.index = KeyIndex(h, seg)
        self.sizes = np.bincount(seg, minlength=len(items))
        # a figure problem whose text is short once its [asy] code is dropped ("In the
        # diagram, what is the value of $x$?") is the same text as every other such problem
        lengths = np.diff(items.tokens.seg_bounds)
        self.figure_only = np.array(["[asy]" in it.text for it in items.items], dtype=bool) & (
            lengths < 13)

    @property
    def needs(self) -> set[tuple[int, bool]]:
        return {(self.n, False)}

    def candidates(self, rows: TrainRows) -> dict[int, set[int]]:
        h, seg, _ = rows.grams(self.n)
        prompt = seg < rows.n
        h, seg = h[prompt], seg[prompt]
        hit = self.index.set.contains(h)
        total = np.bincount(seg, minlength=rows.n)[: rows.n]
        found = np.bincount(seg[hit], minlength=rows.n)[: rows.n]
        passed = np.flatnonzero((total > 0) & (found >= self.prefilter * total))
        return {int(r): set() for r in passed}

    def verify(self, rows: TrainRows, cands: dict[int, set[int]]) -> dict[int, list[Match]]:
        """{row: matches} for the candidate rows: the 5-grams each shares with each item,
        counted for all of them at once."""
        r = np.array(sorted(cands), dtype=np.int64)
        if not len(r):
            return {}
        (grams, row_of), = rows.rows_grams(r, [self.n], prompt_only=True).values()
        m = np.int64(len(self.items) + 1)
        row_of, grams, _ = distinct_pairs(row_of, grams)  # each row's distinct 5-grams
        size = np.bincount(row_of)  # distinct 5-grams of each row
        pair_rows, pair_items = self.index.pairs(row_of, grams)
        keys, common = sorted_unique(pair_rows * m + pair_items, return_counts=True)
        rows_k, items_k = keys // m, keys % m
        union = size[rows_k] + self.sizes[items_k] - common
        ok = np.flatnonzero((common >= self.threshold * union * (1 - 1e-9))
                            & ~self.figure_only[items_k])
        out: dict[int, list[Match]] = {}
        for row, i, c, u in zip(rows_k[ok].tolist(), items_k[ok].tolist(),
                                common[ok].tolist(), union[ok].tolist(), strict=True):
            score = c / u  # the exact test, in Python's floats as before
            if score >= self.threshold:
                out.setdefault(row, []).append(
                    Match(i, self.name, round(score, 4), self.items.items[i].text))
        return out
