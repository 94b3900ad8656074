"""The error band of the estimate, and the memory budget a card leaves a process.

The frozen weights (4-bit data, quantization constants, 16-bit/fp32 tensors) are counted exactly
(tests/doctor/test_fit_exact.py); the error lies in the rest: activations, logits, the fitted
terms and the CUDA context. So the band widens that rest: upper = estimate + margin x (estimate -
frozen weights). The margin comes from the calibration residuals (doctor/data/calibration.json)
of the regime a setup is in (4-bit or 16-bit base, checkpointing, tokens per step): the
BAND_QUANTILE of (measured - estimate) / (estimate - frozen weights) over the regime's published
rows, each estimated with constants fitted without its own source (leave-one-source-out), so the
margin is what the estimator does on data it has not seen. Regimes with too few rows borrow their
parent's rows (same base and checkpointing, same base, every row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from .fitted import fitted

# An "8 GB" card holds 8 GiB; on a headless card (no display) the driver, its firmware and
# ECC/page-retirement tables leave about 7.6 GiB that a process can allocate (NVML's free memory
# on an idle headless 8 GiB card). With a GPU present the budget is NVML's free memory instead.
HEADLESS_RESERVE_GIB = 0.4


def usable_gib(total_gib: float) -> float:
    """What a process can allocate on a headless card of `total_gib` GiB."""
    return max(0.0, total_gib - HEADLESS_RESERVE_GIB)


# The band covers this share of the published rows of a regime (their measurement below the top).
BAND_QUANTILE = 0.9
# A regime needs this many calibration rows, else its parent's rows are used.
MIN_ROWS = 8
# The band is never narrower than this: the calibration rows are not XTuner runs.
MIN_MARGIN = 0.03
# Token ranges of the regimes (tokens per step: batch x max_length).
TOKEN_EDGES = (1024, 4096)


@dataclass(frozen=True)
class Regime:
    quant: bool  # 4-bit base (QLoRA) or 16-bit base
    grad_ckpt: bool
    tokens: str  # "<=1024" | "<=4096" | ">4096"

    def label(self) -> str:
        base = "QLoRA" if self.quant else "16-bit LoRA"
        ckpt = "checkpointing" if self.grad_ckpt else "no checkpointing"
        return f"{base}, {ckpt}, {self.tokens} tokens"

    def key(self) -> str:
        """How the regime is written in estimator_fit.json."""
        return f"{'4bit' if self.quant else '16bit'}|{'ckpt' if self.grad_ckpt else 'no-ckpt'}|" \
               f"{self.tokens}"

    @classmethod
    def from_key(cls, key: str) -> Regime:
        quant, ckpt, tokens = key.split("|")
        return cls(quant == "4bit", ckpt == "ckpt", tokens)


def token_range(tokens: int) -> str:
    lo = 1
    for edge in TOKEN_EDGES:
        if tokens <= edge:
            return f"{lo}-{edge}"
        lo = edge + 1
    return f">{TOKEN_EDGES[-1]}"


def regime(setup) -> Regime:
    return Regime(bool(setup.quant), setup.grad_ckpt, token_range(setup.tokens))


def quantile(values: list[float], q: float) -> float:
    """The q-quantile, linear between order statistics (numpy's default)."""
    xs = sorted(values)
    if not xs:
        raise ValueError("no values")
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class Band:
    margin: float  # upper = estimate + margin x (estimate - frozen weights)
    regime: str  # the label of the rows it was taken from
    rows: int


def frozen_bytes(est) -> int:
    from .estimate import EXACT  # the frozen weights and the kept kernel workspaces

    return sum(est.parts.get(k, 0) for k in EXACT)


def upper_of(est, margin: float, counted: int | None = None) -> int:
    """The top of the band of `counted` bytes of `est` (default: its total)."""
    counted = est.total if counted is None else counted
    return int(counted + margin * max(0, counted - frozen_bytes(est)))


def excess(measured_gib: float, estimate_gib: float, frozen_gib: float) -> float:
    """How far a measurement lies above the estimate, in shares of the estimate's uncertain part
    (positive: measured above the estimate)."""
    return (measured_gib - estimate_gib) / max(estimate_gib - frozen_gib, 1e-9)


def band_from(rows_by_regime: dict[Regime, list[float]], reg: Regime) -> Band:
    """The band of `reg` from residuals grouped by regime, backing off to coarser groups."""
    tiers = [
        (lambda r: r == reg, reg.label()),
        (lambda r: (r.quant, r.grad_ckpt) == (reg.quant, reg.grad_ckpt),
         Regime(reg.quant, reg.grad_ckpt, "all").label()),
        (lambda r: r.quant == reg.quant, "QLoRA" if reg.quant else "16-bit LoRA"),
        (lambda r: True, "every row"),
    ]
    for match, label in tiers:
        values = [v for r, vs in rows_by_regime.items() if match(r) for v in vs]
        if len(values) >= MIN_ROWS or label == "every row":
            return Band(max(MIN_MARGIN, quantile(values, BAND_QUANTILE)), label, len(values))
    raise AssertionError("unreachable")


@lru_cache(maxsize=1)
def residuals() -> dict[Regime, list[float]]:
    """Leave-one-source-out residuals of the calibration rows, grouped by regime (as
    `make fit-calibration` wrote them)."""
    return {Regime.from_key(k): list(v) for k, v in fitted().residuals.items()}


def band(setup) -> Band:
    return band_from(residuals(), regime(setup))
