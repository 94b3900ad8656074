"""python -m curation dedup: drop exact and near-duplicate rows, keeping the first of each.

    python -m curation dedup IN.jsonl [IN2.jsonl ...] --out OUT.jsonl --report R.jsonl \\
        [--field NAME] [--on row|prompt] [--threshold 0.7]

Exact: the same text after normalization (case, punctuation, whitespace, LaTeX markup, number
formats; see curation.clean.normalize). Near: MinHash LSH over word n-gram sets (--shingle, default
3; rensa, 128 permutations, 32 bands) proposes earlier rows, and the real Jaccard of the two
n-gram sets, >= --threshold, decides. OUT.jsonl keeps the first row of each group, byte for
byte, in input order; the report names, for each removed row, the kept row it duplicates.

Memory: one hash and one LSH entry per kept row, not its text: an earlier row that LSH proposes
is read again from its file to verify the match.
"""

from __future__ import annotations

import argparse
import sys
import time
from array import array
from functools import lru_cache

import numpy as np
from rensa import RMinHash, RMinHashLSH

from ..common.atomic import AtomicOutputs
from ..common.cli import positive, threshold
from .command import run_command
from .jsonl import CHUNK_BYTES, Chunk, count_bytes, parse_chunk, read_chunks
from .progress import console
from .report import Tally, dumps
from .rowtext import batch_texts, row_text
from .shingles import as_tokens, note_rensa
from .tokens import Tokens

NUM_PERM, NUM_BANDS, SEED = 128, 32, 42


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m curation dedup",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="IN.jsonl")
    p.add_argument("--out", required=True, metavar="OUT.jsonl")
    p.add_argument("--report", required=True, metavar="REPORT.jsonl")
    p.add_argument("--field", help="take the text from this field instead of recognising the "
                   "format")
    p.add_argument("--on", choices=("row", "prompt"), default="row",
                   help="compare whole rows (default) or only their prompts (questions)")
    p.add_argument("--threshold", type=threshold, default=0.7, metavar="J",
                   help="near duplicates: Jaccard of word n-gram sets (default 0.7, "
                   "InternLM-Math's MinHash threshold)")
    p.add_argument("--shingle", type=positive, default=3, metavar="N",
                   help="words per n-gram (default 3: in a 25-word problem one changed word "
                   "leaves a Jaccard of 0.78 with 3-grams, 0.63 with 5-grams)")
    p.add_argument("--chunk-bytes", type=int, default=CHUNK_BYTES, help=argparse.SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    return p.parse_args(argv)


def row_shingles(tokens: Tokens, n_rows: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distinct n-gram hashes, sorted, concatenated; and bounds per row (a row is
    segments r and n_rows + r)."""
    h, seg, _ = tokens.ngrams(n)
    row = seg % n_rows
    order = np.lexsort((h, row))
    h, row = h[order], row[order]
    first = np.ones(len(h), dtype=bool)
    first[1:] = (h[1:] != h[:-1]) | (row[1:] != row[:-1])
    h, row = h[first], row[first]
    return h, np.searchsorted(row, np.arange(n_rows + 1))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


class Deduplicator:
    """Kept rows so far: exact keys, a MinHash LSH, and where to read each row again."""

    def __init__(self, files: list[str], threshold: float, field: str | None, on: str,
                 shingle: int = 3):
        self.files = files
        self.shingle = shingle
        self.threshold = threshold
        self.field = field
        self.on = on
        self.exact: dict[int, int] = {}  # normalized-text hash -> kept row id
        note_rensa()
        self.lsh = RMinHashLSH(min(threshold, 1.0), NUM_PERM, NUM_BANDS)  # rensa wants <= 1
        self.file_of, self.line_of = array("l"), array("q")
        self.offset_of, self.length_of = array("q"), array("q")
        self.reread = lru_cache(maxsize=4096)(self._reread)

    def texts(self, batch):
        prompts, rests, reasons = batch_texts(batch, self.field)
        if self.on == "prompt":
            rests = [""] * len(rests)
        return prompts, rests, reasons

    def where(self, key: int) -> dict:
        return {"file": self.files[self.file_of[key]], "line": self.line_of[key]}

    def _reread(self, key: int) -> np.ndarray:
        """The n-gram set of an earlier kept row, from its file."""
        with open(self.files[self.file_of[key]], "rb") as f:
            f.seek(self.offset_of[key])
            line = f.read(self.length_of[key])
        chunk = Chunk(self.files[self.file_of[key]], self.line_of[key], line, 0)
        prompt, rest = row_text(parse_chunk(chunk).rows[0], self.field)
        if self.on == "prompt":
            rest = ""
        return row_shingles(Tokens([prompt, rest]), 1, self.shingle)[0]

    def keep(self, file_index: int, line: int, offset: int, length: int) -> int:
        key = len(self.line_of)
        self.file_of.append(file_index)
        self.line_of.append(line)
        self.offset_of.append(offset)
        self.length_of.append(length)
        return key

    def scan(self, chunk: Chunk, file_index: int, chunk_offset: int):
        """(line index, None | rejection reason | (method, score, kept key)) for each line."""
        batch = parse_chunk(chunk)
        prompts, rests, reasons = self.texts(batch)
        n = len(prompts)
        tokens = Tokens(prompts + rests)
        shingles, bounds = row_shingles(tokens, n, self.shingle)
        has_shingles = np.flatnonzero(np.diff(bounds) > 0)
        sketches = dict(zip(has_shingles.tolist(), RMinHash.from_token_sets(
            [as_tokens(shingles[bounds[r] : bounds[r + 1]]) for r in has_shingles.tolist()],
            NUM_PERM, SEED), strict=True))
        lengths = np.array([len(line) for line in batch.raw], dtype=np.int64)
        offsets = chunk_offset + np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
        batch_sets: dict[int, np.ndarray] = {}  # keys kept in this batch -> their n-grams
        hashes, bounds_t = tokens.hashes, tokens.seg_bounds
        for r in range(n):
            if r in reasons:
                yield r, reasons[r]
                continue
            text_key = hash(hashes[bounds_t[r] : bounds_t[r + 1]].tobytes() + b"|"
                            + hashes[bounds_t[n + r] : bounds_t[n + r + 1]].tobytes())
            if text_key in self.exact:
                yield r, ("exact", 1.0, self.exact[text_key])
                continue
            mine = shingles[bounds[r] : bounds[r + 1]]
            best = None
            if r in sketches:
                for key in sorted(self.lsh.query(sketches[r])):
                    other = batch_sets[key] if key in batch_sets else self.reread(key)
                    if len(other) and (score := jaccard(mine, other)) >= self.threshold:
                        if best is None or score > best[1]:
                            best = ("minhash", round(score, 4), key)
            if best is not None:
                yield r, best
                continue
            key = self.keep(file_index, batch.first_line + r, int(offsets[r]), int(lengths[r]))
            self.exact[text_key] = key
            if r in sketches:
                self.lsh.insert(key, sketches[r])
                batch_sets[key] = mine
            yield r, None


def run(args, bars=None) -> dict:
    t0 = time.perf_counter()
    dedup = Deduplicator(list(args.inputs), args.threshold, args.field, args.on, args.shingle)
    tally = Tally()
    per_file = {p: Tally() for p in args.inputs}
    if bars:
        task = bars.add_task("rows", total=count_bytes(args.inputs))
    with AtomicOutputs(args.out, args.report) as outputs:
        out, report = outputs.files
        for file_index, path in enumerate(args.inputs):
            counts = per_file[path]
            offset = 0
            for chunk in read_chunks(path, args.chunk_bytes):
                raw = chunk.data.split(b"\n")
                kept = []
                for r, verdict in dedup.scan(chunk, file_index, offset):
                    line = chunk.first_line + r
                    if verdict is None:
                        counts.kept += 1
                        kept.append(raw[r])
                    elif isinstance(verdict, str):
                        counts.rejected += 1
                        report.write(dumps({"file": path, "line": line, "rejected": verdict}))
                    else:
                        method, score, key = verdict
                        counts.removed += 1
                        counts.per_method[method] += 1
                        report.write(dumps({"file": path, "line": line, "method": method,
                                            "score": score, "duplicate_of": dedup.where(key)}))
                counts.read += len(raw)
                if kept:
                    out.write(b"\n".join(kept) + b"\n")
                offset = chunk.end_offset
                if bars:
                    bars.advance(task, len(chunk.data) + 1)
            counts.check()
        for counts in per_file.values():
            for key in ("read", "kept", "removed", "rejected"):
                setattr(tally, key, getattr(tally, key) + getattr(counts, key))
            tally.per_method.update(counts.per_method)
        summary = tally.summary()
        del summary["per_method_any"]
        summary.update(
            per_file={p: {k: getattr(c, k) for k in ("read", "kept", "removed", "rejected")}
                      for p, c in per_file.items()},
            on=args.on,
            threshold=args.threshold,
            shingle=args.shingle,
            seconds=round(time.perf_counter() - t0, 3),
        )
        report.write(dumps({"summary": summary}))
    return summary


def show(summary: dict, args) -> None:
    rate = summary["read"] / max(summary["seconds"], 1e-9)
    console().print(f"dedup: read {summary['read']}, kept {summary['kept']}, removed "
                    f"{summary['removed']} {summary['per_method']}, rejected "
                    f"{summary['rejected']} ({summary['seconds']:.1f} s, {rate:,.0f} rows/s)")
    console().print(f"kept rows: {args.out}\nreport:    {args.report}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_command("dedup", args, args.inputs, [args.out, args.report], run, show)

