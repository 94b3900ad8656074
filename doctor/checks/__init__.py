"""The checks: one module per concern, each check one function holding its detection and its fix.

A check is `fn(facts) -> Finding`, registered with `@check("id", "title")`; the module's
CATEGORY names the line it appears on. Checks read `doctor.facts.Facts` (never the machine
directly) and do not call each other. `deep=True` checks run only with `--deep`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ..findings import Finding, Fix

# Order of the categories in the report.
MODULES = ("gpu", "multigpu", "torch_wheel", "cuda", "deepspeed", "gds", "bnb", "precision",
           "xtuner", "resources")


@dataclass(frozen=True)
class Check:
    id: str
    category: str
    title: str
    fn: Callable
    deep: bool = False


REGISTRY: dict[str, Check] = {}


def check(id: str, title: str, deep: bool = False):
    def register(fn):
        category = sys.modules[fn.__module__].CATEGORY
        if id in REGISTRY:
            raise ValueError(f"check id {id!r} registered twice")
        REGISTRY[id] = Check(id, category, title, fn, deep)
        return fn

    return register


def load() -> list[Check]:
    """Every registered check; a module that fails to import becomes one check that crashes."""
    for name in MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except Exception as exc:
            def broken(facts, exc=exc):
                raise exc

            cid = f"{name}.import"
            REGISTRY.setdefault(cid, Check(cid, name, f"the {name} checks load", broken))
    return list(REGISTRY.values())


# Shorthands for check bodies: the runner fills in id and category.
def result(status, summary, details=(), fix=None) -> Finding:
    """A finding whose status was decided by the check (e.g. from what would use the tool)."""
    return Finding("", "", status, summary, list(details), fix or Fix())



def ok(summary, details=()):
    return result("pass", summary, details)


def info(summary, details=(), fix=None):
    return result("info", summary, details, fix)


def skip(summary, details=()):
    return result("skip", summary, details)


def warn(summary, details=(), fix=None):
    return result("warn", summary, details, fix)


def fail(summary, details=(), fix=None):
    return result("fail", summary, details, fix)


def gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 2**30:.1f} GiB"
