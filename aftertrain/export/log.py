"""export.log: everything the export's tools print (xtuner's merge, llama.cpp's converter, its
quantizer and loader: ~500 lines of per-tensor log for a real model), in one file beside the
GGUF, so the terminal shows the export's steps and its result."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from pathlib import Path


class ExportLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115

    def section(self, title: str) -> None:
        self.file.write(f"\n==== {title} ====\n")
        self.file.flush()

    @contextlib.contextmanager
    def native(self):
        """File descriptors 1 and 2 into the log for the duration: what C code (llama.cpp, ggml)
        prints goes there, as does Python's own stdout and stderr."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self.file.flush()
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(self.file.fileno(), 1)
            os.dup2(self.file.fileno(), 2)
            yield self
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None).fflush(None)  # C stdio buffers, before the descriptors move
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])

    def tail(self, lines: int = 12) -> str:
        self.file.flush()
        return "".join(self.path.read_text(errors="replace").splitlines(True)[-lines:])

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
