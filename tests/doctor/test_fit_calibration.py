"""The estimator against the published measurements in doctor/data/calibration.json."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from doctor.fit.calibration import DATA, SHIPPED, fit, load, loso, report, summary
from tests.helpers import REPO

ALL_ROWS, EXCLUDED = load()
ROWS = [r for r in ALL_ROWS if r.fitted]  # rows scored but not fitted say why in the file


def table() -> str:
    return "\n".join(f"{r.id}: estimate {r.estimate_gib():.2f} GiB, measured "
                     f"{r.measured_gib:.2f} GiB, {r.error:+.1%}" for r in ROWS)


def test_median_error_at_most_10_percent_and_no_row_off_by_more_than_25():
    median, worst = summary(ROWS)
    assert median <= 0.10, table()
    assert abs(worst.error) <= 0.25, table()


def test_rows_have_their_settings_and_source():
    assert len(ROWS) >= 40
    assert len({r.publisher for r in ROWS}) >= 4
    for row in ALL_ROWS:
        assert row.source and row.measured_gib > 0
        assert row.measure in ("device", "reserved", "allocated")


def test_rows_not_fitted_say_why():
    raw = {r["id"]: r for r in json.loads(DATA.read_text())["rows"]}
    for row in ALL_ROWS:
        if not row.fitted:
            entry = raw[row.id]
            while "not_fitted_because" not in entry:
                entry = raw[entry["same_as"]]
            assert len(entry["not_fitted_because"]) > 40


def test_every_published_row_is_modelled_or_left_out_with_a_reason():
    # vram_data.md part A1 has rows 1-29; rows found later have no research_row
    modelled = {r.research_row for r in ALL_ROWS if r.research_row is not None}
    left_out = {e["research_row"] for e in EXCLUDED}
    assert modelled | left_out == set(range(1, 30))
    for entry in EXCLUDED:
        assert len(entry["reason"]) > 20, entry


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_each_row_within_25_percent(row):
    assert abs(row.error) <= 0.25


def test_shipped_constants_are_what_the_fit_gives():
    fitted = fit(ROWS)
    assert SHIPPED.context_gib == pytest.approx(fitted.context_gib, abs=0.002)
    for key in ("4bit", "16bit"):
        assert SHIPPED.uncounted[key] == pytest.approx(fitted.uncounted[key], abs=0.002)
        assert SHIPPED.cache[key] == pytest.approx(fitted.cache[key], abs=0.002)


def test_leave_one_source_out_scores_every_row_with_constants_fitted_without_its_source():
    pairs = loso(ROWS)
    assert [r.id for r, _ in pairs] == [r.id for r in ROWS]
    # a source's own rows change the fit: held out, its rows are estimated differently
    moved = [r for r, e in pairs if abs(e - r.estimate_gib()) > 1e-6]
    assert len(moved) > len(ROWS) // 2


def test_at_most_10_percent_of_rows_are_measured_above_the_top_of_their_band():
    rep = report(ALL_ROWS)
    assert rep["above_upper"] <= 0.10, rep["above_rows"]


def test_make_fit_calibration_prints_rows_sources_errors_and_band_share():
    out = subprocess.run([sys.executable, "-m", "doctor.fit.calibration"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"{len(ROWS)} rows fitted, from " in text
    assert "leave-one-source-out" in text and "in sample" in text
    assert "above the top of their band" in text
