"""What a check returns: a Finding with a status, a one-line summary, details and its Fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Ordered from best to worst: a category shows its worst finding.
STATUSES = ("pass", "skip", "info", "warn", "crash", "fail")
RANK = {s: i for i, s in enumerate(STATUSES)}


@dataclass
class Fix:
    """Remediation: shell commands to run in order (copy-paste ready), and prose around them."""

    commands: list[str] = field(default_factory=list)
    text: str = ""

    def __bool__(self) -> bool:
        return bool(self.commands or self.text)

    def __add__(self, other: Fix) -> Fix:
        text = "\n".join(t for t in (self.text, other.text) if t)
        return Fix(self.commands + other.commands, text)


@dataclass
class Finding:
    id: str
    category: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)
    fix: Fix = field(default_factory=Fix)

    def __post_init__(self):
        if self.status not in RANK:
            raise ValueError(f"unknown status {self.status!r} (one of {', '.join(STATUSES)})")

    def to_json(self) -> dict:
        return asdict(self)


def worst(statuses) -> str:
    return max(statuses, key=RANK.__getitem__, default="pass")
