"""numbers_overlap: the same numbers and a lexical gate, prompt against test item."""

from __future__ import annotations

import math

import numpy as np

from ..testindex import TestItems
from ..tokens import Tokens, ngram_hashes, sorted_unique
from .base import KeyIndex, Match, TrainRows, distinct_df, idf, masked


class NumbersOverlap:
    """The same multiset of numbers (at least `min_numbers`; those in under 5 % of the test
    items must have IDFs adding up to `number_weight` times that of a number of one item only)
    AND a TF-IDF cosine of words and word pairs (numbers masked) >= `similarity`, prompt
    against test item. InternLM-Math's "exact number match", made precise: numbers alone
    collide between distinct short problems, and MATH's small numbers (1 to 6) collide always;
    the lexical gate removes most other collisions and keeps rephrasings, which change words
    but keep numbers. The multisets compared are those of all numbers (digits and number
    words) or, failing that, those of the numbers written in digits: rephrasings add and drop
    words such as "two" ("their two ages") and "one" freely."""

    name = "numbers_overlap"
    METHODS = ("numbers_overlap",)
    needs: set = set()

    def __init__(self, items: TestItems, min_numbers=2, similarity=0.4, number_weight=0.5):
        self.items = items
        self.min_numbers = min_numbers
        self.similarity = similarity
        self.number_weight = number_weight
        tokens = items.tokens
        # number_weight is in units of the IDF of a number found in one item only
        top = float(idf(np.ones(1), len(items))[0])
        specific = self.number_weights(tokens, len(items)) >= number_weight * top
        self.indexes = []
        for digits_only in (False, True):
            keys, counts = tokens.number_keys(digits_only=digits_only)
            ok = np.flatnonzero((counts >= min_numbers) & specific)
            self.indexes.append((digits_only, KeyIndex(keys[ok], ok)))
        terms, owner = self._terms(tokens.hashes, tokens.is_num, tokens.seg)
        self.term_keys, df = distinct_df(terms, owner)
        self.term_idf = idf(df, len(items))
        self.unseen_idf = math.log(len(items) + 1) + 1.0
        self._items: dict[int, tuple] = {}

    @staticmethod
    def number_weights(tokens: Tokens, n_items: int) -> np.ndarray:
        """Per item: the IDF (over the test items) of its distinct numbers, summed, leaving out
        numbers in 5 % of the items or more. MATH's 1, 2, 3 and 4 are in a third of its problems
        each, so "(x+6)/sqrt(x^2-3x-4)" and "(x+3)(2x-4)(x-6)" share their numbers and say
        nothing by it; 1200 and 16 do."""
        h, seg = tokens.hashes[tokens.is_num], tokens.seg[tokens.is_num]
        keys, df = distinct_df(h, seg)
        df = df[np.searchsorted(keys, h)]
        weight = np.where(df < max(2, n_items // 20), idf(df, n_items), 0.0)  # not in 5 %
        order = np.lexsort((h, seg))
        first = np.ones(len(h), dtype=bool)
        first[1:] = (h[order][1:] != h[order][:-1]) | (seg[order][1:] != seg[order][:-1])
        once = order[first]  # each (item, number) once
        return np.bincount(seg[once], weights=weight[once], minlength=n_items)

    @staticmethod
    def _terms(hashes, is_num, seg):
        """Words (not numbers) and adjacent pairs with numbers masked, as hashes."""
        pairs, pair_seg, first = ngram_hashes(masked(hashes, is_num), seg, 2)
        both_numbers = is_num[first] & is_num[first + 1]
        words = ~is_num
        return (np.concatenate([hashes[words], pairs[~both_numbers]]),
                np.concatenate([seg[words], pair_seg[~both_numbers]]))

    def _vector(self, hashes, is_num):
        terms, _ = self._terms(hashes, is_num, np.zeros(len(hashes), dtype=np.int64))
        keys, counts = sorted_unique(terms, return_counts=True)
        weights = np.full(len(keys), self.unseen_idf)
        if len(self.term_keys):
            pos = np.searchsorted(self.term_keys, keys)
            pos[pos == len(self.term_keys)] = 0
            known = self.term_keys[pos] == keys
            weights[known] = self.term_idf[pos[known]]
        weights *= counts
        return keys, weights, float(np.sqrt((weights * weights).sum())) or 1.0

    def _numbers(self, tokens: Tokens, part: slice) -> tuple[np.ndarray, np.ndarray]:
        """Sorted hashes of (all numbers, numbers in digits) of a token range."""
        h = tokens.hashes[part]
        return np.sort(h[tokens.is_num[part]]), np.sort(h[tokens.is_digits[part]])

    def _item(self, i: int):
        if i not in self._items:
            s = self.items.tokens.slice(i)
            h, num = self.items.tokens.hashes[s], self.items.tokens.is_num[s]
            self._items[i] = (self._numbers(self.items.tokens, s), self._vector(h, num))
        return self._items[i]

    def candidates(self, rows: TrainRows) -> dict[int, set[int]]:
        cands: dict[int, set[int]] = {}
        for digits_only, index in self.indexes:
            keys, counts = rows.tokens.number_keys(rows.prompt_mask, digits_only=digits_only)
            segs = np.flatnonzero(rows.prompt_mask & (counts >= self.min_numbers))
            index.add_candidates(cands, segs, keys[segs])
        return cands

    def same_numbers(self, mine, theirs) -> bool:
        return any(len(a) >= self.min_numbers and np.array_equal(a, b)
                   for a, b in zip(mine, theirs, strict=True))

    def verify(self, rows: TrainRows, r: int, items: set[int]) -> list[Match]:
        hashes, is_num, _ = rows.row_tokens(r, prompt_only=True)
        numbers = self._numbers(rows.tokens, rows.tokens.slice(r))
        keys, weights, norm = self._vector(hashes, is_num)
        matches = []
        for i in sorted(items):
            item_numbers, (ikeys, iweights, inorm) = self._item(i)
            if not self.same_numbers(numbers, item_numbers):
                continue  # the multiset key collided
            _, a, b = np.intersect1d(keys, ikeys, assume_unique=True, return_indices=True)
            score = float((weights[a] * iweights[b]).sum() / (norm * inorm))
            if score >= self.similarity:
                matches.append(Match(i, self.name, round(score, 4), self.items.items[i].text))
        return matches


