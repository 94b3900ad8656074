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
