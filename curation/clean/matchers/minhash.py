"""minhash: Jaccard of word 5-gram sets, prompt against test item (rensa's LSH proposes)."""

from __future__ import annotations

import numpy as np
from rensa import RMinHash, RMinHashLSH

from ..shingles import as_tokens, note_rensa
from ..testindex import TestItems
from ..tokens import HashSet
from .base import Match, TrainRows


class MinHashSimilarity:
    """Jaccard similarity of word 5-gram sets >= `threshold`, prompt against test item: MinHash
    LSH (rensa) proposes items, the Jaccard of the two sets decides. Only rows at least
    `prefilter` of whose 5-grams occur in the test items are hashed: Jaccard >= t needs a share
    >= t of the row's distinct 5-grams in the item, so a prefilter below t drops no row MinHash
    would flag, short of rows that repeat one 5-gram many times."""

    name = "minhash"
    METHODS = ("minhash",)

    def __init__(self, items: TestItems, n=5, threshold=0.7, num_perm=128, num_bands=32,
                 prefilter=0.5, seed=42):
        self.items = items
        self.n = n
        self.threshold = threshold
        self.prefilter = min(prefilter, threshold)
        self.num_perm, self.seed = num_perm, seed
        h, seg, _ = items.tokens.ngrams(n)
        self.index = HashSet(h)
        order = np.lexsort((h, seg))
        h, seg = h[order], seg[order]
        first = np.ones(len(h), dtype=bool)
        first[1:] = (h[1:] != h[:-1]) | (seg[1:] != seg[:-1])
        self.sets, seg = h[first], seg[first]  # each item's distinct 5-grams, sorted
        self.bounds = np.searchsorted(seg, np.arange(len(items) + 1))
        self.num_bands = num_bands
        # a figure problem whose text is short once its [asy] code is dropped ("In the
        # diagram, what is the value of $x$?") is the same text as every other such problem
        lengths = np.diff(items.tokens.seg_bounds)
        self.figure_only = np.array(["[asy]" in it.text for it in items.items], dtype=bool) & (
            lengths < 13)
        self._lsh = None

    def __getstate__(self):  # the LSH is rebuilt where it is used (see `lsh`)
        return {**self.__dict__, "_lsh": None}

    @property
    def lsh(self) -> RMinHashLSH:
        """Built on first use, in the process that uses it (workers get this matcher pickled,
        and a rensa LSH does not pickle)."""
        if self._lsh is None:
            note_rensa()
            # 32 bands of 4 rows: a pair at Jaccard 0.7 shares a band with probability 0.9998
            # (16 bands of 8: 0.61); the exact check afterwards removes the extra candidates.
            # (rensa wants a threshold in [0, 1]; above 1 the exact check below rejects all)
            self._lsh = RMinHashLSH(min(self.threshold, 1.0), self.num_perm, self.num_bands)
            with_sets = np.flatnonzero(np.diff(self.bounds) > 0)
            sketches = RMinHash.from_token_sets(
                [as_tokens(self._set(i)) for i in with_sets.tolist()], self.num_perm, self.seed)
            self._lsh.insert_pairs(list(zip(with_sets.tolist(), sketches, strict=True)))
        return self._lsh

    def _set(self, i: int) -> np.ndarray:
        return self.sets[self.bounds[i] : self.bounds[i + 1]]

    @property
    def needs(self) -> set[tuple[int, bool]]:
        return {(self.n, False)}

    def candidates(self, rows: TrainRows) -> dict[int, set[int]]:
        h, seg, _ = rows.grams(self.n)
        prompt = seg < rows.n
        h, seg = h[prompt], seg[prompt]
        hit = self.index.contains(h)
        total = np.bincount(seg, minlength=rows.n)[: rows.n]
        found = np.bincount(seg[hit], minlength=rows.n)[: rows.n]
        passed = np.flatnonzero((total > 0) & (found >= self.prefilter * total))
        return {int(r): set() for r in passed}

    def verify(self, rows: TrainRows, cands: dict[int, set[int]]) -> dict[int, list[Match]]:
        """{row: matches} for the candidate rows: their sketches made in one call, the items
        the LSH proposes for each checked by the exact Jaccard."""
        r = np.array(sorted(cands), dtype=np.int64)
        if not len(r):
            return {}
        (grams, row_of), = rows.rows_grams(r, [self.n], prompt_only=True).values()
        order = np.lexsort((grams, row_of))
        grams, row_of = grams[order], row_of[order]
        first = np.ones(len(grams), dtype=bool)
        first[1:] = (grams[1:] != grams[:-1]) | (row_of[1:] != row_of[:-1])
        grams, row_of = grams[first], row_of[first]
        bounds = np.searchsorted(row_of, np.append(r, r[-1] + 1))
        sets = [grams[a:b] for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(),
                                           strict=True)]
        with_sets = [k for k, shingles in enumerate(sets) if len(shingles)]
        sketches = RMinHash.from_token_sets([as_tokens(sets[k]) for k in with_sets],
                                            self.num_perm, self.seed) if with_sets else []
        out: dict[int, list[Match]] = {}
        lsh = self.lsh
        for k, sketch in zip(with_sets, sketches, strict=True):
            shingles, matches = sets[k], []
            for i in sorted(lsh.query(sketch)):
                if self.figure_only[i]:
                    continue
                other = self._set(i)
                common = len(np.intersect1d(shingles, other, assume_unique=True))
                score = common / (len(shingles) + len(other) - common)
                if score >= self.threshold:
                    matches.append(Match(i, self.name, round(score, 4), self.items.items[i].text))
            if matches:
                out[int(r[k])] = matches
        return out
