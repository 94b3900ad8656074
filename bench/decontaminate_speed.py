"""Benchmark: `python -m curation decontaminate` against MinHash-LSH baselines, end to end.

    python bench/decontaminate_speed.py [--train 200000] [--reps 3]        (or: make bench-curation)
    python bench/decontaminate_speed.py --real DIR [--times 10]   (make bench-curation DATA=DIR)

--real DIR: the real files instead (DIR/gsm8k/{train,test}.jsonl and DIR/math/{train,test}.jsonl,
see bench/curation_quality.py for where to get them): train = GSM8K-train + MATH-train, repeated
--times times (the mix, 149,730 rows at x10), against GSM8K-test + MATH-test.

Data (made here, cached in .cache/bench-curation/): 200k train rows of ~300 characters in
XTuner's conversation format against 1,319 GSM8K-like and 5,000 MATH-like test items (the sizes
of GSM8K test and MATH test). Words follow a Zipf law over a 30k-word vocabulary, with numbers
and, on the MATH side, LaTeX. 1 % of the train rows are planted leaks of test items: verbatim
copies, copies with two words changed, copies re-cased/re-punctuated/re-formatted.

Each system runs end to end in a fresh process, as a command would: start Python, read the
JSONL, take the text of each row, match, write the clean rows and a report. Each run writes new
files: the previous run's are deleted first, outside the timing (on this ext4, mounted with
discard, replacing a 100 MB file cost the replacing run 0.1-0.3 s, more while the file was still
being written back). The baselines are
the usual MinHash recipe (word 5-gram shingles, 128 permutations, LSH at Jaccard 0.7, test side
indexed, train side queried) with datasketch and with rensa. Figures are train rows per second
(median of --reps runs) and ratios to the baselines measured in the same run, plus how many
planted leaks each system removed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.clean.decontaminate import main as decontaminate  # noqa: E402
from curation.clean.jsonl import read_batches  # noqa: E402
from curation.clean.rowtext import row_text  # noqa: E402

FUNCTION_WORDS = (
    "the a of to and in is was how many what he she they it for with on at by each per "
    "has have had more than less total if then does did much every day week her his their"
).split()


def _vocabulary(rng, size=30_000) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 10, size)
    words = {"".join(rng.choice(letters, n)) for n in lengths}
    return FUNCTION_WORDS + sorted(words - set(FUNCTION_WORDS))


class TextMaker:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.vocab = np.array(_vocabulary(self.rng))
        ranks = np.arange(len(self.vocab))
        p = 1.0 / (ranks + 8.0)
        self.p = p / p.sum()

    def sentences(self, count: int, words: int, numbers: int, latex: bool = False) -> list[str]:
        ids = self.rng.choice(len(self.vocab), size=(count, words), p=self.p)
        nums = self.rng.integers(2, 1000, size=(count, numbers))
        where = self.rng.integers(1, words, size=(count, numbers))
        out = []
        for row, n_row, w_row in zip(ids, nums, where, strict=True):
            toks = list(self.vocab[row])
            for n, w in zip(n_row.tolist(), w_row.tolist(), strict=True):
                toks[w] = f"${n}$" if latex and n % 3 == 0 else str(n)
            if latex:
                toks.insert(len(toks) // 2, f"$\\frac{{{n_row[0]}}}{{{n_row[-1]}}}$")
            out.append(" ".join(toks).capitalize() + "?")
        return out


def make_corpus(directory: Path, n_train: int, n_gsm=1319, n_math=5000, leak_rate=0.01,
                seed=0) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    meta = directory / "meta.json"
    if meta.is_file():
        return json.loads(meta.read_text())
    maker = TextMaker(seed)
    rng = maker.rng
    gsm = maker.sentences(n_gsm, 44, 4)
    math_items = maker.sentences(n_math, 30, 3, latex=True)
    with open(directory / "gsm_test.jsonl", "w") as f:
        for q in gsm:
            f.write(json.dumps({"question": q, "answer": "#### 42"}) + "\n")
    with open(directory / "math_test.jsonl", "w") as f:
        for q in math_items:
            f.write(json.dumps({"problem": q, "solution": "$\\boxed{7}$", "level": "Level 3",
                                "type": "Algebra"}) + "\n")
    questions = maker.sentences(n_train, 42, 4)
    answers = maker.sentences(n_train, 12, 2)
    tests = gsm + math_items
    leaks = rng.choice(n_train, int(n_train * leak_rate), replace=False)
    kinds = {}
    for k, row in enumerate(leaks.tolist()):
        source = tests[int(rng.integers(len(tests)))]
        kind = ("verbatim", "two_words_changed", "reformatted")[k % 3]
        if kind == "two_words_changed":
            words = source.split(" ")
            for pos in rng.choice(len(words), 2, replace=False).tolist():
                words[pos] = "changed"
            source = " ".join(words)
        elif kind == "reformatted":
            source = re.sub(r"\$(\d+)\$", r"\1", source.upper().replace(" ", "  "))
        questions[row] = source
        kinds[row] = kind
    with open(directory / "train.jsonl", "w") as f:
        for q, a in zip(questions, answers, strict=True):
            f.write(json.dumps({"conversation": [{"input": q, "output": a}]}) + "\n")
    info = {
        "train_rows": n_train,
        "test_items": len(tests),
        "leaks": {str(r + 1): kind for r, kind in kinds.items()},  # 1-based line numbers
        "mean_text_chars": round(float(np.mean([len(q) + len(a) for q, a in
                                                zip(questions, answers, strict=True)])), 1),
    }
    meta.write_text(json.dumps(info))
    return info


def real_corpus(source: Path, directory: Path, times: int) -> dict:
    """The real mix as the benchmark's files (train.jsonl, gsm_test.jsonl, math_test.jsonl)."""
    files = {k: source / k for k in ("gsm8k/train.jsonl", "math/train.jsonl",
                                      "gsm8k/test.jsonl", "math/test.jsonl")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: see bench/curation_quality.py for "
                         "where to get GSM8K and MATH")
    directory.mkdir(parents=True, exist_ok=True)
    mix = files["gsm8k/train.jsonl"].read_bytes() + files["math/train.jsonl"].read_bytes()
    (directory / "train.jsonl").write_bytes(mix * times)
    (directory / "gsm_test.jsonl").write_bytes(files["gsm8k/test.jsonl"].read_bytes())
    (directory / "math_test.jsonl").write_bytes(files["math/test.jsonl"].read_bytes())
    rows = mix.count(b"\n")
    tests = sum(files[k].read_bytes().count(b"\n") for k in ("gsm8k/test.jsonl",
                                                             "math/test.jsonl"))
    return {"train_rows": rows * times, "test_items": tests, "leaks": {},
            "mean_row_bytes": len(mix) // rows}


# ---- baselines: the common MinHash-LSH recipe, end to end ----------------------------------

_WORD = re.compile(r"\w+")


def _shingles(text: str, n: int = 5) -> list[str]:
    words = _WORD.findall(text.lower())
    return [" ".join(words[i : i + n]) for i in range(max(len(words) - n + 1, 1))]


def _texts(path: str):
    for batch in read_batches(path):
        for i, row in enumerate(batch.rows):
            if batch.errors[i] is None:
                prompt, rest = row_text(row)
                yield batch.first_line + i, batch.raw[i], prompt
            else:
                yield batch.first_line + i, batch.raw[i], None


def _filter(train: str, out: str, report: str, sketch, lsh) -> None:
    """The anchors' shared pass: sketch train rows 4096 at a time, query the test side's LSH,
    write unmatched rows to `out` and matched ones to `report`."""
    with open(out, "wb") as clean, open(report, "w") as rep:
        batch = []

        def flush():
            for (line, raw, _), m in zip(batch, sketch([t for _, _, t in batch]), strict=True):
                hits = lsh.query(m)
                if hits:
                    rep.write(json.dumps({"train_line": line, "method": "minhash",
                                          "test": sorted(hits)}) + "\n")
                else:
                    clean.write(raw + b"\n")
            batch.clear()

        for line, raw, text in _texts(train):
            batch.append((line, raw, text or ""))
            if len(batch) == 4096:
                flush()
        flush()


def baseline_datasketch(train: str, tests: list[str], out: str, report: str) -> None:
    from datasketch import MinHash, MinHashLSH

    def sketch(texts):
        return MinHash.bulk([[s.encode() for s in _shingles(t)] for t in texts], num_perm=128)

    lsh = MinHashLSH(threshold=0.7, num_perm=128)
    test_texts = [t for p in tests for _, _, t in _texts(p) if t is not None]
    with lsh.insertion_session() as session:
        for k, m in enumerate(sketch(test_texts)):
            session.insert(k, m, check_duplication=False)
    _filter(train, out, report, sketch, lsh)


def baseline_rensa(train: str, tests: list[str], out: str, report: str) -> None:
    from rensa import RMinHash, RMinHashLSH

    def sketch(texts):
        return RMinHash.from_token_sets([_shingles(t) for t in texts], 128, 42)

    lsh = RMinHashLSH(0.7, 128, 16)
    test_texts = [t for p in tests for _, _, t in _texts(p) if t is not None]
    for k, m in enumerate(sketch(test_texts)):
        lsh.insert(k, m)
    _filter(train, out, report, sketch, lsh)


def ours(policy: str, workers: int):
    def run(train, tests, out, report) -> set[int]:
        argv = ["--train", train, "--out", out, "--report", report, "--policy", policy, "-q",
                "--workers", str(workers)]
        for t in tests:
            argv += ["--test", t]
        if decontaminate(argv) != 0:
            raise SystemExit("decontaminate failed")

    return run


SYSTEMS = {
    "datasketch MinHash-LSH": baseline_datasketch,
    "rensa MinHash-LSH": baseline_rensa,
    "decontaminate default (1 process)": ours("default", 1),
    "decontaminate default (2 workers)": ours("default", 2),
    "decontaminate strict (2 workers)": ours("strict", 2),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=200_000, help="train rows")
    parser.add_argument("--reps", type=int, default=3, help="runs per system (median)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument("--cache", default=str(REPO / ".cache" / "bench-curation"))
    parser.add_argument("--real", type=Path, metavar="DIR", help="real GSM8K/MATH files")
    parser.add_argument("--times", type=int, default=10, help="--real: repeats of the mix")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one system, in this process
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        data = Path(args.data)
        SYSTEMS[args.one](str(data / "train.jsonl"),
                          [str(data / "gsm_test.jsonl"), str(data / "math_test.jsonl")],
                          args.out, args.report)
        return 0

    t = time.perf_counter()
    if args.real:
        data = Path(args.cache) / f"real_x{args.times}"
        info = real_corpus(args.real, data, args.times)
        args.train = info["train_rows"]
        print(f"data: real GSM8K-train + MATH-train x{args.times} = {info['train_rows']:,} "
              f"train rows (mean {info['mean_row_bytes']} bytes a row), GSM8K-test + "
              f"MATH-test {info['test_items']:,} test items [{data}]", flush=True)
    else:
        data = Path(args.cache) / f"train{args.train}"
        info = make_corpus(data, args.train)
        print(f"data: {info['train_rows']:,} train rows (mean {info['mean_text_chars']} chars "
              f"of text), {info['test_items']:,} test items, {len(info['leaks'])} planted "
              f"leaks [{data}, {time.perf_counter() - t:.1f} s]", flush=True)
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().split()[:3]}; cpus: {os.cpu_count()}", flush=True)
    leaks = {int(k): v for k, v in info["leaks"].items()}
    names = [s.strip() for s in args.systems.split(",")]
    times: dict[str, list[float]] = {n: [] for n in names}
    caught: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):  # interleaved, so load changes hit every system alike
            for name in names:
                out, report = os.path.join(tmp, "clean.jsonl"), os.path.join(tmp, "report.jsonl")
                # every run writes new files: the previous run's ~100 MB are deleted first,
                # untimed, so no run pays for freeing (or writing back) another's output
                for path in (out, report):
                    if os.path.exists(path):
                        os.unlink(path)
                # each run is a fresh process, as a command would be: interpreter start and
                # imports count for every system alike
                t = time.perf_counter()
                subprocess.run([sys.executable, __file__, "--one", name, "--data", str(data),
                                "--out", out, "--report", report], check=True)
                times[name].append(time.perf_counter() - t)
                print(f"  run {rep + 1} {name}: {times[name][-1]:.2f} s", flush=True)
                with open(report) as f:
                    removed = {r["train_line"] for r in map(json.loads, f) if "method" in r}
                kinds = {}
                for line, kind in leaks.items():
                    kinds.setdefault(kind, [0, 0])
                    kinds[kind][1] += 1
                    kinds[kind][0] += line in removed
                caught[name] = {"kinds": kinds, "other": len(removed - set(leaks))}

    anchors = [n for n in names if "MinHash-LSH" in n]
    print(f"\n{'system':34s} {'median s':>9s} {'rows/s':>9s} "
          + "".join(f"{'x ' + a.split()[0]:>12s}" for a in anchors)
          + "   planted leaks removed (verbatim, 2 words changed, reformatted); other rows")
    for name in names:
        med = statistics.median(times[name])
        ratios = "".join(f"{statistics.median(times[a]) / med:12.1f}" for a in anchors)
        k = caught[name]["kinds"]
        leak_text = ", ".join(f"{k[kind][0]}/{k[kind][1]}" for kind in
                              ("verbatim", "two_words_changed", "reformatted") if kind in k)
        print(f"{name:34s} {med:9.2f} {args.train / med:9,.0f}{ratios}   {leak_text}; "
              f"{caught[name]['other']}")
    with open("/proc/loadavg") as f:
        print(f"load average after: {f.read().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
