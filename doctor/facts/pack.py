"""The pack itself: its pin set (env/stack.txt), `xtuner` on PATH and the interpreter it runs,
the startup patches' .pth, the Python version."""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import pth
from ._base import STACK, fact
from .packages import canonical

__all__ = ["STACK", "Launcher", "PackFacts", "Pin", "Stack", "interpreter_matches",
           "parse_stack", "read_launcher", "shebang_limit"]

PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")


@dataclass
class Pin:
    name: str
    version: str
    group: str  # "" for plain pins, else the #@group
    line: int


@dataclass
class Stack:
    path: str
    pins: list[Pin] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "file:line: message"

    def pin(self, name: str) -> Pin | None:
        """The pin of a distribution, by its canonical name (PEP 503)."""
        want = canonical(name)
        return next((p for p in self.pins if canonical(p.name) == want), None)


def parse_stack(path: Path, text: str) -> Stack:
    """env/stack.txt: `name==ver` lines and `#@group name==ver` lines; other comments skipped."""
    stack = Stack(path=str(path))
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        group = ""
        if line.startswith("#@"):
            group, _, line = line[2:].partition(" ")
            line = line.strip()
        elif not line or line.startswith("#"):
            continue
        m = PIN_RE.match(line.split(";")[0].strip())
        if not m:
            stack.errors.append(f"{path}:{n}: not a `name==version` pin: {raw.strip()!r}")
            continue
        stack.pins.append(Pin(m.group(1), m.group(2), group, n))
    return stack


def interpreter_matches(a: str | None, b: str) -> bool:
    """Whether two interpreter paths are the same environment's python (venv-aware)."""
    if not a:
        return False
    try:
        pa, pb = Path(a), Path(b)
        if pa.parent.resolve() != pb.parent.resolve():
            return False
        # python, python3, python3.11 in one bin directory are the same environment.
        return pa.name.startswith("python") and pb.name.startswith("python")
    except OSError:
        return False


@dataclass
class Launcher:
    """An entry point (`xtuner`) as the kernel and its `#!` line run it. pip writes one of two
    forms (distlib's ScriptMaker): `#!/path/to/python` when that line fits 127 bytes and has no
    space, else `#!/bin/sh` and a second line `'''exec' "/path/to/python" "$0" "$@"` that the
    shell runs (and Python reads as a string); conda and others write `#!/usr/bin/env python`."""

    path: str
    form: str  # "#!python" | "#!/usr/bin/env" | "/bin/sh exec" | "binary" | "unknown"
    interpreter: str | None = None  # the Python it runs, as the OS finds it
    line_bytes: int = 0  # the `#!` line with its newline
    limit: int = 256  # what this kernel reads of a first line (BINPRM_BUF_SIZE)
    problem: str | None = None  # why the OS cannot run it as written


SH_EXEC = "'''exec' "  # distlib's (and uv's) trampoline line for a long interpreter path


def shebang_limit(kernel: str | None) -> int:
    """BINPRM_BUF_SIZE: the bytes of a `#!` line the kernel reads. Linux 5.1 raised it from 128
    to 256 (and since 5.0 a cut-off interpreter path is refused, before it ran the cut path)."""
    m = re.match(r"(\d+)\.(\d+)", kernel or "")
    if not m:
        return 256  # unknown: judge by the newer rule, never fail a launcher on a guess
    return 256 if (int(m.group(1)), int(m.group(2))) >= (5, 1) else 128


def read_launcher(path: str, text: str, kernel: str | None, which, exists) -> Launcher:
    """How the OS runs the script `path` whose start is `text`: its form, the Python it runs
    (`which(name)` resolves `env`'s lookup, `exists(path)` the interpreter), and whether the
    kernel reads all of its `#!` line."""
    if text.startswith("\x7fELF"):
        return Launcher(path, "binary")
    lines = text.splitlines()
    first = lines[0] if lines else ""
    if not first.startswith("#!"):
        return Launcher(path, "unknown")
    out = Launcher(path, "#!python", line_bytes=len(first.encode()) + 1,
                   limit=shebang_limit(kernel))
    if out.line_bytes > out.limit - 1:  # the kernel keeps limit-1 bytes and a NUL
        out.problem = (f"its #! line is {out.line_bytes} bytes and this kernel ({kernel or '?'}) "
                       f"reads {out.limit - 1}: it cannot start it as written")
    words = first[2:].split()
    if not words:
        out.form, out.problem = "unknown", "its #! line names no interpreter"
        return out
    if os.path.basename(words[0]) == "env":
        out.form = "#!/usr/bin/env"
        rest = [w for w in words[1:] if not w.startswith("-")]
        out.interpreter = which(rest[0]) if rest else None
        if rest and not out.interpreter:
            out.problem = out.problem or f"`{rest[0]}` is not on PATH (env finds no such command)"
        return out
    if os.path.basename(words[0]) in ("sh", "bash", "dash") and len(lines) > 1 and lines[
            1].startswith(SH_EXEC):
        out.form = "/bin/sh exec"
        try:
            out.interpreter = shlex.split(lines[1][len(SH_EXEC):])[0]
        except (ValueError, IndexError):
            out.problem = out.problem or f"an unreadable exec line: {lines[1][:200]!r}"
            return out
    else:
        out.interpreter = words[0]
    if not exists(out.interpreter):
        out.problem = out.problem or (
            f"its interpreter {out.interpreter} does not exist (\"bad interpreter: No such file "
            "or directory\": a moved or deleted environment)")
    return out


class PackFacts:
    def pin(self, name: str) -> Pin | None:
        return self.stack.pin(name) if self.stack else None

    @fact
    def stack(self) -> Stack | None:
        text = self.m.read(self.stack_path, host=False)
        return None if text is None else parse_stack(self.stack_path, text)

    @fact
    def xtuner_cli(self) -> dict:
        """`xtuner` and `python` first on PATH, and how the OS runs that `xtuner`."""
        exe = self.m.which("xtuner")
        launcher = None
        if exe:
            launcher = read_launcher(
                exe, self.m.read(exe, host=False, limit=1024) or "", self.kernel_release,
                self.m.which, lambda p: self.m.exists(p, host=False, kind="file"))
        return {"xtuner": exe, "launcher": launcher, "python_on_path": self.m.which("python"),
                "env_python": self.m.python, "env_bin": os.path.dirname(self.m.python)}

    @fact
    def cli_exit_patched(self) -> bool:
        """Whether this environment's python starts the xtuner_cli_exit patch, as that python
        says (a subprocess: the doctor imports nothing of the pack's rooms above it). Asked only
        when `python` on PATH is another interpreter."""
        if not self.patches_pth["current"]:
            return False
        run = self.m.python_run("import patches; print('xtuner_cli_exit' in patches.selected())")
        return run.ok and run.stdout.strip().endswith("True")

    @fact
    def patches_pth(self) -> dict:
        path = pth.pth_path()
        text = self.m.read(path, host=False)
        return {"path": str(path), "present": text is not None, "current": text == pth.PTH_LINE,
                "selection": self.m.getenv("XTUNER_PACK_PATCHES")}

    @fact
    def python_version(self) -> str:
        return ".".join(map(str, sys.version_info[:3]))

