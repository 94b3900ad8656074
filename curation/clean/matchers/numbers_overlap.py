"""numbers_overlap: the same numbers and the item's specific words, prompt against test item."""

from __future__ import annotations

import numpy as np

from ..testindex import TestItems
from ..tokens import HashSet, Tokens, sorted_unique
from .base import (
    NEAR,
    KeyIndex,
    Match,
    TrainRows,
    as_pairs,
    content_words,
    distinct_df,
    distinct_pairs,
    idf,
    keyed,
    ranges,
)


class NumbersOverlap:
    """The same multiset of numbers (at least `min_numbers`) AND the item's specific words
    found in the row: prompt against test item. InternLM-Math's "exact number match", made
    precise.

    A rephrasing keeps the numbers and what the problem is about (Janet, ducks, eggs, muffins,
    the farmers' market) and changes the rest of the wording; another problem with the same
    numbers is about other things. So the decision weighs what is specific in the item: its
    content words (not in 5 % of the test items, not one letter, not in a template phrase) and
    its numbers, each by the square of its IDF over the test items, in units of a term found
    in one test item only: a name or a rare object counts for much, "total" or "each" for
    little, and MATH's 2 and 3 for almost nothing. A pair matches when the row's prompt holds
    a share >= `similarity` of the item's content-word weight (the numbers are the same by
    then; the words tell whether the problem is) AND at least `evidence` units of weight,
    words and numbers together (a short item's few words, "probability", "dice", say too
    little). The multisets compared are those of all numbers (digits and number words) or,
    failing that, those of the numbers written in digits: rephrasings add and drop words such
    as "two" ("their two ages") and "one"."""

    name = "numbers_overlap"
    METHODS = ("numbers_overlap",)
    needs: set = set()

    def __init__(self, items: TestItems, min_numbers=2, similarity=0.3, evidence=2.5,
                 template_df=None):
        self.items = items
        self.min_numbers = min_numbers
        self.similarity = similarity
        self.evidence = evidence
        tokens = items.tokens
        _, _, token_df = distinct_df(tokens.hashes, tokens.seg, per_element=True)
        top = float(idf(np.ones(1), len(items))[0])  # a word of one item only
        telling = tokens.is_num | content_words(tokens, token_df, template_df
                                                or max(5, len(items) // 500))
        # each item's distinct telling terms, ordered by item then hash, and their weights
        owner, self.terms, _, at = distinct_pairs(tokens.seg[telling], tokens.hashes[telling],
                                                  index=True)
        self.term_weights = (idf(token_df[telling][at], len(items)) / top) ** 2
        self.is_word = ~HashSet(tokens.hashes[tokens.is_num]).contains(self.terms)
        self.bounds = np.searchsorted(owner, np.arange(len(items) + 1))
        self.totals = np.bincount(owner, weights=self.term_weights, minlength=len(items))
        self.word_totals = np.bincount(owner, weights=self.term_weights * self.is_word,
                                       minlength=len(items))
        # an item that could never reach both thresholds is not indexed
        reachable = (self.totals >= evidence * (1 - NEAR)) & (self.word_totals > 0)
        self.indexes = []
        for digits_only in (False, True):
            keys_n, counts = tokens.number_keys(digits_only=digits_only)
            ok = np.flatnonzero((counts >= min_numbers) & reachable)
            self.indexes.append((digits_only, KeyIndex(keys_n[ok], ok)))

    def candidates(self, rows: TrainRows) -> dict[int, set[int]]:
        cands: dict[int, set[int]] = {}
        for digits_only, index in self.indexes:
            keys, counts = rows.tokens.number_keys(rows.prompt_mask, digits_only=digits_only)
            segs = np.flatnonzero(rows.prompt_mask & (counts >= self.min_numbers))
            index.add_candidates(cands, segs, keys[segs])
        return cands

    def verify(self, rows: TrainRows, cands: dict[int, set[int]]) -> dict[int, list[Match]]:
        """{row: matches} for the candidates {row: items}: the numbers compared and the item
        weight found in the row computed for all pairs of a batch at once. A pair near or above
        the thresholds is summed again over its own terms, so no verdict or score depends on
        what else is in the batch."""
        r, i, words, found, hit, starts = self._weigh(rows, cands)
        near = ((words >= self.similarity * self.word_totals[i] * (1 - NEAR))
                & (found >= self.evidence * (1 - NEAR)))
        out: dict[int, list[Match]] = {}
        for k in np.flatnonzero(near).tolist():  # the pair's own sums, as if alone
            ii = int(i[k])
            lo, hi = self.bounds[ii], self.bounds[ii + 1]
            w, is_word = self.term_weights[lo:hi], self.is_word[lo:hi]
            got = hit[starts[k] : starts[k + 1]]
            share = float(w[got & is_word].sum()) / float(w[is_word].sum())
            if share >= self.similarity and float(w[got].sum()) >= self.evidence:
                out.setdefault(int(r[k]), []).append(
                    Match(ii, self.name, round(share, 4), self.items.items[ii].text))
        return out

    def weigh(self, rows: TrainRows, cands: dict[int, set[int]]):
        """(row, item, share of the content-word weight, weight found) of every candidate pair
        with the same numbers, before any threshold (bench/decon_devset.py sweeps them)."""
        r, i, words, found, _, _ = self._weigh(rows, cands)
        return r, i, words / np.maximum(self.word_totals[i], 1e-300), found

    def _weigh(self, rows: TrainRows, cands: dict[int, set[int]]):
        r, i = as_pairs(cands)
        rows_t, items_t = rows.tokens, self.items.tokens
        same = np.zeros(len(r), dtype=bool)
        for digits_only in (False, True):
            mine = _sorted_numbers(rows_t, r, digits_only)
            theirs = _sorted_numbers(items_t, i, digits_only)
            same |= _equal_runs(mine, theirs, self.min_numbers)
        r, i = r[same], i[same]  # the others' multiset keys collided
        # the rows' prompt tokens, one set keyed by row
        uniq = sorted_unique(r)
        idx, owner = ranges(rows_t.seg_bounds[uniq], rows_t.seg_bounds[uniq + 1]
                            - rows_t.seg_bounds[uniq])
        present = HashSet(keyed(uniq[owner], rows_t.hashes[idx]))  # a bitmap: 25 % faster here
        tidx, pair = ranges(self.bounds[i], self.bounds[i + 1] - self.bounds[i])
        hit = present.contains(keyed(r[pair], self.terms[tidx]))
        weights = self.term_weights[tidx] * hit
        found = np.bincount(pair, weights=weights, minlength=len(r))
        words = np.bincount(pair, weights=weights * self.is_word[tidx], minlength=len(r))
        return r, i, words, found, hit, np.searchsorted(pair, np.arange(len(r) + 1))


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
