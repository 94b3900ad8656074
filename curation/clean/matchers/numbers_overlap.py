"""numbers_overlap: the same numbers and a lexical gate, prompt against test item."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..testindex import TestItems
from ..tokens import Tokens, ngram_hashes
from .base import (
    NEAR,
    KeyIndex,
    Match,
    TrainRows,
    as_pairs,
    distinct_df,
    distinct_pairs,
    idf,
    keyed,
    masked,
    ranges,
)


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

    def candidates(self, rows: TrainRows) -> dict[int, set[int]]:
        cands: dict[int, set[int]] = {}
        for digits_only, index in self.indexes:
            keys, counts = rows.tokens.number_keys(rows.prompt_mask, digits_only=digits_only)
            segs = np.flatnonzero(rows.prompt_mask & (counts >= self.min_numbers))
            index.add_candidates(cands, segs, keys[segs])
        return cands

    def verify(self, rows: TrainRows, cands: dict[int, set[int]]) -> dict[int, list[Match]]:
        """{row: matches} for the candidates {row: items}: the numbers compared and the cosines
        computed for all pairs of a batch at once. A pair near or above the threshold is scored
        again with numpy sums over its own terms in hash order, the cosine of the two vectors
        whatever else is in the batch."""
        r, i = as_pairs(cands)
        rows_t, items_t = rows.tokens, self.items.tokens
        same = np.zeros(len(r), dtype=bool)
        for digits_only in (False, True):
            mine = _sorted_numbers(rows_t, r, digits_only)
            theirs = _sorted_numbers(items_t, i, digits_only)
            same |= _equal_runs(mine, theirs, self.min_numbers)
        r, i = r[same], i[same]  # the others' multiset keys collided
        if not len(r):
            return {}
        mine, theirs = self._vectors(rows_t, r), self._vectors(items_t, i)
        # pair k: item i[k]'s terms (in hash order) looked up among row r[k]'s
        idx, pair = ranges(theirs.starts, theirs.counts)
        wanted = keyed(r[pair], theirs.terms[idx])
        pos = np.searchsorted(mine.keys, wanted)
        pos[pos == len(mine.keys)] = 0
        hit = mine.keys[pos] == wanted
        pair = pair[hit]
        products = theirs.term_weights[idx[hit]] * mine.weights[pos[hit]]
        cosine = np.bincount(pair, weights=products, minlength=len(r)) / (
            mine.norms * theirs.norms)
        bounds = np.searchsorted(pair, np.arange(len(r) + 1))
        out: dict[int, list[Match]] = {}
        for k in np.flatnonzero(cosine >= self.similarity * (1 - NEAR)).tolist():
            dot = products[bounds[k] : bounds[k + 1]].sum()
            score = float(dot / (mine.norm(k) * theirs.norm(k)))
            if score >= self.similarity:
                ii = int(i[k])
                out.setdefault(int(r[k]), []).append(
                    Match(ii, self.name, round(score, 4), self.items.items[ii].text))
        return out

    def _vectors(self, tokens: Tokens, segs: np.ndarray) -> _Vectors:
        """The TF-IDF vectors of some segments (repeats allowed), each computed once."""
        uniq, back = np.unique(segs, return_inverse=True)
        idx, owner = ranges(tokens.seg_bounds[uniq], tokens.seg_bounds[uniq + 1]
                            - tokens.seg_bounds[uniq])
        terms, term_owner = self._terms(tokens.hashes[idx], tokens.is_num[idx], owner)
        term_owner, terms, counts = distinct_pairs(term_owner, terms)  # by segment, term
        weights = np.full(len(terms), self.unseen_idf)
        if len(self.term_keys):
            pos = np.searchsorted(self.term_keys, terms)
            pos[pos == len(self.term_keys)] = 0
            known = self.term_keys[pos] == terms
            weights[known] = self.term_idf[pos[known]]
        weights *= counts
        seg_starts = np.searchsorted(term_owner, np.arange(len(uniq) + 1))
        keys = keyed(uniq[term_owner], terms)
        by_key = np.argsort(keys)
        norms = np.sqrt(np.bincount(term_owner, weights=weights * weights,
                                    minlength=len(uniq)))
        norms[norms == 0] = 1.0
        return _Vectors(keys[by_key], weights[by_key], terms, weights,
                        seg_starts[:-1][back], np.diff(seg_starts)[back], norms[back],
                        seg_starts, back)


class _Vectors(NamedTuple):
    """TF-IDF vectors of segments: sorted keyed(segment, term) for lookups, and per requested
    segment its terms in hash order (flat: starts, counts)."""

    keys: np.ndarray
    weights: np.ndarray  # of keys
    terms: np.ndarray
    term_weights: np.ndarray
    starts: np.ndarray  # per requested segment
    counts: np.ndarray
    norms: np.ndarray  # per requested segment, for the batch cosine
    bounds: np.ndarray  # per distinct segment, into terms
    back: np.ndarray  # requested segment -> distinct segment

    def norm(self, k: int) -> float:
        """The k-th requested segment's norm, summed as numpy sums its own vector."""
        d = self.back[k]
        w = self.term_weights[self.bounds[d] : self.bounds[d + 1]]
        return float(np.sqrt((w * w).sum())) or 1.0


def _sorted_numbers(tokens: Tokens, segs: np.ndarray, digits_only: bool):
    """(per requested segment: its numbers' hashes sorted, flat; start; count)."""
    num = tokens.is_digits if digits_only else tokens.is_num
    idx, owner = ranges(tokens.seg_bounds[segs], tokens.seg_bounds[segs + 1]
                        - tokens.seg_bounds[segs])
    keep = num[idx]
    idx, owner = idx[keep], owner[keep]
    h = tokens.hashes[idx]
    order = np.lexsort((h, owner))
    counts = np.bincount(owner, minlength=len(segs))
    return h[order], np.cumsum(counts) - counts, counts


def _equal_runs(mine, theirs, at_least: int) -> np.ndarray:
    """Per pair k: the k-th runs of `mine` and `theirs` are equal, of at least `at_least`."""
    (a, a_start, a_count), (b, b_start, b_count) = mine, theirs
    ok = (a_count == b_count) & (a_count >= at_least)
    k = np.flatnonzero(ok)
    idx, pair = ranges(a_start[k], a_count[k])
    jdx, _ = ranges(b_start[k], b_count[k])
    differ = np.bincount(pair, weights=a[idx] != b[jdx], minlength=len(k))
    ok[k[differ > 0]] = False
    return ok
