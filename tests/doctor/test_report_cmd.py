"""`python -m doctor report`: one Markdown block (or --json) to paste into a bug report, with
the machine's facts and every finding, and nothing that identifies the user or grants access."""

import json
import os
import subprocess

HF = "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"
WANDB = "0123456789abcdef0123456789abcdef01234567"
GH = "ghp_" + "A" * 36


def report(fake, *args):
    env = {**fake.env, "PYTHONPATH": os.pathsep.join(fake.pythonpath)}
    proc = subprocess.run([fake.python, "-m", "doctor", "report", *fake.default_args, *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=fake.tmp)
    return proc


def secret_box(fake):
    fake.gpu_box(cuda="12.6")
    home = fake.toolkit("12.6", fake.home / "cuda-12.6")  # under $HOME: a path to redact
    fake.env.update({"CUDA_HOME": str(home), "HF_TOKEN": HF, "WANDB_API_KEY": WANDB,
                     "USER": "alice", "GITHUB_TOKEN": GH,
                     "HF_ENDPOINT": "https://alice:s3cretpass@mirror.example.org"})
    fake.env["PATH"] = f"{fake.home}/{HF}/bin:" + fake.env["PATH"]  # a token in a path, too
    return fake


def test_markdown_report_has_the_facts_and_no_secrets(fake):
    proc = report(secret_box(fake))
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert out.startswith("### `python -m doctor report`\n")
    assert "| GPU 0 | NVIDIA GeForce RTX 3060, 12.0 GiB, compute capability 8.6 |" in out
    assert "| torch | 2.13.0+cu126 (CUDA 12.6) |" in out
    assert "| driver | 550.90.07 |" in out
    assert "| CUDA_HOME | ~/cuda-12.6 (CUDA_HOME, ok) |" in out
    assert "| nvcc | 12.6 |" in out
    assert "<details><summary>every check</summary>" in out
    for secret in (HF, WANDB, GH, "s3cretpass", str(fake.home)):
        assert secret not in out, secret
    assert proc.stderr == ""


def test_json_report_is_redacted_everywhere(fake):
    proc = report(secret_box(fake), "--json")
    data = json.loads(proc.stdout)
    assert set(data) == {"exit_code", "seconds", "deep", "summary", "findings", "facts"}
    assert data["summary"]["gpus"] == [{"index": 0, "name": "NVIDIA GeForce RTX 3060",
                                        "memory_gib": 12.0, "cc": "8.6"}]
    assert data["summary"]["cuda_home"] == "~/cuda-12.6 (CUDA_HOME, ok)"
    assert data["summary"]["torch"] == "2.13.0+cu126 (CUDA 12.6)"
    text = proc.stdout
    for secret in (HF, WANDB, GH, "s3cretpass", str(fake.home)):
        assert secret not in text, secret
    assert data["exit_code"] == proc.returncode


def test_report_of_a_failing_machine_lists_the_fix_and_exits_1(fake):
    fake.gpu_box(distro="ubuntu-24.04", cuda="12.6")
    fake.env["CUDA_HOME"] = str(fake.tmp / "nowhere")
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    proc = report(fake)
    assert proc.returncode == 1
    assert f"- ✗ `cuda.home` (fail): CUDA_HOME={fake.tmp}/nowhere does not exist" in proc.stdout
    assert "  - `$ sudo apt-get -y install cuda-toolkit-12-6`" in proc.stdout


def test_report_bad_usage_exits_2(fake):
    proc = report(fake.gpu_box(), "--no-such-flag")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_a_reader_that_leaves_early_is_no_error(fake):
    """`python -m doctor report | head -1`: no traceback, no 'internal error'."""
    fake.gpu_box()
    env = {**fake.env, "PYTHONPATH": os.pathsep.join(fake.pythonpath)}
    proc = subprocess.run(f"'{fake.python}' -m doctor report {' '.join(fake.default_args)} "
                          "| head -1", shell=True, capture_output=True, text=True, env=env,
                          timeout=120, cwd=fake.tmp)
    assert proc.stdout == "### `python -m doctor report`\n"
    assert proc.stderr == ""


def test_report_says_which_gpus_the_run_sees(fake):
    gpus = (("NVIDIA GeForce RTX 4090", 24564, 24000, "8.9"),
            ("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"))
    fake.gpu_box(gpus=gpus).env.update(CUDA_VISIBLE_DEVICES="1", CUDA_DEVICE_ORDER="PCI_BUS_ID")
    out = report(fake).stdout
    assert "| the run sees | GPU 1 |" in out
    assert "CUDA_VISIBLE_DEVICES=1, CUDA_DEVICE_ORDER=PCI_BUS_ID" in out
    data = json.loads(report(fake, "--json").stdout)
    assert data["summary"]["visible"] == [1]
