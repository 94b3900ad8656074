"""What every doctor command's main() does around its work: argparse's own exits as exit codes
(--help 0, bad usage 2), Ctrl-C 130, a reader that leaves the pipe early (`... | head`) is no
error, and never a traceback on a sick machine: an internal error is one line and exit 1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run_command(parse: Callable, run: Callable, argv=None) -> int:
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter flushes it at exit)
        return 0
    except Exception as exc:  # noqa: BLE001 - the doctor must not die on what it diagnoses
        print(f"doctor: internal error: {exc!r}", file=sys.stderr)
        return 1
