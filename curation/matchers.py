"""Matchers: each finds the train rows that leak test items one way, and says which items.

A matcher is two steps. `candidates(rows)` runs on a whole batch in numpy and must not miss a
row its rule would flag (collisions of the 64-bit hashes only add candidates). `verify(rows, r,
items)` then applies the rule to one candidate row and its candidate items: the coverage,
cosine or Jaccard it computes is the real one, on sets of 64-bit token and n-gram hashes (two
different n-grams share a hash with probability 2**-64). The decontaminate command composes the
matchers in a list; its order is the order of reporting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rensa import RMinHash, RMinHashLSH

from .testindex import TestItems
from .tokens import U64, HashSet, Tokens, ngram_hashes, sorted_unique

MASK = "#"  # numbers in numbers-masked n-grams, as reports show them
_rensa_threads = False  # whether this process has called rensa, which starts a thread pool


def rensa_started() -> bool:
    return _rensa_threads


def note_rensa() -> None:
    global _rensa_threads
    _rensa_threads = True
_MASK_HASH = U64(0x5BD1E9955BD1E995)


@dataclass
class Match:
    item: int  # index into TestItems.items
    method: str
    score: float
    text: str  # what matched: the covered span of the test item, or the item


class TrainRows:
    """One batch of train rows as token segments: the prompt of row r is segment r, the rest of
    it segment n + r, so an n-gram never spans the two."""

    def __init__(self, prompts: list[str], rests: list[str]):
        self.n = len(prompts)
        self.tokens = Tokens(prompts + rests)
        self.prompt_mask = np.arange(2 * self.n) < self.n
        self._grams: dict[tuple[int, bool], tuple] = {}

    def precompute(self, needs) -> None:
        """n-grams every matcher will ask for, in one rolling pass per token kind."""
        for mask_numbers in (False, True):
            ns = sorted({n for n, m in needs if m == mask_numbers and (n, m) not in self._grams})
            if ns:
                t = self.tokens
                h = masked(t.hashes, t.is_num) if mask_numbers else t.hashes
                for n, grams in t.ngrams_multi(ns, hashes=h).items():
                    self._grams[(n, mask_numbers)] = grams

    def grams(self, n: int, mask_numbers: bool = False):
        """(hashes, segment, first token) of the n-grams of all segments."""
        self.precompute([(n, mask_numbers)])
        return self._grams[(n, mask_numbers)]

    def row_tokens(self, r: int, prompt_only: bool = False):
        """(token hashes, is_num, segment 0/1) of row r: its prompt, then its rest."""
        t = self.tokens
        parts = [t.slice(r)] if prompt_only else [t.slice(r), t.slice(self.n + r)]
        hashes = np.concatenate([t.hashes[p] for p in parts])
        is_num = np.concatenate([t.is_num[p] for p in parts])
        seg = np.concatenate([np.full(p.stop - p.start, k) for k, p in enumerate(parts)])
        return hashes, is_num, seg


def masked(hashes: np.ndarray, is_num: np.ndarray) -> np.ndarray:
    return np.where(is_num, _MASK_HASH, hashes)


def distinct_df(keys: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and, for each, how many distinct owners have it. `owner` must be
    ascending (segment order), so one stable sort by key keeps it ascending within a key."""
    order = np.argsort(keys, kind="stable")
    keys, owner = keys[order], owner[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = (keys[1:] != keys[:-1]) | (owner[1:] != owner[:-1])
    keys = keys[first]
    if not len(keys):
        return keys, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.append(True, keys[1:] != keys[:-1]))
    return keys[starts], np.diff(np.append(starts, len(keys)))


def idf(df: np.ndarray, n: int) -> np.ndarray:
    return np.log((n + 1) / (df + 1)) + 1.0


class KeyIndex:
    """Keys (hashes) -> the test items that have them, for whole batches of queries."""

    def __init__(self, keys: np.ndarray, items: np.ndarray):
        order = np.argsort(keys, kind="stable")  # items come ascending, and stay so per key
        self.keys, self.items = keys[order], items[order]
        self.set = HashSet(self.keys)

    def add_candidates(self, cands: dict, rows: np.ndarray, keys: np.ndarray) -> None:
        hit = self.set.contains(keys)
        rows, keys = rows[hit], keys[hit]
        lo = np.searchsorted(self.keys, keys, side="left")
        hi = np.searchsorted(self.keys, keys, side="right")
        for r, a, b in zip(rows.tolist(), lo.tolist(), hi.tolist(), strict=True):
            cands.setdefault(r, set()).update(self.items[a:b].tolist())


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
    (method exact_short, DeepSeekMath's rule). Method ngram13 when 13-grams alone reach the
    coverage, else ngram10.
    """

    name = "ngram"
    mask_numbers = False

    def __init__(self, items: TestItems, ns=(13, 10), coverage=0.5, template_df=None,
                 min_short=3):
        self.items = items
        self.ns = sorted(ns, reverse=True)
        self.n_min = min(ns)
        self.coverage = coverage
        self.template_df = template_df or max(5, len(items) // 500)
        tokens = items.tokens
        th = self._hashes(tokens.hashes, tokens.is_num)
        keys, df = distinct_df(th, tokens.seg)
        self.weights = idf(df, len(items))[np.searchsorted(keys, th)]  # per test token
        self.grams = {}  # n -> (hashes, first token, bounds per item), templates left out
        for n, (h, seg, first) in tokens.ngrams_multi(self.ns, hashes=th).items():
            keys, df = distinct_df(h, seg)
            templates = keys[df >= self.template_df]
            usable = ~_isin_sorted(h, templates)
            h, seg, first = h[usable], seg[usable], first[usable]
            self.grams[n] = (h, first, np.searchsorted(seg, np.arange(len(items) + 1)))
            if n == self.n_min:
                self.index = KeyIndex(h, seg)
        lengths = items.lengths()
        self.lengths = lengths
        self.short: dict[int, KeyIndex] = {}
        for length in np.unique(lengths[(lengths >= min_short) & (lengths < self.n_min)]):
            h, seg, _ = tokens.ngrams(int(length), hashes=th, segments=lengths == length)
            self.short[int(length)] = KeyIndex(h, seg)

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

    def candidates(self, rows: TrainRows) -> dict[int, set[int]]:
        cands: dict[int, set[int]] = {}
        for n, index in [(self.n_min, self.index), *self.short.items()]:
            h, seg, _ = rows.grams(n, self.mask_numbers)
            index.add_candidates(cands, seg % rows.n, h)
        return cands

    def verify(self, rows: TrainRows, r: int, items: set[int]) -> list[Match]:
        hashes, is_num, seg = rows.row_tokens(r)
        hashes = self._hashes(hashes, is_num)
        doc: dict[int, np.ndarray] = {}

        def doc_grams(n: int) -> np.ndarray:
            if n not in doc:
                doc[n] = sorted_unique(ngram_hashes(hashes, seg, n)[0])
            return doc[n]

        matches = []
        for i in sorted(items):
            length = int(self.lengths[i])
            lo = int(self.items.tokens.seg_bounds[i])
            if length < self.n_min:
                whole = ngram_hashes(self._hashes(self.items.tokens.hashes[lo : lo + length],
                                                  self.items.tokens.is_num[lo : lo + length]),
                                     np.zeros(length, dtype=np.int64), length)[0]
                if _isin_sorted(whole, doc_grams(length)).any():
                    matches.append(Match(i, "exact_short", 1.0, " ".join(self._words(i))))
                continue
            weights = self.weights[lo : lo + length]
            for n in self.ns:
                h, first, bounds = self.grams[n]
                a, b = bounds[i], bounds[i + 1]
                found = first[a:b][_isin_sorted(h[a:b], doc_grams(n))] - lo
                if not len(found):
                    continue
                # words covered by some found n-gram: +1 where one starts, -1 where it ends
                delta = np.bincount(found, minlength=length + n) - np.bincount(found + n,
                                                                               minlength=length + n)
                covered = np.cumsum(delta)[:length] > 0
                score = float(weights[covered].sum() / weights.sum())
                if score >= self.coverage:
                    method = f"{self.name}{n}"
                    matches.append(Match(i, method, round(score, 4),
                                         _covered_text(self._words(i), covered.tolist())))
                    break
        return matches


def _isin_sorted(query: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(query), dtype=bool)
    pos = np.searchsorted(sorted_keys, query)
    pos[pos == len(sorted_keys)] = 0
    return sorted_keys[pos] == query


class MaskedNgram(NgramContainment):
    """NgramContainment with every number replaced by one symbol: the same problem with new
    numbers (GSM-Symbolic-style variants) matches. Strict policy only: it also removes problems
    that share a whole template with a test item, which some recipes keep on purpose."""

    name = "masked_ngram"
    mask_numbers = True

    def __init__(self, items: TestItems, ns=(10,), coverage=0.5, template_df=None):
        super().__init__(items, ns=ns, coverage=coverage, template_df=template_df,
                         min_short=10**9)


class NumbersOverlap:
    """The same multiset of numbers (at least `min_numbers`) AND a TF-IDF cosine of words and
    word pairs (numbers masked) >= `similarity`, prompt against test item. InternLM-Math's
    "exact number match", made precise: numbers alone collide between distinct short problems;
    the lexical gate removes most of those collisions and keeps rephrasings, which change words
    but keep numbers. The multisets compared are those of all numbers (digits and number words)
    or, failing that, those of the numbers written in digits: rephrasings add and drop words
    such as "two" ("their two ages") and "one" freely."""

    name = "numbers_overlap"
    needs: set = set()

    def __init__(self, items: TestItems, min_numbers=2, similarity=0.25):
        self.items = items
        self.min_numbers = min_numbers
        self.similarity = similarity
        tokens = items.tokens
        self.indexes = []
        for digits_only in (False, True):
            keys, counts = tokens.number_keys(digits_only=digits_only)
            ok = np.flatnonzero(counts >= min_numbers)
            self.indexes.append((digits_only, KeyIndex(keys[ok], ok)))
        terms, owner = self._terms(tokens.hashes, tokens.is_num, tokens.seg)
        self.term_keys, df = distinct_df(terms, owner)
        self.term_idf = idf(df, len(items))
        self.unseen_idf = math.log(len(items) + 1) + 1.0
        self._items: dict[int, tuple] = {}

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


def _as_tokens(hashes: np.ndarray) -> list[bytes]:
    """64-bit hashes as 8-byte tokens, the form rensa hashes."""
    data = hashes.astype("<u8").tobytes()
    return [data[k : k + 8] for k in range(0, len(data), 8)]


class MinHashSimilarity:
    """Jaccard similarity of word 5-gram sets >= `threshold`, prompt against test item: MinHash
    LSH (rensa) proposes items, the Jaccard of the two sets decides. Only rows at least
    `prefilter` of whose 5-grams occur in the test items are hashed: Jaccard >= t needs a share
    >= t of the row's distinct 5-grams in the item, so a prefilter below t drops no row MinHash
    would flag, short of rows that repeat one 5-gram many times."""

    name = "minhash"

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
                [_as_tokens(self._set(i)) for i in with_sets.tolist()], self.num_perm, self.seed)
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

    def verify(self, rows: TrainRows, r: int, items: set[int]) -> list[Match]:
        hashes, _, seg = rows.row_tokens(r, prompt_only=True)
        shingles = sorted_unique(ngram_hashes(hashes, seg, self.n)[0])
        if not len(shingles):
            return []
        sketch = RMinHash(self.num_perm, self.seed)
        sketch.update(_as_tokens(shingles))
        matches = []
        for i in sorted(self.lsh.query(sketch)):
            other = self._set(i)
            common = len(np.intersect1d(shingles, other, assume_unique=True))
            score = common / (len(shingles) + len(other) - common)
            if score >= self.threshold:
                matches.append(Match(i, self.name, round(score, 4), self.items.items[i].text))
        return matches


METHODS = ("exact_short", "ngram13", "ngram10", "numbers_overlap", "minhash", "masked_ngram10")


def build_matchers(items: TestItems, policy="default", coverage=0.5, similarity=0.25,
                   min_numbers=2, minhash_threshold=0.7) -> list:
    matchers = [
        NgramContainment(items, coverage=coverage),
        NumbersOverlap(items, min_numbers=min_numbers, similarity=similarity),
        MinHashSimilarity(items, threshold=minhash_threshold),
    ]
    if policy == "strict":
        matchers.append(MaskedNgram(items, coverage=coverage))
    return matchers
