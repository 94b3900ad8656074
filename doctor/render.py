"""Rendering: terse or verbose text (rich colours on a terminal, plain text otherwise), JSON, and
the exit code.

Exit codes: 0 nothing failed; 1 a check failed or crashed (with --strict: or warned); 2 bad usage.
"""

from __future__ import annotations

import json
import sys

from .findings import RANK, worst

MARKS = {"pass": "✓", "skip": "✓", "info": "✓", "warn": "!", "fail": "✗", "crash": "✗"}
ASCII_MARKS = {"pass": "+", "skip": "+", "info": "+", "warn": "!", "fail": "x", "crash": "x"}
STYLES = {"pass": "green", "skip": "dim", "info": "cyan", "warn": "yellow", "fail": "bold red",
          "crash": "bold magenta"}
PROBLEMS = ("warn", "fail", "crash")


def exit_code(findings, strict: bool = False) -> int:
    bar = RANK["warn"] if strict else RANK["crash"]
    return 1 if any(RANK[f.status] >= bar for f in findings) else 0


def to_json(findings, facts: dict, strict: bool = False, **meta) -> str:
    code = exit_code(findings, strict)
    counts = {s: sum(f.status == s for f in findings) for s in RANK}
    return json.dumps({"exit_code": code, "counts": counts, **meta,
                       "findings": [f.to_json() for f in findings], "facts": facts},
                      indent=2, default=str)


def by_category(findings) -> dict:
    cats: dict = {}
    for f in findings:
        cats.setdefault(f.category, []).append(f)
    return cats


def lines(findings, verbose: bool, facts: dict, strict: bool, marks: dict):
    """(text, style) pairs of the report."""
    out = [("Doctor summary" + ("" if verbose else " (-v shows every fact gathered)"), "bold")]
    cats = by_category(findings)
    width = max((len(c) for c in cats), default=10) + 2
    for cat, fs in cats.items():
        status = worst(f.status for f in fs)
        lead = lead_finding(fs)
        out.append((f"[{marks[status]}] {cat:<{width}}{lead.summary}", STYLES[status]))
        if verbose:
            for f in fs:
                out.append((f"    {marks[f.status]} {f.id} [{f.status}]: {f.summary}",
                            STYLES[f.status]))
                out += [(f"        • {d}", "") for d in f.details]
                out += fix_lines(f, "        ")
    problems = [f for f in findings if f.status in PROBLEMS]
    if problems:
        out.append(("", ""))
    for f in sorted(problems, key=lambda f: -RANK[f.status]) if not verbose else []:
        out.append((f"{marks[f.status]} {f.id}: {f.summary}", STYLES[f.status]))
        out += fix_lines(f, "    ")
    if verbose and facts:
        out += [("", ""), ("Facts gathered", "bold")]
        out += [(f"  {k}: {json.dumps(v, default=str)}", "dim") for k, v in facts.items()]
    out += [("", ""), footer(findings, strict, marks)]
    return out


def lead_finding(fs):
    """The finding that speaks for its category: the worst problem, else the first that is not
    a skip (a skip says only what was not looked at)."""
    problems = [f for f in fs if f.status in PROBLEMS]
    if problems:
        return max(problems, key=lambda f: RANK[f.status])
    return next((f for f in fs if f.status != "skip"), fs[0])


def fix_lines(f, indent: str):
    out = []
    out += [(f"{indent}{line}", "") for line in f.fix.text.splitlines()]
    out += [(f"{indent}  $ {c}", "bold") for c in f.fix.commands]
    return out


def footer(findings, strict: bool, marks: dict):
    code = exit_code(findings, strict)
    n = {s: sum(f.status == s for f in findings) for s in RANK}
    parts = [f"{n[s]} {s}" for s in ("fail", "crash", "warn", "info", "skip", "pass") if n[s]]
    if n["fail"] or n["crash"]:
        cats = {f.category for f in findings if f.status in ("fail", "crash")}
        text = f"{marks['fail']} Doctor found problems in {len(cats)} categor" + (
            "y" if len(cats) == 1 else "ies")
    elif n["warn"]:
        text = f"{marks['warn']} No failures; {n['warn']} warning(s)"
    else:
        text = f"{marks['pass']} No issues found"
    return f"{text} ({', '.join(parts)}; exit {code})", "bold"


def render(findings, verbose: bool = False, facts: dict | None = None, strict: bool = False,
           stream=None) -> None:
    stream = stream or sys.stdout
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "✓✗•".encode(encoding)
        marks = MARKS
    except (UnicodeEncodeError, LookupError):
        marks = ASCII_MARKS
    pairs = lines(findings, verbose, facts or {}, strict, marks)
    if stream.isatty():
        try:  # colour only for a terminal (plain text stays fast), and only if rich is there
            from rich.console import Console
            from rich.text import Text
        except ImportError:
            Console = None
        if Console is not None:
            console = Console(file=stream, highlight=False, soft_wrap=True)
            for text, style in pairs:
                console.print(Text(text, style=style or ""))
            return
    for text, _ in pairs:
        if marks is ASCII_MARKS:
            text = text.replace("•", "-")
        stream.write(text.encode(encoding, errors="replace").decode(encoding) + "\n")
