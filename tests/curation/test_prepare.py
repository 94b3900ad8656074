"""`python -m curation prepare`: XTuner-ready JSONL written atomically, with the counts printed;
a bad record is counted, an unreadable input leaves any earlier output untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation.__main__ import main
from curation.convert.load import ENV_VAR, load_conversations
from tests.curation.conv_helpers import (  # noqa: F401 (autouse fixture)
    FIXTURE,
    private_datasets_cache,
    xtuner_process,
)

REPO = Path(__file__).resolve().parents[2]


def prepare(*args):
    return main(["prepare", *map(str, args)])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected(name, **kwargs):
    rows = load_conversations(name, data_files=str(FIXTURE[name]), **kwargs)
    return [{"conversation": [{k: v for k, v in t.items() if v is not None}
                              for t in row["conversation"]]} for row in rows]


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_end_to_end_through_the_command_line(tmp_path):
    out = tmp_path / "gsm8k.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    env.pop(ENV_VAR, None)
    run = subprocess.run(
        [sys.executable, "-m", "curation", "prepare", "gsm8k", "--out", str(out),
         "--data-files", str(FIXTURE["gsm8k"])],
        env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert lines(out) == expected("gsm8k")
    assert lines(out)[0]["conversation"][0]["output"].endswith("\nThe answer is 72.")
    counts = {row.split("│")[1].strip(): row.split("│")[2].strip()
              for row in run.stdout.splitlines() if row.count("│") >= 3}
    assert counts["read"] == "5" and counts["written"] == "2"
    assert counts["skipped: no_final_answer"] == "2"  # the bad records, counted by reason
    assert counts["skipped: empty_text:question"] == "1"
    assert f"wrote 2 conversations to {out}" in run.stderr
    assert oct(out.stat().st_mode & 0o777) != "0o600"  # not the temp file's private mode


def test_every_dataset_prepares_from_its_fixture(tmp_path):
    for name, path in FIXTURE.items():
        out = tmp_path / f"{name}.jsonl"
        assert prepare(name, "--out", out, "--data-files", path) == 0, name
        assert lines(out) == expected(name), name


def test_the_output_is_what_xtuner_reads_with_dataset_map_fn_none(tmp_path):
    from datasets import load_dataset

    out = tmp_path / "personachat.jsonl"
    assert prepare("personachat", "--out", out, "--data-files", FIXTURE["personachat"]) == 0
    dataset = load_dataset("json", data_files=str(out), split="train")  # XTuner's custom-data way
    processed = xtuner_process(dataset, "llama2_chat")
    assert len(processed) == 3
    assert all(any(label != -100 for label in s["labels"]) for s in processed)


def test_limit_split_and_options(tmp_path, monkeypatch, capsys):
    out = tmp_path / "o.jsonl"
    assert prepare("oasst1", "--out", out, "--data-files", FIXTURE["oasst1"], "--option",
                   "lang=de") == 0
    assert lines(out) == expected("oasst1", lang="de")
    assert prepare("sharegpt", "--out", out, "--data-files", FIXTURE["sharegpt"],
                   "--limit", "2") == 0
    assert lines(out) == expected("sharegpt")[:2]
    # --split picks the split's files under XTUNER_PACK_DATA
    (tmp_path / "data" / "gsm8k").mkdir(parents=True)
    (tmp_path / "data" / "gsm8k" / "test.jsonl").write_text(
        '{"question": "2+2?", "answer": "2+2 = <<2+2=4>>4\\n#### 4"}\n')
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "data"))
    assert prepare("gsm8k", "--out", out, "--split", "test") == 0
    assert lines(out) == [{"conversation": [{"input": "2+2?",
                                             "output": "2+2 = 4\nThe answer is 4."}]}]
    capsys.readouterr()
    assert prepare("gsm8k", "--out", out, "--option", "colour=red") == 2
    assert "unknown option" in capsys.readouterr().err


def test_unreadable_input_leaves_the_old_output_and_no_temp_file(tmp_path, capsys):
    out = tmp_path / "alpaca.jsonl"
    out.write_text("the previous output\n")
    broken = tmp_path / "alpaca_data.json"
    broken.write_text(FIXTURE["alpaca"].read_text().rstrip().rstrip("]") + ',\n  {"instruction"')
    assert prepare("alpaca", "--out", out, "--data-files", broken) == 2
    err = capsys.readouterr().err
    assert f"{broken}:" in err and "invalid JSON" in err
    assert out.read_text() == "the previous output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpaca.jsonl", "alpaca_data.json"]


def test_nothing_to_write_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n')
    out = tmp_path / "out.jsonl"
    assert prepare("orca_math", "--out", out, "--data-files", bad) == 1
    assert "missing_field:answer" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]
    assert prepare("orca_math", "--out", out, "--data-files", tmp_path / "nope.jsonl") == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_run_leaves_no_file_under_the_final_name(tmp_path):
    big = tmp_path / "orca.jsonl"
    with open(big, "w") as f:
        for i in range(300_000):
            f.write(json.dumps({"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}"})
                    + "\n")
    out = tmp_path / "out" / "orca_prepared.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop(ENV_VAR, None)
    proc = subprocess.Popen([sys.executable, "-m", "curation", "prepare", "orca_math", "--out",
                             str(out), "--data-files", str(big)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out.parent.exists() and any(out.parent.iterdir())):
            assert time.monotonic() < deadline and proc.poll() is None, "no temp file appeared"
            time.sleep(0.05)
        time.sleep(0.3)  # part-way through
        assert proc.poll() is None, "finished before it could be killed; make the input bigger"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    leftovers = list(out.parent.iterdir())
    assert leftovers and all(p.name.startswith(".orca_prepared.jsonl.") for p in leftovers)
