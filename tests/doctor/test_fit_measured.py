"""`doctor fit CONFIG --measured work_dirs/<name>/memory.json`: a run's measured peaks beside the
estimate of the same quantity; a bad file is named, exit 2, no traceback. The file is in the
schema the pack's memory watch writes (docs/training.md, docs/memory.md)."""

from __future__ import annotations

import json
import sys

from doctor.fit import fit_report, main
from tests.helpers import REPO, run

OURS = REPO / "configs" / "internlm_7b_qlora_oasst_e3.py"


def memory_json(tmp_path, **changes):
    report = fit_report(OURS, gpu_mem=8)
    data = {"config": str(OURS), "gpu": "NVIDIA GeForce RTX 4060", "gpu_total_gb": 7.996,
            "seq": 1024, "steps": 20, "peak_allocated_gb": 5.61, "peak_reserved_gb": 6.02,
            "nvml_used_gb": 6.41, "estimate_gb": report["total_gb"],
            "upper_gb": report["upper_gb"], "headroom_pct": 19.8, "torch": "2.13.0+cu128",
            "date": "2026-12-01"}
    data.update(changes)
    path = tmp_path / "work_dirs" / "internlm_7b_qlora_oasst_e3" / "memory.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def fit(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_measurement_is_shown_beside_the_estimate(capsys, tmp_path):
    path = memory_json(tmp_path)
    rc, out, _ = fit(capsys, OURS, "--gpu-mem", "8", "--measured", path)
    assert f"measured  {path}: NVIDIA GeForce RTX 4060, 2026-12-01, 1024 tokens" in out
    for label, value in (("peak allocated (torch)", "5.61"), ("peak reserved (torch)", "6.02"),
                         ("used on the GPU (NVML)", "6.41")):
        line = next(line for line in out.splitlines() if label in line)
        assert value in line and "%" in line
    rc, out, _ = fit(capsys, OURS, "--gpu-mem", "8", "--measured", path, "--json")
    data = json.loads(out)
    assert data["measured"]["peak_reserved_gb"] == 6.02
    assert data["measured"]["file"] == str(path)


def test_without_nvml_the_gpu_line_is_left_out(capsys, tmp_path):
    path = memory_json(tmp_path, nvml_used_gb=None)
    _, out, _ = fit(capsys, OURS, "--gpu-mem", "8", "--measured", path)
    assert "peak reserved (torch)" in out and "used on the GPU (NVML)" not in out


def test_a_missing_file_is_named(capsys, tmp_path):
    missing = tmp_path / "memory.json"
    rc, out, err = fit(capsys, OURS, "--gpu-mem", "8", "--measured", missing)
    assert rc == 2 and str(missing) in err and "cannot read" in err


def test_bad_json_is_named_with_its_line(capsys, tmp_path):
    path = memory_json(tmp_path)
    path.write_text('{\n  "config": "x",\n  "gpu": \n}\n')
    rc, _, err = fit(capsys, OURS, "--gpu-mem", "8", "--measured", path)
    assert rc == 2 and f"{path}:4: not JSON" in err


def test_a_file_of_another_schema_is_refused_with_what_it_lacks(capsys, tmp_path):
    path = memory_json(tmp_path)
    data = json.loads(path.read_text())
    del data["peak_reserved_gb"], data["steps"]
    path.write_text(json.dumps(data))
    rc, _, err = fit(capsys, OURS, "--gpu-mem", "8", "--measured", path)
    assert rc == 2 and str(path) in err and "steps" in err and "peak_reserved_gb" in err
    path.write_text(json.dumps({**json.loads(path.read_text()), "steps": 3,
                                "peak_reserved_gb": "six"}))
    rc, _, err = fit(capsys, OURS, "--gpu-mem", "8", "--measured", path)
    assert rc == 2 and "peak_reserved_gb must be a number" in err
    path.write_text("[1, 2]")
    rc, _, err = fit(capsys, OURS, "--gpu-mem", "8", "--measured", path)
    assert rc == 2 and "JSON object" in err


def test_no_traceback_from_the_command_line(tmp_path):
    bad = tmp_path / "memory.json"
    bad.write_text("not json")
    result = run([sys.executable, "-m", "doctor", "fit", OURS, "--gpu-mem", "8",
                  "--measured", bad])
    assert result.returncode == 2
    assert str(bad) in result.stdout and "Traceback" not in result.stdout
