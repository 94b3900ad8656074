"""What every domain of facts shares: one cache per run, and the decorators that fill it.

A fact is computed the first time a check asks for it, so running one check probes only what it
needs; every fact gathered is recorded in `gathered` for `-v` and `--json`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, is_dataclass
from pathlib import Path

from .. import probe

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "env" / "stack.txt"


def fact(fn):
    """A cached property whose value is also recorded in `self.gathered`."""
    name = fn.__name__

    @functools.wraps(fn)
    def get(self):
        return self._memo((name,), lambda: fn(self), lambda v: self.gathered.__setitem__(
            name, jsonable(v)))

    return property(get)


def keyed(kind: str, record=None):
    """A cached method of one key (and maybe more arguments, not part of the key), recorded in
    `self.gathered[kind][key]`: installed versions, package directories, --deep imports."""

    def wrap(fn):
        @functools.wraps(fn)
        def get(self, key, *args):
            def note(value):
                self.gathered.setdefault(kind, {})[str(key)] = (record or jsonable)(value)

            return self._memo((kind, key), lambda: fn(self, key, *args), note)

        return get

    return wrap


def jsonable(value):
    if is_dataclass(value):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class FactsBase:
    """The machine, the run's options, and the one cache every domain's facts go through."""

    def __init__(self, machine: probe.Machine, stack_path: Path | None = None, deep: bool = False,
                 deep_timeout: float = 60.0):
        self.m = machine
        self.stack_path = Path(stack_path) if stack_path else STACK
        self.deep = deep
        self.deep_timeout = deep_timeout  # a cold `import torch` takes seconds
        self._cache: dict = {}  # the one fact cache: (fact name,) or (kind, key) -> value
        self.gathered: dict = {}

    def _memo(self, key: tuple, compute, record):
        if key not in self._cache:
            self._cache[key] = compute()
            record(self._cache[key])
        return self._cache[key]
