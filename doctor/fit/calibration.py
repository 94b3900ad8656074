"""python -m doctor.fit.calibration: the estimator against published measurements.

Reads doctor/data/calibration.json, estimates each row with its own settings and prints
estimate / measured with the relative error, the median absolute error and the worst row.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from .arch import load_table
from .estimate import DeepSpeed, GiB, Setup, estimate

DATA = Path(__file__).resolve().parent.parent / "data" / "calibration.json"


@dataclass
class Row:
    id: str
    setup: Setup
    measure: str
    measured_gib: float
    source: str
    research_row: int

    def estimate_gib(self) -> float:
        est = estimate(self.setup)
        if self.measure == "device":
            return est.total_gib
        if self.measure == "reserved":  # the caching allocator's view: no CUDA context
            return (est.total - est.parts["cuda_context"]) / GiB
        if self.measure == "allocated":
            return (est.total - est.parts["cuda_context"] - est.parts["allocator_reserve"]) / GiB
        raise ValueError(f"row {self.id}: unknown measure {self.measure!r}")

    @property
    def error(self) -> float:
        return self.estimate_gib() / self.measured_gib - 1


def load(path: Path = DATA) -> tuple[list[Row], list[dict]]:
    data = json.loads(path.read_text())
    table = load_table()
    raw = {r["id"]: r for r in data["rows"]}

    def merged(r: dict) -> dict:
        if "same_as" not in r:
            return r
        base = merged(raw[r["same_as"]])
        return {**base, **r, "setup": {**base["setup"], **r.get("setup", {})},
                "arch": {**base.get("arch", {}), **r.get("arch", {})},
                "source": r.get("source", base["source"])}

    rows = []
    for r in data["rows"]:
        r = merged(r)
        arch = replace(table[r["model"].lower()], **r.get("arch", {}))
        fields = dict(r["setup"])
        if fields.get("deepspeed"):
            fields["deepspeed"] = DeepSpeed(**fields["deepspeed"])
        if fields.get("lora_targets") is not None:
            fields["lora_targets"] = tuple(fields["lora_targets"])
        rows.append(Row(r["id"], Setup(arch=arch, **fields), r["measure"], float(r["measured_gib"]),
                        r["source"], int(r["research_row"])))
    return rows, data["excluded"]


def summary(rows: list[Row]) -> tuple[float, Row]:
    """(median absolute relative error, worst row)."""
    worst = max(rows, key=lambda r: abs(r.error))
    return statistics.median(abs(r.error) for r in rows), worst


def main(argv=None) -> int:
    rows, excluded = load()
    print(f"{'row':<30}{'estimate':>10}{'measured':>10}{'error':>9}   GiB")
    for r in rows:
        print(f"{r.id:<30}{r.estimate_gib():>10.2f}{r.measured_gib:>10.2f}{r.error:>+9.1%}")
    median, worst = summary(rows)
    print(f"\n{len(rows)} rows: median |error| {median:.1%}, worst {worst.id} {worst.error:+.1%}; "
          f"{len(excluded)} published rows not modelled (reasons in {DATA.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
