"""python -m doctor check [CHECK_ID ...] [-v] [--json] [--strict] [--deep] [--list-checks]

Finds what breaks a QLoRA/XTuner run on this machine and prints the command that fixes it.
The runner knows no check: it loads the registry (doctor/checks/), runs each selected check
against one shared `Facts`, turns a check that raises into a `crash` finding, and renders.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import checks, render
from .command import run_command
from .facts import STACK, Facts
from .findings import Finding, Fix
from .probe import DEFAULT_TIMEOUT, Machine


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m doctor check", description=__doc__.split("\n")[2])
    ap.add_argument("ids", nargs="*", metavar="CHECK_ID",
                    help="run only these checks (an id, or a category prefix such as `cuda`)")
    ap.add_argument("-v", "--verbose", action="store_true", help="every finding and fact")
    ap.add_argument("--json", action="store_true", help="only JSON on stdout")
    ap.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    ap.add_argument("--deep", action="store_true",
                    help="also import torch, deepspeed, flash_attn (subprocesses, with timeouts)")
    ap.add_argument("--list-checks", action="store_true", help="list check ids and exit")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                    help=f"seconds per command (default {DEFAULT_TIMEOUT:g})")
    ap.add_argument("--deep-timeout", type=float, default=60.0, metavar="S",
                    help="seconds per --deep import (default 60)")
    ap.add_argument("--stack", type=Path, default=STACK, metavar="FILE",
                    help="the pin set to compare against (default: env/stack.txt)")
    return ap.parse_args(argv)


def select(registry, ids):
    if not ids:
        return list(registry), []
    chosen, unknown = [], []
    for want in ids:
        hits = [c for c in registry if c.id == want or c.id.startswith(want.rstrip(".") + ".")]
        (chosen.extend(h for h in hits if h not in chosen) if hits else unknown.append(want))
    return chosen, unknown


def run_one(c, facts: Facts) -> Finding:
    if c.deep and not facts.deep:
        return Finding(c.id, c.category, "skip", "runs with --deep (imports in a subprocess)")
    try:
        result = c.fn(facts)
        if not isinstance(result, Finding):
            raise TypeError(f"check returned {type(result).__name__}, not a Finding")
    except Exception as exc:
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Finding(c.id, c.category, "crash", f"the check itself failed: {exc!r}",
                       [f"at {Path(where.filename).name}:{where.lineno} ({where.name})"],
                       Fix(text="A doctor bug, not necessarily a problem of this machine: "
                           "report it with the output of `python -m doctor check -v --json`."))
    result.id, result.category = c.id, c.category
    return result


def main(argv=None) -> int:
    return run_command(parse, run, argv)


def run(args) -> int:
    registry = checks.load()
    if args.list_checks:
        for c in registry:
            print(f"{c.id:24s} {c.category:20s} {c.title}" + ("  (--deep)" if c.deep else ""))
        return 0
    chosen, unknown = select(registry, args.ids)
    if unknown:
        print(f"doctor: unknown check id(s): {', '.join(unknown)} (see --list-checks)",
              file=sys.stderr)
        return 2
    facts, findings, elapsed, deep = gather(args, chosen)
    if args.json:
        print(render.to_json(findings, facts.gathered, args.strict, seconds=round(elapsed, 3),
                             deep=deep, python=facts.m.python))
    else:
        render.render(findings, args.verbose, facts.gathered, args.strict)
    return render.exit_code(findings, args.strict)


def gather(args, chosen):
    """Run the chosen checks against one Facts: (facts, findings, seconds, deep)."""
    ids = getattr(args, "ids", [])
    deep = args.deep or any(c.deep and c.id in ids for c in chosen)
    facts = Facts(Machine.from_environ(timeout=args.timeout), stack_path=args.stack, deep=deep,
                  deep_timeout=args.deep_timeout)
    start = time.monotonic()
    findings = [run_one(c, facts) for c in chosen]
    return facts, findings, time.monotonic() - start, deep
