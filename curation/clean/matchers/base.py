"""What every matcher shares: the batch of train rows as tokens, a match, and the numpy
building blocks (hash -> test items index, document frequencies, sorted membership)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tokens import U64, HashSet, Tokens, mix64, ngram_hashes_multi

MASK = "#"  # numbers in numbers-masked n-grams, as reports show them
_MASK_HASH = U64(0x5BD1E9955BD1E995)
_ROW_SALT = U64(0x2545F4914F6CDD1D)
# Scores are computed for all candidate pairs at once (np.bincount adds in another order than
# a slice's sum()); a pair this close to its threshold, or above, is scored again on its own,
# so a verdict and a reported score never depend on the order of additions.
NEAR = 1e-9


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

    def rows_grams(self, rows: np.ndarray, ns, mask_numbers: bool = False,
                   prompt_only: bool = False) -> dict:
        """{n: (hashes, row)} of the n-grams of some rows only (prompt and rest, or the prompt
        alone; an n-gram never spans the two)."""
        t = self.tokens
        wanted = np.zeros(2 * self.n, dtype=bool)
        wanted[rows] = True
        if not prompt_only:
            wanted[rows + self.n] = True
        keep = wanted[t.seg]
        h = masked(t.hashes[keep], t.is_num[keep]) if mask_numbers else t.hashes[keep]
        return {n: (g, seg % self.n) for n, (g, seg, _) in
                ngram_hashes_multi(h, t.seg[keep], ns).items()}

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


def key_ranks(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct keys, an order that sorts `keys`, each sorted key's rank among the
    distinct keys). One unstable argsort: numpy's vectorized one is about twice as fast as a
    stable sort on 64-bit keys, and what follows never depends on the order of equal keys."""
    order = np.argsort(keys)
    ranked = keys[order]
    new = np.empty(len(ranked), dtype=bool)
    new[:1] = True
    np.not_equal(ranked[1:], ranked[:-1], out=new[1:])
    return ranked[new], order, np.cumsum(new) - 1


def _first_of_runs(values: np.ndarray) -> np.ndarray:
    """Indices where a run of equal values starts, in a sorted array."""
    first = np.empty(len(values), dtype=bool)
    first[:1] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return np.flatnonzero(first)


def compound(major: np.ndarray, minor: np.ndarray, minor_size: int) -> np.ndarray | None:
    """major * minor_size + minor as int64 (sortable at numpy's vectorized speed), or None
    where that could overflow."""
    if len(major) and (int(major.max()) + 1) * max(minor_size, 1) >= 1 << 62:
        return None
    return major.astype(np.int64) * np.int64(minor_size) + minor


def distinct_df(keys: np.ndarray, owner: np.ndarray, per_element: bool = False):
    """Sorted distinct keys and, for each, how many distinct owners (>= 0) have it; with
    `per_element`, also each element's count (the document frequency of every token, without
    a search per token: that was the index build's largest cost)."""
    if not len(keys):
        empty = np.zeros(0, dtype=np.int64)
        return (keys, empty, empty) if per_element else (keys, empty)
    uniq, order, rank = key_ranks(keys)
    span = int(owner.max()) + 1
    pairs = compound(rank, owner[order], span)
    if pairs is None:  # too many keys and owners for one int64: sort the pairs themselves
        pair_order = np.lexsort((owner[order], rank))
        pair_rank, pair_owner = rank[pair_order], owner[order][pair_order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = (pair_rank[1:] != pair_rank[:-1]) | (pair_owner[1:] != pair_owner[:-1])
        df = np.bincount(pair_rank[first], minlength=len(uniq))
    else:
        pairs.sort()
        df = np.bincount(pairs[_first_of_runs(pairs)] // span, minlength=len(uniq))
    if not per_element:
        return uniq, df
    each = np.empty(len(keys), dtype=np.int64)
    each[order] = df[rank]
    return uniq, df, each


def distinct_pairs(owner: np.ndarray, keys: np.ndarray, index: bool = False):
    """The distinct (owner, key) pairs, ordered by owner then key, and how often each occurs:
    (owner, keys, counts); with `index`, also the position of one occurrence of each pair (to
    carry per-element values along)."""
    if not len(keys):
        empty = np.zeros(0, dtype=np.int64)
        return (empty, keys, empty, empty) if index else (empty, keys, empty)
    uniq, order, rank = key_ranks(keys)
    pairs = compound(owner[order], rank, len(uniq))
    if pairs is None:
        pos = np.lexsort((keys, owner))
        o, k = owner[pos], keys[pos]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = (k[1:] != k[:-1]) | (o[1:] != o[:-1])
        starts = np.flatnonzero(first)
        out = (o[starts], k[starts], np.diff(np.append(starts, len(keys))))
        return (*out, pos[starts]) if index else out
    if index:  # any occurrence will do: an unstable argsort
        pos = np.argsort(pairs)
        pairs = pairs[pos]
    else:
        pairs.sort()
    starts = _first_of_runs(pairs)
    first = pairs[starts]
    size = np.int64(len(uniq))
    out = (first // size, uniq[first % size], np.diff(np.append(starts, len(keys))))
    return (*out, order[pos[starts]]) if index else out


def idf(df: np.ndarray, n: int) -> np.ndarray:
    return np.log((n + 1) / (df + 1)) + 1.0


class KeyIndex:
    """Keys (hashes) -> the test items that have them, for whole batches of queries."""

    def __init__(self, keys: np.ndarray, items: np.ndarray):
        # ordered by key, then item: (rank of the key, item) pairs sorted as int64
        uniq, order, rank = key_ranks(keys)
        size = int(items.max()) + 1 if len(items) else 1
        pairs = compound(rank, items[order], size)
        if pairs is None:
            order = np.lexsort((items, keys))
            self.keys, self.items = keys[order], items[order]
        else:
            pairs.sort()
            self.keys, self.items = uniq[pairs // size], pairs % size
        self.set = HashSet(uniq)

    def pairs(self, rows: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) for every query key an item has, in numpy (one entry per hit)."""
        hit = self.set.contains(keys)
        rows, keys = rows[hit], keys[hit]
        lo = np.searchsorted(self.keys, keys, side="left")
        pos, owner = ranges(lo, np.searchsorted(self.keys, keys, side="right") - lo)
        return rows[owner], self.items[pos]

    def add_candidates(self, cands: dict, rows: np.ndarray, keys: np.ndarray) -> None:
        r, items = self.pairs(rows, keys)
        add_pairs(cands, r, items)


def ranges(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ranges starts[k] .. starts[k]+counts[k]-1 one after another, and for each element
    the k of its range."""
    owner = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    return np.arange(int(offsets[-1] + counts[-1]) if len(counts) else 0) - (
        offsets - starts)[owner], owner


def as_pairs(cands: dict) -> tuple[np.ndarray, np.ndarray]:
    """Candidates {row: items} as (rows, items) arrays, ordered by row then item."""
    rows = sorted(cands)
    items = [sorted(cands[r]) for r in rows]
    r = np.repeat(np.array(rows, dtype=np.int64), [len(i) for i in items])
    return r, np.fromiter((i for its in items for i in its), dtype=np.int64, count=len(r))


def keyed(rows: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """One 64-bit key per (row, hash): a hash set of many rows' n-grams at once. Two different
    pairs share a key with probability 2**-64, as two different n-grams share a hash."""
    return hashes ^ mix64(rows.astype(U64) + _ROW_SALT)


def add_pairs(cands: dict, rows: np.ndarray, items: np.ndarray) -> None:
    for r, i in zip(rows.tolist(), items.tolist(), strict=True):
        cands.setdefault(r, set()).add(i)


def isin_sorted(query: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(query), dtype=bool)
    pos = np.searchsorted(sorted_keys, query)
    pos[pos == len(sorted_keys)] = 0
    return sorted_keys[pos] == query


def content_words(tokens: Tokens, token_df: np.ndarray, template_df: int,
                  hashes: np.ndarray | None = None) -> np.ndarray:
    """Per token: a content word, what tells one problem from another: not a number, not one
    letter (x, y, a: variables), not in 5 % of the items (the, of, value, find), not inside a
    5-gram found in `template_df` items or more (template phrases: "enter all the solutions
    separated by commas"). `token_df`: each token's document frequency over the segments;
    `hashes`: the token hashes the 5-grams are made of (numbers masked or not)."""
    n_items = tokens.n_segments
    content = (~tokens.is_num & (tokens.ends - tokens.starts > 1)
               & (token_df < max(2, n_items // 20)))
    h5, seg5, first5 = tokens.ngrams(5, hashes=hashes)
    common = first5[distinct_df(h5, seg5, per_element=True)[2] >= template_df]
    size = len(tokens) + 5  # +1 where a template 5-gram starts, -1 where it ends
    in_template = (np.bincount(common, minlength=size)
                   - np.bincount(common + 5, minlength=size))
    return content & (np.cumsum(in_template)[: len(tokens)] == 0)
