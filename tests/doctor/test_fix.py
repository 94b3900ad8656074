"""`python -m doctor fix` on a fake broken environment: a real venv (with pip) whose packages,
.pth, JIT cache and variables are broken in four environment-local ways, beside a system-level
problem it must only print. A dry run changes nothing; `--yes` applies, checks again and shows
before/after; sourcing the exports file, a clean check follows. pip installs offline from a
directory of wheels (PIP_NO_INDEX, PIP_FIND_LINKS: pip's own settings, not the doctor's)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest

from tests.doctor.conftest import REPO, FakeMachine

IDS = ["xtuner.pins", "xtuner.patches", "deepspeed.jit_locks", "resources.writable"]


def wheel(directory: Path, name: str, version: str) -> Path:
    files = {f"{name}/__init__.py": f"__version__ = {version!r}\n",
             f"{name}-{version}.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{name}-{version}.dist-info/WHEEL":
                 "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}

    def digest(text: str) -> str:
        raw = hashlib.sha256(text.encode()).digest()
        return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    record = "".join(f"{n},{digest(t)},{len(t)}\n" for n, t in files.items())
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for n, t in files.items():
            z.writestr(n, t)
        z.writestr(f"{name}-{version}.dist-info/RECORD",
                   record + f"{name}-{version}.dist-info/RECORD,,\n")
    return path


@pytest.fixture
def broken(tmp_path):
    """The machine: a venv with fixdemo 0.9 where the stack pins 1.0, no startup-patch .pth, a
    JIT lock two hours old, TMPDIR on a read-only mount; and a CPU torch on a machine with an
    NVIDIA GPU on PCI (system-level: printed, never run)."""
    fake = FakeMachine(tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel(wheels, "fixdemo", "0.9")
    wheel(wheels, "fixdemo", "1.0")
    pip_env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels),
               "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([str(py), "-m", "pip", "install", "-q", "fixdemo==0.9"], check=True,
                   env=pip_env)
    deps = tmp_path / "deps"  # the doctor's one dependency, beside it (not in the venv)
    import packaging

    shutil.copytree(Path(packaging.__file__).parent, deps / "packaging")
    fake.python = str(py)
    fake.pythonpath = [str(fake.site), str(REPO), str(deps)]
    fake.env.update({k: pip_env[k] for k in ("PIP_NO_INDEX", "PIP_FIND_LINKS",
                                              "PIP_DISABLE_PIP_VERSION_CHECK")})
    stack = tmp_path / "stack.txt"
    stack.write_text("fixdemo==1.0\n")
    fake.default_args = ["--stack", str(stack)]
    lock = fake.home / ".cache/torch_extensions/py311_cu121/fused_adam/lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    os.utime(lock, (time.time() - 7200,) * 2)
    ro_tmp = tmp_path / "ro-tmp"
    ro_tmp.mkdir()
    fake.env["TMPDIR"] = str(ro_tmp)
    fake.mounts(ro_tmp)
    fake.distro("ubuntu-22.04").pci_gpu()
    fake.torch("2.13.0+cpu", None)
    fake.env_file = tmp_path / "xtuner-pack-env.sh"
    return fake


def installed(fake) -> str:
    out = subprocess.run([fake.python, "-c", "import fixdemo; print(fixdemo.__version__)"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def pth(fake) -> Path:
    out = subprocess.run([fake.python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                          "['purelib'])"], capture_output=True, text=True)
    return Path(out.stdout.strip()) / "xtuner_8gb_pack_patches.pth"


def test_dry_run_then_yes_then_a_clean_check(broken):
    fake = broken
    before = fake.run(*IDS)
    assert before.rc == 1
    assert {i: before.status(i) for i in IDS} == {
        "xtuner.pins": "fail", "xtuner.patches": "fail", "deepspeed.jit_locks": "warn",
        "resources.writable": "warn"}

    # a dry run says what it would do, and changes nothing
    dry = fake.run(*IDS, "--env-file", str(fake.env_file), command="fix", json_out=False)
    assert dry.rc == 1 and "Traceback" not in dry.stdout + dry.stderr
    assert "dry run" in dry.stdout
    assert f'apply  $ {fake.python} -m pip install -c {fake.tmp}/stack.txt "fixdemo==1.0"' in \
        dry.stdout
    assert f"apply  $ {fake.python} -m patches install" in dry.stdout
    assert f"apply  $ rm -rf {fake.home}/.cache/torch_extensions/py311_cu121/fused_adam" in \
        dry.stdout
    assert f"apply  $ export TMPDIR=/tmp   (to {fake.env_file})" in dry.stdout
    assert "4 change(s) to this environment" in dry.stdout
    assert installed(fake) == "0.9" and not pth(fake).exists() and not fake.env_file.exists()
    assert (fake.home / ".cache/torch_extensions/py311_cu121/fused_adam/lock").exists()

    # --yes applies, checks again (the exports file sourced) and shows before/after
    yes = fake.run(*IDS, "--env-file", str(fake.env_file), "--yes", command="fix",
                   json_out=False, timeout=600)
    assert yes.rc == 0, yes.stdout + yes.stderr
    for cid, was in (("xtuner.pins", "fail"), ("xtuner.patches", "fail"),
                     ("deepspeed.jit_locks", "warn"), ("resources.writable", "warn")):
        assert any(ln.split()[:4] == [cid, was, "->", "pass"] for ln in yes.stdout.splitlines()), \
            yes.stdout
    assert installed(fake) == "1.0" and pth(fake).exists()
    assert not (fake.home / ".cache/torch_extensions/py311_cu121/fused_adam").exists()
    assert "export TMPDIR=/tmp" in fake.env_file.read_text().splitlines()
    assert f". {fake.env_file}" in yes.stdout

    # a clean check, as the user runs it after sourcing the file
    env = {**fake.env, "PYTHONPATH": os.pathsep.join(fake.pythonpath)}
    proc = subprocess.run(["/bin/sh", "-c", '. "$0" && exec "$@"', str(fake.env_file),
                           fake.python, "-m", "doctor", "check", *fake.default_args, *IDS,
                           "--json"], capture_output=True, text=True, env=env, cwd=fake.tmp)
    after = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert {f["id"]: f["status"] for f in after["findings"]} == dict.fromkeys(IDS, "pass")


def test_system_level_fixes_are_printed_never_run(broken):
    """A CPU torch on a GPU machine: its fix (uninstall torch, `make env` with a CUDA index)
    downloads gigabytes and is printed for the user; `--yes` runs nothing of it."""
    fake = broken
    out = fake.run("torch.cuda_build", "--env-file", str(fake.env_file), "--yes",
                   command="fix", json_out=False)
    assert out.rc == 1
    assert "yours  (outside this environment: printed, never run by the doctor)" in out.stdout
    assert "make env TORCH_INDEX_URL=https://download.pytorch.org/whl/" in out.stdout
    assert "Nothing here that the doctor may change" in out.stdout
    assert (fake.site / "torch" / "version.py").exists()


def test_fix_with_nothing_to_fix(fake):
    fake.gpu_box()
    out = fake.run("gpu.driver", command="fix", json_out=False)
    assert out.rc == 0 and "Nothing to fix" in out.stdout


def test_help_lists_the_commands():
    proc = subprocess.run([sys.executable, "-m", "doctor", "--help"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert proc.returncode == 0
    lines = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.startswith("  ")}
    assert {"check", "fit", "report", "fix"} <= set(lines)
    for name in ("check", "fit", "report", "fix"):
        assert len(lines[name].split()) > 3  # one line that says what it does
    fix_help = subprocess.run([sys.executable, "-m", "doctor", "fix", "--help"],
                              capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert fix_help.returncode == 0 and "--yes" in fix_help.stdout
