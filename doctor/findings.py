"""What a check returns: a Finding with a status, a one-line summary, details and its Fix.

A Fix is data, carried by the check that detected the problem (Homebrew's remediation, one unit
with its detection): the shell commands it prints, the prose around them, and among those
commands the ones that change only this environment (`actions`, doctor/actions.py), which
`python -m doctor fix --yes` may apply. Every other command (apt, drivers, container flags,
reboots) is printed, never run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Ordered from best to worst: a category shows its worst finding.
STATUSES = ("pass", "skip", "info", "warn", "crash", "fail")
RANK = {s: i for i, s in enumerate(STATUSES)}


@dataclass
class Fix:
    """Remediation: shell commands to run in order (copy-paste ready), prose around them, and the
    environment-local actions among the commands (each action's line is one of `commands`)."""

    commands: list[str] = field(default_factory=list)
    text: str = ""
    actions: list = field(default_factory=list)  # doctor.actions.Action

    def __bool__(self) -> bool:
        return bool(self.commands or self.text)

    def __add__(self, other: Fix) -> Fix:
        text = "\n".join(t for t in (self.text, other.text) if t)
        return Fix(self.commands + other.commands, text, self.actions + other.actions)

    def to_json(self) -> dict:
        return {"commands": list(self.commands), "text": self.text,
                "local": [a.line for a in self.actions]}


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
        return {"id": self.id, "category": self.category, "status": self.status,
                "summary": self.summary, "details": list(self.details),
                "fix": self.fix.to_json()}


def worst(statuses) -> str:
    return max(statuses, key=RANK.__getitem__, default="pass")
