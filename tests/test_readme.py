"""The README is short and its figures are current: its config table is what `python -m doctor
fit` says of every run file today (tokens, estimate, top of the band), and it lists every one."""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO

README = REPO / "README.md"
RUN_FILES = sorted(p.stem for p in (REPO / "configs").glob("*.py") if p.name != "__init__.py")


def config_rows() -> dict[str, list[str]]:
    """{config name: its cells} of the README's configs table."""
    text = README.read_text()
    start = text.index("<!-- configs table")
    rows = {}
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        m = re.fullmatch(r"`([\w/]+)`", cells[0])
        if m:
            rows[m.group(1)] = cells
    return rows


def test_the_readme_is_read_in_minutes():
    assert len(README.read_text().splitlines()) <= 300


def test_every_run_file_is_in_the_table():
    assert sorted(config_rows()) == RUN_FILES


@pytest.mark.parametrize("name", RUN_FILES)
def test_the_table_says_what_doctor_fit_says(name):
    from mmengine.config import Config

    from doctor.fit import fit_report

    _, model, _, tokens, estimate, upper, measured = config_rows()[name]
    path = REPO / "configs" / f"{name}.py"
    report = fit_report(str(path), gpu_mem=8.0)
    cfg = Config.fromfile(str(path))
    assert model == cfg.pretrained_model_name_or_path
    assert tokens == f"{cfg.max_length}" + (" × 2" if cfg.get("preference") else "")
    assert estimate == f"{report['total_gb']:.2f}"
    assert upper == f"{report['upper_gb']:.2f}"
    assert report["fits"]
    # empty until measured on a GPU, then the peak with the card and the date
    assert measured == "" or re.fullmatch(r"\d+\.\d\d \(.+, \d{4}-\d\d-\d\d\)", measured)


def test_the_links_lead_somewhere():
    for target in re.findall(r"\]\(([^)#]+)\)", README.read_text()):
        if "://" not in target:
            assert (REPO / target).exists(), target


def headline_rows() -> list[list[str]]:
    text = README.read_text()
    lines = text[text.index("<!-- headline table"):].splitlines()[3:]
    return [[c.strip() for c in line.strip("|").split("|")]
            for line in lines[: next(i for i, x in enumerate(lines) if not x.startswith("|"))]]


def test_every_headline_figure_is_in_the_benchmarks():
    """The README's benchmark figures are copied from docs/benchmarks.md (`make bench` writes
    it), so a rerun that changes one leaves a stale README failing here."""
    benchmarks = (REPO / "docs" / "benchmarks.md").read_text()
    rows = headline_rows()
    assert len(rows) >= 8
    for row in rows:
        for figure in re.findall(r"\d[\d,]*(?:\.\d+)?", " ".join(row[1:])):
            assert figure in benchmarks, (row[0], figure)
