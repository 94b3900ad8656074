"""python -m curation decontaminate: remove train rows that leak test items, with provenance.

    python -m curation decontaminate --train T.jsonl [--train T2.jsonl ...] \\
        --test S.jsonl [--test S2.jsonl ...] --out CLEAN.jsonl --report R.jsonl \\
        [--field NAME] [--policy default|strict]

The test side is read whole and indexed in memory; the train side is streamed in batches, so
memory is bounded by the test sets, one batch a worker and the verdicts of up to 64 MiB of
distinct lines (a repeated line is matched once). CLEAN.jsonl is every train row that was not
flagged, in input order, byte for byte (train files one after another). The report names, for
each removed row, every test item it matched and how; and every rejected line with its reason.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor

from ..common.atomic import AtomicOutputs
from ..common.cli import default_workers, positive, threshold
from .command import run_command
from .jsonl import CHUNK_BYTES, Chunk, count_bytes, parse_chunk, read_chunks
from .matchers import METHODS, TrainRows, build_matchers
from .progress import byte_counter, console
from .report import Tally, dumps
from .rowtext import batch_texts
from .shingles import rensa_started
from .testindex import TestItems


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m curation decontaminate", description=__doc__
                                .split("\n\n")[0])
    p.add_argument("--train", action="append", required=True, metavar="JSONL",
                   help="train rows to clean (repeatable; written out in this order)")
    p.add_argument("--test", action="append", required=True, metavar="JSONL",
                   help="test items to protect (repeatable)")
    p.add_argument("--out", required=True, metavar="CLEAN.jsonl")
    p.add_argument("--report", required=True, metavar="REPORT.jsonl")
    p.add_argument("--field", help="take the text from this field of every row (train and "
                   "test) instead of recognising the format")
    p.add_argument("--policy", choices=("default", "strict"), default="default",
                   help="strict: looser numbers-masked n-grams and rephrasings (more recall, "
                   "more distinct problems of the same type removed)")
    p.add_argument("--coverage", type=threshold, default=0.5, metavar="X",
                   help="n-gram methods: weighted share of a test item's words (default 0.5)")
    p.add_argument("--similarity", type=threshold, default=None, metavar="X",
                   help="numbers_overlap: share of the test item's content-word weight (IDF "
                   "squared) found in the row's prompt (default 0.2)")
    p.add_argument("--evidence", type=threshold, default=None, metavar="U",
                   help="numbers_overlap: at least this much of the item's weight, words and "
                   "numbers, in units of a term of one test item only (default 2.5; strict 2)")
    p.add_argument("--min-numbers", type=positive, default=2, metavar="N",
                   help="numbers_overlap: numbers a problem needs (default 2)")
    p.add_argument("--minhash-threshold", type=threshold, default=0.7, metavar="J",
                   help="minhash: Jaccard of word 5-gram sets (default 0.7)")
    p.add_argument("--workers", type=positive, default=default_workers(), metavar="N",
                   help="processes that match train rows (default: the CPUs this process may "
                   "use, at most 4; 1 = no worker processes)")
    p.add_argument("--chunk-bytes", type=int, default=CHUNK_BYTES, help=argparse.SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    return p.parse_args(argv)


def find_matches(rows: TrainRows, matchers) -> dict[int, list]:
    """Row -> matches, for the rows of a batch that some matcher verifies (matchers in order,
    each one's matches in item order)."""
    rows.precompute(set().union(*(m.needs for m in matchers)))
    flagged: dict[int, list] = {}
    for matcher in matchers:
        for r, matches in matcher.verify(rows, matcher.candidates(rows)).items():
            flagged.setdefault(r, []).extend(matches)
    return dict(sorted(flagged.items()))


def flagged_record(path, line, matches, items, seen_items, per_file) -> dict:
    order = {m: k for k, m in enumerate(METHODS)}
    matches = sorted(matches, key=lambda m: (order.get(m.method, len(order)), -m.score))
    method = matches[0].method
    test_matches, listed = [], set()
    for m in matches:  # one entry per test item, from the first method that matched it
        if m.item in listed:
            continue
        listed.add(m.item)
        seen_items.add(m.item)
        item = items.items[m.item]
        test_matches.append({"test_file": item.file, "test_line": item.line, "method": m.method,
                             "score": m.score, "matched_text": m.text})
    for f in {t["test_file"] for t in test_matches}:
        per_file[f]["rows_removed"] += 1
    return {
        "train_file": path,
        "train_line": line,
        "method": method,
        "score": max(m.score for m in matches if m.method == method),
        "methods": sorted({m.method for m in matches}, key=order.get),
        "test_matches": test_matches,
    }


class Removals:
    """The report records of removed rows. Repeats of a line share its verdict's list of
    matches, so the record of a repeat is the first copy's with its own file and line: the rest
    is described and serialized once (same bytes as dumps() of the whole record)."""

    def __init__(self, items, seen_items: set, per_file: dict, limit: int = 1 << 16):
        self.items, self.seen_items, self.per_file = items, seen_items, per_file
        self._known: dict[int, tuple] = {}  # id(matches) -> (matches, method, methods, ...)
        self._heads: dict[str, bytes] = {}
        self.limit = limit

    def record(self, path: str, line: int, matches: list) -> tuple[bytes, str, list]:
        """(the report line, the method that reports the row, every method that matched)."""
        known = self._known.get(id(matches))
        if known is None or known[0] is not matches:  # `is`: the id of a list still held
            rec = flagged_record(path, line, matches, self.items, self.seen_items, self.per_file)
            rest = dumps({k: v for k, v in rec.items() if k not in ("train_file", "train_line")})
            files = {t["test_file"] for t in rec["test_matches"]}
            known = (matches, rec["method"], rec["methods"], files, rest[1:])
            if len(self._known) < self.limit:
                self._known[id(matches)] = known
        else:
            for f in known[3]:
                self.per_file[f]["rows_removed"] += 1
        head = self._heads.get(path)
        if head is None:  # dumps()'s bytes up to the line number
            head = self._heads[path] = dumps({"train_file": path, "train_line": 0})[:-3]
        return b"%s%d, %s" % (head, line, known[4]), known[1], known[2]


_STATE: dict = {}  # this process's matchers; workers get them from _worker_init


def scan_chunk(chunk: Chunk) -> tuple[dict[int, str], dict[int, list]]:
    """(rejection reasons, matches) by line index within the chunk."""
    batch = parse_chunk(chunk)
    prompts, rests, reasons = batch_texts(batch, _STATE["field"])
    return reasons, find_matches(TrainRows(prompts, rests), _STATE["matchers"])


_PENDING = object()
_CLEAN = (None, None)  # the verdict of most lines: neither rejected nor matched


class Verdicts:
    """Verdicts of the lines already sent to be matched, keyed by the line's bytes (exact: no
    digest to collide). A mix that repeats a dataset (upsampling, the same rows in two sources)
    is parsed and matched once per distinct line, whichever worker had it: only the parent
    sees every line, and it writes chunks in input order, so a repeat's verdict is known by the
    time its chunk is written. Bounded: past `limit` bytes of remembered lines, new lines are
    matched but not remembered."""

    def __init__(self, limit: int = 64 << 20):
        self.known: dict[bytes, object] = {}
        self.size, self.limit = 0, limit

    def new_lines(self, chunk: Chunk):
        """(the chunk's lines, what is known of each, indices of those to match, a chunk of
        just those or None). One lookup a line: a repeat's verdict, or _PENDING while the line
        it repeats is still being matched, or None for a line to match."""
        lines = chunk.data.split(b"\n")
        known = self.known
        got = list(map(known.get, lines))
        if _bom_line(chunk):
            got[0] = None
        if None not in got:  # a chunk of repeats (a repeated dataset): nothing to match
            return lines, got, [], None
        todo = [i for i, v in enumerate(got) if v is None]
        for i in todo:
            line = lines[i]
            if not (i == 0 and _bom_line(chunk)) and line not in known and (
                    self.size < self.limit):
                known[line] = _PENDING
                self.size += len(line) + 64
        sub = Chunk(chunk.path, chunk.first_line if todo[0] == 0 else 0,
                    b"\n".join([lines[i] for i in todo]), chunk.end_offset)
        return lines, got, todo, sub

    def resolve(self, chunk: Chunk, lines, got, todo, result) -> tuple[dict, dict]:
        """The chunk's (reasons, matches) by line index: its new lines' from `result`, the
        repeats' from the lines they repeat."""
        sub_reasons, sub_flagged = result
        reasons, flagged = {}, {}
        known = self.known
        for j, i in enumerate(todo):
            verdict = (sub_reasons.get(j), sub_flagged.get(j)) if (
                j in sub_reasons or j in sub_flagged) else _CLEAN
            if not (i == 0 and _bom_line(chunk)) and known.get(lines[i]) is _PENDING:
                known[lines[i]] = verdict
            if verdict is not _CLEAN:
                _put(i, verdict, reasons, flagged)
        if len(todo) < len(lines):
            for i in [i for i, v in enumerate(got) if v is not _CLEAN and v is not None]:
                verdict = got[i] if got[i] is not _PENDING else known[lines[i]]
                if verdict is not _CLEAN:
                    _put(i, verdict, reasons, flagged)
        return reasons, flagged


def _bom_line(chunk: Chunk) -> bool:
    """Whether the chunk starts its file: that first line may carry a byte order mark, so it is
    matched on its own and never remembered."""
    return chunk.first_line == 1


def _put(i: int, verdict, reasons: dict, flagged: dict) -> None:
    reason, matches = verdict
    if reason is not None:
        reasons[i] = reason
    elif matches:
        flagged[i] = matches


def _worker_init(matchers, field, parent: int) -> None:
    # SIGTERM ends a worker at once: a Python handler's exception would be caught by the
    # executor as the current task's result, and the worker would go on waiting for work.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if sys.platform.startswith("linux"):  # a worker must not outlive a killed parent
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if parent and os.getppid() != parent:  # it died before the line above
            os._exit(1)
    _STATE.update(matchers=matchers, field=field)


def scan(chunks, workers: int):
    """(chunk, its lines, reasons, matches) in input order. With workers > 1, this process
    matches chunks too, beside workers - 1 worker processes: it has the warm memory and the
    index in place (a forked worker spends its first chunk faulting pages in), and between
    chunks it only reads, looks up repeats and writes. At most 2 chunks a worker in flight,
    so memory stays bounded whatever the input size."""
    verdicts = Verdicts()

    def result_of(sub):
        return ({}, {}) if sub is None else scan_chunk(sub)

    if workers <= 1:
        for chunk in chunks:
            lines, got, todo, sub = verdicts.new_lines(chunk)
            yield (chunk, lines, *verdicts.resolve(chunk, lines, got, todo, result_of(sub)))
        return
    # ProcessPoolExecutor, not Pool: a worker that dies raises BrokenProcessPool here instead
    # of leaving its task waiting forever. Fork starts workers in milliseconds with the
    # matchers in place, but not after this process has called rensa (an earlier run in the
    # same process): a forked child calling rensa would wait on a thread pool it did not
    # inherit. Then forkserver (or spawn) starts clean workers, the matchers pickled to them.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and not rensa_started():
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods
                                              else "spawn")
    # (forkserver's workers are the server's children; it ends when this process does)
    parent = os.getpid() if context.get_start_method() == "fork" else 0
    initargs = (_STATE["matchers"], _STATE["field"], parent)
    in_flight = 2 * (workers - 1)
    with ProcessPoolExecutor(workers - 1, mp_context=context, initializer=_worker_init,
                             initargs=initargs) as pool:
        pending: deque = deque()  # (chunk, lines, got, todo, future, result), input order
        busy: deque = deque()  # the futures not seen done yet

        def finish():
            chunk, lines, got, todo, future, result = pending.popleft()
            if future is not None:
                result = future.result()
            return (chunk, lines, *verdicts.resolve(chunk, lines, got, todo, result))

        for chunk in chunks:
            lines, got, todo, sub = verdicts.new_lines(chunk)
            future, result = None, ({}, {})
            if sub is not None:
                while busy and busy[0].done():
                    busy.popleft()
                if len(busy) < in_flight:  # the workers' queue first, then this process
                    future = pool.submit(scan_chunk, sub)
                    busy.append(future)
                else:
                    result = scan_chunk(sub)
            pending.append((chunk, lines, got, todo, future, result))
            while pending and (len(pending) >= 2 * workers or pending[0][4] is None
                               or pending[0][4].done()):
                yield finish()
        while pending:
            yield finish()


def run(args, bars=None) -> dict:
    t0 = time.perf_counter()
    test_progress = (None if bars is None
                     else byte_counter(bars, "test items", count_bytes(args.test)))
    items = TestItems.read(args.test, args.field, progress=test_progress)
    if not items.items:
        raise SystemExit(f"decontaminate: no usable test items in {', '.join(args.test)} "
                         f"({len(items.rejected)} lines rejected)")
    matchers = build_matchers(items, policy=args.policy, coverage=args.coverage,
                              similarity=args.similarity, min_numbers=args.min_numbers,
                              minhash_threshold=args.minhash_threshold, evidence=args.evidence)
    _STATE.update(matchers=matchers, field=args.field)
    t_index = time.perf_counter() - t0
    tally = Tally()
    per_test_file = {f: {"items": 0, "rejected": 0, "items_matched": 0, "rows_removed": 0}
                     for f in items.files}
    for item in items.items:
        per_test_file[item.file]["items"] += 1
    for rej in items.rejected:
        per_test_file[rej.file]["rejected"] += 1
    per_train_file: dict[str, Tally] = {path: Tally() for path in args.train}
    seen_items: set[int] = set()
    removals = Removals(items, seen_items, per_test_file)
    if bars is not None:
        train_task = bars.add_task("train rows", total=count_bytes(args.train))

    with AtomicOutputs(args.out, args.report) as outputs:
        clean, report = outputs.files
        for rej in items.rejected:
            report.write(dumps({"test_file": rej.file, "test_line": rej.line,
                                "rejected": rej.reason}))
        chunks = itertools.chain.from_iterable(read_chunks(p, args.chunk_bytes) for p in args.train)
        for chunk, raw, reasons, flagged in scan(chunks, args.workers):
            path, counts = chunk.path, per_train_file[chunk.path]
            dropped = sorted(reasons.keys() | flagged.keys())  # few: most lines are kept
            for i in dropped:
                if i in reasons:
                    counts.rejected += 1
                    report.write(dumps({"train_file": path, "train_line": chunk.first_line + i,
                                        "rejected": reasons[i]}))
                else:
                    counts.removed += 1
                    line, method, methods = removals.record(path, chunk.first_line + i,
                                                            flagged[i])
                    counts.per_method[method] += 1
                    counts.per_method_any.update(methods)
                    report.write(line)
            counts.read += len(raw)
            counts.kept += len(raw) - len(dropped)
            # a last line without "\n" gets one: the next file's rows follow
            if not dropped:
                clean.write(chunk.data + b"\n")
            elif len(dropped) < len(raw):
                kept, start = [], 0
                for i in dropped:
                    kept += raw[start:i]
                    start = i + 1
                kept += raw[start:]
                clean.write(b"\n".join(kept) + b"\n")
            if bars is not None:
                bars.advance(train_task, len(chunk.data) + 1)
        for counts in per_train_file.values():
            counts.check()
            for key in ("read", "kept", "removed", "rejected"):
                setattr(tally, key, getattr(tally, key) + getattr(counts, key))
            tally.per_method.update(counts.per_method)
            tally.per_method_any.update(counts.per_method_any)
        for i in seen_items:
            per_test_file[items.items[i].file]["items_matched"] += 1
        seconds = time.perf_counter() - t0
        summary = tally.summary()
        summary.update(
            per_test_file=per_test_file,
            per_train_file={p: {k: getattr(c, k) for k in ("read", "kept", "removed", "rejected")}
                            for p, c in per_train_file.items()},
            test_items=len(items.items),
            test_rejected=len(items.rejected),
            policy=args.policy,
            thresholds={"coverage": args.coverage, "similarity": matchers[1].similarity,
                        "evidence": matchers[1].evidence, "min_numbers": args.min_numbers,
                        "minhash_threshold": args.minhash_threshold,
                        "template_df": matchers[0].template_df},
            workers=args.workers,
            seconds=round(seconds, 3),
            index_seconds=round(t_index, 3),
        )
        report.write(dumps({"summary": summary}))
    return summary


def print_summary(summary: dict, out: str, report: str) -> None:
    from rich.table import Table

    table = Table(title="decontaminate", show_header=False)
    for key in ("read", "kept", "removed", "rejected"):
        table.add_row(key, str(summary[key]))
    for method, n in sorted(summary["per_method"].items()):
        table.add_row(f"  removed by {method}", str(n))
    for path, c in summary["per_test_file"].items():
        table.add_row(f"  {path}", f"{c['items_matched']}/{c['items']} test items matched")
    rate = summary["read"] / max(summary["seconds"] - summary["index_seconds"], 1e-9)
    table.add_row("time", f"{summary['seconds']:.1f} s ({rate:,.0f} train rows/s)")
    console().print(table)
    console().print(f"clean rows: {out}\nreport:     {report}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_command("decontaminate", args, args.train + args.test, [args.out, args.report],
                       run, lambda summary, a: print_summary(summary, a.out, a.report))
