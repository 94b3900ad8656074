"""numbers_overlap: the same numbers and a lexical gate, prompt against test item."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..testindex import TestItems
from ..tokens import Tokens, ngram_hashes, sorted_unique
from .base import (
    NEAR,
    KeyIndex,
    Match,
    TrainRows,
    as_pairs,
    distinct_df,
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

    def verify(self, rows: TrainRows, cands: dict[int, set[int]]) -> dict[int, list[Match]]:
        """{row: matches} for the candidates {row: items}: the numbers compared and the cosines
        computed for all pairs of a batch at once; a pair near or above the threshold is
        scored again on its own (`_score`)."""
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
        # pair k: item i[k]'s terms looked up among row r[k]'s
        idx, pair = ranges(theirs.starts, theirs.counts)
        pos = np.searchsorted(mine.keys, keyed(r[pair], theirs.terms[idx]))
        pos[pos == len(mine.keys)] = 0
        hit = mine.keys[pos] == keyed(r[pair], theirs.terms[idx])
        dot = np.bincount(pair[hit], weights=theirs.term_weights[idx[hit]]
                          * mine.weights[pos[hit]],
                          minlength=len(r))
        cosine = dot / (mine.norms * theirs.norms)
        out: dict[int, list[Match]] = {}
        vectors: dict[int, tuple] = {}
        for k in np.flatnonzero(cosine >= self.similarity * (1 - NEAR)).tolist():
            rr, ii = int(r[k]), int(i[k])
            score = self._score(rows, rr, ii, vectors)
            if score >= self.similarity:
                out.setdefault(rr, []).append(
                    Match(ii, self.name, round(score, 4), self.items.items[ii].text))
        return out

    def _vectors(self, tokens: Tokens, segs: np.ndarray) -> _Vectors:
        """The TF-IDF vectors of some segments (repeats allowed), each once, with per
        requested segment its (start, count) in the flat arrays and its norm."""
        uniq, back = np.unique(segs, return_inverse=True)
        idx, owner = ranges(tokens.seg_bounds[uniq], tokens.seg_bounds[uniq + 1]
                            - tokens.seg_bounds[uniq])
        terms, term_owner = self._terms(tokens.hashes[idx], tokens.is_num[idx], owner)
        key = keyed(uniq[term_owner], terms)
        order = np.argsort(key, kind="stable")
        key, terms, term_owner = key[order], terms[order], term_owner[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(first)
        counts = np.diff(np.append(starts, len(key)))
        key, terms, term_owner = key[starts], terms[starts], term_owner[starts]
        weights = np.full(len(key), self.unseen_idf)
        if len(self.term_keys):
            pos = np.searchsorted(self.term_keys, terms)
            pos[pos == len(self.term_keys)] = 0
            known = self.term_keys[pos] == terms
            weights[known] = self.term_idf[pos[known]]
        weights *= counts
        norms = np.sqrt(np.bincount(term_owner, weights=weights * weights,
                                    minlength=len(uniq)))
        norms[norms == 0] = 1.0
        # per segment, its terms in key order (for lookups: key = keyed(segment, term))
        by_seg = np.lexsort((key, term_owner))
        seg_starts = np.searchsorted(term_owner[by_seg], np.arange(len(uniq)))
        seg_counts = np.bincount(term_owner, minlength=len(uniq))
        return _Vectors(key, weights, terms[by_seg], weights[by_seg], seg_starts[back],
                        seg_counts[back], norms[back])

    def _score(self, rows: TrainRows, r: int, i: int, vectors: dict) -> float:
        """The cosine of one pair, each sum a numpy sum of one vector's terms in key order."""
        if r not in vectors:
            hashes, is_num, _ = rows.row_tokens(r, prompt_only=True)
            vectors[r] = self._vector(hashes, is_num)
        keys, weights, norm = vectors[r]
        _, (ikeys, iweights, inorm) = self._item(i)
        _, a, b = np.intersect1d(keys, ikeys, assume_unique=True, return_indices=True)
        return float((weights[a] * iweights[b]).sum() / (norm * inorm))


class _Vectors(NamedTuple):
    keys: np.ndarray  # keyed(segment, term), sorted: a row's terms for lookups
    weights: np.ndarray  # of keys
    terms: np.ndarray  # per segment (start, count) below: its terms, in key order
    term_weights: np.ndarray
    starts: np.ndarray  # per requested segment
    counts: np.ndarray
    norms: np.ndarray


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
