"""The CLI on this machine and on fakes: verdict, JSON, exit codes, selection, crash handling, and
that the doctor never imports torch, deepspeed, bitsandbytes or flash_attn in its own process."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "deepspeed", "bitsandbytes", "flash_attn")
ENV_BIN = str(Path(sys.executable).parent)


def here_env(**extra):
    """This machine's environment with the env's bin first on PATH, as `make` runs things."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra}
    env["PATH"] = ENV_BIN + os.pathsep + env.get("PATH", "")
    return env


def doctor_here(*args, **env):
    return subprocess.run([sys.executable, "-m", "doctor", "check", *args], capture_output=True,
                          text=True, env=here_env(**env), timeout=120, cwd=REPO)


def list_ids():
    out = doctor_here("--list-checks").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_this_machine_verdict_and_json():
    proc = doctor_here("--json")
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    ids = [f["id"] for f in data["findings"]]
    assert ids == list_ids()
    for f in data["findings"]:
        assert set(f) == {"id", "category", "status", "summary", "details", "fix"}
        assert f["status"] in ("pass", "warn", "fail", "info", "skip", "crash")
        assert set(f["fix"]) == {"commands", "text", "local"}
        assert set(f["fix"]["local"]) <= set(f["fix"]["commands"])  # what `doctor fix` applies
        if f["status"] in ("warn", "fail"):
            assert f["fix"]["commands"] or f["fix"]["text"], f
    statuses = {f["status"] for f in data["findings"]}
    assert "crash" not in statuses
    assert data["exit_code"] == proc.returncode == (1 if statuses & {"fail"} else 0)
    no_gpu = not Path("/proc/driver/nvidia/version").exists() and not any(
        Path(d, "nvidia-smi").exists() for d in os.environ.get("PATH", "").split(os.pathsep))
    if no_gpu:  # the development machine and CI: CPU only
        driver = next(f for f in data["findings"] if f["id"] == "gpu.driver")
        assert driver["status"] == "warn" and "CPU-only" in driver["summary"]
        assert "make smoke" in driver["fix"]["text"]


def test_terse_output_has_one_line_per_category_and_the_problems():
    proc = doctor_here()
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Doctor summary")
    cats = [ln for ln in lines if ln[:4] in ("[✓] ", "[!] ", "[✗] ")]
    assert len(cats) == 10
    assert any("GPU & driver" in ln for ln in cats)
    assert f"exit {proc.returncode})" in lines[-1]
    for ln in cats:
        if ln.startswith("[!]") or ln.startswith("[✗]"):
            assert any(x.startswith(("! ", "✗ ")) for x in lines)  # each problem spelled out
    assert "Traceback" not in proc.stdout + proc.stderr


def test_verbose_shows_every_finding_and_the_facts():
    proc = doctor_here("-v")
    for cid in list_ids():
        assert f" {cid} [" in proc.stdout
    assert "Facts gathered" in proc.stdout and "os_release" in proc.stdout


def test_doctor_imports_none_of_the_heavy_packages():
    code = ("import sys, json; from doctor.check import main; rc = main(['--json']); "
            f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}); "
            "print('LOADED=' + json.dumps(loaded), file=sys.stderr); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=here_env(), timeout=120, cwd=REPO)
    assert proc.returncode in (0, 1)
    json.loads(proc.stdout)
    loaded = json.loads(proc.stderr.rsplit("LOADED=", 1)[1])
    assert loaded == []
    # and as the user runs it, measured by the interpreter itself
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "doctor", "check"],
                          capture_output=True, text=True, env=here_env(), timeout=120, cwd=REPO)
    imported = {ln.rsplit("|", 1)[1].strip().split(".")[0] for ln in proc.stderr.splitlines()
                if ln.startswith("import time:") and "|" in ln}
    assert "doctor" in imported and not imported & set(HEAVY)


def test_a_torch_that_segfaults_on_import_does_not_touch_the_doctor(fake):
    fake.gpu_box().torch(init="import os\nos.kill(os.getpid(), 11)\n")
    r = fake.run()
    assert r.rc in (0, 1) and r.status("torch.installed") == "pass"


def test_strict_fails_on_warnings(fake):
    fake.distro("debian-12").torch("2.13.0+cpu", None)
    assert fake.run("gpu").rc == 0
    r = fake.run("gpu", "--strict")
    assert r.rc == 1 and r.data["exit_code"] == 1


def test_list_checks_and_selection_by_id_and_category(fake):
    ids = list_ids()
    assert len(ids) >= 35
    assert {i.split(".")[0] for i in ids} == {"gpu", "multigpu", "torch", "cuda", "deepspeed",
                                              "gds", "bnb", "precision", "xtuner", "resources"}
    fake.gpu_box()
    r = fake.run("cuda", "gds.storage")
    assert [f["id"] for f in r.data["findings"]] == [i for i in ids if i.startswith("cuda.")] + [
        "gds.storage"]


def test_unknown_check_id_is_a_usage_error(fake):
    r = fake.run("no.such.check", json_out=False)
    assert r.rc == 2 and "unknown check id(s): no.such.check" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_check_that_raises_is_reported_as_crash_and_the_others_run(fake):
    """A check that raises (here one registered beside the real ones, as a broken check module
    would be): it is a `crash` finding with where it raised, and every other check still runs."""
    fake.gpu_box()
    code = ("import sys\nimport doctor.checks as c\nCATEGORY = 'GPU & driver'\n"
            "@c.check('gpu.broken', 'a check that raises')\n"
            "def broken(f):\n    return f.gpus[0].no_such_field\n"
            "from doctor.check import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {**fake.env, "PYTHONPATH": os.pathsep.join(fake.pythonpath)}
    proc = subprocess.run([sys.executable, "-c", code, *fake.default_args, "--json"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=fake.tmp)
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    crashed = {f["id"]: f for f in data["findings"] if f["status"] == "crash"}
    assert set(crashed) == {"gpu.broken"}
    assert "AttributeError" in crashed["gpu.broken"]["summary"]
    assert crashed["gpu.broken"]["details"][0].startswith("at <string>:")
    assert "doctor bug" in crashed["gpu.broken"]["fix"]["text"]
    assert len(data["findings"]) == len(list_ids()) + 1


def test_no_doctor_module_imports_the_pack_rooms_above_it():
    """`check` runs without `patches` importable at all: the .pth contract is doctor/pth.py."""
    code = ("import sys, json; sys.modules['patches'] = None; from doctor.check import main; "
            "rc = main(['xtuner', '--json']); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=here_env(), timeout=120, cwd=REPO)
    data = json.loads(proc.stdout)
    assert not [f for f in data["findings"] if f["status"] == "crash"], data["findings"]


def test_patches_pth_missing_then_fixed_by_its_own_command(tmp_path):
    """A fresh environment without the .pth: the doctor's fix command installs it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHONPATH": f"{REPO}{os.pathsep}{sysconfig.get_paths()['purelib']}"}

    def doctor():
        proc = subprocess.run([py, "-m", "doctor", "check", "xtuner.patches", "--json"],
                              capture_output=True, text=True, env=env, timeout=60)
        return json.loads(proc.stdout)["findings"][0]

    before = doctor()
    assert before["status"] == "fail"
    assert before["fix"]["commands"] == [f"{py} -m patches install"]
    subprocess.run(before["fix"]["commands"][0].split(), check=True, env=env,
                   capture_output=True)
    assert doctor()["status"] == "pass"


def test_terminal_output_is_coloured_by_rich(fake):
    """On a TTY the report goes through rich (ANSI colours); piped, it is plain text."""
    import pty

    fake.distro("debian-12").torch("2.13.0+cpu", None)
    env = {**fake.env, "PYTHONPATH": os.pathsep.join(fake.pythonpath), "TERM": "xterm-256color",
           "COLUMNS": "120"}
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "doctor", "check", "gpu"], stdout=secondary,
                            stderr=secondary, env=env, cwd=fake.tmp)
    os.close(secondary)
    out = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(primary)
    assert proc.wait(timeout=60) == 0
    text = out.decode()
    assert "\x1b[" in text and "GPU & driver" in text
    assert "\x1b[" not in fake.run("gpu", json_out=False).stdout


@pytest.mark.slow
def test_deep_run_on_this_environment_imports_the_real_packages():
    """--deep imports the real torch and runs the real `python -m bitsandbytes` (seconds)."""
    proc = doctor_here("torch", "bnb", "precision", "--deep", "--json")
    data = json.loads(proc.stdout)
    found = {f["id"]: f for f in data["findings"]}
    assert found["torch.import"]["status"] == "pass", found["torch.import"]
    assert found["bnb.selftest"]["status"] in ("pass", "info"), found["bnb.selftest"]
    assert data["deep"] is True
