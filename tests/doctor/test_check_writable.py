"""Directories the run must write, checked for writability (not only space): the HF caches
(HF_HOME, HF_HUB_CACHE, HF_DATASETS_CACHE), the work dir, torch extensions and Triton caches,
TMPDIR. Read-only mounts come from the mount table the process sees (a fake root's
/proc/self/mounts here, as `docker run -v DIR:DIR:ro` shows it); another owner is real: the
doctor runs as an unprivileged user against a directory root owns. Each fix is printed only when
the directory it names is writable here, and applying it makes the check pass."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

NOBODY = 65534


def writable(fake, *args, **kw):
    r = fake.run("resources.writable", *args, **kw)
    assert "Traceback" not in r.stderr, r.stderr
    return r, r.find("resources.writable")


def apply_exports(fake, finding):
    """What sourcing `doctor fix`'s exports file does: each local export line, in the env."""
    for line in finding["fix"]["local"]:
        name, _, value = line.removeprefix("export ").partition("=")
        fake.env[name] = value


def test_a_healthy_machine_passes(fake):
    fake.mounts()
    r, f = writable(fake)
    assert f["status"] == "pass" and f["summary"].startswith("7 directories writable")


def test_hf_home_on_a_read_only_mount(fake):
    shared = fake.tmp / "shared-hf"
    shared.mkdir()
    fake.env["HF_HOME"] = str(shared)
    fake.mounts(shared)
    r, f = writable(fake)
    assert f["status"] == "fail"  # the hub cache under it cannot take a download
    assert f"read-only mount at {shared}" in f["summary"]
    alternative = f"{fake.home}/.cache/huggingface"
    assert f["fix"]["local"] == [f"export HF_HOME={alternative}"]  # one move covers hub, datasets
    apply_exports(fake, f)
    assert writable(fake)[1]["status"] == "pass"


def test_read_only_hub_cache_offline_only_warns(fake):
    """A cluster's shared read-only model cache with HF_HUB_OFFLINE=1 is a real setup: what is
    cached loads, nothing is downloaded. The datasets cache still has to be writable."""
    hub = fake.tmp / "models"
    hub.mkdir()
    fake.env.update(HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1")
    fake.mounts(hub)
    r, f = writable(fake)
    assert f["status"] == "warn" and "only models already in it can load" in f["summary"]


SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON,
                    reason="needs root to make a directory of another user, and a python "
                           "that user can run")
def test_a_hub_cache_owned_by_another_user():
    """The doctor runs as `nobody`; HF_HUB_CACHE is a directory root owns (mode 755), as a
    cache created by another account or a root-run container leaves it. (The interpreter is
    the system's: this environment's may live where `nobody` cannot read; the doctor's one
    dependency, packaging, is copied beside it.)"""
    import packaging

    from tests.doctor.conftest import FakeMachine

    tmp = Path(tempfile.mkdtemp(prefix="doctor-owner-"))
    try:
        tmp.chmod(0o755)
        fake = FakeMachine(tmp)
        fake.python = SYSTEM_PYTHON
        shutil.copytree(Path(packaging.__file__).parent, fake.site / "packaging")
        fake.mounts()
        hub = tmp / "root-owned-hub"
        hub.mkdir(mode=0o755)
        for p in [tmp, *tmp.rglob("*")]:
            if p != hub:
                os.chown(p, NOBODY, NOBODY)
        fake.env["HF_HUB_CACHE"] = str(hub)
        r, f = writable(fake, user=NOBODY)
        assert f["status"] == "fail", f
        assert f"{hub} belongs to root with mode 755; this process runs as nobody" in f[
            "summary"]
        # where it goes without the variable (under HF_HOME), writable for nobody
        assert f["fix"]["local"] == [f"export HF_HUB_CACHE={fake.env['HF_HOME']}/hub"]
        assert "sudo chown -R" in f["fix"]["text"]
        apply_exports(fake, f)
        assert writable(fake, user=NOBODY)[1]["status"] == "pass"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_file_where_the_extensions_directory_should_be(fake):
    blocker = fake.tmp / "torch_extensions"
    blocker.write_text("")
    fake.env["TORCH_EXTENSIONS_DIR"] = str(blocker / "cache")
    fake.mounts()
    r, f = writable(fake)
    assert f["status"] == "info"  # nothing builds JIT ops without DeepSpeed
    assert f"{blocker} is a file, not a directory" in f["summary"]
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    r, f = writable(fake)
    assert f["status"] == "warn"
    assert f["fix"]["local"] == [f"export TORCH_EXTENSIONS_DIR={fake.home}/.cache/torch_extensions"]


def test_a_read_only_working_directory_and_tmpdir(fake):
    """A read-only project checkout: work_dirs/ cannot be made there; TMPDIR on a read-only
    mount too. The work dir fix is `--work-dir` with a directory that is writable."""
    project = fake.tmp / "project"
    project.mkdir()
    tmpdir = fake.tmp / "ro-tmp"
    tmpdir.mkdir()
    fake.env["TMPDIR"] = str(tmpdir)
    fake.mounts(project, tmpdir)
    r, f = writable(fake, cwd=project)
    assert f["status"] == "fail"
    assert f["summary"].startswith(f"work dir (`xtuner train` checkpoints, logs) {project}/"
                                   "work_dirs is not writable")
    assert f"--work-dir {fake.home}/work_dirs" in f["fix"]["text"]
    assert f["fix"]["local"] == ["export TMPDIR=/tmp"]
    assert any(d.startswith("temporary files") and "read-only mount" in d for d in f["details"])


def test_every_variable_is_read(fake):
    """Each variable moves its directory: pointing each at the read-only mount fails it."""
    ro = fake.tmp / "ro"
    ro.mkdir()
    fake.mounts(ro)
    for var in ("HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "TORCH_EXTENSIONS_DIR",
                "TRITON_CACHE_DIR", "TMPDIR", "XDG_CACHE_HOME", "HUGGINGFACE_HUB_CACHE"):
        fake.env.pop("HF_HOME", None)
        fake.env[var] = str(ro / var.lower())
        f = writable(fake)[1]
        assert f["status"] != "pass", var
        assert str(ro / var.lower()) in f["summary"] + " ".join(f["details"]), var
        del fake.env[var]
