"""What a decontamination report (`python -m curation decontaminate --report`) says about the
test items being evaluated: how many it matched in the training data, and so removed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DeconFinding:
    report: Path
    matched_items: int  # distinct evaluated test items some training row matched
    removed_rows: int  # training rows removed because they matched one of those items
    evaluated: int
    test_files: list[str]  # the test files the report checked
    checked: bool  # the evaluated file is one of them

    def line(self) -> str:
        n = f"{self.evaluated:,}"
        if not self.checked:
            return (f"decontamination report {self.report}: it checked "
                    f"{', '.join(self.test_files) or 'no test file'}, not this one: "
                    f"test items seen in training: unknown")
        return (f"decontamination report {self.report}: {self.matched_items} of {n} test items "
                f"matched {self.removed_rows} training rows, all removed -> "
                f"test items seen in training: 0 of {n} after decontamination")


def find_report(data_files: list[str], explicit=None) -> Path | None:
    """The report beside a training file: X_clean.jsonl -> X_report.jsonl (`make mathmix`),
    X.jsonl -> X.report.jsonl (doctor.provenance, which records it with the run); or the one
    given."""
    if explicit:
        return Path(explicit)
    from doctor.provenance import decontamination_report

    return decontamination_report(data_files)


def _same_file(a: str, b: Path) -> bool:
    try:
        return Path(a).resolve() == b.resolve() or Path(a).name == b.name
    except OSError:
        return False


def read_report(report: Path, test_file, lines: set[int]) -> DeconFinding:
    """Matches of `report` against `test_file`'s items at 1-based `lines`. Malformed report lines
    are skipped (the report is a log, not an input to trust blindly)."""
    test_file = Path(test_file)
    matched: set[int] = set()
    removed = 0
    files: list[str] = []
    with open(report, encoding="utf-8") as f:
        for raw in f:
            try:
                row = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(row, dict):
                continue
            summary = row.get("summary")
            if isinstance(summary, dict):
                files.extend(str(k) for k in (summary.get("per_test_file") or {}))
                continue
            hits = [m for m in row.get("test_matches") or [] if isinstance(m, dict)
                    and _same_file(str(m.get("test_file", "")), test_file)
                    and m.get("test_line") in lines]
            if hits:
                removed += 1
                matched.update(m["test_line"] for m in hits)
    checked = any(_same_file(f, test_file) for f in files) or bool(matched)
    return DeconFinding(report, len(matched), removed, len(lines), sorted(set(files)), checked)
