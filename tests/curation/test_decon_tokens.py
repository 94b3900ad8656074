"""Normalization and the numpy token hashes every matcher stands on."""

from __future__ import annotations

import random

import numpy as np
import pytest

from curation.clean.tokens import HashSet, Tokens, hash_words, word_ngram_hashes


def words(text: str) -> list[str]:
    return Tokens([text]).words(0)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How MANY apples?", "how many apples"),  # case, punctuation
        ("two  apples,\tthree\npears", "two apples three pears"),  # whitespace
        ("Solve $3x + 7 = 31$.", "Solve \\(3x+7=31\\)."),  # LaTeX delimiters
        ("$$x^2$$ and \\[y\\]", "x^2 and y"),
        ("What is $\\frac{3}{4}$ of 240?", "What is 3/4 of 240?"),  # LaTeX markup
        ("\\dfrac{1}{2} \\cdot 4", "\\frac12 * 4".replace("\\frac12", "1/2")),
        ("Compute $\\dbinom{10}{3}$", "Compute $\\binom{10}{3}$"),
        ("\\text{5 cm} \\times 3", "5 cm × 3"),
        ("It costs 1,200 dollars", "It costs 1200 dollars"),  # number formats
        ("12,345,678.50", "12345678.5"),
        ("2.50 and 3.0 and 007", "2.5 and 3 and 7"),
        ("0.50, 10.0, 100.00 and 0.05", "0.5, 10, 100 and 0.05"),
        ("three dogs and twenty cats", "3 dogs and 20 cats"),  # number words
        ("１２ ＡＢＣ", "12 abc"),  # Unicode NFKC
        ("Janet’s “ducks” — lay", "Janet's \"ducks\" - lay"),
        ("the 5th of May", "the 5 th of may"),  # letters and digits part
        ("Ünïcödé Straße", "ünïcödé straße"),
    ],
)
def test_formatting_never_changes_the_tokens(a, b):
    assert words(a) == words(b)
    assert (Tokens([a]).hashes == Tokens([b]).hashes).all()


@pytest.mark.parametrize(
    ("a", "b"),
    [("1,2,3", "123"), ("12", "1 2"), ("2.5", "25"), ("1,23", "123"), ("x2", "x 3"),
     ("café", "cafe"), ("0.5", "5"), ("1.05", "1.5"), ("10", "1.0")],
)
def test_different_content_keeps_different_tokens(a, b):
    assert words(a) != words(b)


def test_numbers_are_marked_and_written_canonically():
    t = Tokens(["She had three cats, 1,000.50 dollars and 07 dogs"])
    assert t.words(0) == ["she", "had", "3", "cats", "1000.5", "dollars", "and", "7", "dogs"]
    assert t.is_num.tolist() == [False, False, True, False, True, False, False, True, False]
    assert t.is_digits.tolist() == [False, False, False, False, True, False, False, True, False]


ALPHABET = list("abcXYZ019 ,.$\\{}()-'’\n\té½") + ["three", "1,000", "\\frac", "2.50", "ﬁ"]


@pytest.mark.parametrize("seed", range(5))
def test_hashes_words_and_batches_agree(seed):
    """The hashes matchers compare, the words reports show and the batch a text lands in must
    all agree, or a verified match and its report could differ."""
    rng = random.Random(seed)
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 60)))
             for _ in range(200)]
    batch = Tokens(texts)
    for i, text in enumerate(texts):
        alone = Tokens([text])
        assert (batch.segment_hashes(i) == alone.hashes).all(), text
        assert batch.words(i) == alone.words(0), text
        assert (hash_words(batch.words(i)) == batch.segment_hashes(i)).all(), text
        lo, hi = batch.seg_bounds[i], batch.seg_bounds[i + 1]
        assert (batch.is_num[lo:hi] == alone.is_num).all()


def test_ngrams_stay_inside_their_segment():
    t = Tokens(["a b c d", "e f", "g h i"])
    h, seg, first = t.ngrams(3)
    assert seg.tolist() == [0, 0, 2]
    assert first.tolist() == [0, 1, 6]
    assert (h == np.concatenate([word_ngram_hashes(list("abcd"), 3),
                                 word_ngram_hashes(list("ghi"), 3)])).all()


def test_hash_set_membership_is_exact():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**63, 5000, dtype=np.uint64) * np.uint64(2)
    queries = np.concatenate([values[::7], rng.integers(0, 2**63, 5000, dtype=np.uint64)])
    expected = np.isin(queries, values)
    assert (HashSet(values).contains(queries) == expected).all()
    assert expected.sum() >= len(values[::7])


def _keys_with_ties(rng, n, distinct):
    """64-bit keys drawn from `distinct` values (many ties), owners ascending as segments are."""
    values = rng.integers(0, 2**63, distinct, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return values[rng.integers(0, distinct, n)], np.sort(rng.integers(0, 50, n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_index_primitives_match_their_definitions(seed, monkeypatch):
    """distinct_df, distinct_pairs and KeyIndex sort through ranks and int64 pairs (numpy's
    fast unstable sort); each must give what its plain definition gives, and so must the
    fallback taken where the pairs would overflow an int64."""
    from curation.clean.matchers import base

    rng = np.random.default_rng(seed)
    keys, owner = _keys_with_ties(rng, 3000, 400)
    pairs = sorted(set(zip(keys.tolist(), owner.tolist(), strict=True)))
    df = {}
    for k, _ in pairs:
        df[k] = df.get(k, 0) + 1
    by_owner = sorted(set(zip(owner.tolist(), keys.tolist(), strict=True)))
    counts = {}
    for o, k in zip(owner.tolist(), keys.tolist(), strict=True):
        counts[(o, k)] = counts.get((o, k), 0) + 1
    for overflow in (False, True):
        if overflow:
            monkeypatch.setattr(base, "compound", lambda *a: None)
        uniq, got_df, each = base.distinct_df(keys, owner, per_element=True)
        assert uniq.tolist() == sorted(df) and got_df.tolist() == [df[k] for k in sorted(df)]
        assert each.tolist() == [df[k] for k in keys.tolist()]
        o, k, c, at = base.distinct_pairs(owner, keys, index=True)
        assert list(zip(o.tolist(), k.tolist(), strict=True)) == by_owner
        assert c.tolist() == [counts[p] for p in by_owner]
        assert (owner[at] == o).all() and (keys[at] == k).all()
        index = base.KeyIndex(keys, owner)
        assert list(zip(index.keys.tolist(), index.items.tolist(), strict=True)) == sorted(
            zip(keys.tolist(), owner.tolist(), strict=True))
        r, items = index.pairs(np.arange(5), keys[:5])
        assert sorted(zip(r.tolist(), items.tolist(), strict=True)) == sorted(
            (q, o) for q in range(5) for kk, o in zip(keys.tolist(), owner.tolist(), strict=True)
            if kk == keys[q])
