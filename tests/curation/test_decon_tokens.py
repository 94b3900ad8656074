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
