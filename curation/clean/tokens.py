"""Word tokens and n-grams of many texts at once, as 64-bit hashes in numpy arrays.

Per-token Python work (split, dict lookups) costs ~100 ns a token, which alone caps a matcher
near 20k rows/s. Here a batch of texts is one byte buffer: byte classes, token boundaries and a
hash of every token are a handful of vectorized passes, and n-gram hashes are a rolling hash
over token hashes. Python sees a token as a string only for reports (`Tokens.words`), through
the same spans, so both views always agree.

A token is a run of letters (a-z or any non-ASCII byte) or of digits (with "." between digits);
everything else separates. See curation.clean.normalize for the string-level part.
"""

from __future__ import annotations

import numpy as np

from .normalize import NUMBER_WORDS, canon_token, normalize_text, strip_figures

U64 = np.uint64
_Q = U64(0xC2B2AE3D27D4EB4F)  # n-gram rolling multiplier (odd)
_LEN_SALT = U64(0x9E3779B97F4A7C15)
_NUM_SALT = U64(0x165667B19E3779F9)

LETTER, DIGIT, DOT, COMMA = 1, 2, 3, 4
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[ord("a") : ord("z") + 1] = LETTER
_CLASS[0x80:] = LETTER  # UTF-8 bytes of non-ASCII letters; their punctuation is gone by now
_CLASS[ord("0") : ord("9") + 1] = DIGIT
_CLASS[ord(".")] = DOT
_CLASS[ord(",")] = COMMA
# _BYTES_MASK[k]: the low k bytes of a little-endian 64-bit word
_BYTES_MASK = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=U64)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads every input bit over the output (bitmaps use top bits)."""
    x = x ^ (x >> U64(30))
    x = x * U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> U64(27))
    x = x * U64(0x94D049BB133111EB)
    return x ^ (x >> U64(31))


def _words64(data: bytes) -> np.ndarray:
    """w[i] = the 8 bytes data[i:i+8] as one little-endian integer (zeros past the end)."""
    padded = np.frombuffer(data + bytes(8), dtype=np.uint8)
    return np.ndarray(shape=(len(data),), dtype="<u8", buffer=padded, strides=(1,))


def _span_hashes(w64: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Hash of each byte span, 8 bytes a round: one round for words of up to 8 bytes (most),
    more only for the longer ones. Every byte and the length go in, so equal spans hash equal
    and different ones collide with probability ~2**-64."""
    length = ends - starts
    h = mix64((w64[starts] & _BYTES_MASK[np.minimum(length, 8)])
              ^ (length.astype(U64) * _LEN_SALT))
    idx = np.flatnonzero(length > 8)
    k = 8
    while len(idx):
        rest = length[idx] - k
        block = w64[starts[idx] + k] & _BYTES_MASK[np.minimum(rest, 8)]
        h[idx] = mix64(h[idx] ^ block)
        idx = idx[rest > 8]
        k += 8
    return h


def hash_words(words: list[str]) -> np.ndarray:
    """Hashes of already-canonical tokens, equal to those `Tokens` gives the same tokens."""
    if not words:
        return np.zeros(0, dtype=U64)
    data = " ".join(words).encode()
    lengths = np.fromiter((len(w.encode()) for w in words), dtype=np.int64, count=len(words))
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    return _span_hashes(_words64(data), starts, starts + lengths)


# number words -> the hash of their digits ("three" -> hash("3")), with a 16-bit prefilter
_NUMWORD_DIGIT_HASH = dict(zip(hash_words(list(NUMBER_WORDS)).tolist(),
                               hash_words(list(NUMBER_WORDS.values())).tolist(), strict=True))
_NUMWORD_LUT = np.zeros(1 << 16, dtype=bool)
_NUMWORD_LUT[[h & 0xFFFF for h in _NUMWORD_DIGIT_HASH]] = True


def _normalized(texts: list[str]) -> tuple[str, list[str]]:
    """The texts normalized and joined by spaces. Plain ASCII texts only need lower(), done once
    on the joined string; only the others go through normalize_text."""
    joined = " ".join(texts)
    if "[asy]" in joined:
        texts = [strip_figures(t) if "[asy]" in t else t for t in texts]
        joined = " ".join(texts)
    if joined.isascii() and "\\" not in joined:
        return joined.lower(), texts
    if joined.isascii():  # LaTeX somewhere: normalize those texts, lower() the rest at once
        texts = [normalize_text(t) if "\\" in t else t for t in texts]
        return " ".join(texts).lower(), texts
    texts = [t.lower() if t.isascii() and "\\" not in t else normalize_text(t) for t in texts]
    return " ".join(texts), texts


class Tokens:
    """The tokens of a list of texts ("segments"), in order.

    hashes[i], seg[i] and is_num[i] describe token i; seg_bounds[s]:seg_bounds[s+1] are the
    token indices of segment s.
    """

    def __init__(self, texts: list[str]):
        joined, norm = _normalized(texts)
        if joined.isascii():  # bytes = characters
            lengths = np.fromiter(map(len, norm), dtype=np.int64, count=len(norm))
        else:
            lengths = np.fromiter((len(t) if t.isascii() else len(t.encode()) for t in norm),
                                  dtype=np.int64, count=len(norm))
        seg_starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)
        data = joined.encode()
        a = np.frombuffer(data, dtype=np.uint8)
        cls = np.take(_CLASS, a)
        n = len(a)

        def digit_at(pos):  # cls[pos] == DIGIT, False outside the buffer
            ok = (pos >= 0) & (pos < n)
            out = np.zeros(len(pos), dtype=bool)
            out[ok] = cls[pos[ok]] == DIGIT
            return out

        punct = np.flatnonzero(cls >= DOT)  # dots and commas, one pass
        dots = punct[cls[punct] == DOT]
        commas = punct[cls[punct] == COMMA]
        decimal = dots[digit_at(dots - 1) & digit_at(dots + 1)]  # 2.5 is one number
        thousands = commas[  # 1,234 and 1,234.5 but not 1,2345 or 1,23
            digit_at(commas - 1) & digit_at(commas + 1) & digit_at(commas + 2)
            & digit_at(commas + 3) & ~digit_at(commas + 4)
        ]
        cls[punct] = 0
        cls[decimal] = DIGIT
        if len(thousands):  # 1,234 -> 1234: drop the comma bytes, shift segment starts
            keep = np.ones(n, dtype=bool)
            keep[thousands] = False
            a, cls = a[keep], cls[keep]
            data = a.tobytes()
            seg_starts = seg_starts - np.searchsorted(thousands, seg_starts)
            decimal = decimal - np.searchsorted(thousands, decimal)
            n = len(a)

        # token boundaries: where the byte class changes, into or out of a word class
        change = np.flatnonzero(cls[1:] != cls[:-1]) + 1
        if n and cls[0]:
            change = np.concatenate(([0], change))
        starts = change[cls[change] != 0]
        ends_at = change[cls[change - 1] != 0] if len(change) else change
        ends_at = ends_at[ends_at > 0]
        ends = np.concatenate((ends_at, [n])) if n and cls[-1] else ends_at
        hashes = _span_hashes(_words64(data), starts, ends)
        is_num = cls[starts] == DIGIT

        # canonical number formats (rare tokens, done in Python through canon_token)
        # (only those canon_number changes: a fraction ending in 0, "2.50" "3.0", or leading
        # zeros, "007"; most decimals, "2.5" "0.75", are canonical already)
        fix = np.zeros(len(starts), dtype=bool)
        fix[np.searchsorted(starts, decimal, side="right") - 1] = True
        fix &= a[np.maximum(ends - 1, 0)] == ord("0")
        lead0 = is_num & (a[starts] == ord("0")) & (ends - starts > 1)
        lead0[lead0] &= cls[starts[lead0] + 1] == DIGIT
        fix |= lead0
        fixed = np.flatnonzero(fix)
        if len(fixed):
            words = [canon_token(a[starts[i] : ends[i]].tobytes().decode()) for i in fixed]
            hashes[fixed] = hash_words(words)
        maybe_word = np.flatnonzero(_NUMWORD_LUT[(hashes & U64(0xFFFF)).astype(np.int64)])
        digits = is_num.copy()  # numbers written with digits
        for i in maybe_word[~is_num[maybe_word]].tolist():
            digit_hash = _NUMWORD_DIGIT_HASH.get(int(hashes[i]))
            if digit_hash is not None:  # "three" and "3" are the same token
                hashes[i] = digit_hash
                is_num[i] = True

        self.n_segments = len(texts)
        self.bytes = a
        self.starts, self.ends = starts, ends
        self.hashes = hashes
        self.is_num = is_num
        self.is_digits = digits
        self.seg_bounds = np.searchsorted(starts, np.append(seg_starts, n + 1))
        self.seg = np.repeat(np.arange(len(texts)), np.diff(self.seg_bounds))

    def __len__(self) -> int:
        return len(self.hashes)

    def words(self, segment: int) -> list[str]:
        """The canonical tokens of one segment, as strings (for reports)."""
        lo, hi = self.seg_bounds[segment], self.seg_bounds[segment + 1]
        if lo == hi:
            return []
        base = int(self.starts[lo])
        data = self.bytes[base : self.ends[hi - 1]].tobytes()
        starts, ends = (self.starts[lo:hi] - base).tolist(), (self.ends[lo:hi] - base).tolist()
        if data.isascii():
            text = data.decode()
            words = [text[s:e] for s, e in zip(starts, ends, strict=True)]
        else:
            words = [data[s:e].decode() for s, e in zip(starts, ends, strict=True)]
        for i in np.flatnonzero(self.is_num[lo:hi]).tolist():  # only numbers change in canon
            words[i] = canon_token(words[i])
        return words

    def slice(self, segment: int) -> slice:
        return slice(int(self.seg_bounds[segment]), int(self.seg_bounds[segment + 1]))

    def segment_hashes(self, segment: int) -> np.ndarray:
        return self.hashes[self.seg_bounds[segment] : self.seg_bounds[segment + 1]]

    def ngrams(self, n: int, hashes: np.ndarray | None = None, segments: np.ndarray | None = None):
        """(ngram hashes, their segment, their first token index) for windows inside segments.

        `hashes` replaces the token hashes (numbers-masked n-grams); `segments` (bool per
        segment) keeps only the windows of those segments.
        """
        return ngram_hashes(self.hashes if hashes is None else hashes, self.seg, n, segments)

    def ngrams_multi(self, ns, hashes: np.ndarray | None = None, segments=None):
        return ngram_hashes_multi(self.hashes if hashes is None else hashes, self.seg, ns, segments)

    def number_keys(self, segments: np.ndarray | None = None, digits_only: bool = False):
        """Per segment: (hash of the multiset of its numbers, how many there are); numbers
        written in words count unless `digits_only`."""
        num = self.is_digits if digits_only else self.is_num
        if segments is not None:
            num = num & segments[self.seg]
        idx = np.flatnonzero(num)
        values = mix64(self.hashes[idx] ^ _NUM_SALT)
        cumulative = np.zeros(len(idx) + 1, dtype=U64)
        np.cumsum(values, out=cumulative[1:])
        bounds = np.searchsorted(self.seg[idx], np.arange(self.n_segments + 1))
        counts = np.diff(bounds)
        sums = cumulative[bounds[1:]] - cumulative[bounds[:-1]]  # order-free multiset hash
        return mix64(sums + counts.astype(U64)), counts


def ngram_hashes(token_hashes, token_seg, n, segments=None):
    return ngram_hashes_multi(token_hashes, token_seg, [n], segments)[n]


def ngram_hashes_multi(token_hashes, token_seg, ns, segments=None):
    """{n: (hashes, segment, first token index)} for each n, sharing one rolling pass: the
    n-gram hash is the (n-1)-gram hash times Q plus the next token's hash."""
    out = {}
    acc = token_hashes.copy()
    for n in range(1, max(ns) + 1):
        m = len(token_hashes) - n + 1
        if m <= 0:
            empty = np.zeros(0, dtype=np.int64)
            out.update({k: (np.zeros(0, dtype=U64), empty, empty) for k in ns if k >= n})
            break
        if n > 1:  # in place: acc[j] becomes the hash of tokens j..j+n-1
            acc = acc[:m]
            acc *= _Q
            acc += token_hashes[n - 1 :]
        if n in ns:
            valid = token_seg[:m] == token_seg[n - 1 :]
            if segments is not None:
                valid &= segments[token_seg[:m]]
            first = np.flatnonzero(valid)
            out[n] = (acc[first], token_seg[first], first)
    return out


def word_ngram_hashes(words: list[str], n: int) -> np.ndarray:
    """n-gram hashes of one token list, equal to `Tokens.ngrams` on the same tokens."""
    h = hash_words(words)
    return ngram_hashes(h, np.zeros(len(h), dtype=np.int64), n)[0]


def sorted_unique(values: np.ndarray, return_counts: bool = False):
    """np.unique for hashes: a sort and one comparison (numpy 2's hash-based unique is several
    times slower on 64-bit keys)."""
    values = np.sort(values)
    first = np.empty(len(values), dtype=bool)
    first[:1] = True
    first[1:] = values[1:] != values[:-1]
    if not return_counts:
        return values[first]
    starts = np.flatnonzero(first)
    return values[starts], np.diff(np.append(starts, len(values)))


class HashSet:
    """Membership of many 64-bit hashes at once: a bitmap on the top bits rules out almost all
    queries with one gather, and a binary search settles the rest exactly."""

    def __init__(self, values: np.ndarray):
        self.values = sorted_unique(np.asarray(values, dtype=U64))
        self._build_bitmap()

    def __getstate__(self):  # the bitmap is large and quick to rebuild: not pickled
        return {"values": self.values}

    def __setstate__(self, state):
        self.values = state["values"]
        self._build_bitmap()

    def _build_bitmap(self) -> None:
        bits = int(np.clip(np.ceil(np.log2(max(len(self.values), 1) * 64)), 16, 28))
        self.shift = U64(64 - bits)
        self.bitmap = np.zeros(1 << bits, dtype=bool)
        self.bitmap[(self.values >> self.shift).astype(np.int64)] = True

    def __len__(self) -> int:
        return len(self.values)

    def contains(self, query: np.ndarray) -> np.ndarray:
        hit = self.bitmap[(query >> self.shift).astype(np.int64)]
        idx = np.flatnonzero(hit)
        if len(idx) and len(self.values):
            pos = np.searchsorted(self.values, query[idx])
            pos[pos == len(self.values)] = 0
            hit[idx] = self.values[pos] == query[idx]
        return hit
