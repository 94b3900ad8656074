"""Entry points judged as the OS runs them. Each environment here is a real venv whose `xtuner`
was written by pip itself (a wheel with a console script, installed offline): `#!/path/python`
for a short path, pip's `#!/bin/sh` + `'''exec' /path/python "$0" "$@"` trampoline when the
path is too long for a `#!` line, plus the forms other installers write (`#!/usr/bin/env
python`, a plain `#!` line longer than the kernel reads). The doctor's verdict is checked
against running the launcher on this machine: a working `xtuner` is never reported broken, and
one the kernel cannot start is."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from doctor.facts.pack import shebang_limit
from tests.doctor.conftest import FakeMachine

WHEEL_FILES = {
    "demo_cli/__init__.py": "import sys\n\n\ndef main():\n    print(sys.executable)\n",
    "demo_cli-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: demo-cli\nVersion: 1.0\n",
    "demo_cli-1.0.dist-info/WHEEL": ("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
                                     "true\nTag: py3-none-any\n"),
    "demo_cli-1.0.dist-info/entry_points.txt": "[console_scripts]\nxtuner = demo_cli:main\n",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel whose console script is named `xtuner` (pip writes its launcher)."""
    def digest(data: bytes) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
            b"=").decode()

    path = tmp_path_factory.mktemp("wheel") / "demo_cli-1.0-py3-none-any.whl"
    record = "".join(f"{n},{digest(t.encode())},{len(t.encode())}\n"
                     for n, t in WHEEL_FILES.items()) + "demo_cli-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in WHEEL_FILES.items():
            z.writestr(name, text)
        z.writestr("demo_cli-1.0.dist-info/RECORD", record)
    return path


def venv_at(base: Path, python_bytes: int, wheel: Path) -> Path:
    """A venv whose bin/python path is about `python_bytes` long, with `xtuner` installed by
    pip from `wheel` (pip run for that interpreter: it writes the launcher for it)."""
    room = python_bytes - len(str(base)) - len("/venv/bin/python") - 1
    parts, left = [], room
    while left > 0:
        n = min(60, left - 1) if left > 1 else 1
        parts.append("d" * max(n, 1))
        left -= len(parts[-1]) + 1
    env = base.joinpath(*parts, "venv") if parts else base / "venv"
    env.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"),
                    "install", "-q", "--no-index", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    return env


def runs(launcher: Path) -> bool:
    """Whether this machine's kernel and shell start it (with its environment's bin first on
    PATH, as for the doctor), and it runs its own environment's python."""
    path = f"{launcher.parent}:/usr/bin:/bin"
    try:
        out = subprocess.run([str(launcher)], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PATH": path})
    except OSError:  # ENOEXEC, ENOENT: the kernel refused it
        return False
    return out.returncode == 0 and out.stdout.strip().endswith("/venv/bin/python")


def doctor(tmp: Path, env: Path, kernel: str | None = None) -> dict:
    """xtuner.cli as the venv's user sees it: its bin first on PATH, the doctor run by its
    python (the doctor's own dependency, packaging, from this environment's site-packages)."""
    fake = FakeMachine(tmp / "machine")
    fake.python = str(env / "bin" / "python")
    fake.pythonpath.append(sysconfig.get_paths()["purelib"])
    fake.env["PATH"] = f"{env / 'bin'}:/usr/bin:/bin"
    fake.file("/proc/sys/kernel/osrelease", (kernel or os.uname().release) + "\n")
    return fake.run("xtuner.cli").find("xtuner.cli")


def rewrite_first_line(launcher: Path, line: str) -> None:
    """Another installer's launcher for the same entry point: only its `#!` line differs."""
    body = launcher.read_text().split("\n")
    if body[0] == "#!/bin/sh":  # pip's trampoline: keep the Python part after it
        body = body[3:]
    else:
        body = body[1:]
    launcher.write_text(line + "\n" + "\n".join(body))


def test_pip_writes_a_plain_line_for_a_short_path(tmp_path, wheel):
    env = venv_at(tmp_path, 90, wheel)
    launcher = env / "bin" / "xtuner"
    assert launcher.read_text().startswith(f"#!{env}/bin/python\n")
    f = doctor(tmp_path, env)
    assert runs(launcher) and f["status"] == "pass", f


def test_pip_writes_a_sh_trampoline_for_a_long_path_and_it_works(tmp_path, wheel):
    """The class of the bug: pip's `#!/bin/sh` form was read as "another Python (/bin/sh)"."""
    env = venv_at(tmp_path, 180, wheel)
    launcher = env / "bin" / "xtuner"
    assert launcher.read_text().startswith(f"#!/bin/sh\n'''exec' {env}/bin/python ")
    f = doctor(tmp_path, env)
    assert runs(launcher)
    assert f["status"] == "pass", f
    assert "(/bin/sh exec launcher)" in f["summary"]


def test_env_lookup_launcher(tmp_path, wheel):
    env = venv_at(tmp_path, 90, wheel)
    launcher = env / "bin" / "xtuner"
    rewrite_first_line(launcher, "#!/usr/bin/env python")
    f = doctor(tmp_path, env)
    assert runs(launcher) and f["status"] == "pass", f


@pytest.mark.parametrize("length", [200, 300])
def test_a_long_plain_line_as_this_kernel_reads_it(tmp_path, wheel, length):
    """A plain `#!` line of 200 bytes runs on Linux >= 5.1 (it reads 255), one of 300 on none:
    the doctor agrees with the kernel it runs on."""
    env = venv_at(tmp_path, length, wheel)
    launcher = env / "bin" / "xtuner"
    rewrite_first_line(launcher, f"#!{env}/bin/python")
    f = doctor(tmp_path, env)
    assert f["status"] == ("pass" if runs(launcher) else "fail"), f
    if shebang_limit(os.uname().release) == 256:  # Linux >= 5.1, as this machine's
        assert runs(launcher) is (length == 200)
    if f["status"] == "fail":
        assert "cannot start" in f["summary"]
        assert f["fix"]["local"] and "--force-reinstall" in f["fix"]["local"][0]


def test_a_long_plain_line_on_a_kernel_before_5_1(tmp_path, wheel):
    """Before Linux 5.1 the kernel read 127 bytes of a `#!` line: the same 200-byte launcher
    that runs here cannot start there, and reinstalling lets pip write its trampoline."""
    env = venv_at(tmp_path, 200, wheel)
    launcher = env / "bin" / "xtuner"
    rewrite_first_line(launcher, f"#!{env}/bin/python")
    f = doctor(tmp_path, env, kernel="4.15.0-213-generic")
    assert f["status"] == "fail", f
    assert "this kernel (4.15.0-213-generic) reads 127" in f["summary"]
    assert f["fix"]["local"] == [f"{env}/bin/python -m pip install -c "
                                 f"{Path(__file__).resolve().parents[2]}/env/stack.txt "
                                 "--force-reinstall --no-deps xtuner==0.2.0"]


def test_a_moved_environment(tmp_path, wheel):
    env = venv_at(tmp_path, 90, wheel)
    launcher = env / "bin" / "xtuner"
    rewrite_first_line(launcher, "#!/old/place/venv/bin/python")
    f = doctor(tmp_path, env)
    assert not runs(launcher) and f["status"] == "fail", f
    assert "/old/place/venv/bin/python does not exist" in f["summary"]
