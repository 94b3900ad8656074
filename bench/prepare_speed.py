"""`make bench-prepare`: how fast `prepare` converts 200k rows, against two anchors in the same run.

Input: 200k synthetic orca-math rows (question/answer, ~300 characters each), 1% of them bad,
and 50k synthetic ShareGPT records (4 turns) in one JSON array. For each, three ways to get
XTuner-ready JSONL, timed end to end (read, convert, write):

  floor    json.loads each row, build the conversation inline, json.dumps: no checks, no counts
  datasets datasets.load_dataset("json") + Dataset.map(a map function) + to_json: the way XTuner's
           docs convert custom data (rebuilt cache each time, one process)
  prepare  python -m curation prepare's code path (validation, skip counts, atomic write)

Prints rows/s and prepare's time as a ratio of each anchor's, median of --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from curation.convert.load import open_conversion
from curation.convert.prepare import write_jsonl_atomically


def make_orca(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = "apples oranges train station minutes speed total price each more than".split()
    with open(path, "w") as f:
        for i in range(rows):
            a, b = rng.randint(2, 999), rng.randint(2, 999)
            filler = " ".join(rng.choice(words) for _ in range(20))
            row = {"question": f"A shop sells {a} items and {b} more ({filler}). How many?",
                   "answer": f"It sells {a} + {b} = {a + b}. {filler}. The answer is {a + b}."}
            if i % 100 == 0:
                row.pop("answer")  # 1% bad: counted, skipped
            f.write(json.dumps(row) + "\n")


def make_sharegpt(path: Path, records: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    data = []
    for i in range(records):
        turns = []
        for k in range(4):
            text = " ".join(rng.choice("how do I sort a list in python quickly".split())
                            for _ in range(30))
            turns.append({"from": "human" if k % 2 == 0 else "gpt", "value": text})
        data.append({"id": f"bench{i}_0", "conversations": turns})
    path.write_text(json.dumps(data, indent=1))


def floor_orca(src: Path, out: Path) -> None:
    with open(src) as f, open(out, "w") as o:
        for line in f:
            row = json.loads(line)
            if "question" in row and "answer" in row:
                conv = [{"input": row["question"], "output": row["answer"]}]
                o.write(json.dumps({"conversation": conv}, ensure_ascii=False) + "\n")


def floor_sharegpt(src: Path, out: Path) -> None:
    with open(out, "w") as o:
        for rec in json.loads(src.read_text()):
            t = rec["conversations"]
            conv = [{"input": t[i]["value"], "output": t[i + 1]["value"]}
                    for i in range(0, len(t) - 1, 2)]
            o.write(json.dumps({"conversation": conv}, ensure_ascii=False) + "\n")


def orca_map_fn(row):
    return {"conversation": [{"input": row["question"], "output": row["answer"] or ""}]}


def sharegpt_map_fn(row):
    t = row["conversations"]
    return {"conversation": [{"input": t[i]["value"], "output": t[i + 1]["value"]}
                             for i in range(0, len(t) - 1, 2)]}


def datasets_way(src: Path, out: Path, map_fn, cache: Path) -> None:
    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(src), split="train", cache_dir=str(cache))
    ds = ds.map(map_fn, remove_columns=ds.column_names)
    ds.to_json(str(out), force_ascii=False)


def prepare_way(name: str, src: Path, out: Path) -> None:
    conversion = open_conversion(name, data_files=str(src))
    write_jsonl_atomically(out, iter(conversion))


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--records", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = [("orca_math", tmp / "orca.jsonl", args.rows, make_orca, floor_orca, orca_map_fn),
                 ("sharegpt", tmp / "sharegpt.json", args.records, make_sharegpt, floor_sharegpt,
                  sharegpt_map_fn)]
        print(f"{'dataset':10} {'rows':>7} {'way':9} {'median s':>9} {'rows/s':>9} "
              f"{'prepare time / this':>20}")
        for name, src, n, make, floor, map_fn in cases:
            make(src, n)
            times = {"floor": [], "datasets": [], "prepare": []}
            for r in range(args.repeats):
                times["floor"].append(timed(floor, src, tmp / "floor.jsonl"))
                cache = tmp / f"cache{name}{r}"  # fresh: a cached map would time nothing
                times["datasets"].append(timed(datasets_way, src, tmp / "ds.jsonl", map_fn, cache))
                times["prepare"].append(timed(prepare_way, name, src, tmp / "p.jsonl"))
            med = {way: statistics.median(ts) for way, ts in times.items()}
            for way, seconds in med.items():
                print(f"{name:10} {n:>7} {way:9} {seconds:>9.2f} {n / seconds:>9.0f} "
                      f"{med['prepare'] / seconds:>20.2f}")


if __name__ == "__main__":
    main()
