"""The labelled development set of the numbers_overlap decision, and its precision/recall
curve (make decon-devset DATA=dir PUBLIC=dir).

    python bench/decon_devset.py --data DIR [--public DIR] [--policy default]

Positives (the same problem told differently, each labelled with its GSM8K-test item): the
public perturbation sets found in --public (bench/perturb.py's PUBLIC_WHERE: LLM rephrasings,
GSM-Plus, GSM-Symbolic) and the variants bench/perturb.py makes. Split by item: items with an
even index are the development split the thresholds were chosen on, odd ones the evaluation
split they were not.
Negatives (other problems, often with the same numbers): GSM8K-train and MATH-train rows
(question/problem and answer/solution) against GSM8K-test + MATH-test; GSM8K-test items
against the other test items; and train against train (odd rows of GSM8K-train and MATH-train
against their even rows as the test side), where a flag is a distinct real problem.

The other methods run as the policy sets them; numbers_overlap weighs every candidate pair
(the same numbers) before any threshold (its share and evidence, summed for the batch), and
each grid point of --similarity x --evidence is the policy with those thresholds: recall per
positive set and split, rows flagged per negative set (all methods), and numbers_overlap's own
precision on the development split (its catches of rephrasings against its flags of
negatives).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from perturb import PUBLIC_WHERE, change_numbers, public_sets, variants  # noqa: E402

from curation.clean.decontaminate import find_matches  # noqa: E402
from curation.clean.matchers import POLICIES, TrainRows, build_matchers  # noqa: E402
from curation.clean.matchers.numbers_overlap import NumbersOverlap  # noqa: E402
from curation.clean.testindex import TestItems  # noqa: E402

SHARES = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
FLOORS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
BATCH = 2000


def load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def batches(prompts, rests):
    rests = rests or [""] * len(prompts)
    for s in range(0, len(prompts), BATCH):
        yield s, TrainRows(prompts[s : s + BATCH], rests[s : s + BATCH])


def flags(matchers, prompts, rests=None) -> dict[int, set[int]]:
    """{row: items} that some of `matchers` flags."""
    out: dict[int, set[int]] = {}
    for s, rows in batches(prompts, rests):
        for r, ms in find_matches(rows, matchers).items():
            out[s + r] = {m.item for m in ms}
    return out


class Scored:
    """One set of rows against one test side: what the policy's other methods flag (rows), and
    numbers_overlap's (row, item, share, evidence) for every pair with the same numbers."""

    def __init__(self, items: TestItems, policy: str, prompts, rests=None):
        others = [m for m in build_matchers(items, policy) if not isinstance(m, NumbersOverlap)]
        numbers = NumbersOverlap(items, similarity=0.0, evidence=0.0)
        self.prompts, self.rests = prompts, rests
        self.n = len(prompts)
        self.other = flags(others, prompts, rests)
        self.pairs: list[tuple[int, int, float, float]] = []
        for s, rows in batches(prompts, rests):
            r, i, share, found = numbers.weigh(rows, numbers.candidates(rows))
            self.pairs += list(zip((r + s).tolist(), i.tolist(), share.tolist(),
                                   found.tolist(), strict=True))

    def flagged(self, share: float, floor: float) -> dict[int, set[int]]:
        out = {r: set(i) for r, i in self.other.items()}
        for r, i, s, e in self.pairs:
            if s >= share and e >= floor:
                out.setdefault(r, set()).add(i)
        return out

    def numbers_only(self, share: float, floor: float) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for r, i, s, e in self.pairs:
            if s >= share and e >= floor:
                out.setdefault(r, set()).add(i)
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="gsm8k/ and math/ (see "
                        "bench/curation_quality.py)")
    parser.add_argument("--public", type=Path, help=PUBLIC_WHERE)
    parser.add_argument("--policy", default="default", choices=sorted(POLICIES))
    args = parser.parse_args(argv)
    from curation_quality import WHERE

    missing = [str(args.data / f) for f in ("gsm8k/test.jsonl", "gsm8k/train.jsonl",
                                           "math/test.jsonl", "math/train.jsonl")
               if not (args.data / f).is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: {WHERE}")
    if args.public is not None and not args.public.is_dir():
        raise SystemExit(f"--public {args.public}: not a folder ({PUBLIC_WHERE})")
    gsm_test = [r["question"] for r in load(args.data / "gsm8k/test.jsonl")]
    math_test = [r["problem"] for r in load(args.data / "math/test.jsonl")]
    gsm_train = load(args.data / "gsm8k/train.jsonl")
    math_train = load(args.data / "math/train.jsonl")
    items = TestItems.build([("gsm8k", k + 1, q) for k, q in enumerate(gsm_test)]
                            + [("math", k + 1, q) for k, q in enumerate(math_test)])

    positives = {f"ours: {k}": [(q, i) for i, q in enumerate(qs)] for k, qs in variants(
        gsm_test, gsm_test + [r["question"] for r in gsm_train]).items()}
    rng = random.Random(0)  # MATH-test with its numbers changed (those with a number)
    positives["ours: MATH numbers"] = [
        (v, len(gsm_test) + k) for k, (q, v) in enumerate(
            (q, change_numbers(q, rng)) for q in math_test) if v != q]
    if args.public:
        positives.update(public_sets(args.public, gsm_test))
    pos = {name: (rows, Scored(items, args.policy, [q for q, _ in rows]))
           for name, rows in positives.items()}

    neg = {
        "GSM8K-train": Scored(items, args.policy, [r["question"] for r in gsm_train],
                              [r["answer"] for r in gsm_train]),
        "MATH-train": Scored(items, args.policy, [r["problem"] for r in math_train],
                             [r["solution"] for r in math_train]),
    }
    test_self = Scored(items, args.policy, gsm_test)  # item k against the others
    # train against train: odd rows against even rows as the test side
    side = [(n, k + 1, r[f]) for n, rows, f in (("gsm8k", gsm_train, "question"),
                                                ("math", math_train, "problem"))
            for k, r in enumerate(rows) if k % 2 == 0]
    train_items = TestItems.build(side)
    odd = [r for rows in (gsm_train, math_train) for k, r in enumerate(rows) if k % 2 == 1]
    train_train = Scored(train_items, args.policy,
                         [r.get("question") or r["problem"] for r in odd],
                         [r.get("answer") or r["solution"] for r in odd])

    def recall(name, share, floor, split):
        rows, scored = pos[name]
        got = scored.flagged(share, floor)
        keep = [k for k, (_, i) in enumerate(rows) if i % 2 == split]
        return sum(rows[k][1] in got.get(k, ()) for k in keep) / max(len(keep), 1)

    chosen = (POLICIES[args.policy]["similarity"], POLICIES[args.policy]["evidence"])
    print(f"Development set: {sum(len(r) for r, _ in pos.values())} positives in "
          f"{len(pos)} sets (dev: items with an even index; eval: odd); negatives: "
          f"GSM8K-train {len(gsm_train)}, MATH-train {len(math_train)}, GSM8K-test against "
          f"itself {len(gsm_test)}, train against train {len(odd)} rows vs {len(side)}")
    print(f"policy {args.policy}; chosen: similarity {chosen[0]}, evidence {chosen[1]}\n")
    print("Recall (own item caught, all methods), development / evaluation split:")
    names = list(pos)
    width = max(map(len, names))
    for name in names:
        print(f"  {name:{width}s} " + "  ".join(
            f"{recall(name, *chosen, s):6.1%}" for s in (0, 1)))
    print("\nSweep (all methods; numbers_overlap at each threshold):")
    reph = [n for n in names if n.startswith("rephrase")] or ["ours: template"]
    harder = [n for n in names if n.endswith("P2")]
    head = (f"{'share':>5s} {'floor':>5s}  {'reph dev':>8s} {'reph eval':>9s} "
            + (f"{'P2 dev':>7s} {'P2 eval':>7s} " if harder else "")
            + f"{'GSM8K-tr':>8s} {'MATH-tr':>7s} {'test/test':>9s} {'tr/tr':>6s}  "
            "numbers_overlap: dev catches / its flags on negatives (precision)")
    print(head)
    for share in SHARES:
        for floor in FLOORS:
            mark = " <- chosen" if (share, floor) == chosen else ""
            own = [(rows, scored.numbers_only(share, floor)) for rows, scored in
                   (pos[reph[0]],)]
            tp = sum(rows[k][1] in got.get(k, ()) for rows, got in own
                     for k in range(len(rows)) if rows[k][1] % 2 == 0)
            fp = (sum(len(s.numbers_only(share, floor)) for s in neg.values())
                  + sum(bool(v - {r}) for r, v in test_self.numbers_only(share, floor).items())
                  + len(train_train.numbers_only(share, floor)))
            wrong_self = sum(bool(v - {r}) for r, v in test_self.flagged(share, floor).items())
            print(f"{share:5.2f} {floor:5.1f}  {recall(reph[0], share, floor, 0):8.1%} "
                  f"{recall(reph[0], share, floor, 1):9.1%} "
                  + (f"{recall(harder[0], share, floor, 0):7.1%} "
                     f"{recall(harder[0], share, floor, 1):7.1%} " if harder else "")
                  + f"{len(neg['GSM8K-train'].flagged(share, floor)):8d} "
                  f"{len(neg['MATH-train'].flagged(share, floor)):7d} {wrong_self:9d} "
                  f"{len(train_train.flagged(share, floor)):6d}  "
                  f"{tp:4d} / {fp:4d} ({tp / max(tp + fp, 1):.3f}){mark}")
    masked_sweep(items, args.policy, positives, gsm_test, gsm_train, math_train)
    return 0


MASKED = ((0.5, 4), (0.45, 4), (0.4, 4), (0.4, 5), (0.35, 4), (0.35, 3))
SPECIFIC = (0.4, 0.5)


def masked_sweep(items, policy, positives, gsm_test, gsm_train, math_train) -> None:
    """The n-gram methods' share of telling weight (`specific`), and masked_ngram10's coverage
    and content words: template variants (new numbers and names, clauses added) caught against
    rows flagged, all methods, beside a 13-gram rule."""
    from curation_quality import ngram_anchor

    from curation.clean.matchers import MaskedNgram

    sets = [k for k in positives if k.endswith(("P1", "P2", "Symbolic"))
            or k in ("ours: harder", "ours: numbers+names", "ours: MATH numbers")]
    plus = [k for k in positives if k.startswith("GSM-Plus")]
    base = [m for m in build_matchers(items, policy) if not isinstance(m, MaskedNgram)]
    tests = gsm_test + [it.text for it in items.items[len(gsm_test):]]
    anchor = ngram_anchor(13, False)

    def split_recall(name, got, split):
        rows = positives[name]
        keep = [k for k, (_, i) in enumerate(rows) if i % 2 == split]
        return sum(rows[k][1] in got[k] for k in keep) / max(len(keep), 1)

    def pooled(names, got_by, split):
        hit = tot = 0
        for name in names:
            rows = positives[name]
            keep = [k for k, (_, i) in enumerate(rows) if i % 2 == split]
            hit += sum(rows[k][1] in got_by[name][k] for k in keep)
            tot += len(keep)
        return hit / max(tot, 1)

    print("\nn-gram telling share, masked_ngram10 coverage and content words: recall dev / eval "
          "per template set (all methods), GSM-Plus pooled; rows flagged")
    print(f"{'':17s} " + " ".join(f"{k[-22:]:>22s}" for k in sets)
          + f" {'GSM-Plus (pooled)':>22s} {'GSM8K-tr':>8s} {'MATH-tr':>7s}")
    anchor_got = {k: anchor(tests, [q for q, _ in positives[k]]) for k in sets + plus}
    print(f"{'13-gram any':17s} " + " ".join(
        f"{split_recall(k, anchor_got[k], 0):10.1%} /{split_recall(k, anchor_got[k], 1):6.1%}"
        for k in sets)
        + f" {pooled(plus, anchor_got, 0):10.1%} /{pooled(plus, anchor_got, 1):6.1%}")
    ngram = base[0]
    for specific, (coverage, words) in ((s, m) for s in SPECIFIC for m in MASKED):
        ngram.specific = specific
        matchers = base + [MaskedNgram(items, coverage=coverage, min_words=words)]
        got = {}
        for k in sets + plus:
            f = flags(matchers, [q for q, _ in positives[k]])
            got[k] = [f.get(r, set()) for r in range(len(positives[k]))]
        g = flags(matchers, [r["question"] for r in gsm_train], [r["answer"] for r in gsm_train])
        m = flags(matchers, [r["problem"] for r in math_train], [r["solution"] for r in math_train])
        chosen = (POLICIES[policy]["masked"] == {"coverage": coverage, "min_words": words}
                  and POLICIES[policy]["specific"] == specific)
        print(f"{specific:4.2f} {coverage:5.2f} {words:2d}     " + " ".join(
            f"{split_recall(k, got[k], 0):10.1%} /{split_recall(k, got[k], 1):6.1%}"
            for k in sets) + f" {pooled(plus, got, 0):10.1%} /{pooled(plus, got, 1):6.1%}"
            + f" {len(g):8d} {len(m):7d}" + ("  <- chosen" if chosen else ""))


if __name__ == "__main__":
    sys.exit(main())
