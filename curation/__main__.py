"""python -m curation {prepare,dedup,decontaminate} ..."""

from __future__ import annotations

import os
import sys

COMMANDS = {
    "prepare": ("curation.convert.prepare", "load a dataset and write XTuner-ready JSONL"),
    "dedup": ("curation.clean.dedup", "remove exact and near duplicates"),
    "decontaminate": ("curation.clean.decontaminate", "remove train rows that leak test items"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m curation {" + ",".join(COMMANDS) + "} ...\n", file=sys.stderr)
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:14s} {text}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = __import__(COMMANDS[argv[0]][0], fromlist=["main"])
    return module.main(argv[1:])


if __name__ == "__main__":
    # No command here multiplies matrices, and numpy's OpenBLAS starts a thread per core at
    # import that spins ~0.1 s of CPU waiting for work (taken from the matching on 2 cores).
    # The command's process only: main() called from other code leaves the environment alone.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
