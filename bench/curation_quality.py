"""What each decontamination method catches and misses, measured (make bench-curation-quality).

    python bench/curation_quality.py [--gsm8k DIR]

1. Always: the pack's handwritten set (tests/curation/decon_data.py): for each kind of train row
   (verbatim copies, light edits, rephrasings, new numbers, distinct problems, hard negatives)
   and each policy, how many rows were removed, and how many each method matched.
2. With --gsm8k DIR: real data, not shipped with the pack. DIR must hold
       gsm8k_test.jsonl, gsm8k_train.jsonl  GSM8K {"question", "answer"} (MIT), e.g. gunzipped
                                            from allenai/decon bundled-evals/
       rephrase_gsm8k.jsonl                 lm-sys/llm-decontaminator data/rephrase/ (Apache-2.0):
                                            GPT-4 rephrasings, line i rephrases test line i
   and the anchors run on the same data in the same run: any shared word 13-gram (GPT-3, Qwen),
   any shared 10-gram or a whole short item (DeepSeekMath), MinHash LSH at Jaccard 0.7 on word
   5-grams (datasketch), and the same ordered number sequence (InternLM-Math's "exact number
   match" read literally). Columns: rephrasings caught against their own test item; rephrasings
   matched to another item; GSM8K-train rows flagged; GSM8K-test items matching another one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.clean.decontaminate import main as decontaminate  # noqa: E402
from curation.clean.matchers import METHODS  # noqa: E402
from tests.curation.decon_helpers import (  # noqa: E402
    CATEGORIES,
    read_report,
    write_test_files,
    write_train_file,
)


def ours(train: Path, tests: list[Path], tmp: Path, policy: str) -> dict[int, dict]:
    out, report = tmp / "clean.jsonl", tmp / "report.jsonl"
    argv = ["--train", str(train), "--out", str(out), "--report", str(report), "-q",
            "--policy", policy]
    for t in tests:
        argv += ["--test", str(t)]
    assert decontaminate(argv) == 0
    records, _ = read_report(report)
    return {r["train_line"]: r for r in records if "method" in r}


def handwritten(tmp: Path) -> None:
    tests = write_test_files(tmp)
    train = tmp / "train.jsonl"
    rows = write_train_file(train)
    totals = Counter(cat for cat, _, _ in rows)
    print("Handwritten set (tests/curation/decon_data.py): rows removed / rows, and rows each "
          "method matched")
    header = f"{'kind of train row':16s} {'rows':>4s} {'default':>8s} {'strict':>7s}   " + \
        " ".join(f"{m:>15s}" for m in METHODS)
    print(header)
    flagged = {p: ours(train, list(tests), tmp, p) for p in ("default", "strict")}
    for cat in CATEGORIES:
        lines = [n for n, (c, _, _) in enumerate(rows, 1) if c == cat]
        removed = {p: sum(n in flagged[p] for n in lines) for p in flagged}
        by_method = Counter(m for n in lines if n in flagged["strict"]
                            for m in flagged["strict"][n]["methods"])
        print(f"{cat:16s} {totals[cat]:4d} {removed['default']:8d} {removed['strict']:7d}   "
              + " ".join(f"{by_method[m]:15d}" for m in METHODS))
    print("(method columns: under --policy strict, rows matched by the method at all; a row "
          "can be matched by several)\n")


# ---- anchors, as their sources describe them ----------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace(",", ""))


def ngram_anchor(n: int, short_exact: bool):
    def flag(tests: list[str], queries: list[str]) -> list[set[int]]:
        index: dict[tuple, set[int]] = {}
        shorts: dict[tuple, set[int]] = {}
        for i, t in enumerate(tests):
            w = _words(t)
            if short_exact and 3 <= len(w) < n:
                shorts.setdefault(tuple(w), set()).add(i)
            for j in range(len(w) - n + 1):
                index.setdefault(tuple(w[j : j + n]), set()).add(i)
        out = []
        for q in queries:
            w = _words(q)
            hit: set[int] = set()
            for j in range(len(w) - n + 1):
                hit |= index.get(tuple(w[j : j + n]), set())
            for k in {len(s) for s in shorts}:
                for j in range(len(w) - k + 1):
                    hit |= shorts.get(tuple(w[j : j + k]), set())
            out.append(hit)
        return out

    return flag


def minhash_anchor(tests: list[str], queries: list[str]) -> list[set[int]]:
    from datasketch import MinHash, MinHashLSH

    def sketch(text):
        w = _words(text)
        return {" ".join(w[j : j + 5]).encode() for j in range(max(len(w) - 4, 1))}

    lsh = MinHashLSH(threshold=0.7, num_perm=128)
    for i, m in enumerate(MinHash.bulk([list(sketch(t)) for t in tests], num_perm=128)):
        lsh.insert(i, m)
    return [set(lsh.query(m)) for m in MinHash.bulk([list(sketch(q)) for q in queries],
                                                    num_perm=128)]


def number_sequence_anchor(tests: list[str], queries: list[str]) -> list[set[int]]:
    index: dict[tuple, set[int]] = {}
    for i, t in enumerate(tests):
        key = tuple(_NUMBER.findall(t.replace(",", "")))
        if len(key) >= 2:
            index.setdefault(key, set()).add(i)
    return [index.get(tuple(_NUMBER.findall(q.replace(",", ""))), set()) for q in queries]


def ours_anchor(policy: str, tmp: Path):
    def flag(tests: list[str], queries: list[str]) -> list[set[int]]:
        test_file, query_file = tmp / "test.jsonl", tmp / "queries.jsonl"
        test_file.write_text("".join(json.dumps({"question": t}) + "\n" for t in tests))
        query_file.write_text("".join(json.dumps({"question": q}) + "\n" for q in queries))
        flagged = ours(query_file, [test_file], tmp, policy)
        return [{m["test_line"] - 1 for m in flagged[n]["test_matches"]} if n in flagged
                else set() for n in range(1, len(queries) + 1)]

    return flag


def real(directory: Path, tmp: Path) -> None:
    def questions(name, key="question"):
        return [json.loads(line)[key] for line in open(directory / name)]

    test, train = questions("gsm8k_test.jsonl"), questions("gsm8k_train.jsonl")
    rephrased = [t.split("\nAnswer:")[0].removeprefix("Question: ")
                 for t in questions("rephrase_gsm8k.jsonl", "text")]
    assert len(rephrased) == len(test), "rephrase_gsm8k.jsonl must be line-aligned with test"
    systems = {
        "13-gram, any (GPT-3, Qwen)": ngram_anchor(13, False),
        "10-gram, any + short exact (DeepSeekMath)": ngram_anchor(10, True),
        "MinHash-LSH J>=0.7, 5-grams (datasketch)": minhash_anchor,
        "same number sequence, >=2 (InternLM, literal)": number_sequence_anchor,
        "decontaminate --policy default": ours_anchor("default", tmp),
        "decontaminate --policy strict": ours_anchor("strict", tmp),
    }
    print(f"GSM8K: {len(test)} test, {len(train)} train, {len(rephrased)} GPT-4 rephrasings "
          f"of the test problems (lm-sys)")
    print(f"{'system':46s} {'rephrasings caught':>19s} {'wrong item':>10s} "
          f"{'train flagged':>13s} {'test~test':>9s}")
    for name, flag in systems.items():
        hits = flag(test, rephrased)
        caught = sum(i in h for i, h in enumerate(hits))
        wrong = sum(bool(h - {i}) for i, h in enumerate(hits))
        train_flagged = sum(bool(h) for h in flag(test, train))
        in_test = sum(bool(h - {i}) for i, h in enumerate(flag(test, test)))
        print(f"{name:46s} {caught:5d} ({caught / len(test):5.1%})     {wrong:10d} "
              f"{train_flagged:13d} {in_test:9d}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gsm8k", type=Path, help="directory with the GSM8K files (see above)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        handwritten(Path(tmp))
        if args.gsm8k:
            real(args.gsm8k, Path(tmp))
        else:
            print("GSM8K: skipped (--gsm8k DIR; see this script's docstring)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
