"""The one way the room writes a file: doctor.atomic's whole-file writers, and AtomicOutputs for
the streams a command writes (several files published together, killed runs leave none).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from doctor.atomic import _mkstemp, publish, temp_beside, write_json, write_text  # noqa: F401


class AtomicOutputs:
    """Binary files written under temporary names and published together by commit() (or a
    clean exit of the with-block). An exception, Ctrl-C or SIGTERM deletes the temporaries; a
    SIGKILL leaves a `.NAME.*.tmp` file behind, but never a partial file under NAME.

    commit() makes the data durable (fsync) before the rename. While the files are written, a
    thread asks the kernel to write back what has reached it so far (fdatasync, which releases
    the GIL) every 50 ms, so that fsync waits for the last part only: on 100 MB of output,
    0.17 s -> 0.09 s here with 0.25 s between write-backs; 50 ms took another 0.05 s off the end
    of a decontaminate run that writes 100 MB in 0.6 s.
    """

    WRITEBACK_EVERY = 0.05  # seconds

    def __init__(self, *targets: str | os.PathLike):
        self.targets = [Path(t) for t in targets]
        self.files = []
        self._tmp: list[Path] = []
        self._old_term = None
        self._stop = threading.Event()
        self._writeback: threading.Thread | None = None

    def _write_back(self, fds: list[int]) -> None:
        while not self._stop.wait(self.WRITEBACK_EVERY):
            for fd in fds:
                try:
                    os.fdatasync(fd)
                except OSError:  # a file system without it: commit()'s fsync decides
                    return

    def _stop_writeback(self) -> None:
        """Before any file closes: the thread must never touch a closed (reused) descriptor."""
        self._stop.set()
        if self._writeback is not None:
            self._writeback.join()
            self._writeback = None

    def __enter__(self):
        self._old_term = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, _raise_exit)
        except ValueError:  # not the main thread: leave signal handling alone
            self._old_term = None
        try:
            for target in self.targets:
                fd, tmp = _mkstemp(target)
                self._tmp.append(tmp)
                self.files.append(os.fdopen(fd, "wb", buffering=1 << 20))
        except BaseException:
            self._discard()
            raise
        self._writeback = threading.Thread(target=self._write_back, daemon=True,
                                           args=([f.fileno() for f in self.files],))
        self._writeback.start()
        return self

    def commit(self) -> None:
        self._stop_writeback()
        for f in self.files:
            f.flush()
            os.fsync(f.fileno())
            f.close()
        for tmp, target in zip(self._tmp, self.targets, strict=True):
            publish(tmp, target)
        self._tmp = []

    def _discard(self) -> None:
        self._stop_writeback()
        for f in self.files:
            f.close()
        for tmp in self._tmp:
            tmp.unlink(missing_ok=True)
        self._tmp = []

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None and self._tmp:
                self.commit()
            else:
                self._discard()
        finally:
            if self._old_term is not None:
                signal.signal(signal.SIGTERM, self._old_term)
        return False


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)
