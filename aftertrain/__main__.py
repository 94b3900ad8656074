"""python -m aftertrain eval|export ... (see `python -m aftertrain eval -h`)."""

from __future__ import annotations

import sys

USAGE = "usage: python -m aftertrain {eval,export} ...  (-h after a command for its options)"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("eval", "export"):
        print(USAGE, file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    if argv[0] == "eval":
        from .eval.run import main as run
    else:
        from .export.run import main as run
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
