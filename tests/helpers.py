"""Helpers for tests that run the pack's commands in subprocesses, offline."""

from __future__ import annotations

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


