"""The rooms import one way: a room may use the rooms below it, never those beside or above it.

    doctor                   (bottom: the environment doctor needs none of the pack)
    patches, curation        (patches of XTuner's stack; data conversion and cleaning)
    components               (the pack's own XTuner components that configs build)
    configs                  (what users run)
    aftertrain               (eval and export of a trained run)
    demo, bench              (harnesses and benchmarks)
    tests                    (top: tests use every room)

Every import counts, at the top of a file or inside a function (resolved like
tests/curation/test_layout.py resolves relative ones). Within the doctor, no two modules import
each other, directly or around a loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import import_statements, imported_modules, module_name

REPO = Path(__file__).resolve().parents[1]
LEVELS = [("doctor",), ("patches", "curation"), ("components",), ("configs",), ("aftertrain",),
          ("demo", "bench"), ("tests",)]
RANK = {room: level for level, rooms in enumerate(LEVELS) for room in rooms}

# Imports that break the order (file, the room it imports): none may be added, and the test
# fails on a stale entry too.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()
# Import cycles inside the doctor: none may be added (the test fails on a stale entry too).
KNOWN_CYCLES: set[frozenset] = set()


def python_files(room: str):
    return sorted(p for p in (REPO / room).rglob("*.py") if ".venv" not in p.parts)


def room_violations() -> dict[tuple[str, str], str]:
    """{(file, room it imports): why} for every import of a room at or above the file's own
    level (its own room excepted)."""
    out = {}
    for room, level in RANK.items():
        for path in python_files(room):
            rel = str(path.relative_to(REPO))
            for name in imported_modules(path):
                other = name.split(".")[0]
                if other in RANK and other != room and RANK[other] >= level:
                    out[(rel, other)] = (f"{room} (level {level}) imports {name} "
                                         f"({other}, level {RANK[other]})")
    return out


def test_rooms_import_only_rooms_below_them():
    new = {k: v for k, v in room_violations().items() if k not in KNOWN_EXCEPTIONS}
    assert not new, "\n".join(f"{f}: {why}" for (f, _), why in sorted(new.items()))


def test_known_exceptions_are_still_real():
    """An exception that no longer happens leaves the list, so the list only shrinks."""
    stale = KNOWN_EXCEPTIONS - set(room_violations())
    assert not stale, f"no longer violated, remove from KNOWN_EXCEPTIONS: {sorted(stale)}"


def test_no_module_of_the_doctor_imports_a_room_above_it():
    above = [r for r in RANK if r != "doctor"]
    bad = {str(p.relative_to(REPO)): sorted(m for m in imported_modules(p)
                                            if m.split(".")[0] in above)
           for p in python_files("doctor")}
    assert not {k: v for k, v in bad.items() if v}


def module_imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of `modules` that a file imports: `from pkg import sub` is an import of
    pkg.sub alone when sub is a module (as import-linter counts it), else of pkg."""
    found = set()
    for name, subs in import_statements(path):
        found.update(m for m in subs if m in modules)
        if not subs or not all(m in modules for m in subs):  # `import pkg` has no subs
            found.add(name)
    return found & modules


def doctor_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in python_files("doctor")}
    return {name: module_imports(p, set(files)) - {name} for name, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_the_doctors_modules():
    found = [frozenset(c) for c in cycles(doctor_graph())]
    assert not [c for c in found if c not in KNOWN_CYCLES], found
    assert not KNOWN_CYCLES - set(found), "a known cycle is gone: remove it from KNOWN_CYCLES"


def test_the_checks_can_fail():
    """The resolver sees relative imports, and the cycle finder finds a loop."""
    assert "doctor.facts._base" in imported_modules(REPO / "doctor" / "facts" / "system.py")
    assert "doctor.probe" in doctor_graph()["doctor.facts.gpu"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert room_violations() or KNOWN_EXCEPTIONS == set()


@pytest.mark.parametrize("room", [r for rooms in LEVELS for r in rooms])
def test_every_room_exists(room):
    assert (REPO / room).is_dir()


def test_the_tests_mirror_the_rooms():
    """tests/<room>/ for each room's tests (fixtures/ holds data in public schemas); nothing but
    a room's name or fixtures as a folder of tests/."""
    folders = {p.name for p in (REPO / "tests").iterdir()
               if p.is_dir() and not p.name.startswith((".", "__"))}
    assert folders - {"fixtures"} <= set(RANK) - {"tests"}, folders


def test_no_room_shadows_an_installed_package():
    """`import doctor` anywhere in the environment is the pack's: no room has the name of a
    standard module or of a top-level module another installed distribution provides."""
    import pkgutil
    import sys

    elsewhere = [p for p in sys.path if p and Path(p).resolve() != REPO]
    installed = {m.name for m in pkgutil.iter_modules(elsewhere)} | set(sys.stdlib_module_names)
    assert {"json", "pytest", "xtuner"} <= installed  # the check sees what it should
    assert not installed & set(RANK), installed & set(RANK)


def test_configs_hold_configs():
    """configs/ holds what `xtuner train` reads: no harness code (a command line, a main) and no
    function over 80 lines (the recipe is a composition of one function per part)."""
    import ast

    long, harness = [], []
    for path in python_files("configs"):
        tree = ast.parse(path.read_text(), str(path))
        rel = str(path.relative_to(REPO))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.end_lineno - node.lineno + 1 > 80:
                    long.append(f"{rel}:{node.lineno} {node.name}")
            elif isinstance(node, ast.Compare) and ast.unparse(node) in (
                    "__name__ == '__main__'", '__name__ == "__main__"'):
                harness.append(rel)
        if "argparse" in imported_modules(path):
            harness.append(rel)
    assert not long, long
    assert not harness, harness
