"""Precision and recall on real test items (GSM8K-test and MATH-test problems, MIT, quoted in
their public schemas): what the real-data benchmark found wrong (bench/curation_quality.py)."""

import json
from pathlib import Path

import pytest

from bench.decon_set import read_report
from curation.clean.decontaminate import main as decontaminate

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
    from bench.decon_items import ITEMS
    from bench.decon_set import train_rows
    from curation.clean.matchers import MaskedNgram, NgramContainment, TrainRows
    from curation.clean.testindex import TestItems

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
    from bench.decon_items import ITEMS
    from bench.decon_set import train_rows
    from curation.clean.matchers import TrainRows, build_matchers
    from curation.clean.testindex import TestItems

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


# Real rows (GSM8K, MIT; tests/curation/data/README.md): GSM8K-test lines 1-100, 437, 849 and
# 1144 as the test side, and GSM8K-train problems (by their line in train.jsonl) that share every
# number with one of those items and are other problems.
SLICE = Path(__file__).parent / "data" / "gsm8k_test_slice.jsonl"
SLICE_LINE = {k: k for k in range(1, 101)} | {437: 101, 849: 102, 1144: 103}
GSM8K_TRAIN_SAME_NUMBERS = [  # (train line, the test line whose numbers it has, the row)
    (1843, 849, {"question": "Carmen is counting the cars that pass by her window. All the cars "
                 "are either white, black, or red. She sees 50 trucks and 40 cars. Half the "
                 "trucks are red, and another 20% are black. If she picks one car at random, "
                 "what is the percentage chance it's a white truck, rounded to the nearest "
                 "integer?", "answer": "#### 17"}),
    (3533, 437, {"question": "Donna is catering for a party. She makes 20 sandwiches and then "
                 "cuts them in half, before cutting them in half again. She then gives everyone "
                 "8 portions. How many people can she feed?", "answer": "#### 10"}),
    (6218, 1144, {"question": "Levi has 5 lemons. Jayden has 6 more lemons than Levi. Jayden has "
                  "one-third as many lemons as Eli has while Eli has one-half as many lemons as "
                  "Ian has. How many lemons do they have in all?", "answer": "#### 115"}),
]
# GPT-4 rephrasings of GSM8K-test lines 1 and 3 (lm-sys/llm-decontaminator,
# data/rephrase/rephrase_gsm8k.jsonl, Apache-2.0): new wording and order, every number kept
REPHRASED = {
    1: "Janet's ducks produce 16 eggs each day. She consumes three of them for her morning meal "
       "and uses four to bake muffins for her friends daily. The remaining eggs are sold at the "
       "daily farmers' market for $2 per egg. What is the daily amount in dollars that she "
       "earns at the farmers' market?",
    3: "Josh opts to venture into house flipping. He acquires a house for $80,000 and invests "
       "another $50,000 for renovations. As a result, the house's value surges by 150%. What is "
       "the amount of profit he realized?",
}


def run_gsm8k(tmp_path, train_rows, policy):
    train = write(tmp_path / "train.jsonl", train_rows)
    out, report = tmp_path / "clean.jsonl", tmp_path / "report.jsonl"
    assert decontaminate(["--train", str(train), "--test", str(SLICE), "--out", str(out),
                          "--report", str(report), "-q", "--policy", policy,
                          "--workers", "1"]) == 0
    records, summary = read_report(report)
    assert summary["read"] == summary["kept"] + summary["removed"] + summary["rejected"]
    return {r["train_line"]: r for r in records if "method" in r}


@pytest.mark.parametrize("policy", POLICIES)
def test_real_rephrasings_that_keep_the_numbers_are_removed(tmp_path, policy):
    flagged = run_gsm8k(tmp_path, [{"question": q, "answer": "#### 0"}
                                   for q in REPHRASED.values()], policy)
    assert set(flagged) == {1, 2}
    for n, k in enumerate(REPHRASED, 1):
        assert flagged[n]["method"] == "numbers_overlap"
        assert [m["test_line"] for m in flagged[n]["test_matches"]] == [SLICE_LINE[k]]


@pytest.mark.parametrize("policy", POLICIES)
def test_real_gsm8k_problems_sharing_every_number_are_kept(tmp_path, policy):
    """Each row has the same numbers as its test item and is another problem: numbers alone
    (InternLM-Math's exact number match) would remove all three."""
    flagged = run_gsm8k(tmp_path, [row for _, _, row in GSM8K_TRAIN_SAME_NUMBERS], policy)
    assert not flagged, {n: (r["method"], r["score"]) for n, r in flagged.items()}
    # and they are candidates: with both thresholds at 0, numbers_overlap pairs each with it
    from curation.clean.matchers import TrainRows
    from curation.clean.matchers.numbers_overlap import NumbersOverlap
    from curation.clean.testindex import TestItems

    items = TestItems.read([str(SLICE)])
    matcher = NumbersOverlap(items, similarity=0.0, evidence=0.0)
    rows = TrainRows([r["question"] for _, _, r in GSM8K_TRAIN_SAME_NUMBERS], [""] * 3)
    pairs = matcher.verify(rows, matcher.candidates(rows))
    assert {r: [items.items[m.item].line for m in ms] for r, ms in pairs.items()} == {
        k: [SLICE_LINE[line]] for k, (_, line, _) in enumerate(GSM8K_TRAIN_SAME_NUMBERS)}
