"""decontaminate on datatrove's executors, for train corpora beyond one machine.

    from datatrove.executor import LocalPipelineExecutor     # or SlurmPipelineExecutor
    from curation.clean.scaleout import RowReader, DecontaminateFilter, RowWriter, merge_reports

    LocalPipelineExecutor(pipeline=[
        RowReader("train/"),                                  # JSONL files, any pack format
        DecontaminateFilter(["gsm8k_test.jsonl", "math_test.jsonl"], report_folder="reports/"),
        RowWriter("clean/"),                                  # clean/00000.jsonl, ... per task
    ], tasks=8, workers=2, logging_dir="logs/").run()
    merge_reports("reports/", "report.jsonl")                 # one report, one summary

The filter runs the CLI's matchers (curation.clean.matchers, the same policy and thresholds) on
batches of rows, so it removes exactly the rows `python -m curation decontaminate` removes.
Rows stay raw lines from reader to writer: a kept row is written byte for byte, a malformed one
is rejected with the CLI's reason. Each task writes its clean shard and its part of the report
atomically (curation.common.atomic); merge_reports joins the parts in task order, adds up the
counts and checks read == kept + removed + rejected.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers.base import BaseDiskReader

from ..common.atomic import AtomicOutputs
from .decontaminate import find_matches, flagged_record
from .jsonl import Chunk, parse_chunk
from .matchers import TrainRows, build_matchers
from .report import Tally, dumps
from .rowtext import batch_texts
from .testindex import TestItems

REJECTED = "rejected"


def _raw(doc: Document) -> bytes:
    return doc.text.encode("utf-8", "surrogateescape")


class RowReader(BaseDiskReader):
    """Every line of JSONL files as a Document: text = the raw line (bytes kept through
    surrogateescape), metadata = {"train_file", "train_line"}. Nothing is parsed or skipped
    here; the filter parses, and rejects what does not parse, as the CLI does."""

    name = "curation rows"

    def __init__(self, data_folder, glob_pattern: str | None = "*.jsonl", **kwargs):
        super().__init__(data_folder, glob_pattern=glob_pattern, **kwargs)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        path = self.data_folder.resolve_paths(filepath)
        with self.data_folder.open(filepath, "rb") as f:
            data = f.read()
        if not data:
            return
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for number, line in enumerate(lines, 1):
            yield Document(text=line.decode("utf-8", "surrogateescape"),
                           id=f"{path}:{number}",
                           metadata={"train_file": path, "train_line": number})


class DecontaminateFilter(BaseFilter):
    """Drops the rows that leak a test item (and the rows the CLI would reject), writing this
    task's provenance to `report_folder`/RANK.jsonl: the CLI's report lines, then a
    {"tally": ...} line for merge_reports."""

    name = "curation decontaminate"

    def __init__(self, test_files: list[str], report_folder: str, policy: str = "default",
                 field: str | None = None, batch_size: int = 2000, **thresholds):
        super().__init__(batch_size=batch_size)
        self.test_files = [str(t) for t in test_files]
        self.report_folder = str(report_folder)
        self.policy, self.field, self.thresholds = policy, field, thresholds
        self._state = None

    def _setup(self):
        if self._state is None:  # in the task's process: indexes are built where they are used
            items = TestItems.read(self.test_files, self.field)
            if not items.items:
                raise ValueError(f"no usable test items in {', '.join(self.test_files)}")
            matchers = build_matchers(items, policy=self.policy, **self.thresholds)
            self._state = (items, matchers)
        return self._state

    def filter(self, doc: Document) -> bool:  # the batched path below is the one used
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]):
        items, matchers = self._setup()
        parsed = parse_chunk(Chunk("", 0, b"\n".join(_raw(d) for d in batch), 0))
        prompts, rests, reasons = batch_texts(parsed, self.field)
        flagged = find_matches(TrainRows(prompts, rests), matchers)
        results = []
        for i, doc in enumerate(batch):
            meta = doc.metadata
            self._tally.read += 1
            if i in reasons:
                self._tally.rejected += 1
                self._report.write(dumps({"train_file": meta["train_file"],
                                          "train_line": meta["train_line"],
                                          "rejected": reasons[i]}))
                results.append((False, REJECTED))
            elif i in flagged:
                record = flagged_record(meta["train_file"], meta["train_line"], flagged[i],
                                        items, self._seen, self._per_test_file)
                self._tally.removed += 1
                self._tally.per_method[record["method"]] += 1
                self._tally.per_method_any.update(record["methods"])
                self._report.write(dumps(record))
                results.append((False, record["method"]))
            else:
                self._tally.kept += 1
                results.append(True)
        return results

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        self._tally = Tally()
        self._seen: set[int] = set()
        self._per_test_file = _PerFile()
        target = Path(self.report_folder) / f"{rank:05d}.jsonl"
        with AtomicOutputs(target) as outputs:
            self._report = outputs.files[0]
            yield from super().run(data, rank, world_size)
            self._tally.check()
            items = self._state[0].items if self._state else []
            tally = {**{k: getattr(self._tally, k) for k in ("read", "kept", "removed",
                                                               "rejected")},
                     "per_method": dict(self._tally.per_method),
                     "per_method_any": dict(self._tally.per_method_any),
                     "items_matched": sorted([items[i].file, items[i].line]
                                             for i in self._seen)}
            self._report.write(dumps({"tally": tally}))


class _PerFile(dict):
    """flagged_record's per-test-file counts, created on first use."""

    def __missing__(self, key):
        self[key] = value = Counter()
        return value


class RowWriter(PipelineStep):
    """The rows that reach it, raw and in order, to `output_folder`/RANK.jsonl (atomically)."""

    name = "curation clean rows"
    type = "💽 - WRITER"

    def __init__(self, output_folder: str):
        super().__init__()
        self.output_folder = str(output_folder)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        with AtomicOutputs(Path(self.output_folder) / f"{rank:05d}.jsonl") as outputs:
            out = outputs.files[0]
            for doc in data:
                out.write(_raw(doc) + b"\n")
                self.stat_update("rows")
                yield doc


def merge_reports(report_folder: str | os.PathLike, out: str | os.PathLike) -> dict:
    """The tasks' reports as one, in task order, with one summary; returns the summary."""
    parts = sorted(Path(report_folder).glob("[0-9]*.jsonl"))
    tally = Tally()
    matched: set[tuple] = set()
    tasks = 0
    with AtomicOutputs(out) as outputs:
        merged = outputs.files[0]
        for part in parts:
            with open(part, "rb") as f:
                for line in f:
                    record = json.loads(line)
                    if "tally" not in record:
                        merged.write(line if line.endswith(b"\n") else line + b"\n")
                        continue
                    t = record["tally"]
                    for key in ("read", "kept", "removed", "rejected"):
                        setattr(tally, key, getattr(tally, key) + t[key])
                    tally.per_method.update(t["per_method"])
                    tally.per_method_any.update(t["per_method_any"])
                    matched.update(map(tuple, t["items_matched"]))
                    tasks += 1
        summary = tally.summary()  # checks read == kept + removed + rejected
        summary.update(tasks=tasks, test_items_matched=len(matched))
        merged.write(dumps({"summary": summary}))
    return summary
