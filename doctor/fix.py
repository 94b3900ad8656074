"""python -m doctor fix [CHECK_ID ...] [--yes] [--env-file FILE] [--stack FILE] [--timeout S]

Applies the fixes that change only this environment, then checks again and shows each problem
before and after. A dry run by default: it prints what it would change; `--yes` changes it.

What it may change is what the checks attach to their fixes as actions (doctor/actions.py):
pip lines of this interpreter pinned to env/stack.txt, `python -m patches install`, removing a
stale JIT build directory, and `export`/`unset` lines written to a file you source (by default
<environment>/etc/xtuner-pack-env.sh). Everything else a fix says (apt, drivers, container flags,
reboots, a torch download) is printed for you to run, never run. This runner knows no check: it
reads findings and their actions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from . import checks, render
from .actions import Context, EnvLine
from .check import gather, select
from .command import run_command
from .facts import STACK
from .probe import DEFAULT_TIMEOUT

MARK = {"pass": "✓", "skip": "✓", "info": "✓", "warn": "!", "fail": "✗", "crash": "✗"}


def default_env_file() -> Path:
    return Path(sys.prefix) / "etc" / "xtuner-pack-env.sh"


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m doctor fix", description=__doc__.split("\n")[2])
    ap.add_argument("ids", nargs="*", metavar="CHECK_ID",
                    help="fix only what these checks found (an id, or a category prefix)")
    ap.add_argument("--yes", action="store_true", help="apply (default: a dry run)")
    ap.add_argument("--env-file", type=Path, default=None, metavar="FILE",
                    help="where export/unset lines go (default: "
                         "<environment>/etc/xtuner-pack-env.sh)")
    ap.add_argument("--stack", type=Path, default=STACK, metavar="FILE",
                    help="the pin set (default: env/stack.txt)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                    help=f"seconds per probe command (default {DEFAULT_TIMEOUT:g})")
    args = ap.parse_args(argv)
    args.env_file = args.env_file or default_env_file()
    args.deep, args.deep_timeout = False, 60.0
    return args


def main(argv=None) -> int:
    return run_command(parse, run, argv)


def plan(findings):
    """[(finding, its actions, its commands for the user)] of every problem, and the actions of
    all of them in order, each once."""
    rows, actions, seen = [], [], set()
    for x in findings:
        if x.status not in render.PROBLEMS:
            continue
        mine = list(x.fix.actions)
        local = {a.line for a in mine}
        rows.append((x, mine, [c for c in x.fix.commands if c not in local]))
        for a in mine:
            if a not in seen:
                seen.add(a)
                actions.append(a)
    return rows, actions


def show_plan(rows, env_file: Path, dry: bool) -> None:
    print("Doctor fix" + (" (dry run: nothing changes; --yes applies the lines marked `apply`)"
                          if dry else ""))
    if not rows:
        print("\n✓ Nothing to fix: no check found a problem.")
    for x, mine, theirs in rows:
        print(f"\n{MARK[x.status]} {x.id}: {x.summary}")
        for a in mine:
            where = f"   (to {env_file})" if isinstance(a, EnvLine) else ""
            print(f"    apply  $ {a.line}{where}")
        if theirs:
            print("    yours  (outside this environment: printed, never run by the doctor)")
            print("\n".join(f"           $ {c}" for c in theirs))
        if not mine and not theirs and x.fix.text:
            print(f"    yours  {x.fix.text.splitlines()[0]}")


def recheck(args, ids: list[str], env_file: Path | None) -> dict | None:
    """`python -m doctor check --json` in a fresh process (it sees what pip installed), with the
    exports file sourced the way the user will source it."""
    argv = [sys.executable, "-m", "doctor", "check", "--json", "--stack", str(args.stack),
            "--timeout", str(args.timeout), *ids]
    if env_file is not None:
        argv = ["/bin/sh", "-c", '. "$0" && exec "$@"', str(env_file), *argv]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL, env=dict(os.environ))
        return json.loads(proc.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"doctor fix: the second check did not answer: {exc!r}", file=sys.stderr)
        return None


def run(args) -> int:
    chosen, unknown = select(checks.load(), args.ids)
    if unknown:
        print(f"doctor: unknown check id(s): {', '.join(unknown)} (see `python -m doctor check "
              "--list-checks`)", file=sys.stderr)
        return 2
    facts, before, _, _ = gather(args, chosen)
    rows, actions = plan(before)
    show_plan(rows, args.env_file, dry=not args.yes)
    n_theirs = sum(len(t) for _, _, t in rows)
    if not rows:
        return render.exit_code(before)
    if not args.yes:
        print(f"\n{len(actions)} change(s) to this environment (`python -m doctor fix --yes` "
              f"applies them), {n_theirs} command(s) for you; nothing changed.")
        return render.exit_code(before)
    if not actions:
        print("\nNothing here that the doctor may change; the commands above are yours to run.")
        return render.exit_code(before)

    print(f"\nApplying {len(actions)} change(s):")
    ctx = Context(python=facts.m.python, env=dict(os.environ), env_file=args.env_file)
    wrote_env = False
    for a in actions:
        ok, message = a.apply(ctx)
        wrote_env |= ok and isinstance(a, EnvLine)
        print(f"  {'✓' if ok else '✗'} $ {a.line}")
        if message and (not ok or not isinstance(a, EnvLine)):
            print("\n".join(f"      {ln}" for ln in message.splitlines()[-6:]))

    env_file = args.env_file if args.env_file.is_file() else None
    print("\nChecking again" + (f" (with {env_file} sourced)" if env_file else "") + ":")
    after = recheck(args, args.ids, env_file)
    if after is None:
        return 1
    status = {f["id"]: f["status"] for f in after["findings"]}
    width = max((len(x.id) for x, _, _ in rows), default=10) + 2
    for x, _, _ in rows:
        now = status.get(x.id, "?")
        print(f"  {x.id:<{width}}{x.status:>5} -> {now:<5} {MARK.get(now, '?')}")
    new = [f for f in after["findings"] if f["status"] in render.PROBLEMS
           and f["id"] not in {x.id for x, _, _ in rows}]
    for f in new:
        print(f"  {f['id']:<{width}}  new: {f['status']} {f['summary']}")
    if wrote_env:
        print(f"\nThe variables are in {args.env_file}: run `. {args.env_file}` in this shell and "
              "in every shell that trains (or add that line to the environment's bin/activate).")
    left = [f for f in after["findings"] if f["status"] in render.PROBLEMS]
    if not left:
        print("\n✓ The check passes now (exit 0)." if after["exit_code"] == 0 else "")
    else:
        print(f"\n{len(left)} problem(s) left: `python -m doctor check` shows them with what "
              "to run.")
    return int(after["exit_code"])
