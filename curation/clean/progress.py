"""rich progress bars on stderr, measured in bytes read (rows vary too much in length).

rich is imported only when something is shown: a quiet run (-q, a benchmark, a pipeline
step) does not pay its 60 ms of imports."""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache


@cache
def console():
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def progress_bars(quiet: bool = False):
    """Yields the bars, or None when quiet."""
    if quiet:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console(),
    ) as bars:
        yield bars


def byte_counter(bars, description: str, total: int):
    """A callback that advances a new bar to the byte offset it is given."""
    task = bars.add_task(description, total=total)
    done = 0

    def advance(offset: int) -> None:
        nonlocal done
        bars.advance(task, offset - done)
        done = offset

    def next_file() -> None:
        nonlocal done
        done = 0

    advance.next_file = next_file
    return advance
