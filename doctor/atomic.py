"""Files written whole or not at all: under a hidden temporary name beside the target, renamed
into place only when complete, with the mode a plain open() would give (0o666 less the umask;
mkstemp's private 0o600 never reaches the final file). Readers see the old file or the whole new
one, never a part. The pack's one atomic writer: it lives at the bottom (the doctor's room, which
imports nothing of the pack) so every room can use it; curation's streaming AtomicOutputs
publishes through it too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Give a finished temporary file its final mode and name, in one rename."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, final)


def _mkstemp(target: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    return fd, Path(tmp)


def write_json(target: str | os.PathLike, obj, indent: int | None = 1) -> Path:
    """One JSON document, written whole or not at all (memory.json, eval.json, export.json)."""
    import json

    return write_text(target, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


def write_text(target: str | os.PathLike, text: str) -> Path:
    """One text file, written whole or not at all."""
    target = Path(target)
    with temp_beside(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
        publish(tmp, target)
    return target


@contextmanager
def temp_beside(target: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside `target` for writers that want a path (Arrow's); the caller
    publish()es it; whatever is left of it is deleted on the way out, error or not."""
    fd, tmp = _mkstemp(Path(target), suffix)
    os.close(fd)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
