"""python -m curation prepare DATASET --out FILE.jsonl [--split S] [--limit N] [--data-files F ...]

Converts one dataset split to XTuner-ready JSON lines ({"conversation": [...]} per line), from the
hub or from local files (see curation/convert/load.py for where rows come from), and prints the
counts: rows read, conversations written, records skipped by reason, repairs made. The output
appears under its final name only when complete (curation.common.atomic).

Exit status: 0 written; 1 nothing to write; 2 bad arguments or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import islice
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..common.atomic import AtomicOutputs
from .converters import SOURCES
from .load import ENV_VAR, SourceError, open_conversion
from .readers import DataFileError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m curation prepare",
        description="Convert a dataset to XTuner-ready JSONL (one conversation per line).",
        epilog=f"Rows come from --data-files, else from ${ENV_VAR}/<dataset>/, else the hub.",
    )
    p.add_argument("dataset", choices=sorted(SOURCES), metavar="DATASET",
                   help="one of: " + ", ".join(SOURCES))
    p.add_argument("--out", required=True, type=Path, help="the JSONL file to write")
    p.add_argument("--split", help="split to convert (default: the dataset's training split)")
    p.add_argument("--limit", type=int, help="stop after N conversations")
    p.add_argument("--data-files", nargs="+", metavar="F",
                   help="local files, globs or directories in the dataset's public format")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="converter option, e.g. --option lang=en (oasst1); VALUE may be JSON")
    return p


def parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def write_jsonl_atomically(path: Path, conversations, on_line=None) -> int:
    """Write one {"conversation": ...} per line; the file appears only when complete."""
    written = 0
    with AtomicOutputs(path) as outputs:
        out = outputs.files[0]
        for conversation in conversations:
            out.write(json.dumps({"conversation": conversation}, ensure_ascii=False).encode()
                      + b"\n")
            written += 1
            if on_line:
                on_line()
    return written


def counts_table(stats) -> Table:
    table = Table(title="counts", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("n", justify="right")
    table.add_column("first places", overflow="fold")
    table.add_row("read", str(stats.read), "")
    table.add_row("written", str(stats.written), "")
    for reason, n in sorted(stats.skipped.items()):
        table.add_row(f"skipped: {reason}", str(n), escape("; ".join(stats.examples[reason])))
    for what, n in sorted(stats.fixed.items()):
        table.add_row(f"fixed: {what}", str(n), "")
    return table


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True, highlight=False)  # paths stay on one line

    def fail(message) -> None:
        console.print(f"[red]prepare {args.dataset}:[/red] {escape(str(message))}")

    try:
        options = parse_options(args.option)
        conversion = open_conversion(args.dataset, args.split, args.data_files, **options)
    except (SourceError, DataFileError, TypeError, ValueError) as e:
        fail(e)
        return 2
    console.print(escape(f"{args.dataset}/{conversion.split} from {conversion.origin}"))

    stats = conversion.stats
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("rows, {task.fields[written]} conversations"),
               TimeElapsedColumn()]
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(args.dataset, total=conversion.total, written=0)

            def advance():
                if stats.written % 256 == 0:  # redraws are costly next to a 200k-row loop
                    progress.update(task, completed=stats.read, written=stats.written)

            conversations = iter(conversion)
            if args.limit is not None:
                conversations = islice(conversations, args.limit)  # pulls no row past N
            written = write_jsonl_atomically(args.out, _nonempty(conversations, args.out),
                                             on_line=advance)
            progress.update(task, completed=stats.read, written=stats.written)
    except _NothingWritten:
        Console().print(counts_table(stats))
        fail(f"no conversation to write; {args.out} not written")
        return 1
    except (SourceError, DataFileError) as e:
        fail(f"{e}\n{args.out} not written")
        return 2
    Console().print(counts_table(stats))
    console.print(escape(f"wrote {written} conversations to {args.out}"))
    return 0


class _NothingWritten(Exception):
    pass


def _nonempty(conversations, out):
    """Pass conversations through; raise at the end if there were none (no empty output file)."""
    any_item = False
    for conversation in conversations:
        any_item = True
        yield conversation
    if not any_item:
        raise _NothingWritten(out)


if __name__ == "__main__":
    sys.exit(main())
