"""Helpers for tests that run the pack's commands in subprocesses, offline."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def offline_env(**extra: str) -> dict[str, str]:
    """The environment a subprocess of the pack runs in: this interpreter first, no hub."""
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
    )
    env.update(extra)
    return env


def run(args, *, timeout=600, cwd=REPO, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=offline_env(**env), timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def python(code: str, **kw) -> subprocess.CompletedProcess:
    return run([sys.executable, "-c", code], **kw)


def xtuner(*args, **kw) -> subprocess.CompletedProcess:
    return run([BIN / "xtuner", *args], **kw)


# ---- imports, as the layout tests read them (tests/test_rooms.py, tests/curation/test_layout.py)
def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_statements(path: Path) -> list[tuple[str, list[str]]]:
    """Each import of a file as (absolute module, [module.name for each imported name]):
    `import a.b` gives ("a.b", []), `from .c import d` in package p gives ("p.c", ["p.c.d"])."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(
        ".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.append((name, [f"{name}.{alias.name}" for alias in node.names]))
    return found


def imported_modules(path: Path) -> set[str]:
    """Absolute names of what a file imports (`from a import b` gives a and a.b)."""
    return {m for name, subs in import_statements(path) for m in (name, *subs)}
