"""The doctor's one version parser (PEP 440 through `packaging`), for package, CUDA and driver
versions alike: "0.19.8+cu126", "12.6", "12.6.85", "550.90.07". Unreadable text is None, never
an exception: a sick machine prints odd versions."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version


def parse(text: str | None) -> Version | None:
    if not text:
        return None
    try:
        return Version(str(text).strip())
    except InvalidVersion:
        return None


def release(text: str | None) -> tuple[int, ...]:
    """The release numbers, local label dropped: "0.19.8+abc" -> (0, 19, 8); () if unreadable."""
    v = parse(text)
    return v.release if v else ()


def at_least(text: str | None, floor: str) -> bool:
    """Whether `text` is a readable version >= `floor` (release numbers only, so a local label
    such as +cpu or a dev suffix does not reorder it)."""
    have = release(text)
    return bool(have) and have >= release(floor)


def major_minor(text: str | None) -> tuple[int, int] | None:
    """"12.6" / "12.6.85" / "12" -> (12, 6) / (12, 6) / (12, 0); None when unreadable."""
    r = release(text)
    return (r[0], r[1] if len(r) > 1 else 0) if r else None


def dotted(cuda: str) -> str:
    m = major_minor(cuda)
    return f"{m[0]}.{m[1]}" if m else cuda


def dashed(cuda: str) -> str:
    m = major_minor(cuda)
    return f"{m[0]}-{m[1]}" if m else cuda


def from_digits(digits: str) -> str | None:
    """bitsandbytes' and torch tags' CUDA spelling: "126" -> "12.6", "130" -> "13.0"."""
    return f"{digits[:-1]}.{digits[-1]}" if digits.isdigit() and len(digits) >= 2 else None


SIMPLE_OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
              "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def satisfies(text: str, spec: str) -> bool | None:
    """Whether a version meets a specifier set (">=3.8, <3.13"); None when unreadable.
    Plain comparisons are evaluated here on the parsed versions; anything else (~=, ===,
    wildcards) goes to packaging.specifiers, whose import compiles a regex that costs ~0.1 s,
    half of a doctor run."""
    have = parse(text)
    if have is None:
        return None
    ok = True
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        op = next((o for o in (">=", "<=", "==", "!=", ">", "<") if part.startswith(o)), None)
        bound = parse(part[len(op):]) if op else None
        if op is None or bound is None or "*" in part:
            from packaging.specifiers import InvalidSpecifier, SpecifierSet

            try:
                return have in SpecifierSet(spec)
            except InvalidSpecifier:
                return None
        ok = ok and SIMPLE_OPS[op](have, bound)
    return ok
