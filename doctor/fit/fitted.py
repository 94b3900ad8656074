"""What `make fit-calibration` fitted, as data: doctor/data/estimator_fit.json.

`python -m doctor.fit.calibration --write` fits the estimator's constants (CUDA context, the
uncounted share and the allocator cache per regime) to the published measurements of
doctor/data/calibration.json and scores every row with constants fitted without its source
(leave-one-source-out); it writes both here. `doctor fit` only reads them: the estimator takes
its constants (estimate.py) and the error band its residuals (band.py) from this file, so no
module of doctor/fit imports the calibration, and no run re-fits anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "estimator_fit.json"


@dataclass(frozen=True)
class Fitted:
    context_gib: float  # CUDA context, workspaces, kernels: outside the caching allocator
    uncounted: dict  # regime key ("4bit" | "16bit") -> share of the training-time bytes
    cache: dict  # regime key -> allocator cache, as a share of the training-time bytes
    # the band: regime key (band.Regime.key()) -> residuals of the rows of that regime
    residuals: dict
    # the band of what a trace cannot see (band.py): shares of it the paired rows measured above
    # the estimate
    untraced: list
    date: str


class FitDataError(ValueError):
    pass


@lru_cache(maxsize=1)
def fitted(path: Path = DATA) -> Fitted:
    try:
        data = json.loads(path.read_text())
        c = data["constants"]
        return Fitted(float(c["cuda_context_gib"]), dict(c["uncounted"]),
                      dict(c["allocator_cache"]), dict(data["band"]["residuals"]),
                      list(data["band"].get("untraced", [])), str(data["date"]))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FitDataError(f"{path}: the estimator's fitted constants cannot be read ({exc}); "
                           "`make fit-calibration` writes them") from None
