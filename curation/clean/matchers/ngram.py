"""ngram13 / ngram10 / exact_short: word n-grams of a test item found in a train row."""

from __future__ import annotations

import numpy as np

from ..testindex import TestItems
from ..tokens import ngram_hashes, sorted_unique
from .base import (
    MASK,
    NEAR,
    KeyIndex,
    Match,
    TrainRows,
    add_pairs,
    as_pairs,
    compound,
    content_words,
    distinct_df,
    idf,
    isin_sorted,
    keyed,
    masked,
    ranges,
)


def _covered_text(words: list[str], covered) -> str:
    runs, run = [], []
    for w, c in zip(words, covered, strict=True):
        if c:
            run.append(w)
        elif run:
            runs.append(" ".join(run))
            run = []
    if run:
        runs.append(" ".join(run))
    return " … ".join(runs)


class NgramContainment:
    """Word n-grams of a test item found in a train row (prompt or answer, anywhere).

    Score = the share of the item's words covered by its n-grams found in the row, each word
    weighted by its IDF over the test items; n-grams that occur in `template_df` or more test
    items are templates and cover nothing. A row is flagged at score >= `coverage`: a full copy
    scores 1, a copy with a word or two changed scores near 1, while a distinct problem sharing
    a template phrase ("what is the sum of the ages of ...") covers a few low-weight words.
    Items shorter than the smallest n (and at least `min_short` words) must appear whole
    (method exact_short, DeepSeekMath's rule); with fewer than two content words, not as part
    of a longer run of numbers. Method ngram13 when 13-grams alone reach the
    coverage, else ngram10.
    """

    name = "ngram"
    METHODS = ("exact_short", "ngram13", "ngram10")
    mask_numbers = False

    def __init__(self, items: TestItems, ns=(13, 10), coverage=0.5, template_df=None,
                 min_short=3, min_words=0, specific=0.0):
        self.items = items
        self.ns = sorted(ns, reverse=True)
        self.n_min = min(ns)
        self.coverage = coverage
        self.min_words = min_words
        self.template_df = template_df or max(5, len(items) // 500)
        tokens = items.tokens
        th = self._hashes(tokens.hashes, tokens.is_num)
        _, _, token_df = distinct_df(th, tokens.seg, per_element=True)
        self.weights = idf(token_df, len(items))  # per test token
        if self.mask_numbers:  # a masked number says nothing about which problem this is
            self.weights[tokens.is_num] = 0.0
        content = content_words(tokens, token_df, self.template_df, hashes=th)  # min_words
        content_count = np.bincount(tokens.seg[content], minlength=len(items))
        words_before = np.concatenate(([0], np.cumsum(content)))
        # what tells an item apart: its content words and its rare numbers (in under 5 % of
        # the items). A match must cover `specific` of their weight: rows that share only
        # common numbers and phrases ("1 2 3 4 5 6 7 8 9 10 11", "let x y and z be positive
        # real numbers such that ... find the minimum value of") are other problems
        telling = content | (tokens.is_num & (token_df < max(2, len(items) // 20)))
        self.telling_weights = np.where(telling, self.weights, 0.0)
        self.specific = specific
        self.grams = {}  # n -> (hashes, first token, bounds per item), templates left out
        for n, (h, seg, first) in tokens.ngrams_multi(self.ns, hashes=th).items():
            usable = distinct_df(h, seg, per_element=True)[2] < self.template_df  # templates
            if min_words:  # "# # # # # # # # # #" would match any run of ten numbers
                usable &= words_before[first + n] - words_before[first] >= min_words
            h, seg, first = h[usable], seg[usable], first[usable]
            self.grams[n] = (h, first, np.searchsorted(seg, np.arange(len(items) + 1)))
            if n == self.n_min:
                self.index = KeyIndex(h, seg)
        lengths = items.lengths()
        self.lengths = lengths
        # short items with under 2 content words ("Compute $\dbinom{8}{6}$" is "compute 8 6",
        # and "Compute: $8 + 6(3-8)^2$" contains it): a number they start or end with must
        # not run on into more numbers in the row
        self.loose = (lengths < self.n_min) & (content_count < 2)
        lo = tokens.seg_bounds[:-1]
        self.starts_num = tokens.is_num[np.minimum(lo, max(len(th) - 1, 0))] if len(th) else lo
        self.ends_num = (tokens.is_num[np.maximum(tokens.seg_bounds[1:] - 1, 0)] if len(th)
                         else lo)
        # a figure problem without its figure ("In the diagram, what is the value of $y$?")
        # says nothing on its own
        figure = np.array(["[asy]" in item.text for item in items.items], dtype=bool)
        self.loose_off = self.loose & figure
        self.short: dict[int, KeyIndex] = {}
        self._whole = np.zeros(len(items), dtype=np.uint64)  # a short item's one n-gram: itself
        for length in sorted_unique(lengths[(lengths >= min_short) & (lengths < self.n_min)]):
            h, seg, _ = tokens.ngrams(int(length), hashes=th, segments=lengths == length)
            self.short[int(length)] = KeyIndex(h, seg)
            self._whole[seg] = h
        self._top_weights()  # here, not in each worker on its first batch

    def _hashes(self, hashes: np.ndarray, is_num: np.ndarray) -> np.ndarray:
        return masked(hashes, is_num) if self.mask_numbers else hashes

    def _words(self, i: int) -> list[str]:
        words = self.items.words(i)
        if self.mask_numbers:
            is_num = self.items.tokens.is_num[self.items.tokens.slice(i)]
            words = [MASK if f else w for w, f in zip(words, is_num, strict=True)]
        return words

    @property
    def needs(self) -> set[tuple[int, bool]]:
        return {(n, self.mask_numbers) for n in (self.n_min, *self.short)}

    def _top_weights(self) -> None:
        """Per item, the cumulative sums of its token weights sorted high to low (flat, with
        offsets): c found n-grams cover at most c*n tokens, so at most top[c*n] of the weight."""
        tokens = self.items.tokens
        # the weights sorted high to low within each item: few distinct values, so one int64
        # sort of (item, rank of the value) gives them (a lexsort of the floats took 8x longer)
        values = sorted_unique(self.weights)
        top_rank = np.int64(len(values) - 1) - np.searchsorted(values, self.weights)
        ordered = compound(tokens.seg, top_rank, len(values))
        if ordered is None:
            cum = np.cumsum(self.weights[np.lexsort((-self.weights, tokens.seg))])
        else:
            ordered.sort()
            cum = np.cumsum(values[len(values) - 1 - ordered % max(len(values), 1)])
        start = self.items.tokens.seg_bounds[:-1]
        base = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
        lengths = self.lengths
        self._top_off = start + np.arange(len(lengths))  # each item's run has a leading 0
        top = np.zeros(len(cum) + len(lengths))
        within = np.arange(len(cum)) - np.repeat(start, lengths) + 1
        top[np.repeat(self._top_off, lengths) + within] = cum - np.repeat(base, lengths)
        self._top = top
        self._total = np.bincount(tokens.seg, weights=self.weights, minlength=len(lengths))

    def _bounded(self, i, hashes, is_num, seg, whole, length) -> bool:
        if self.loose_off[i]:
            return False
        grams, _, first = ngram_hashes(hashes, seg, length)
        for pos in first[grams == whole].tolist():
            before, after = pos - 1, pos + length
            if (self.starts_num[i] and before >= 0 and seg[before] == seg[pos]
                    and is_num[before]):
                continue
            if (self.ends_num[i] and after < len(seg) and seg[after] == seg[pos]
                    and is_num[after]):
                continue
            return True
        return False

    def candidates(self, rows: TrainRows) -> dict[int, set[int]]:
        cands: dict[int, set[int]] = {}
        h, seg, _ = rows.grams(self.n_min, self.mask_numbers)
        r, items = self.index.pairs(seg % rows.n, h)
        if len(r):  # (row, item) pairs whose hit count could reach the coverage
            m = np.int64(len(self.lengths) + 1)
            keys, hits = sorted_unique(r.astype(np.int64) * m + items, return_counts=True)
            r, items = keys // m, keys % m
            reach = np.minimum(hits * self.n_min, self.lengths[items])
            best = self._top[self._top_off[items] + reach]
            ok = best >= self.coverage * self._total[items] * (1 - 1e-9)
            add_pairs(cands, r[ok], items[ok])
        for n, index in self.short.items():
            h, seg, _ = rows.grams(n, self.mask_numbers)
            index.add_candidates(cands, seg % rows.n, h)
        return cands

    def verify(self, rows: TrainRows, cands: dict[int, set[int]]) -> dict[int, list[Match]]:
        """{row: matches} for the candidates {row: items}, all pairs of a batch at once."""
        r, i = as_pairs(cands)
        found: list[tuple[int, int, Match]] = []
        short = self.lengths[i] < self.n_min
        if short.any():
            found += self._verify_short(rows, r[short], i[short])
        r, i = r[~short], i[~short]
        grams = rows.rows_grams(sorted_unique(r), self.ns, self.mask_numbers) if len(r) else {}
        for n in self.ns:  # a pair that reaches the coverage with 13-grams is ngram13
            if not len(r):
                break
            matched, matches = self._covered(r, i, n, *grams[n])
            found += matches
            r, i = r[~matched], i[~matched]
        out: dict[int, list[Match]] = {}
        for rr, _, match in sorted(found, key=lambda f: (f[0], f[1])):
            out.setdefault(rr, []).append(match)
        return out

    def _covered(self, r, i, n, row_grams, row_of):
        """(matched, [(row, item, Match)]) for the pairs (r[k], i[k]) whose row covers the
        item's words with n-grams up to the coverage; `row_grams`, `row_of`: the n-grams of
        the rows and whose they are."""
        h, first, bounds = self.grams[n]
        present = sorted_unique(keyed(row_of, row_grams))
        idx, pair = ranges(bounds[i], bounds[i + 1] - bounds[i])
        hit = isin_sorted(keyed(r[pair], h[idx]), present)
        idx, pair = idx[hit], pair[hit]
        lo = self.items.tokens.seg_bounds[i]
        length = self.lengths[i]
        offset = np.cumsum(length) - length  # pair k's words at offset[k] .. offset[k]+length-1
        at = offset[pair] + first[idx] - lo[pair]
        size = int(length.sum()) + n
        # words covered by some found n-gram: +1 where one starts, -1 where it ends
        covered = (np.cumsum(np.bincount(at, minlength=size)
                             - np.bincount(at + n, minlength=size))[: size - n] > 0)
        widx, wpair = ranges(lo, length)
        score = np.bincount(wpair, weights=self.weights[widx] * covered,
                            minlength=len(i)) / np.maximum(self._total[i], 1e-300)
        matched = np.zeros(len(i), dtype=bool)
        matches = []
        for k in np.flatnonzero(score >= self.coverage * (1 - NEAR)).tolist():
            a, b, length_k = int(lo[k]), int(offset[k]), int(length[k])
            cov = covered[b : b + length_k]
            weights = self.weights[a : a + length_k]
            exact = float(weights[cov].sum() / weights.sum())  # the pair's own sums
            telling = self.telling_weights[a : a + length_k]
            if exact >= self.coverage and (telling[cov].sum() >= self.specific * telling.sum()):
                matched[k] = True
                matches.append((int(r[k]), int(i[k]), Match(
                    int(i[k]), f"{self.name}{n}", round(exact, 4),
                    _covered_text(self._words(int(i[k])), cov.tolist()))))
        return matched, matches

    def _verify_short(self, rows: TrainRows, r, i) -> list[tuple[int, int, Match]]:
        """Items shorter than the smallest n: found whole (exact_short)."""
        found = []
        lengths = self.lengths[i]
        for length in sorted_unique(lengths).tolist():
            at = lengths == length
            rr, ii = r[at], i[at]
            loose = self.loose[ii]
            ok = np.zeros(len(rr), dtype=bool)
            if (~loose).any():
                (g, row_of), = rows.rows_grams(sorted_unique(rr[~loose]), [length],
                                               self.mask_numbers).values()
                ok[~loose] = isin_sorted(keyed(rr[~loose], self._whole[ii[~loose]]),
                                         sorted_unique(keyed(row_of, g)))
            for k in np.flatnonzero(loose).tolist():  # rare: checked one by one
                hashes, is_num, seg = rows.row_tokens(int(rr[k]))
                ok[k] = self._bounded(int(ii[k]), self._hashes(hashes, is_num), is_num, seg,
                                      self._whole[ii[k]], length)
            found += [(int(a), int(b), Match(int(b), "exact_short", 1.0,
                                             " ".join(self._words(int(b)))))
                      for a, b in zip(rr[ok], ii[ok], strict=True)]
        return found
