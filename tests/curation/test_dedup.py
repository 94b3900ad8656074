"""python -m curation dedup: exact and near duplicates go, the first of each stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.decon_items import ITEMS
from bench.decon_set import read_report
from curation.clean.dedup import main as dedup

ORIGINAL = ITEMS[0]["test"]  # the Maria pencils problem, 25 words


def write(path: Path, rows: list) -> list[bytes]:
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return lines


def run(tmp_path: Path, *inputs: Path, extra=()):
    out, report = tmp_path / "out.jsonl", tmp_path / "report.jsonl"
    rc = dedup([*map(str, inputs), "--out", str(out), "--report", str(report), "-q", *extra])
    return rc, out, report


ROWS = [
    {"question": ORIGINAL, "answer": "28"},  # 1 kept
    {"question": ORIGINAL.upper().replace(".", " ;"), "answer": "28"},  # 2 exact (normalized)
    {"conversation": [{"input": ORIGINAL, "output": "28"}]},  # 3 exact, other format
    {"question": ORIGINAL.replace("her brother", "her younger brother"), "answer": "28"},  # 4
    {"question": ITEMS[1]["test"], "answer": "28"},  # 5 kept: another problem
    {"question": ITEMS[0]["new_numbers"], "answer": "43"},  # 6 kept: same template, new numbers
    b"{broken",  # 7 rejected
    {"question": ORIGINAL, "answer": "Maria has 3 * 12 = 36 pencils. After giving 8 away she "
     "keeps 36 - 8 = 28 of them. The answer is 28."},  # 8 kept: same question, own solution
]


def test_exact_and_near_duplicates_are_removed_first_kept(tmp_path):
    data = tmp_path / "in.jsonl"
    lines = write(data, ROWS)
    rc, out, report = run(tmp_path, data)
    assert rc == 0
    records, summary = read_report(report)
    by_line = {r["line"]: r for r in records}
    assert by_line[2]["method"] == by_line[3]["method"] == "exact"
    assert by_line[4]["method"] == "minhash" and 0.7 <= by_line[4]["score"] < 1
    for line in (2, 3, 4):
        assert by_line[line]["duplicate_of"] == {"file": str(data), "line": 1}
    assert "invalid JSON" in by_line[7]["rejected"]
    assert set(by_line) == {2, 3, 4, 7}
    assert out.read_bytes() == b"".join(lines[i - 1] + b"\n" for i in (1, 5, 6, 8))
    assert summary["read"] == 8 == summary["kept"] + summary["removed"] + summary["rejected"]
    assert summary["per_method"] == {"exact": 2, "minhash": 1}


def test_on_prompt_compares_questions_only(tmp_path):
    data = tmp_path / "in.jsonl"
    write(data, ROWS)
    _, out, report = run(tmp_path, data, extra=["--on", "prompt"])
    records, _ = read_report(report)
    assert {r["line"]: r.get("method") for r in records}[8] == "exact"


@pytest.mark.parametrize(("threshold", "removed"), [("0.7", 3), ("0.95", 2)])
def test_threshold_is_honoured(tmp_path, threshold, removed):
    data = tmp_path / "in.jsonl"
    write(data, ROWS)
    _, _, report = run(tmp_path, data, extra=["--threshold", threshold])
    assert read_report(report)[1]["removed"] == removed


def test_duplicates_across_batches_and_files_are_verified_from_disk(tmp_path):
    """A near duplicate of a row from an earlier batch (another file here) is checked against
    that row read again from its file."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    filler = [{"question": f"Filler problem number {i} about {i * 7} marbles and {i + 3} jars."}
              for i in range(300)]
    write(first, [{"question": ORIGINAL}, *filler])
    write(second, [*filler[:5], {"question": ORIGINAL.replace("Each box", "Every box")}])
    rc, out, report = run(tmp_path, first, second, extra=["--chunk-bytes", "4096"])
    assert rc == 0
    records, summary = read_report(report)
    near = [r for r in records if r.get("method") == "minhash"]
    assert [(r["file"], r["line"]) for r in near] == [(str(second), 6)]
    assert near[0]["duplicate_of"] == {"file": str(first), "line": 1}
    exact = [r for r in records if r.get("method") == "exact"]
    assert len(exact) == 5 and all(r["duplicate_of"]["file"] == str(first) for r in exact)
    assert summary["kept"] == 301


def test_without_quiet_it_shows_progress_and_the_summary(tmp_path):
    """The real command as a user types it (no -q): rich's bars and summary on stderr."""
    import subprocess
    import sys

    from tests.helpers import REPO, offline_env

    data = tmp_path / "in.jsonl"
    write(data, ROWS)
    out, report = tmp_path / "out.jsonl", tmp_path / "report.jsonl"
    proc = subprocess.run([sys.executable, "-m", "curation", "dedup", str(data), "--out",
                           str(out), "--report", str(report)], cwd=REPO, env=offline_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "dedup: read 8, kept 4" in proc.stderr and str(out) in proc.stderr
    assert "Traceback" not in proc.stderr
