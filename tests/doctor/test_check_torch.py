"""torch wheel checks with fake torch packages on a temporary PYTHONPATH. The default run reads
torch/version.py only; the broken torches (raise, segfault, hang) prove it: they would take the
doctor down if it imported them. `--deep` imports them in a subprocess and reports what happened.
"""

import pytest

RAISES = "raise ImportError('libtorch_cuda.so: cannot open shared object file')\n"
SEGFAULTS = "import os\nos.kill(os.getpid(), 11)\n"
HANGS = "import time\ntime.sleep(600)\n"


def test_cuda_121_torch_is_read_from_version_py(fake):
    fake.gpu_box(cuda="12.1")
    r = fake.run("torch")
    f = r.find("torch.installed")
    assert f["status"] == "pass" and f["summary"] == "torch 2.13.0+cu121 (CUDA 12.1 build)"
    assert r.data["facts"]["torch"]["cuda"] == "12.1"
    assert r.status("torch.import") == "skip"  # deep only


def test_cpu_torch_on_gpu_machine_fails_with_cuda_build_fix(fake):
    fake.gpu_box()
    fake.torch("2.13.0+cpu", None)
    r = fake.run("torch.cuda_build")
    f = r.find("torch.cuda_build")
    assert f["status"] == "fail" and "CPU build" in f["summary"]
    assert f["fix"]["commands"] == [
        f"{fake.python} -m pip uninstall -y torch",
        "make env TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126"]


@pytest.mark.parametrize("init, expected", [
    (RAISES, "ImportError: libtorch_cuda.so"),
    (SEGFAULTS, "killed by signal 11 (SIGSEGV)"),
    (HANGS, "no answer in 3 s"),
])
def test_broken_torch_default_run_survives_and_deep_run_reports(fake, init, expected):
    fake.gpu_box()
    fake.torch(init=init)
    plain = fake.run()
    assert plain.rc in (0, 1) and "Traceback" not in plain.stderr
    assert plain.status("torch.installed") == "pass"  # version.py read, package not imported
    deep = fake.run("torch", "--deep", "--deep-timeout", "3", timeout=60)
    f = deep.find("torch.import")
    assert f["status"] == "fail"
    assert expected in f["summary"]
    assert f["fix"]["commands"] == [
        f"{fake.python} -m pip uninstall -y torch",
        "make env TORCH_INDEX_URL=https://download.pytorch.org/whl/cu121"]
    assert "Traceback" not in deep.stderr


def test_unreadable_version_py_names_file_and_line(fake):
    fake.gpu_box()
    fake.torch(version_py="__version__ = '2.13.0'\ncuda = '12.1\n")
    r = fake.run("torch.installed")
    f = r.find("torch.installed")
    assert f["status"] == "fail"
    assert "torch/version.py:2" in f["summary"]
    assert f["fix"]["commands"]


def test_non_utf8_version_py_does_not_crash(fake):
    fake.gpu_box()
    fake.torch()
    version_py = fake.site / "torch" / "version.py"
    version_py.write_bytes(b"__version__ = '2.13.0'\xff\xfe\ncuda = None\n")
    r = fake.run("torch")
    assert r.rc in (0, 1)
    assert r.status("torch.installed") in ("pass", "fail")
    assert all(f["status"] != "crash" for f in r.data["findings"])


@pytest.mark.parametrize("cc, cuda, status, tag", [
    ("6.1", "12.8", "fail", "cu126"),   # Pascal left the CUDA 12.8 builds
    ("12.0", "12.6", "fail", "cu130"),  # Blackwell has no kernels in the 12.6 build
    ("7.5", "12.8", "pass", None),
    ("8.6", "12.6", "pass", None),
])
def test_gpu_architecture_in_torch_build(fake, cc, cuda, status, tag):
    fake.gpu_box(cuda=cuda, gpus=(("GPU", 8192, 8000, cc),), driver="580.65.06")
    r = fake.run("torch.arch")
    f = r.find("torch.arch")
    assert f["status"] == status
    if status == "fail":
        # Pascal gets the 12.6 build; Blackwell the newest build its driver (580) runs.
        assert f["fix"]["commands"][-1] == (
            f"make env TORCH_INDEX_URL=https://download.pytorch.org/whl/{tag}")
