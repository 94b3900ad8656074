"""What each decontamination method catches and wrongly removes, on real data (make
bench-curation-quality DATA=dir).

    python bench/curation_quality.py [--data DIR] [--public DIR] [--sample N]

1. Always: the pack's handwritten set (bench/decon_items.py): for each kind of train row
   and each policy, rows removed, and rows each method matched.
2. With --data DIR (the real files; not shipped with the pack): DIR/gsm8k/{train,test}.jsonl
   (openai/grade-school-math, grade_school_math/data/, MIT, {"question", "answer"}) and
   DIR/math/{train,test}.jsonl (the MATH dataset in EleutherAI/hendrycks_math's schema, the seven
   subjects concatenated, {"problem", "level", "type", "solution"}). The test side is the
   mathmix recipe's: GSM8K-test and MATH-test together.
   - caught: perturbation variants of GSM8K-test made here (bench/perturb.py: numbers changed,
     names changed, both, paraphrased by template, and "harder": both changed and two clauses
     added; one per test problem) whose own test item is matched; wrong item: variants
     matched to some other item.
   - with --public DIR, the same for the public perturbation sets found there (LLM
     rephrasings that keep the numbers, GSM-Symbolic and its harder P1/P2 templates, GSM-Plus
     by perturbation type; bench/perturb.py's PUBLIC_WHERE says where to get them).
   - train flagged: GSM8K-train and MATH-train rows (question/problem and answer/solution)
     removed. Train and test are different problems by construction, so these are mostly false
     removals; some are real near-duplicates (the labelled sample in docs/curation.md).
   Beside ours, in the same run: any shared word 13-gram (GPT-3, Qwen), any shared 10-gram or a
   whole short item (DeepSeekMath), and MinHash-LSH at Jaccard 0.7 on word 5-grams (rensa).
   --sample N prints N removed train rows per method, with their test item, for labelling.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from perturb import PUBLIC_WHERE, public_sets, variants  # noqa: E402

from bench.decon_set import (  # noqa: E402
    CATEGORIES,
    read_report,
    write_test_files,
    write_train_file,
)
from curation.clean.decontaminate import main as decontaminate  # noqa: E402
from curation.clean.matchers import METHODS  # noqa: E402

WHERE = ("the real files are not shipped: get GSM8K from openai/grade-school-math "
         "(grade_school_math/data/{train,test}.jsonl) and MATH in EleutherAI/hendrycks_math's "
         "schema (the seven subjects' train and test splits concatenated) into DIR/gsm8k/ and "
         "DIR/math/, then pass --data DIR")


def ours(train: list[Path], tests: list[Path], tmp: Path, policy: str) -> dict:
    """{(train file, line): report record} of the rows decontaminate removes."""
    out, report = tmp / "clean.jsonl", tmp / "report.jsonl"
    argv = ["--out", str(out), "--report", str(report), "-q", "--policy", policy]
    for t in train:
        argv += ["--train", str(t)]
    for t in tests:
        argv += ["--test", str(t)]
    assert decontaminate(argv) == 0
    records, summary = read_report(report)
    assert summary["read"] == summary["kept"] + summary["removed"] + summary["rejected"]
    return {(r["train_file"], r["train_line"]): r for r in records if "method" in r}


def handwritten(tmp: Path) -> None:
    tests = write_test_files(tmp)
    train = tmp / "train.jsonl"
    rows = write_train_file(train)
    totals = Counter(cat for cat, _, _ in rows)
    print("Handwritten set (bench/decon_items.py): rows removed / rows, and rows each "
          "method matched (under strict)")
    print(f"{'kind of train row':16s} {'rows':>4s} {'default':>8s} {'strict':>7s}   "
          + " ".join(f"{m:>15s}" for m in METHODS))
    flagged = {p: {k[1]: v for k, v in ours([train], list(tests), tmp, p).items()}
               for p in ("default", "strict")}
    for cat in CATEGORIES:
        lines = [n for n, (c, _, _) in enumerate(rows, 1) if c == cat]
        removed = {p: sum(n in flagged[p] for n in lines) for p in flagged}
        by_method = Counter(m for n in lines if n in flagged["strict"]
                            for m in flagged["strict"][n]["methods"])
        print(f"{cat:16s} {totals[cat]:4d} {removed['default']:8d} {removed['strict']:7d}   "
              + " ".join(f"{by_method[m]:15d}" for m in METHODS))
    print()


# ---- anchors, as their sources describe them ----------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


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
        lengths = {len(s) for s in shorts}
        out = []
        for q in queries:
            w = _words(q)
            hit: set[int] = set()
            for j in range(len(w) - n + 1):
                hit |= index.get(tuple(w[j : j + n]), set())
            for k in lengths:
                for j in range(len(w) - k + 1):
                    hit |= shorts.get(tuple(w[j : j + k]), set())
            out.append(hit)
        return out

    return flag


def minhash_anchor(tests: list[str], queries: list[str]) -> list[set[int]]:
    from rensa import RMinHash, RMinHashLSH

    def sketch(text):
        w = _words(text)
        grams = [" ".join(w[j : j + 5]) for j in range(max(len(w) - 4, 1))]
        m = RMinHash(128, 42)
        m.update(grams)
        return m

    lsh = RMinHashLSH(0.7, 128, 32)
    for i, t in enumerate(tests):
        lsh.insert(i, sketch(t))
    out = []
    for q in queries:
        s = sketch(q)
        out.append({i for i in lsh.query(s) if s.jaccard(sketch(tests[i])) >= 0.7})
    return out


def load(path: Path, prompt: str, rest: str | None) -> list[dict]:
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    return [{"prompt": r[prompt], "rest": r[rest] if rest else ""} for r in rows]


def real(data: Path, tmp: Path, sample: int, public: Path | None = None) -> None:
    files = {"gsm8k_test": data / "gsm8k/test.jsonl", "math_test": data / "math/test.jsonl",
             "gsm8k_train": data / "gsm8k/train.jsonl", "math_train": data / "math/train.jsonl"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: {WHERE}")
    gsm_test = load(files["gsm8k_test"], "question", None)
    math_test = load(files["math_test"], "problem", None)
    gsm_train = load(files["gsm8k_train"], "question", "answer")
    math_train = load(files["math_train"], "problem", "solution")
    tests = [r["prompt"] for r in gsm_test + math_test]
    test_paths = [files["gsm8k_test"], files["math_test"]]
    item_of = {(str(files["gsm8k_test"]), k + 1): k for k in range(len(gsm_test))}
    item_of.update({(str(files["math_test"]), k + 1): len(gsm_test) + k
                    for k in range(len(math_test))})
    # {set: (variant texts, the GSM8K-test item each was made from)}
    kinds = {kind: (qs, list(range(len(qs)))) for kind, qs in variants(
        [r["prompt"] for r in gsm_test], [r["prompt"] for r in gsm_test + gsm_train]).items()}
    ours_kinds = list(kinds)
    public_kinds = []
    if public is not None:
        for name, rows in public_sets(public, [r["prompt"] for r in gsm_test]).items():
            kinds[name] = ([q for q, _ in rows], [i for _, i in rows])
            public_kinds.append(name)
    train_sets = {"gsm8k_train": gsm_train, "math_train": math_train}

    # every system: {set name: [set of test item indexes hit, per row]}
    def anchor_hits(flag):
        hits = {kind: flag(tests, qs) for kind, (qs, _) in kinds.items()}
        for name, rows in train_sets.items():
            hits[name] = flag(tests, [r["prompt"] + "\n" + r["rest"] for r in rows])
        return hits

    def minhash_hits():
        hits = {kind: minhash_anchor(tests, qs) for kind, (qs, _) in kinds.items()}
        for name, rows in train_sets.items():
            hits[name] = minhash_anchor(tests, [r["prompt"] for r in rows])
        return hits

    def ours_hits(policy):
        paths = []
        for k, (kind, (qs, _)) in enumerate(kinds.items()):
            p = tmp / f"variants_{k}.jsonl"
            p.write_text("".join(json.dumps({"question": q}) + "\n" for q in qs))
            paths.append((kind, p, len(qs)))
        paths += [("gsm8k_train", files["gsm8k_train"], len(gsm_train)),
                  ("math_train", files["math_train"], len(math_train))]
        flagged = ours([p for _, p, _ in paths], test_paths, tmp, policy)
        hits, methods = {}, {}
        for kind, p, n in paths:
            recs = [flagged.get((str(p), line)) for line in range(1, n + 1)]
            hits[kind] = [{item_of[(m["test_file"], m["test_line"])] for m in r["test_matches"]}
                          if r else set() for r in recs]
            methods[kind] = [r["methods"] if r else [] for r in recs]
        return hits, methods, flagged

    systems = {
        "13-gram, any (GPT-3, Qwen)": anchor_hits(ngram_anchor(13, False)),
        "10-gram, any + short exact (DeepSeekMath)": anchor_hits(ngram_anchor(10, True)),
        "MinHash-LSH J>=0.7, 5-grams (rensa)": minhash_hits(),
    }
    per_method, reports = {}, {}
    for policy in ("default", "strict"):
        hits, methods, flagged = ours_hits(policy)
        systems[f"decontaminate --policy {policy}"] = hits
        per_method[policy], reports[policy] = methods, flagged

    def caught(hits, kind):
        return sum(own in h for own, h in zip(kinds[kind][1], hits[kind], strict=True))

    def wrong(hits, names):
        return sum(bool(h - {own}) for k in names
                   for own, h in zip(kinds[k][1], hits[k], strict=True))

    n = len(gsm_test)
    print(f"Real data: test side GSM8K-test {len(gsm_test)} + MATH-test {len(math_test)}; "
          f"variants of the {n} GSM8K-test problems; train GSM8K {len(gsm_train)}, "
          f"MATH {len(math_train)}")
    head = " ".join(f"{k:>15s}" for k in ours_kinds)
    print(f"{'system':44s} {head}  {'wrong item':>10s} {'GSM8K-train':>11s} {'MATH-train':>10s}")
    print(f"{'':44s} " + " ".join(f"{'caught':>15s}" for _ in ours_kinds)
          + f"  {'(all kinds)':>10s} {'flagged':>11s} {'flagged':>10s}")
    for name, hits in systems.items():
        print(f"{name:44s} " + " ".join(
            f"{c:5d} ({c / n:5.1%})  " for c in (caught(hits, k) for k in ours_kinds))
              + f"  {wrong(hits, ours_kinds):10d} {sum(map(bool, hits['gsm8k_train'])):11d} "
              f"{sum(map(bool, hits['math_train'])):10d}")
    if public_kinds:
        print(f"\nPublic perturbation sets of GSM8K-test ({public}): caught (own item) / rows")
        for group in (public_kinds[:1] + [k for k in public_kinds if "Symbolic" in k],
                      [k for k in public_kinds if k.startswith("GSM-Plus")]):
            if not group:
                continue
            labels = [k.replace("GSM-Plus ", "").replace("integer-decimal-fraction",
                                                          "int-dec-frac")[:17] for k in group]
            print(f"{'system':44s} " + " ".join(f"{x:>17s}" for x in labels)
                  + f"  {'wrong item':>10s}")
            for name, hits in systems.items():
                cells = [(caught(hits, k), len(kinds[k][0])) for k in group]
                print(f"{name:44s} " + " ".join(f"{c:5d}/{t:<4d}({c / t:4.0%})".rjust(17)
                                                for c, t in cells)
                      + f"  {wrong(hits, group):10d}")
    print("\nPer method (rows each method matched at all; a row can match several):")
    sets = ours_kinds + public_kinds[:1] + ["gsm8k_train", "math_train"]
    print(f"{'policy':8s} {'method':16s} " + " ".join(f"{s[:13]:>13s}" for s in sets))
    for policy, methods in per_method.items():
        for m in METHODS:
            print(f"{policy:8s} {m:16s} "
                  + " ".join(f"{sum(m in ms for ms in methods[s]):13d}" for s in sets))
    if sample:
        print_sample(reports["default"], files, train_sets, tests, item_of, sample)


def print_sample(flagged: dict, files, train_sets, tests, item_of, k: int) -> None:
    """k removed train rows per method (default policy), with the test item they matched."""
    rng = random.Random(0)
    names = {str(files["gsm8k_train"]): "gsm8k_train", str(files["math_train"]): "math_train"}
    by_method: dict[str, list] = {}
    for (path, line), rec in flagged.items():
        if path in names:
            by_method.setdefault(rec["method"], []).append((names[path], line, rec))
    for method, recs in sorted(by_method.items()):
        print(f"\n== {method}: {len(recs)} train rows; sample of {min(k, len(recs))}")
        for name, line, rec in rng.sample(recs, min(k, len(recs))):
            m = rec["test_matches"][0]
            item = item_of[(m["test_file"], m["test_line"])]
            row = train_sets[name][line - 1]["prompt"]
            print(f"- {name}:{line} score {rec['score']}\n  train: {row[:300]!r}\n"
                  f"  test:  {Path(m['test_file']).parent.name}:{m['test_line']} "
                  f"{tests[item][:300]!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="directory with gsm8k/ and math/ (see above)")
    parser.add_argument("--public", type=Path, help=PUBLIC_WHERE)
    parser.add_argument("--sample", type=int, default=0, metavar="N")
    parser.add_argument("--no-handwritten", action="store_true")
    args = parser.parse_args(argv)
    if args.public is not None and not args.public.is_dir():
        raise SystemExit(f"--public {args.public}: not a folder ({PUBLIC_WHERE})")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_handwritten:
            handwritten(Path(tmp))
        if args.data:
            real(args.data, Path(tmp), args.sample, args.public)
        else:
            print(f"Real data: skipped ({WHERE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
