"""curation.common.atomic.AtomicOutputs: whole files or none, and its write-back thread ends
with the block whatever way the block ends."""

import threading
import time

import pytest

from curation.common.atomic import AtomicOutputs


def writeback_threads(outputs) -> list:
    return [t for t in threading.enumerate() if t is outputs._writeback]


def test_files_are_published_whole_while_written_back(tmp_path, monkeypatch):
    monkeypatch.setattr(AtomicOutputs, "WRITEBACK_EVERY", 0.01)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    block = b"x" * (1 << 16) + b"\n"
    with AtomicOutputs(a, b) as outputs:
        assert writeback_threads(outputs)  # running while the block writes
        for _ in range(64):
            outputs.files[0].write(block)
            time.sleep(0.001)  # the thread gets its turns, fdatasync-ing half-written files
        outputs.files[1].write(b"report\n")
        assert not a.exists() and not b.exists()
        thread = outputs._writeback
    assert not thread.is_alive()
    assert a.read_bytes() == block * 64 and b.read_bytes() == b"report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl"]


def test_an_error_leaves_nothing_and_stops_the_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(AtomicOutputs, "WRITEBACK_EVERY", 0.01)
    target = tmp_path / "clean.jsonl"
    with pytest.raises(RuntimeError, match="bad row"), AtomicOutputs(target) as outputs:
        outputs.files[0].write(b"half\n")
        thread = outputs._writeback
        time.sleep(0.03)
        raise RuntimeError("bad row")
    assert not thread.is_alive()
    assert list(tmp_path.iterdir()) == []
