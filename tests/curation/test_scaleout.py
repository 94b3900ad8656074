"""The datatrove filter (curation/clean/scaleout.py) under datatrove's LocalPipelineExecutor,
several tasks, against `python -m curation decontaminate` on the same rows: the same removals
and rejections, the same clean rows byte for byte, one merged report whose counts add up."""

import json

from datatrove.executor import LocalPipelineExecutor

from bench.decon_set import read_report, train_row, train_rows, write_test_files
from curation.clean.decontaminate import main as decontaminate
from curation.clean.scaleout import DecontaminateFilter, RowReader, RowWriter, merge_reports

BAD_LINES = [b'{"question": "unterminated', b"\xff\xfe not utf-8", b"[1, 2, 3]"]


def write_parts(directory, parts=3):
    """The handwritten train rows (every pack format, public schemas) over `parts` files, with
    malformed lines among them."""
    directory.mkdir()
    lines = [json.dumps(train_row(n, text)).encode() for n, (_, _, text) in
             enumerate(train_rows())]
    for k, bad in enumerate(BAD_LINES):
        lines.insert(20 + 40 * k, bad)
    size = -(-len(lines) // parts)
    paths = []
    for k in range(parts):
        path = directory / f"part{k}.jsonl"
        path.write_bytes(b"\n".join(lines[k * size : (k + 1) * size]) + b"\n")
        paths.append(path)
    return paths


def verdicts(records):
    return {(r["train_file"], r["train_line"]): r.get("method", "rejected")
            for r in records if "train_file" in r}


def test_local_executor_removes_what_the_cli_removes(tmp_path):
    tests = write_test_files(tmp_path)
    parts = write_parts(tmp_path / "train")

    cli_out, cli_report = tmp_path / "cli_clean.jsonl", tmp_path / "cli_report.jsonl"
    argv = [a for p in parts for a in ("--train", str(p))]
    argv += [a for t in tests for a in ("--test", str(t))]
    assert decontaminate([*argv, "--out", str(cli_out), "--report", str(cli_report), "-q",
                          "--workers", "1"]) == 0
    cli_records, cli_summary = read_report(cli_report)

    LocalPipelineExecutor(pipeline=[
        RowReader(str(tmp_path / "train")),
        DecontaminateFilter([str(t) for t in tests], report_folder=str(tmp_path / "reports"),
                            batch_size=50),
        RowWriter(str(tmp_path / "clean")),
    ], tasks=3, workers=2, logging_dir=str(tmp_path / "logs")).run()
    summary = merge_reports(tmp_path / "reports", tmp_path / "report.jsonl")
    records, merged_summary = read_report(tmp_path / "report.jsonl")

    assert summary == merged_summary and summary["tasks"] == 3
    assert summary["read"] == summary["kept"] + summary["removed"] + summary["rejected"]
    for key in ("read", "kept", "removed", "rejected", "per_method"):
        assert summary[key] == cli_summary[key], key
    assert summary["rejected"] == len(BAD_LINES)
    assert verdicts(records) == verdicts(cli_records)
    # each task read one file; its clean shard is that file's kept rows, byte for byte
    shards = b"".join((tmp_path / "clean" / f"{k:05d}.jsonl").read_bytes() for k in range(3))
    assert shards == cli_out.read_bytes()
    assert not list((tmp_path / "clean").glob(".*.tmp"))
