"""Fault injection: a healthy fake GPU box, then one fault at a time. For every fault the whole
doctor runs and exits 0 or 1 without a traceback, no check crashes, and the fault shows up as a
finding (warn or fail) of the check that owns it, with a fix."""

import os
import sys
import time

import pytest

TURING = (("NVIDIA GeForce RTX 2070", 8192, 7900, "7.5"),)
PASCAL = (("NVIDIA GeForce GTX 1080", 8192, 7900, "6.1"),)


def healthy(fake):
    fake.gpu_box()
    (fake.bin / "xtuner").write_text(f"#!{sys.executable}\n")
    (fake.bin / "xtuner").chmod(0o755)
    return fake


def no_driver(f):
    (f.root / "proc/driver/nvidia/version").unlink()
    f.smi_failing("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")


def driver_mismatch(f):
    f.smi_failing("Failed to initialize NVML: Driver/library version mismatch", rc=18)


def hung_smi(f):
    f.exe("nvidia-smi", "sleep 600\n")


def stack_file(f, text):
    path = f.tmp / "stack.txt"
    path.write_text(text)
    return ["--stack", str(path)]


def nvcc_release(release, deepspeed="0.19.8"):
    def fault(f):
        f.env["CUDA_HOME"] = str(f.toolkit(release, f.tmp / f"cuda-{release}"))
        f.dist("deepspeed", deepspeed, package="deepspeed")
    return fault


def lock(f):
    """A lock left by a build that died two hours ago (a running build's is minutes old)."""
    p = f.home / ".cache/torch_extensions/py311_cu121/fused_adam/lock"
    p.parent.mkdir(parents=True)
    p.write_text("")
    old = time.time() - 2 * 3600
    os.utime(p, (old, old))


def leftover_ds(f):
    (f.site / "deepspeed" / "ops").mkdir(parents=True)


def old_ds_no_toolkit(f):
    f.env.pop("CUDA_HOME")
    f.dist("deepspeed", "0.16.2", package="deepspeed")


def hung_nvcc(f):
    f.exe("nvcc", "sleep 600\n", where=f.tmp / "usr-local-cuda-12.1" / "bin")


def garbage_nvcc(f):
    f.exe("nvcc", "printf '\\377\\376 Segmentation fault\\n'\n",
          where=f.tmp / "usr-local-cuda-12.1" / "bin")


def gcc_too_new(f):
    f.gcc("14.2.0")
    f.dist("deepspeed", "0.19.8", package="deepspeed")


def pip_nvcc(f):
    f.env.pop("CUDA_HOME")
    f.dist("nvidia-cuda-nvcc-cu12", "12.1.105", files=["nvidia/cuda_nvcc/bin/ptxas"])


def wsl_linux_driver(f):
    f.wsl()
    f.file("/var/lib/dpkg/status", "Package: nvidia-driver-550\nStatus: install ok installed\n")


def old_smi(f):
    """Driver 470's nvidia-smi: no compute_cap field; the driver is too old for CUDA 12."""
    f.driver("470.182.03")
    f.smi((("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"),), "470.182.03",
          unknown=("compute_cap",))


def read_only_hf_home(f):
    ro = f.tmp / "ro-hf"
    ro.mkdir()
    f.env["HF_HOME"] = str(ro)
    f.mounts(ro)


def hidden_pascal(f):
    """Two GPUs; the run is given the Pascal one, which torch cu128 has no kernels for."""
    f.gpu_box(cuda="12.8", gpus=(("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"),) + PASCAL)
    f.env.update(CUDA_VISIBLE_DEVICES="1", CUDA_DEVICE_ORDER="PCI_BUS_ID")


def long_shebang_old_kernel(f):
    """This environment's xtuner with a #! line of 200 bytes, on a kernel before 5.1."""
    link = f.tmp.joinpath(*["p" * 60] * 2) / "python"
    link.parent.mkdir(parents=True)
    link.symlink_to(sys.executable)
    (f.bin / "xtuner").write_text(f"#!{link}\n")
    (f.bin / "python").symlink_to(sys.executable)
    f.file("/proc/sys/kernel/osrelease", "4.15.0-213-generic\n")


def older_cublas_first(f):
    f.dist("nvidia-cublas-cu12", "12.4.5.8", ["nvidia/cublas/lib/libcublas.so.12"])
    d = f.tmp / "cuda-12.1/lib64"
    d.mkdir(parents=True)
    (d / "libcublas.so.12.1.3.1").write_text("")
    (d / "libcublas.so.12").symlink_to("libcublas.so.12.1.3.1")
    f.env["LD_LIBRARY_PATH"] = str(d)


FAULTS = [
    # (name, fault, extra args, check that reports it, statuses)
    ("no driver loaded", no_driver, [], "gpu.driver", {"fail"}),
    ("driver/library mismatch", driver_mismatch, [], "gpu.driver_mismatch", {"fail"}),
    ("nvidia-smi hangs", hung_smi, ["--timeout", "1"], "gpu.driver", {"fail"}),
    ("driver too old", lambda f: (f.smi(driver="515.105.01"), f.driver("515.105.01")), [],
     "gpu.driver_cuda", {"fail"}),
    ("CUDA_VISIBLE_DEVICES=-1", lambda f: f.env.update(CUDA_VISIBLE_DEVICES="-1"), [],
     "gpu.visible", {"fail"}),
    ("CUDA_VISIBLE_DEVICES=4", lambda f: f.env.update(CUDA_VISIBLE_DEVICES="4"), [],
     "gpu.visible", {"fail"}),
    ("Linux driver inside WSL", wsl_linux_driver, [], "gpu.wsl", {"fail"}),
    ("CPU torch on a GPU", lambda f: f.torch("2.13.0+cpu", None), [], "torch.cuda_build",
     {"fail"}),
    ("torch version.py broken", lambda f: f.torch(version_py="cuda = (\n"), [],
     "torch.installed", {"fail"}),
    ("torch version.py missing", lambda f: (f.site / "torch/version.py").unlink(), [],
     "torch.installed", {"fail"}),
    ("Pascal GPU, cu128 torch", lambda f: f.gpu_box(cuda="12.8", gpus=PASCAL), [],
     "torch.arch", {"fail"}),
    ("CUDA_HOME with a colon", lambda f: f.env.update(CUDA_HOME=f.env["CUDA_HOME"] + ":/x"), [],
     "cuda.home", {"fail"}),
    ("CUDA_HOME missing dir", lambda f: f.env.update(CUDA_HOME="/nonexistent/cuda"), [],
     "cuda.home", {"fail"}),
    ("runtime-only CUDA tree", lambda f: f.env.update(CUDA_HOME=str(f.toolkit(
        "12.1", f.tmp / "rt", nvcc=False, headers=False))), [], "cuda.home", {"fail"}),
    ("nvcc of another major", nvcc_release("11.5"), [], "cuda.nvcc", {"fail"}),
    ("nvcc 12.8 vs DeepSpeed table", nvcc_release("12.8", "0.16.2"), [], "cuda.nvcc",
     {"fail"}),
    ("nvcc hangs", hung_nvcc, ["--timeout", "1"], "cuda.nvcc", {"warn", "fail"}),
    ("nvcc prints garbage", garbage_nvcc, [], "cuda.nvcc", {"warn", "fail"}),
    ("gcc too new for nvcc", gcc_too_new, [], "cuda.gcc", {"warn", "fail"}),
    ("pip nvcc wheel as toolkit", pip_nvcc, [], "cuda.pip_nvcc", {"warn"}),
    ("foreign libcudart first", lambda f: f.env.update(LD_LIBRARY_PATH=str(
        f.toolkit("11.8", f.tmp / "c118") / "lib64")), [], "cuda.runtimes", {"warn"}),
    ("DeepSpeed 0.16.2 without nvcc", old_ds_no_toolkit, [], "deepspeed.import_probe",
     {"fail"}),
    ("leftover deepspeed dir", leftover_ds, [], "deepspeed.install", {"fail"}),
    ("stale JIT lock", lock, [], "deepspeed.jit_locks", {"warn"}),
    ("no bnb library for CUDA", lambda f: (f.gpu_box(cuda="12.8"), f.bnb(
        "0.45.0", ["cuda121", "cuda126", "cpu"])), [], "bnb.cuda_lib", {"fail"}),
    ("bnb too old", lambda f: f.bnb("0.39.0", ["cuda121"]), [], "bnb.install", {"fail"}),
    ("flash-attn on Turing", lambda f: (f.gpu_box(gpus=TURING), f.dist(
        "flash_attn", "2.6.3", package="flash_attn")), [], "precision.flash_attn", {"fail"}),
    ("bf16 hazard on Turing", lambda f: f.gpu_box(gpus=TURING), [], "precision.bf16",
     {"warn"}),
    ("a pin off the stack", lambda f: None, "PIN", "xtuner.pins", {"fail"}),
    ("malformed stack line", lambda f: None, "BADLINE", "xtuner.pins", {"fail"}),
    ("xtuner of another python", lambda f: (f.bin / "xtuner").write_text("#!/usr/bin/python3\n"),
     [], "xtuner.cli", {"fail"}),
    ("patches switched off", lambda f: f.env.update(XTUNER_PACK_PATCHES="none"), [],
     "xtuner.patches", {"warn"}),
    ("MKL threading clash", lambda f: f.dist("mkl-service", "2.4.0", package="mkl"), [],
     "xtuner.mkl", {"fail"}),
    ("small RAM, no swap", lambda f: f.meminfo(6, 0), [], "resources.ram", {"warn"}),
    ("4 GB GPU", lambda f: f.gpu_box(gpus=(("NVIDIA GeForce GTX 1650", 4096, 3900, "7.5"),)),
     [], "resources.vram", {"warn"}),
    # the six classes of issue 21
    ("old nvidia-smi, driver too old", old_smi, [], "gpu.driver_cuda", {"fail"}),
    ("visible GPU without kernels", hidden_pascal, [], "torch.arch", {"fail"}),
    ("HF_HOME on a read-only mount", read_only_hf_home, [], "resources.writable", {"fail"}),
    ("#! line past an old kernel's limit", long_shebang_old_kernel, [], "xtuner.cli", {"fail"}),
    ("TORCH_CUDA_ARCH_LIST without sm_86",
     lambda f: f.env.update(TORCH_CUDA_ARCH_LIST="7.5;9.0"), [], "cuda.arch_list", {"warn"}),
    ("older cuBLAS first on LD_LIBRARY_PATH", older_cublas_first, [], "cuda.runtimes",
     {"fail"}),
]


def test_at_least_twenty_faults():
    assert len(FAULTS) >= 20


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, fake_machine_class):
    r = healthy(fake_machine_class(tmp_path_factory.mktemp("healthy"))).run()
    return {f["id"]: f["status"] for f in r.data["findings"]}


def test_healthy_box_has_no_failure(baseline):
    assert not {i for i, s in baseline.items() if s in ("fail", "crash")}, baseline


@pytest.mark.parametrize("name, fault, args, check_id, statuses", FAULTS,
                         ids=[f[0] for f in FAULTS])
def test_fault_shows_up_with_a_fix(fake, baseline, name, fault, args, check_id, statuses):
    healthy(fake)
    fault(fake)
    if args == "PIN":
        args = stack_file(fake, "rich==0.0.1\n")
    elif args == "BADLINE":
        args = stack_file(fake, "rich==15.0.0\nrich\n")
    r = fake.run(*args, timeout=60)
    assert r.rc in (0, 1), r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert r.rc == (1 if any(f["status"] in ("fail", "crash") for f in r.data["findings"]) else 0)
    assert not [f for f in r.data["findings"] if f["status"] == "crash"]
    f = r.find(check_id)
    assert f["status"] in statuses, f
    assert baseline[check_id] not in statuses  # the fault made the difference
    assert f["fix"]["commands"] or f["fix"]["text"], f


@pytest.mark.parametrize("path, content", [
    ("/etc/os-release", b"ID=\xff\xfeubuntu\nVERSION_ID=\"22.04\n"),
    ("/proc/driver/nvidia/version", b"\x00\x01 not a driver \xff\n"),
    ("/proc/meminfo", b"MemTotal: lots kB\n\xff\n"),
    ("/proc/sys/kernel/osrelease", b"\xff\xfe"),
    ("/var/lib/dpkg/status", b"\xff" * 1000),
])
def test_unreadable_and_non_utf8_files_never_crash(fake, path, content):
    healthy(fake).file(path, content)
    r = fake.run()
    assert r.rc in (0, 1) and "Traceback" not in r.stderr
    assert not [f for f in r.data["findings"] if f["status"] == "crash"]


def test_files_that_are_directories_never_crash(fake):
    healthy(fake)
    for path in ("/etc/os-release", "/proc/meminfo", "/proc/driver/nvidia/version"):
        p = fake.root / path.lstrip("/")
        if p.exists():
            p.unlink()
        p.mkdir(parents=True)
    r = fake.run()
    assert r.rc in (0, 1) and not [f for f in r.data["findings"] if f["status"] == "crash"]
