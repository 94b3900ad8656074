"""The provenance report: one JSON line per removed or rejected row, then one summary line.

Lines (decontaminate; dedup writes the same shapes with its own fields):
    {"train_file", "train_line", "method", "score", "methods",
     "test_matches": [{"test_file", "test_line", "method", "score", "matched_text"}, ...]}
    {"train_file", "train_line", "rejected": REASON}
    {"test_file", "test_line", "rejected": REASON}           (a test line that gave no item)
    {"summary": {"read", "kept", "removed", "rejected", "per_test_file", "per_method", ...}}
"""

from __future__ import annotations

import json
from collections import Counter


def dumps(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


class Tally:
    """Counts that must add up: read == kept + removed + rejected."""

    def __init__(self):
        self.read = self.kept = self.removed = self.rejected = 0
        self.per_method: Counter = Counter()  # removed rows by the method that reported them
        self.per_method_any: Counter = Counter()  # removed rows each method matched at all

    def check(self) -> None:
        if self.read != self.kept + self.removed + self.rejected:  # a bug, never bad input
            raise AssertionError(f"accounting: read {self.read} != kept {self.kept} + removed "
                                 f"{self.removed} + rejected {self.rejected}")

    def summary(self) -> dict:
        self.check()
        return {
            "read": self.read,
            "kept": self.kept,
            "removed": self.removed,
            "rejected": self.rejected,
            "per_method": dict(self.per_method),
            "per_method_any": dict(self.per_method_any),
        }
