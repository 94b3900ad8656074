"""python -m doctor.fit.calibration [--write]: the estimator against published measurements.

Reads doctor/data/calibration.json, fits the estimator's constants (CUDA context, the uncounted
share and the allocator cache per regime) to the rows by least squares on the relative error,
and prints each row's estimate / measured, the in-sample and the leave-one-source-out median
|error| (constants fitted without a source, that source scored), and the share of rows measured
above the top of the error band (band.py). `--write` (`make fit-calibration`) writes the fitted
constants and the band's residuals to doctor/data/estimator_fit.json, which the estimator and
the band read (fitted.py); this module is the only one that fits, and nothing imports it.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from .arch import load_table
from .band import band, band_from, excess, frozen_bytes, regime, upper_of
from .estimate import (
    ALLOCATOR_CACHE,
    CUDA_CONTEXT_GIB,
    EXACT,
    EXPANDABLE_CACHE_FACTOR,
    UNCOUNTED,
    DeepSpeed,
    GiB,
    Setup,
    estimate,
    regime_key,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "calibration.json"
MEASURES = ("device", "reserved", "allocated")


@dataclass(frozen=True)
class Constants:
    context_gib: float
    uncounted: dict  # regime key -> fraction
    cache: dict  # regime key -> fraction

    def setup(self, s: Setup) -> Setup:
        key = regime_key(s.quant)
        return replace(s, context_gib=self.context_gib, uncounted=self.uncounted[key],
                       cache=self.cache[key])


SHIPPED = Constants(CUDA_CONTEXT_GIB, dict(UNCOUNTED), dict(ALLOCATOR_CACHE))


@dataclass(frozen=True)
class Row:
    id: str
    setup: Setup
    measure: str
    measured_gib: float
    source: str
    research_row: int | None
    fitted: bool = True  # False: scored and printed, but not fitted and not in the band

    @property
    def publisher(self) -> str:
        """The repository the row was published in: rows of one publisher are one source."""
        return self.source.split()[0]

    def estimate_gib(self, constants: Constants = SHIPPED) -> float:
        est = estimate(constants.setup(self.setup))
        return measured_part(est, self.measure) / GiB

    @property
    def error(self) -> float:
        """estimate / measured - 1 with the shipped constants (negative: under-predicted)."""
        return self.error_with(SHIPPED)

    def error_with(self, constants: Constants) -> float:
        return self.estimate_gib(constants) / self.measured_gib - 1


def measured_part(est, measure: str) -> int:
    """The bytes of the estimate that `measure` sees."""
    if measure == "device":  # nvidia-smi / the card size a run fits in: everything
        return est.total
    if measure == "reserved":  # torch.cuda.max_memory_reserved: no CUDA context
        return est.total - est.parts["cuda_context"]
    if measure == "allocated":  # torch.cuda.max_memory_allocated: no context, no cached blocks
        return est.total - est.parts["cuda_context"] - est.parts["allocator_reserve"]
    raise ValueError(f"unknown measure {measure!r}")


class CalibrationError(ValueError):
    pass


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
        if r["measure"] not in MEASURES:
            raise CalibrationError(f"{path}: row {r['id']}: measure {r['measure']!r}")
        arch = replace(table[r["model"].lower()], **r.get("arch", {}))
        fields = dict(r["setup"])
        if fields.get("deepspeed"):
            fields["deepspeed"] = DeepSpeed(**fields["deepspeed"])
        if fields.get("lora_targets") is not None:
            fields["lora_targets"] = tuple(fields["lora_targets"])
        rows.append(Row(r["id"], Setup(arch=arch, **fields), r["measure"],
                        float(r["measured_gib"]), r["source"], r.get("research_row"),
                        bool(r.get("fit", True))))
    return rows, data["excluded"]


# ------------------------------------------------------------------------------------------------
# the fit

# Parameters, in order: context GiB, uncounted 4bit, uncounted 16bit, cache 4bit, cache 16bit.
# A weak pull towards these priors keeps a parameter defined when the rows left in a
# leave-one-source-out fit do not separate it (e.g. the context without nvidia-smi rows). The
# context's prior is the bare CUDA context with lazy module loading, "around 400MB" (a PyTorch
# maintainer, pytorch/pytorch#109888).
PRIOR = (0.4, 0.0, 0.0, 0.2, 0.2)
PRIOR_WEIGHT = 0.05


@dataclass(frozen=True)
class Terms:
    """A row's estimate as fixed bytes + a linear combination of the parameters (GiB)."""

    fixed: float
    coef: tuple[float, float, float, float, float]


def terms(row: Row) -> Terms:
    zero = Constants(0.0, {"4bit": 0.0, "16bit": 0.0}, {"4bit": 0.0, "16bit": 0.0})
    est = estimate(zero.setup(row.setup))
    fixed = measured_part(est, row.measure) / GiB
    trained = sum(v for k, v in est.parts.items()
                  if k not in EXACT + ("cuda_context", "allocator_reserve", "uncounted")) / GiB
    q = row.setup.quant is not None
    cache = trained * (0.0 if row.measure == "allocated" else 1.0)
    if row.setup.expandable_segments:
        cache *= EXPANDABLE_CACHE_FACTOR
    return Terms(fixed, (1.0 if row.measure == "device" else 0.0,
                         trained if q else 0.0, 0.0 if q else trained,
                         cache if q else 0.0, 0.0 if q else cache))


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the systems here are 5 x 5)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-12:
            raise CalibrationError("singular calibration system")
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]


def fit(rows: list[Row]) -> Constants:
    """Least squares on relative error, parameters kept >= 0 (active set)."""
    ts = [(terms(r), r.measured_gib) for r in rows]
    n = len(PRIOR)
    free = list(range(n))
    while True:
        a = [[0.0] * len(free) for _ in free]
        b = [0.0] * len(free)
        for t, y in ts:
            x = [t.coef[j] / y for j in free]
            target = (y - t.fixed) / y
            for i in range(len(free)):
                b[i] += x[i] * target
                for k in range(len(free)):
                    a[i][k] += x[i] * x[k]
        for i, j in enumerate(free):
            a[i][i] += PRIOR_WEIGHT
            b[i] += PRIOR_WEIGHT * PRIOR[j]
        sol = dict(zip(free, _solve(a, b), strict=True))
        negative = [j for j, v in sol.items() if v < 0]
        if not negative:
            break
        free = [j for j in free if j not in negative]
    p = [sol.get(j, 0.0) for j in range(n)]
    return Constants(p[0], {"4bit": p[1], "16bit": p[2]}, {"4bit": p[3], "16bit": p[4]})


def loso(rows: list[Row]) -> list[tuple[Row, float]]:
    """(row, estimate GiB) with constants fitted without the row's publisher."""
    out = []
    for pub in sorted({r.publisher for r in rows}):
        constants = fit([r for r in rows if r.publisher != pub])
        out += [(r, r.estimate_gib(constants)) for r in rows if r.publisher == pub]
    order = {r.id: i for i, r in enumerate(rows)}
    return sorted(out, key=lambda pair: order[pair[0].id])


def frozen_gib(row: Row) -> float:
    return frozen_bytes(estimate(row.setup)) / GiB


def band_residuals(pairs: list[tuple[Row, float]]) -> dict[str, list[float]]:
    """Regime key -> the excess (band.excess) of each row over its leave-one-source-out
    estimate: what the band is drawn from."""
    grouped: dict[str, list[float]] = {}
    for row, est in pairs:
        grouped.setdefault(regime(row.setup).key(), []).append(
            round(excess(row.measured_gib, est, frozen_gib(row)), 6))
    return grouped


def fit_data(rows: list[Row]) -> dict:
    """What doctor/data/estimator_fit.json holds (fitted.py reads it)."""
    fitted_rows = [r for r in rows if r.fitted]
    c = fit(fitted_rows)
    return {
        "_about": [
            "Written by `make fit-calibration` (python -m doctor.fit.calibration --write) from",
            "calibration.json: the estimator's fitted constants (estimate.py reads them) and the",
            "leave-one-source-out residuals of the rows by regime, from which band.py draws the",
            "error band. Do not edit by hand; refit.",
        ],
        "date": date.today().isoformat(),
        "rows": len(fitted_rows),
        "sources": sorted({r.publisher for r in fitted_rows}),
        "constants": {
            "cuda_context_gib": round(c.context_gib, 4),
            "uncounted": {k: round(v, 4) for k, v in c.uncounted.items()},
            "allocator_cache": {k: round(v, 4) for k, v in c.cache.items()},
        },
        "band": {"residuals": band_residuals(loso(fitted_rows))},
    }


def write(data: dict, path: Path) -> None:
    """The file whole or not at all (the pack's atomic writer)."""
    from ..atomic import write_json

    write_json(path, data)


def summary(rows: list[Row]) -> tuple[float, Row]:
    """(median absolute relative error, worst row) of the fitted rows, shipped constants."""
    rows = [r for r in rows if r.fitted]
    worst = max(rows, key=lambda r: abs(r.error))
    return statistics.median(abs(r.error) for r in rows), worst


# ------------------------------------------------------------------------------------------------


def report(all_rows: list[Row]) -> dict:
    rows = [r for r in all_rows if r.fitted]
    pairs = loso(rows)
    fitted = fit(rows)
    above = [r for r in rows
             if r.measured_gib > measured_part_upper(r) / GiB + 1e-9]
    # Out of sample twice over: each row's estimate with constants fitted without its source, and
    # its band from the residuals of the other sources only.
    frozen = {r.id: frozen_gib(r) for r in rows}
    oos_above = []
    for r, e in pairs:
        grouped: dict = {}
        for r2, e2 in pairs:
            if r2.publisher != r.publisher:
                grouped.setdefault(regime(r2.setup), []).append(
                    excess(r2.measured_gib, e2, frozen[r2.id]))
        margin = band_from(grouped, regime(r.setup)).margin
        if r.measured_gib > e + margin * (e - frozen[r.id]):
            oos_above.append(r)
    return {
        "rows": len(rows),
        "above_upper_out_of_sample": len(oos_above) / len(rows),
        "above_rows_out_of_sample": [r.id for r in oos_above],
        "sources": len({r.publisher for r in rows}),
        "in_sample_median": statistics.median(abs(r.error) for r in rows),
        "loso_median": statistics.median(abs(e / r.measured_gib - 1) for r, e in pairs),
        "above_upper": len(above) / len(rows),
        "above_rows": [r.id for r in above],
        "fitted": fitted,
        "loso": pairs,
        "scored_only": [r for r in all_rows if not r.fitted],
    }


def measured_part_upper(row: Row) -> int:
    """The top of the band of what the row's measure sees."""
    est = estimate(SHIPPED.setup(row.setup))  # the row's stack: the fitted uncounted share
    return upper_of(est, band(row.setup).margin, measured_part(est, row.measure))


def main(argv=None) -> int:
    import argparse

    from .fitted import DATA as FIT_DATA

    parser = argparse.ArgumentParser(prog="python -m doctor.fit.calibration",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help=f"write the fitted constants and residuals to {FIT_DATA}")
    args = parser.parse_args(argv)
    rows, excluded = load()
    if args.write:
        data = fit_data(rows)
        try:
            current = json.loads(FIT_DATA.read_text())
        except (OSError, ValueError):
            current = {}
        if {**current, "date": data["date"]} == data:  # the same fit: the file (and its date) stay
            print(f"{FIT_DATA} is what the fit gives (of {current.get('date')})", flush=True)
        else:
            write(data, FIT_DATA)
            print(f"wrote {FIT_DATA}; the estimate with what it holds:", flush=True)
        import subprocess  # this process imported the previous constants

        return subprocess.run([sys.executable, "-m", "doctor.fit.calibration"]).returncode
    rep = report(rows)
    loso_by_id = {r.id: e for r, e in rep["loso"]}
    print(f"{'row':<34}{'measure':>10}{'measured':>10}{'estimate':>10}{'error':>8}"
          f"{'LOSO':>8}{'band':>7}   GiB")
    for r in rows:
        lo = (f"{loso_by_id[r.id] / r.measured_gib - 1:>+8.1%}"
              f"{band(r.setup).margin:>+7.0%}" if r.fitted else f"{'(not fitted)':>15}")
        print(f"{r.id:<34}{r.measure:>10}{r.measured_gib:>10.2f}{r.estimate_gib():>10.2f}"
              f"{r.error:>+8.1%}{lo}")
    f = rep["fitted"]
    pubs = sorted({r.publisher for r in rows if r.fitted})
    print(f"\n{rep['rows']} rows fitted, from {rep['sources']} sources ({', '.join(pubs)}); "
          f"{len(rep['scored_only'])} more rows scored, not fitted (why: `not_fitted_because` in "
          f"{DATA.name}); {len(excluded)} published rows not modelled (reasons there too)")
    print(f"median |error|: in sample {rep['in_sample_median']:.1%}, "
          f"leave-one-source-out {rep['loso_median']:.1%}")
    print(f"rows measured above the top of their band: {rep['above_upper']:.1%} "
          f"({len(rep['above_rows'])}: {', '.join(rep['above_rows']) or 'none'}); target <= 10%")
    print(f"out of sample (constants and band both without the row's source): "
          f"{rep['above_upper_out_of_sample']:.1%} above "
          f"({', '.join(rep['above_rows_out_of_sample']) or 'none'})")
    print(f"fitted constants: CUDA context {f.context_gib:.3f} GiB; uncounted "
          f"{f.uncounted['4bit']:.3f} (4-bit) / {f.uncounted['16bit']:.3f} (16-bit); "
          f"allocator cache {f.cache['4bit']:.3f} (4-bit) / {f.cache['16bit']:.3f} (16-bit)")
    print(f"({date.today().isoformat()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
