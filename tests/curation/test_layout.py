"""The room's two wings never import each other; both may use curation.common."""

from pathlib import Path

import pytest

from tests.helpers import imported_modules

ROOM = Path(__file__).resolve().parents[2] / "curation"


@pytest.mark.parametrize("wing, other", [("convert", "clean"), ("clean", "convert")])
def test_wings_do_not_import_each_other(wing, other):
    offenders = {
        str(path.relative_to(ROOM.parent)): sorted(m for m in imported_modules(path)
                                                   if m.startswith(f"curation.{other}"))
        for path in sorted((ROOM / wing).rglob("*.py"))
    }
    assert not {k: v for k, v in offenders.items() if v}, offenders


def test_common_imports_neither_wing():
    for path in (ROOM / "common").rglob("*.py"):
        bad = [m for m in imported_modules(path)
               if m.startswith(("curation.clean", "curation.convert"))]
        assert not bad, (path, bad)


def test_the_resolver_sees_relative_imports():
    # the check above must be able to fail: a relative import across wings is resolved
    found = imported_modules(ROOM / "clean" / "decontaminate.py")
    assert "curation.clean.matchers" in found and "curation.common.atomic" in found


def test_one_matcher_a_file_and_methods_from_them():
    from curation.clean.matchers import MATCHERS, METHODS

    files = {cls.__module__ for cls in MATCHERS}
    assert len(files) == len(MATCHERS)
    assert METHODS == tuple(m for cls in MATCHERS for m in cls.METHODS)
    assert len(set(METHODS)) == len(METHODS)
