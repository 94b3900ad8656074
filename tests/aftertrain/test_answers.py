"""Answer extraction and grading on real GSM8K / MATH test lines (openai/gsm8k and
EleutherAI/hendrycks_math test splits, MIT), the file readers, Wilson intervals and the
decontamination report as `python -m curation decontaminate` writes it."""

from __future__ import annotations

import json
import sys

import pytest

from aftertrain.eval import answers, decon
from aftertrain.eval.data import EvalDataError, load_items
from aftertrain.eval.stats import wilson
from tests.helpers import run

# Real test rows, verbatim (GSM8K test lines 1-3; MATH test lines 10, 22, 367, 671, 527).
GSM8K_ROWS = [
    {"question": "Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?", "answer": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day at the farmer\u2019s market.\n#### 18"},  # noqa: E501
    {"question": "A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total does it take?", "answer": "It takes 2/2=<<2/2=1>>1 bolt of white fiber\nSo the total amount of fabric is 2+1=<<2+1=3>>3 bolts of fabric\n#### 3"},  # noqa: E501
    {"question": "Josh decides to try flipping a house.  He buys a house for $80,000 and then puts in $50,000 in repairs.  This increased the value of the house by 150%.  How much profit did he make?", "answer": "The cost of the house and repairs came out to 80,000+50,000=$<<80000+50000=130000>>130,000\nHe increased the value of the house by 80,000*1.5=<<80000*1.5=120000>>120,000\nSo the new value of the house is 120,000+80,000=$<<120000+80000=200000>>200,000\nSo he made a profit of 200,000-130,000=$<<200000-130000=70000>>70,000\n#### 70000"},  # noqa: E501
]
MATH_ROWS = [
    {"problem": "What is the smallest value of $x$ such that $|5x - 1| = |3x + 2|$? Express your answer as a common fraction.", "level": "Level 5", "type": "Algebra", "solution": "There are two cases, when $5x-1=3x+2$ and when $5x-1=-(3x+2).$ The two equations yield $x=\\frac{3}{2}$ and $x=-\\frac{1}{8},$ respectively, of which $x=\\boxed{-\\frac{1}{8}}$ is the smaller solution."},  # noqa: E501
    {"problem": "Mike paid $\\$1.25$ for a stamp three years ago. He was just offered double that amount for the stamp. Assuming the stamp's offer price doubles every three years, how many dollars will he be offered in 12 more years?", "level": "Level 4", "type": "Algebra", "solution": "The stamp is currently worth $\\$2.50$. $12$ years is four more doubling periods, so at the end the stamp will be worth $2^4=16$ times what it is now, or\n\n$$16(\\$2.50)=\\boxed{\\$40}$$"},  # noqa: E501
    {"problem": "Solve for $x$, where $x > 0$ and $0 = -9x^2 - 3x + 2.$ Express your answer as a simplified common fraction.", "level": "Level 3", "type": "Algebra", "solution": "We factor and obtain $-(3x - 1)(3x + 2) = 0.$ Clearly, the only positive solution for $x$ occurs when $3x - 1 = 0,$ giving us $x = \\boxed{\\dfrac{1}{3}}.$"},  # noqa: E501
    {"problem": "Heisenberg's Uncertainty Principle says that the product of the error in the measurement of a particle's momentum and the error in the measurement of a particle's position must be at least Planck's constant divided by $4\\pi$. Suppose the error in the measurement of the momentum of a particle is halved. By how many percent does the minimum error in the measurement of its position increase?", "level": "Level 5", "type": "Algebra", "solution": "Since the minimum position error and the momentum error are inversely proportional, halving one doubles the other, or increases it by $\\boxed{100\\%}$."},  # noqa: E501
    {"problem": "You have a square that has a side length of $1$ centimeter. Each minute, $2$ centimeters are added to the side length. After $10$ minutes, what will be the difference between the area of the last square and the area of the initial square in square centimeters (do not include the units in your answer)?", "level": "Level 4", "type": "Algebra", "solution": "The initial square has area $1^2 = 1\\text{ cm}^2$. After ten minutes, the side length of the square will be $1 + 2\\cdot 10 = 21\\text{ cm}$. So, the last square has area $21^2 = 441\\text{ cm}^2$. So the difference in areas is $441 - 1 = \\boxed{440\\text{ cm}^2}$."},  # noqa: E501
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_gsm8k_gold_from_the_public_schema_and_from_prepare(tmp_path):
    raw = write_jsonl(tmp_path / "test.jsonl", GSM8K_ROWS)
    prepared = tmp_path / "gsm8k_test.jsonl"
    done = run([sys.executable, "-m", "curation", "prepare", "gsm8k", "--split", "test",
                "--data-files", raw, "--out", prepared])
    assert done.returncode == 0, done.stdout
    for path in (raw, prepared):
        items, _ = load_items("gsm8k", path)
        assert [it.gold for it in items] == ["18", "3", "70000"]
        assert items[0].question == GSM8K_ROWS[0]["question"]
        assert items[2].where == f"{path}:3"


@pytest.mark.parametrize("reply, expected, how", [
    ("She makes 9 * 2 = 18 dollars.\nThe answer is 18.", "18", "format"),
    ("The answer is $70,000.", "70000", "format"),
    ("so the profit is 70,000\n#### 70000", "70000", "####"),
    ("The answer is 18.00", "18", "format"),
    ("Janet sells 9 eggs and makes $18 every day.", "18", "last number"),
    ("the answer is -3", "-3", "format"),
    ("I do not know.", None, "none"),
])
def test_gsm8k_extraction(reply, expected, how):
    assert answers.gsm8k_extract(reply) == (expected, how)


def test_gsm8k_grading_compares_numbers_not_strings():
    assert answers.gsm8k_correct("70000", answers.gsm8k_extract("The answer is 70,000.")[0])
    assert answers.gsm8k_correct("18", answers.gsm8k_extract("#### 18.0")[0])
    assert not answers.gsm8k_correct("18", answers.gsm8k_extract("The answer is 19.")[0])
    assert not answers.gsm8k_correct("18", None)


def test_math_gold_is_the_boxed_answer_of_real_solutions(tmp_path):
    items, _ = load_items("math", write_jsonl(tmp_path / "math.jsonl", MATH_ROWS))
    assert [it.gold for it in items] == [
        "-\\frac{1}{8}", "\\$40", "\\dfrac{1}{3}", "100\\%", "440\\text{ cm}^2"]


@pytest.mark.parametrize("gold, reply, correct", [
    ("-\\frac{1}{8}", "so $x = \\boxed{-\\frac{1}{8}}$.", True),
    ("-\\frac{1}{8}", "$\\boxed{-1/8}$", True),
    ("-\\frac{1}{8}", "$\\boxed{\\frac{1}{8}}$", False),
    ("\\dfrac{1}{3}", "giving $x = \\boxed{\\frac13}$", True),
    ("\\dfrac{1}{3}", "$\\boxed{\\dfrac{1}{3}}$", True),
    ("\\dfrac{1}{3}", "$\\boxed{\\frac{2}{3}}$", False),
    ("\\$40", "he will be offered $\\boxed{40}$ dollars", True),
    ("\\$40", "$\\boxed{\\$41}$", False),
    ("440\\text{ cm}^2", "the difference is $\\boxed{440}$", True),
    ("440\\text{ cm}^2", "$\\boxed{441\\text{ cm}^2}$", False),
    ("100\\%", "it increases by $\\boxed{100\\%}$", True),
])
def test_math_grading_with_math_verify(gold, reply, correct):
    assert answers.math_correct(gold, reply) is correct


def test_math_extraction_reports_how():
    assert answers.math_extract("so $\\boxed{\\dfrac{1}{3}}$.") == ("\\dfrac{1}{3}", "boxed")
    assert answers.math_extract("no answer here") == (None, "none")


def test_bad_lines_are_counted_with_file_and_line(tmp_path):
    path = tmp_path / "gsm8k.jsonl"
    path.write_text(json.dumps(GSM8K_ROWS[0]) + "\n{not json\n"
                    + json.dumps({"question": "q?", "answer": "no final line"}) + "\n")
    items, stats = load_items("gsm8k", path)
    assert len(items) == 1
    assert sum(stats.skipped.values()) == 2
    assert f"{path}:2" in stats.summary() and f"{path}:3" in stats.summary()


def test_a_file_without_items_is_an_error_naming_it(tmp_path):
    path = write_jsonl(tmp_path / "empty.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(EvalDataError, match="empty.jsonl"):
        load_items("gsm8k", path)
    with pytest.raises(EvalDataError, match="no such file"):
        load_items("gsm8k", tmp_path / "missing.jsonl")


def test_wilson_interval():
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    lo, hi = wilson(1319, 1319)
    assert hi == pytest.approx(1.0) and lo > 0.99


def test_decontamination_report_of_the_real_command(tmp_path):
    test = write_jsonl(tmp_path / "gsm8k_test.jsonl", GSM8K_ROWS)
    train_rows = [{"question": GSM8K_ROWS[1]["question"], "answer": "It takes 3 bolts.\n#### 3"},
                  {"question": "Tom has 4 apples and eats one. How many are left?",
                   "answer": "4-1=3\n#### 3"}]
    train = write_jsonl(tmp_path / "mix_train.jsonl", train_rows)
    clean, report = tmp_path / "mix_clean.jsonl", tmp_path / "mix_report.jsonl"
    done = run([sys.executable, "-m", "curation", "decontaminate", "--train", train, "--test",
                test, "--out", clean, "--report", report])
    assert done.returncode == 0, done.stdout
    assert decon.find_report([str(clean)]) == report
    finding = decon.read_report(report, test, {1, 2, 3})
    assert (finding.matched_items, finding.removed_rows, finding.checked) == (1, 1, True)
    assert "1 of 3 test items matched 1 training rows" in finding.line()
    assert "test items seen in training: 0 of 3 after decontamination" in finding.line()
    other = decon.read_report(report, tmp_path / "math_test.jsonl", {1})
    assert not other.checked and "unknown" in other.line()
