"""The shape the cleaning commands share (`decontaminate`, `dedup`): the paths checked before any
work, freed memory kept for reuse, the run under progress bars, a message instead of a traceback
for bad input or Ctrl-C (and no output written), then the summary."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ..common.cli import path_problems, reuse_freed_memory
from .progress import progress_bars


def run_command(name: str, args, inputs: list[str], outputs: list[str],
                run: Callable, show: Callable) -> int:
    """`run(args, bars)` -> summary, then `show(summary, args)` unless --quiet; the exit code."""
    problems = path_problems(inputs, outputs)
    if problems:
        for problem in problems:
            print(f"{name}: {problem}", file=sys.stderr)
        return 2
    reuse_freed_memory()
    try:
        with progress_bars(quiet=args.quiet) as bars:
            summary = run(args, bars)
    except SystemExit as e:  # bad input found while reading: its message names file and line
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print(f"{name}: interrupted; no output written", file=sys.stderr)
        return 130
    if not args.quiet:
        show(summary, args)
    return 0
