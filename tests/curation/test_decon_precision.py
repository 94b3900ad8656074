"""Precision and recall on real test items (GSM8K-test and MATH-test problems, MIT, quoted in
their public schemas): what the real-data benchmark found wrong (bench/curation_quality.py)."""

import json
from pathlib import Path

import pytest

from curation.clean.decontaminate import main as decontaminate
from tests.curation.decon_helpers import read_report

POLICIES = ("default", "strict")

# MATH-test: "what is" and ten numbers once normalized; masked, ten "#" in a row
NUMBER_RUN = (r"What is $\left(20 \cdot \left(\frac{2}{5}\right)^2 \cdot \left(\frac{3}{4}"
              r"\right)^2 \cdot \frac{5}{9}\right)^5$?")
EXPAND = "Expand $(x+3)(2x-4)(x-6)$."  # MATH-test
SIMPLIFY = "Simplify $-3(1+4i)+i(-2-i)$."  # MATH-test
BINOM = "Compute $\\dbinom{8}{6}$."  # MATH-test: "compute 8 6" once normalized
JANET = ("Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning "
         "and bakes muffins for her friends every day with four. She sells the remainder at the "
         "farmers' market daily for $2 per fresh duck egg. How much in dollars does she make "
         "every day at the farmers' market?")  # GSM8K-test, line 1

# Rows with ten or more numbers in a row (GSM8K's calculator notes), not the item's own run
NUMBER_ROWS = [
    {"question": "Tom buys 20 apples at 2 dollars, 5 pears at 2 dollars and 3 plums at 4 dollars. "
                 "How much does he spend?",
     "answer": "20*2 + 5*2 + 3*4 = <<20*2+5*2+3*4=62>>62 dollars, then 2/5 of 9 is "
               "<<2/5*9=3.6>>3.6\n#### 62"},
    {"question": "A farmer has 20 cows, 2 goats, 5 pigs, 2 horses, 3 dogs and 4 cats. How many "
                 "legs are there?",
     "answer": "20*4+2*4+5*4+2*4+3*4+4*4 = <<20*4+2*4+5*4+2*4+3*4+4*4=144>>144\n#### 144"},
    {"problem": "Compute $12 + 7 \\cdot 3 - 8 \\cdot 6 + 4 - 2 + 5 \\cdot 9 - 11$.",
     "solution": "We get $12+7\\cdot3-8\\cdot6+4-2+5\\cdot9-11 = \\boxed{21}$."},
]
# MATH-train problems that share their numbers with the MATH-test items above
DISTINCT_MATH = [
    {"problem": "What is the domain of the function $f(x)=\\frac{x+6}{\\sqrt{x^2-3x-4}}$?",
     "solution": "The function is defined when $x^2-3x-4>0$, so $x \\in "
                 "\\boxed{(-\\infty, -1) \\cup (4, \\infty)}$."},
    {"problem": "Simplify $(-3-2i)-(1+4i)$.",
     "solution": "$(-3-2i)-(1+4i) = -3 -2i -1 - 4i= \\boxed{-4-6i}$."},
    {"problem": "Compute:  $8 + 6(3-8)^2$.", "solution": "$8 + 6 \\cdot 25 = \\boxed{158}$."},
]
# JANET with every number changed (digits and number words)
JANET_NEW_NUMBERS = ("Janet\u2019s ducks lay 23 eggs per day. She eats five for breakfast every "
                     "morning and bakes muffins for her friends every day with two. She sells "
                     "the remainder at the farmers' market daily for $3 per fresh duck egg. How "
                     "much in dollars does she make every day at the farmers' market?")


# MATH-test is 5,000 problems in which 1, 2, 3, 4 and 6 are everywhere: a third of its
# problems have each. These stand in for the rest of it (the test side's statistics are what
# tell a shared "1, 2, 3, 4, 6" from a shared "2000, 5").
FILLER = [f"Find the value of ${a}x^2 + {b}x - {c}$ when $x = {d}$ and the {w} is positive."
          for a in range(1, 7) for b, c, d, w in [(2, 3, 4, "root"), (4, 6, 1, "slope"),
                                                  (3, 1, 2, "area"), (6, 2, 3, "term")]]
FILLER += [f"Let $f(x) = {a}x - {b}$. Compute $f({c}) + f(-{d})$ for the {w} case."
           for a in range(1, 7) for b, c, d, w in [(1, 2, 3, "first"), (4, 3, 6, "second"),
                                                   (2, 6, 4, "third")]]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(tmp_path, train_rows, policy):
    gsm = write(tmp_path / "gsm8k_test.jsonl", [{"question": JANET, "answer": "#### 18"}])
    math = write(tmp_path / "math_test.jsonl",
                 [{"problem": p, "level": "Level 3", "type": "Algebra", "solution": "..."}
                  for p in (NUMBER_RUN, EXPAND, SIMPLIFY, BINOM, *FILLER)])
    train = write(tmp_path / "train.jsonl", train_rows)
    out, report = tmp_path / "clean.jsonl", tmp_path / "report.jsonl"
    rc = decontaminate(["--train", str(train), "--test", str(gsm), "--test", str(math),
                        "--out", str(out), "--report", str(report), "-q", "--policy", policy,
                        "--workers", "1"])
    assert rc == 0
    records, summary = read_report(report)
    assert summary["read"] == summary["kept"] + summary["removed"] + summary["rejected"]
    return {r["train_line"]: r for r in records if "method" in r}


@pytest.mark.parametrize("policy", POLICIES)
def test_number_run_item_does_not_remove_rows_that_only_share_numbers(tmp_path, policy):
    flagged = run(tmp_path, NUMBER_ROWS, policy)
    assert not flagged, {n: (r["method"], r["test_matches"][0]["matched_text"])
                         for n, r in flagged.items()}


@pytest.mark.parametrize("policy", POLICIES)
def test_the_number_run_item_itself_is_still_caught(tmp_path, policy):
    rows = [{"problem": NUMBER_RUN, "solution": "$\\boxed{1}$"},
            {"question": "Evaluate: " + NUMBER_RUN.replace("What is ", ""), "answer": "1"},
            {"problem": "Please compute $\\dbinom{8}{6}$ and explain.", "solution": "28"}]
    flagged = run(tmp_path, rows, policy)
    assert set(flagged) == {1, 2, 3}


@pytest.mark.parametrize("policy", POLICIES)
def test_distinct_math_problems_sharing_numbers_are_kept(tmp_path, policy):
    flagged = run(tmp_path, DISTINCT_MATH, policy)
    assert not flagged, {n: r["method"] for n, r in flagged.items()}


def test_a_gsm8k_problem_with_every_number_changed_is_caught_by_default(tmp_path):
    flagged = run(tmp_path, [{"question": JANET_NEW_NUMBERS, "answer": "#### 45"}], "default")
    assert set(flagged) == {1}
    assert "masked_ngram10" in flagged[1]["methods"]
    assert flagged[1]["test_matches"][0]["test_line"] == 1


def test_the_coverage_bound_drops_no_match():
    """NgramContainment.candidates drops (row, item) pairs whose hit count cannot reach the
    coverage; verifying every pair instead finds no more matches."""
    from curation.clean.matchers import MaskedNgram, NgramContainment, TrainRows
    from curation.clean.testindex import TestItems
    from tests.curation.decon_data import ITEMS
    from tests.curation.decon_helpers import train_rows

    items = TestItems.build([("t", k + 1, it["test"]) for k, it in enumerate(ITEMS)])
    texts = [text for _, _, text in train_rows()]
    rows = TrainRows(texts, [""] * len(texts))
    checked = 0
    for matcher in (NgramContainment(items), MaskedNgram(items, coverage=0.35, min_words=3)):
        pruned = matcher.candidates(rows)
        every: dict[int, set[int]] = {}
        h, seg, _ = rows.grams(matcher.n_min, matcher.mask_numbers)
        matcher.index.add_candidates(every, seg % rows.n, h)
        for n, index in matcher.short.items():
            h, seg, _ = rows.grams(n, matcher.mask_numbers)
            index.add_candidates(every, seg % rows.n, h)
        assert set(pruned) <= set(every) and len(every) > 50
        want, got = matcher.verify(rows, every), matcher.verify(rows, pruned)
        for r in every:
            assert ({m.item for m in got.get(r, [])} == {m.item for m in want.get(r, [])}), (
                matcher.name, texts[r])
            checked += r in want
    assert checked > 50  # rows that some matcher flags: the check had something to drop


@pytest.mark.parametrize("policy", POLICIES)
def test_a_batch_verifies_as_its_rows_one_by_one(policy):
    """Every matcher scores all candidate pairs of a batch at once; the matches, their scores
    and texts are those of verifying each row alone (no row sees another's n-grams)."""
    from curation.clean.matchers import TrainRows, build_matchers
    from curation.clean.testindex import TestItems
    from tests.curation.decon_data import ITEMS
    from tests.curation.decon_helpers import train_rows

    items = TestItems.build([("t", k + 1, it["test"]) for k, it in enumerate(ITEMS)])
    texts = [text for _, _, text in train_rows()]
    rows = TrainRows(texts, texts[1:] + texts[:1])  # each row's answer is another's text
    flagged = 0
    for matcher in build_matchers(items, policy):
        cands = matcher.candidates(rows)
        batch = matcher.verify(rows, cands)
        alone = {}
        for r, c in cands.items():
            alone.update(matcher.verify(rows, {r: c}))
        assert batch == alone, matcher.name
        flagged += len(batch)
    assert flagged > 50
