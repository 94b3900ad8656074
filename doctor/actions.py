"""What `python -m doctor fix --yes` may change: this environment, and nothing outside it.

A check attaches actions to its Fix with `local(action)`; each action has the shell line the
doctor prints (one of the Fix's commands) and knows how to apply itself. Four kinds:

- `Run`: a command of this environment's interpreter: `python -m pip install -c env/stack.txt
  "name==version"` (every install pinned to the stack: `pip(...)` adds the constraint) or
  `python -m patches install` (the startup patches' .pth);
- `Remove`: a path the check found stale (a JIT build directory whose lock no build holds);
- `EnvLine`: an `export`/`unset` line, written to a file of such lines that the user sources
  (`doctor fix` says which), never to the shell that runs it.

Commands without an action (apt, drivers, container flags, reboots, `make env` that downloads a
torch) are printed and never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .atomic import write_text
from .findings import Fix


@dataclass(frozen=True)
class Action:
    line: str  # the shell line shown among the Fix's commands

    def apply(self, ctx: Context) -> tuple[bool, str]:
        raise NotImplementedError


@dataclass
class Context:
    """Where actions apply: the environment's interpreter and variables, the exports file."""

    python: str
    env: dict
    env_file: Path
    timeout: float = 900.0  # a pip install may build a wheel


@dataclass(frozen=True)
class Run(Action):
    argv: tuple[str, ...] = ()

    def apply(self, ctx: Context) -> tuple[bool, str]:
        import subprocess  # here: a `check` builds actions, only `fix --yes` runs them

        if not self.argv or self.argv[0] != ctx.python:  # only this environment's interpreter
            return False, f"not run: {self.argv[:1]} is not this environment's python"
        try:
            proc = subprocess.run(list(self.argv), capture_output=True, text=True, env=ctx.env,
                                  timeout=ctx.timeout, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
        return proc.returncode == 0, "\n".join(tail)


@dataclass(frozen=True)
class Remove(Action):
    path: str = ""

    def apply(self, ctx: Context) -> tuple[bool, str]:
        import shutil

        p = Path(self.path)
        if not p.is_absolute() or len(p.parts) < 3:  # never /, /root, /home
            return False, f"not removed: {p} is too close to the root"
        if not p.exists() and not p.is_symlink():
            return True, "already gone"
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        except OSError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, "removed"


@dataclass(frozen=True)
class EnvLine(Action):
    names: tuple[str, ...] = ()  # the variables the line sets or unsets

    def apply(self, ctx: Context) -> tuple[bool, str]:
        try:
            write_env_file(ctx.env_file, [self])
        except OSError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"written to {ctx.env_file}"


ENV_HEADER = ("# Written by `python -m doctor fix` (xtuner-8gb-pack): the environment variables "
              "its fixes set.\n# Source it in each shell that trains: . {path}\n")
LINE_RE = re.compile(r"^(?:export|unset)\s+(.*)$")


def names_of(line: str) -> tuple[str, ...]:
    m = LINE_RE.match(line.strip())
    return tuple(w.split("=", 1)[0] for w in (m.group(1).split() if m else [])
                 if re.match(r"^[A-Za-z_][A-Za-z0-9_]*(=|$)", w))


def write_env_file(path: Path, lines: list[EnvLine]) -> None:
    """Merge lines into the exports file: a later line for a variable replaces the earlier one.
    Written whole or not at all, so a shell sourcing it never reads half a file."""
    old = path.read_text().splitlines() if path.is_file() else []
    kept = [ln for ln in old if ln.strip() and not ln.startswith("#")]
    for new in lines:
        kept = [ln for ln in kept if not set(names_of(ln)) & set(new.names)] + [new.line]
    write_text(path, ENV_HEADER.format(path=path) + "".join(ln + "\n" for ln in kept))


# -- what checks write -------------------------------------------------------------------------
def local(action: Action, text: str = "") -> Fix:
    """A Fix whose one command is an environment-local action."""
    return Fix([action.line], text, [action])


def pip(f, *args: str, line: str | None = None) -> Run:
    """`python -m pip ...` for this environment; an install is pinned to the stack
    (`-c env/stack.txt`) so that pip can pull no other torch."""
    args = list(args)
    if args and args[0] == "install" and "-c" not in args:
        args[1:1] = ["-c", str(f.stack_path)]
    return Run(line or f.platform.pip(*args), (f.m.python, "-m", "pip", *args))


def python_m(f, module: str, *args: str) -> Run:
    """A module run by this environment's interpreter: `python -m patches install`."""
    argv = (f.m.python, "-m", module, *args)
    return Run(" ".join(argv), argv)


def remove(path: str) -> Remove:
    return Remove(f"rm -rf {path}", path)


def export(name: str, value: str) -> EnvLine:
    """`export NAME=value`; the value is written as given (it may say "$CUDA_HOME/bin:$PATH")."""
    return EnvLine(f"export {name}={value}", (name,))


def unset(name: str) -> EnvLine:
    return EnvLine(f"unset {name}", (name,))


def env_line(line: str) -> EnvLine:
    """An export/unset line as written (several variables at once)."""
    return EnvLine(line, names_of(line))


def use_toolkit(path: str, text: str = "") -> Fix:
    """CUDA_HOME (and PATH) pointed at a toolkit that is installed here."""
    return local(export("CUDA_HOME", path), text) + local(export("PATH", '"$CUDA_HOME/bin:$PATH"'))
