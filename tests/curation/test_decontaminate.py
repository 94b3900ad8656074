"""python -m curation decontaminate, end to end, on test items and train rows written for the
pack (bench/decon_items.py): what it must remove, what it must keep, the report, the
accounting, bad input, atomic output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.decon_items import ITEMS
from bench.decon_set import (
    public_test_row,
    read_report,
    train_row,
    write_test_files,
    write_train_file,
)
from curation.clean.decontaminate import main as decontaminate
from tests.helpers import offline_env

POLICIES = ("default", "strict")


def run(tmp_path: Path, train, tests, *extra: str):
    out, report = tmp_path / "clean.jsonl", tmp_path / "report.jsonl"
    argv = [a for t in train for a in ("--train", str(t))]
    argv += [a for t in tests for a in ("--test", str(t))]
    rc = decontaminate([*argv, "--out", str(out), "--report", str(report), "-q", *extra])
    return rc, out, report


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The handwritten set, run once per policy: {policy: (rows, flagged by line, summary,
    train file, clean file)}."""
    results = {}
    for policy in POLICIES:
        tmp = tmp_path_factory.mktemp(policy)
        tests = write_test_files(tmp)
        train = tmp / "train.jsonl"
        rows = write_train_file(train)
        rc, out, report = run(tmp, [train], tests, "--policy", policy, "--workers", "1")
        assert rc == 0
        records, summary = read_report(report)
        flagged = {r["train_line"]: r for r in records if "method" in r}
        results[policy] = (rows, flagged, summary, train, out)
    return results


def lines_of(rows, category):
    return [n for n, (cat, _, _) in enumerate(rows, 1) if cat == category]


@pytest.mark.parametrize("policy", POLICIES)
def test_every_verbatim_copy_and_light_edit_is_removed(planted, policy):
    rows, flagged, _, _, _ = planted[policy]
    for category in ("verbatim", "edit"):
        missed = [rows[n - 1][2] for n in lines_of(rows, category) if n not in flagged]
        assert not missed, f"{category} rows kept: {missed}"


@pytest.mark.parametrize("policy", POLICIES)
def test_rephrasings_that_keep_the_numbers_are_removed(planted, policy):
    # the bar (65 %), met by the default policy on real rephrasings too (LLM
    # rephrasings of GSM8K-test: docs/curation.md)
    rows, flagged, _, _, _ = planted[policy]
    lines = lines_of(rows, "rephrase")
    caught = [n for n in lines if n in flagged]
    assert len(lines) == len(ITEMS)
    assert len(caught) / len(lines) >= 0.65, f"{len(caught)}/{len(lines)} rephrasings removed"


@pytest.mark.parametrize(("policy", "share"), [("default", 0.6), ("strict", 0.85)])
def test_new_number_variants_are_removed(planted, policy, share):
    rows, flagged, _, _, _ = planted[policy]
    lines = lines_of(rows, "new_numbers")
    assert len(lines) >= 20
    caught = [n for n in lines if n in flagged]
    assert len(caught) / len(lines) >= share, f"{len(caught)}/{len(lines)} under {policy}"
    assert all("masked_ngram10" in flagged[n]["methods"] or flagged[n]["method"].startswith(
        "ngram") for n in caught)


@pytest.mark.parametrize("policy", POLICIES)
def test_no_distinct_problem_is_removed(planted, policy):
    rows, flagged, _, _, _ = planted[policy]
    lines = lines_of(rows, "distinct")
    assert len(lines) >= len(ITEMS)
    wrong = [(rows[n - 1][2], flagged[n]["method"]) for n in lines if n in flagged]
    assert not wrong, f"distinct problems removed: {wrong}"


@pytest.mark.parametrize("policy", POLICIES)
def test_each_removed_leak_names_its_test_item(planted, policy):
    rows, flagged, _, _, _ = planted[policy]
    gsm_lines, math_lines = {}, {}
    for k, item in enumerate(ITEMS):
        table = gsm_lines if item["kind"] == "gsm8k" else math_lines
        table[k] = len(table) + 1
    for n, record in flagged.items():
        category, k, _ = rows[n - 1]
        if category in ("distinct", "hard_negative"):
            continue
        source = "gsm8k_test.jsonl" if ITEMS[k]["kind"] == "gsm8k" else "math_test.jsonl"
        line = (gsm_lines if ITEMS[k]["kind"] == "gsm8k" else math_lines)[k]
        named = {(Path(m["test_file"]).name, m["test_line"]) for m in record["test_matches"]}
        assert (source, line) in named, f"line {n} ({category}) names {named}"
        assert record["method"] in record["methods"]
        assert all(m["matched_text"] for m in record["test_matches"])


@pytest.mark.parametrize("policy", POLICIES)
def test_clean_file_is_every_kept_row_byte_for_byte_in_order(planted, policy):
    rows, flagged, summary, train, out = planted[policy]
    raw = train.read_bytes().split(b"\n")[:-1]
    assert out.read_bytes() == b"".join(line + b"\n" for n, line in enumerate(raw, 1)
                                        if n not in flagged)
    assert summary["read"] == len(rows) == summary["kept"] + summary["removed"]
    assert summary["removed"] == len(flagged) == sum(summary["per_method"].values())
    per_file = {Path(f).name: v for f, v in summary["per_test_file"].items()}
    assert per_file["gsm8k_test.jsonl"]["items"] == sum(i["kind"] == "gsm8k" for i in ITEMS)
    assert per_file["math_test.jsonl"]["items"] == sum(i["kind"] == "math" for i in ITEMS)


BAD_LINES = [
    (b"not json at all", "invalid JSON"),
    (b"", "empty line"),
    (b"   \t", "empty line"),
    (b'{"question": 5, "answer": "x"}', "'question' is a JSON int"),
    (b"[1, 2, 3]", "JSON list, not an object"),
    (b'{"conversation": "hello"}', "not a non-empty list of turns"),
    (b'{"question": "a b c", "problem": "a b c"}', "ambiguous"),
    (b'{"prompt": "no known field"}', "no text field of a known format"),
    (b'{"text": "bad bytes \xff\xfe here"}', "not valid UTF-8"),
    (b'{"text": "cut off', "invalid JSON"),
    (b'{"text": "two values"} {"text": "on one line"}', "invalid JSON"),
]


def test_malformed_lines_are_rejected_with_file_and_line_and_never_vanish(tmp_path):
    gsm, math = write_test_files(tmp_path)
    good = json.dumps({"question": "How many legs do 3 spiders and 2 ants have together?",
                       "answer": "36"}).encode()
    leak = json.dumps(train_row(0, ITEMS[0]["test"])).encode()
    lines = [good, leak]
    for bad, _ in BAD_LINES:
        lines += [bad, good]
    lines.append(b'{"text": "a last row without a newline"}')
    train = tmp_path / "train.jsonl"
    train.write_bytes(b"\n".join(lines))  # no final newline
    rc, out, report = run(tmp_path, [train], [gsm, math])
    assert rc == 0
    records, summary = read_report(report)
    rejected = {r["train_line"]: r["rejected"] for r in records if "rejected" in r}
    expected = {3 + 2 * i: reason for i, (_, reason) in enumerate(BAD_LINES)}
    assert set(rejected) == set(expected)
    for line, reason in expected.items():
        assert reason in rejected[line], (line, rejected[line])
    assert all(r["train_file"] == str(train) for r in records)
    removed = [r["train_line"] for r in records if "method" in r]
    assert removed == [2]
    assert summary["read"] == len(lines)
    assert summary["read"] == summary["kept"] + summary["removed"] + summary["rejected"]
    assert summary["rejected"] == len(BAD_LINES)
    kept = [line for n, line in enumerate(lines, 1) if n not in rejected and n not in removed]
    assert out.read_bytes() == b"\n".join(kept) + b"\n"


def test_a_bad_test_line_is_reported_and_the_run_goes_on(tmp_path):
    tests = tmp_path / "test.jsonl"
    tests.write_text(json.dumps(public_test_row(ITEMS[0])) + "\n{oops\n")
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"question": ITEMS[0]["test"]}) + "\n")
    rc, out, report = run(tmp_path, [train], [tests])
    assert rc == 0
    records, summary = read_report(report)
    assert {"test_file": str(tests), "test_line": 2} == {
        k: v for k, v in records[0].items() if k in ("test_file", "test_line")}
    assert "invalid JSON" in records[0]["rejected"]
    assert summary["removed"] == 1 and summary["test_rejected"] == 1
    assert summary["per_test_file"][str(tests)]["rejected"] == 1


def test_every_matched_test_item_is_listed(tmp_path):
    """A problem in two test files, and a train row holding two test problems: the report
    names every item, not the first one found."""
    first, second = tmp_path / "a_test.jsonl", tmp_path / "b_test.jsonl"
    first.write_text(json.dumps(public_test_row(ITEMS[0])) + "\n"
                     + json.dumps(public_test_row(ITEMS[2])) + "\n")
    second.write_text(json.dumps({"question": "unrelated: how tall is a giraffe?"}) + "\n"
                      + json.dumps(public_test_row(ITEMS[0])) + "\n")
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"text": ITEMS[0]["test"] + "\n\n" + ITEMS[2]["test"]}) + "\n")
    rc, out, report = run(tmp_path, [train], [first, second])
    assert rc == 0
    records, _ = read_report(report)
    named = {(Path(m["test_file"]).name, m["test_line"]) for m in records[0]["test_matches"]}
    assert named == {("a_test.jsonl", 1), ("a_test.jsonl", 2), ("b_test.jsonl", 2)}
    assert out.read_bytes() == b""


@pytest.mark.parametrize(
    ("option", "method", "low", "high"),
    [
        ("--coverage", "ngram13", "0.5", "1.01"),
        ("--similarity", "numbers_overlap", "0.2", "1.01"),
        ("--evidence", "numbers_overlap", "2.5", "1000"),
        ("--minhash-threshold", "minhash", "0.7", "1.01"),
    ],
)
def test_thresholds_are_honoured(tmp_path, option, method, low, high):
    tests = write_test_files(tmp_path)
    train = tmp_path / "train.jsonl"
    write_train_file(train)
    found = {}
    for value in (low, high):
        rc, _, report = run(tmp_path, [train], tests, option, value)
        assert rc == 0
        found[value] = read_report(report)[1]["per_method_any"].get(method, 0)
    assert found[low] > 0 and found[high] == 0, found


def test_field_picks_the_text_of_ambiguous_rows(tmp_path):
    gsm, math = write_test_files(tmp_path)
    train = tmp_path / "train.jsonl"
    rows = [{"question": ITEMS[0]["test"], "problem": "What is 2 + 2?"},
            {"question": "What is 2 + 2?", "problem": ITEMS[0]["test"]}]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, _, report = run(tmp_path, [train], [gsm, math])
    assert read_report(report)[1]["rejected"] == 2
    tests = tmp_path / "custom_test.jsonl"
    tests.write_text(json.dumps({"question": ITEMS[0]["test"]}) + "\n")
    _, _, report = run(tmp_path, [train], [tests], "--field", "question")
    records, summary = read_report(report)
    assert [r["train_line"] for r in records] == [1] and summary["kept"] == 1


def test_bad_arguments_are_named_without_a_traceback(tmp_path, capsys):
    gsm, _ = write_test_files(tmp_path)
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "x"}\n')
    assert run(tmp_path, [tmp_path / "missing.jsonl"], [gsm])[0] == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err
    rc = decontaminate(["--train", str(train), "--test", str(gsm), "--out", str(train),
                        "--report", str(tmp_path / "r.jsonl"), "-q"])
    assert rc == 2 and "may not be one of the inputs" in capsys.readouterr().err
    empty = tmp_path / "empty_test.jsonl"
    empty.write_text("{broken\n")
    assert run(tmp_path, [train], [empty])[0] == 2
    assert "no usable test items" in capsys.readouterr().err
    assert not (tmp_path / "clean.jsonl").exists()


def test_worker_processes_give_the_same_output(tmp_path):
    tests = write_test_files(tmp_path)
    train = tmp_path / "train.jsonl"
    write_train_file(train)
    outputs = {}
    for workers in ("1", "2"):
        d = tmp_path / workers
        d.mkdir()
        # small chunks: many batches, so both workers get some and order must be restored
        rc, out, report = run(d, [train], tests, "--workers", workers, "--chunk-bytes", "2000")
        assert rc == 0
        records, summary = read_report(report)
        outputs[workers] = (out.read_bytes(), records, summary["removed"])
    assert outputs["1"] == outputs["2"]


def test_repeated_rows_are_matched_once_and_each_is_reported(tmp_path, monkeypatch):
    """A mix that repeats its data: each copy of a row gets the verdict of the first, with its
    own line in the report, whichever worker matched the first; a run that remembers nothing
    (the memory bound reached at once) writes the same files."""
    from curation.clean import decontaminate as module

    tests = write_test_files(tmp_path)
    one = tmp_path / "one.jsonl"
    write_train_file(one)
    copy = one.read_bytes()
    train = tmp_path / "train.jsonl"
    train.write_bytes(copy * 3)
    n = copy.count(b"\n")
    outputs = {}
    for name, workers, limit in (("1", "1", 64 << 20), ("2", "2", 64 << 20), ("none", "1", 0)):
        d = tmp_path / name
        d.mkdir()
        monkeypatch.setattr(module.Verdicts.__init__, "__defaults__", (limit,))
        rc, out, report = run(d, [train], tests, "--workers", workers, "--chunk-bytes", "2000")
        assert rc == 0
        records, summary = read_report(report)
        lines = report.read_bytes().splitlines(keepends=True)[:-1]  # the summary has times
        outputs[name] = (out.read_bytes(), records, summary["removed"], lines,
                         summary["per_test_file"], summary["per_method_any"])
    # byte for byte: a repeat's record is its first copy's, serialized once (Removals)
    assert outputs["1"] == outputs["2"] == outputs["none"]
    clean, records, removed = outputs["1"][:3]
    flagged = {r["train_line"]: r for r in records if "method" in r}
    assert removed == len(flagged) and removed % 3 == 0 and removed > 0
    for line, record in flagged.items():  # the same verdict in every copy, on its own line
        for k in (1, 2):
            other = flagged[(line - 1 + k * n) % (3 * n) + 1]
            assert (other["method"], other["test_matches"]) == (record["method"],
                                                               record["test_matches"])
    rc, once, _ = run(tmp_path, [one], tests, "--workers", "1")
    assert clean == once.read_bytes() * 3


def big_train_file(path: Path, rows: int) -> None:
    """Distinct rows (repeats would be matched once: a run long enough to interrupt)."""
    with open(path, "w") as f:
        for i in range(rows):
            f.write(json.dumps({"question": f"Lena has {i} red pens and 9 blue pens in her bag. "
                                "She buys a pack of pens. How many pens are in the bag now?",
                                "answer": "It depends on the pack."}) + "\n")


def start(tmp_path: Path, train: Path, tests, workers: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "curation", "decontaminate", "--train", str(train),
            *[a for t in tests for a in ("--test", str(t))], "--out", str(tmp_path / "clean.jsonl"),
            "--report", str(tmp_path / "report.jsonl"), "--workers", workers, "--chunk-bytes",
            "65536", "-q"]
    return subprocess.Popen(argv, env=offline_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def wait_for_partial_output(tmp_path: Path, proc: subprocess.Popen) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        partial = [p for p in tmp_path.glob(".clean.jsonl.*.tmp") if p.stat().st_size > 0]
        if partial:
            return partial[0]
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.01)
    raise AssertionError("no partial output appeared")


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGKILL, "1"), (signal.SIGTERM, "1"),
                                              (signal.SIGKILL, "2"), (signal.SIGTERM, "2")],
                         ids=["SIGKILL", "SIGTERM", "SIGKILL-workers", "SIGTERM-workers"])
def test_an_interrupted_run_leaves_no_file_under_the_final_name(tmp_path, sig, workers):
    import psutil

    tests = write_test_files(tmp_path)
    train = tmp_path / "train.jsonl"
    big_train_file(train, 300_000)
    (tmp_path / "report.jsonl").write_text("the report of an earlier run\n")
    proc = start(tmp_path, train, tests, workers)
    partial = wait_for_partial_output(tmp_path, proc)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) == int(workers) - 1  # this process matches chunks too
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    assert not (tmp_path / "clean.jsonl").exists()
    assert (tmp_path / "report.jsonl").read_text() == "the report of an earlier run\n"
    _, alive = psutil.wait_procs(children, timeout=30)  # workers do not outlive the run
    assert not alive
    if sig == signal.SIGTERM:  # a handled signal also removes the temporary files
        assert proc.returncode != 0
        assert not partial.exists() and not list(tmp_path.glob(".*.tmp"))
        assert b"Traceback" not in proc.stderr.read()


def test_without_quiet_it_shows_progress_and_the_summary(tmp_path):
    """The real command as a user types it (no -q): the summary table on stderr."""
    from tests.helpers import REPO

    tests = write_test_files(tmp_path)
    train = tmp_path / "train.jsonl"
    write_train_file(train)
    argv = [sys.executable, "-m", "curation", "decontaminate", "--train", str(train),
            "--out", str(tmp_path / "clean.jsonl"), "--report", str(tmp_path / "r.jsonl")]
    for t in tests:
        argv += ["--test", str(t)]
    proc = subprocess.run(argv, cwd=REPO, env=offline_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "decontaminate" in proc.stderr and "train rows/s" in proc.stderr
    assert "removed by ngram13" in proc.stderr and "Traceback" not in proc.stderr
