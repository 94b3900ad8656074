"""rich progress bars on stderr, measured in bytes read (rows vary too much in length)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

console = Console(stderr=True)


@contextmanager
def progress_bars(quiet: bool = False):
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    ) as bars:
        yield bars


def byte_counter(bars: Progress, description: str, total: int):
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
