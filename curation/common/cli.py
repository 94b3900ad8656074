"""Argument types and path checks every command of the room shares."""

from __future__ import annotations

import argparse
import os


def threshold(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also NaN
        raise argparse.ArgumentTypeError(f"{text}: a threshold is a number >= 0")
    return value  # above 1: the method never fires


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be 1 or more")
    return value


def path_problems(inputs: list[str], outputs: list[str]) -> list[str]:
    """What stops a run before it starts: missing or unreadable inputs, an output that is an
    input, two outputs that are one file."""
    problems = []
    for path in inputs:
        if not os.path.isfile(path):
            problems.append(f"{path}: no such file")
        elif not os.access(path, os.R_OK):
            problems.append(f"{path}: not readable")
    real_inputs = {os.path.realpath(p) for p in inputs}
    for path in outputs:
        if os.path.realpath(path) in real_inputs:
            problems.append(f"{path}: an output may not be one of the inputs")
    if len({os.path.realpath(p) for p in outputs}) < len(outputs):
        problems.append("--out and --report must be different files")
    return problems


def default_workers(cap: int = 4) -> int:
    """The CPUs this process may use, at most `cap`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, cap))


# glibc's malloc gives each array above its (self-raising) mmap threshold fresh pages from the
# kernel and returns them when it is freed, so a command that makes the same large numpy
# temporaries batch after batch faults every page in again: 0.8 s of kernel time in a 3 s
# decontaminate run of the real mix (125k page faults). Keeping freed memory in the heap for
# reuse cut that to 0.4 s (49k faults). A command's process only: the peak memory is the same,
# it is just not handed back between batches.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
HEAP_REUSE_BYTES = 256 << 20


def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed memory (up to HEAP_REUSE_BYTES) for reuse; False elsewhere."""
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, HEAP_REUSE_BYTES)
                    and libc.mallopt(_M_TRIM_THRESHOLD, HEAP_REUSE_BYTES))
    except (OSError, AttributeError):
        return False
