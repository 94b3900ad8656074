"""doctor/fit's modules import each other in one direction: no cycle, lazy imports included, and
the calibration (the one module that fits) is imported by none; `doctor fit` reads what it
fitted as data (doctor/data/estimator_fit.json) and fits nothing at run time."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

FIT = REPO / "doctor" / "fit"
PACKAGE = "doctor.fit"


def imports_of(path: Path) -> set[str]:
    """The doctor/fit modules `path` imports, at the top or inside a function."""
    name = path.stem
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module
            elif node.level == 0 and node.module and node.module.startswith(PACKAGE):
                base = node.module[len(PACKAGE) + 1:] or None
            else:
                continue
            if base:  # from .band import x / from doctor.fit.band import x
                found.add(base.split(".")[0])
            else:  # from . import arch
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name[len(PACKAGE) + 1:].split(".")[0])
    return found - {name}


def graph() -> dict[str, set[str]]:
    return {p.stem: imports_of(p) for p in FIT.glob("*.py")}


def test_no_import_cycle_among_doctor_fit_modules():
    edges = graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node, path):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if nxt != "__init__":
                visit(nxt, path + [node])
        state[node] = 2

    for module in sorted(edges):
        visit(module, [])
    # no submodule reaches back into the package's __init__ (which imports the submodules)
    assert not [m for m, deps in edges.items() if m != "__init__" and "__init__" in deps]


def test_the_calibration_is_imported_by_no_module_and_the_band_reads_data():
    edges = graph()
    assert [m for m, deps in edges.items() if "calibration" in deps] == []
    assert "fitted" in edges["band"] and "fitted" in edges["estimate"]


def test_doctor_fit_fits_nothing_at_run_time():
    # the band comes from the file's residuals: loading doctor fit does not load the calibration
    code = ("import sys, doctor.fit, doctor.fit.sweep; "
            "from doctor.fit.band import band, residuals; residuals(); "
            "print(sorted(m for m in sys.modules if m.startswith('doctor.fit')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "doctor.fit.calibration" not in out.stdout and "doctor.fit.fitted" in out.stdout


def test_the_data_file_is_what_make_fit_calibration_writes():
    from doctor.fit.calibration import fit_data, load
    from doctor.fit.fitted import DATA

    shipped = json.loads(DATA.read_text())
    fresh = fit_data(load()[0])
    assert shipped["constants"] == fresh["constants"], "run `make fit-calibration`"
    assert shipped["band"] == fresh["band"], "run `make fit-calibration`"
