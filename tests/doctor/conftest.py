"""Fake machines for the doctor, built from real files: an /etc and /proc under a temporary root
(DOCTOR_ROOT), executables on a temporary PATH (nvcc, nvidia-smi, gcc as shell scripts printing
what the real ones print), and packages on a temporary PYTHONPATH (a torch whose version.py says
CUDA 12.1, distributions with METADATA and RECORD). The doctor runs as the user runs it:
`python -m doctor check --json`, in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.doctor import fake_smi

REPO = Path(__file__).resolve().parents[2]

# /etc/os-release of the supported distros (as shipped).
OS_RELEASE = {
    "ubuntu-20.04": 'NAME="Ubuntu"\nVERSION="20.04.6 LTS (Focal Fossa)"\nID=ubuntu\n'
                    'ID_LIKE=debian\nPRETTY_NAME="Ubuntu 20.04.6 LTS"\nVERSION_ID="20.04"\n'
                    'VERSION_CODENAME=focal\nUBUNTU_CODENAME=focal\n',
    "ubuntu-22.04": 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
                    'VERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\n'
                    'ID_LIKE=debian\nUBUNTU_CODENAME=jammy\n',
    "ubuntu-24.04": 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
                    'VERSION="24.04.1 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\n'
                    'ID_LIKE=debian\nUBUNTU_CODENAME=noble\nLOGO=ubuntu-logo\n',
    "debian-12": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
                 'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
}

# `nvcc -V` as each release prints it.
NVCC_V = {
    "11.5": ("Copyright (c) 2005-2021 NVIDIA Corporation", "Built on Thu_Nov_18_09:45:30_PST_2021",
             "V11.5.119", "cuda_11.5.r11.5/compiler.30672275_0"),
    "11.8": ("Copyright (c) 2005-2022 NVIDIA Corporation", "Built on Wed_Sep_21_10:33:58_PDT_2022",
             "V11.8.89", "cuda_11.8.r11.8/compiler.31833905_0"),
    "12.1": ("Copyright (c) 2005-2023 NVIDIA Corporation", "Built on Mon_Apr__3_17:16:06_PDT_2023",
             "V12.1.105", "cuda_12.1.r12.1/compiler.32688072_0"),
    "12.6": ("Copyright (c) 2005-2024 NVIDIA Corporation", "Built on Tue_Oct_29_23:50:19_PDT_2024",
             "V12.6.85", "cuda_12.6.r12.6/compiler.35059454_0"),
    "13.0": ("Copyright (c) 2005-2025 NVIDIA Corporation",
             "Built on Wed_Aug_20_01:58:59_PM_PDT_2025", "V13.0.88",
             "cuda_13.0.r13.0/compiler.36424714_0"),
}
NVCC_V["12.4"] = ("Copyright (c) 2005-2024 NVIDIA Corporation",
                  "Built on Thu_Mar_28_02:18:24_PDT_2024", "V12.4.131",
                  "cuda_12.4.r12.4/compiler.34097967_0")
# 12.8 for DeepSpeed's minor-mismatch table (0.17 added it).
NVCC_V["12.8"] = ("Copyright (c) 2005-2025 NVIDIA Corporation",
                  "Built on Fri_Feb_21_20:23:50_PST_2025", "V12.8.93",
                  "cuda_12.8.r12.8/compiler.35583870_0")


def nvcc_output(release: str) -> str:
    copyright_, built, full, build = NVCC_V[release]
    return (f"nvcc: NVIDIA (R) Cuda compiler driver\n{copyright_}\n{built}\n"
            f"Cuda compilation tools, release {release}, {full}\nBuild {build}\n")


def driver_proc(version: str, open_module: bool = False) -> str:
    if open_module:
        return (f"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {version}  Release "
                "Build  (dvs-builder@U16-I3-B03-4-3)  Fri Aug 16 21:42:42 UTC 2024\n"
                "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n")
    return (f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {version}  Fri May 31 09:35:42 UTC "
            "2024\nGCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n")


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    data: dict | None

    def find(self, check_id: str) -> dict:
        return next(f for f in self.data["findings"] if f["id"] == check_id)

    def status(self, check_id: str) -> str:
        return self.find(check_id)["status"]

    def commands(self, check_id: str) -> list[str]:
        return self.find(check_id)["fix"]["commands"]

    def fix_text(self, check_id: str) -> str:
        f = self.find(check_id)["fix"]
        return f["text"] + "\n" + "\n".join(f["commands"])


class FakeMachine:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.root, self.bin, self.site, self.home = (tmp / n for n in ("root", "bin", "site",
                                                                       "home"))
        for d in (self.root, self.bin, self.site, self.home):
            d.mkdir(parents=True, exist_ok=True)
        self.env = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.home),
                    "DOCTOR_ROOT": str(self.root), "LANG": "C.UTF-8",
                    "HF_HOME": str(self.home / "hf")}
        self.python = sys.executable
        self.pythonpath = [str(self.site), str(REPO)]
        self.default_args: list[str] = []

    # files under the fake root --------------------------------------------------------------
    def file(self, path: str, text: str | bytes) -> Path:
        p = self.root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
        return p

    def distro(self, name: str) -> FakeMachine:
        self.file("/etc/os-release", OS_RELEASE[name])
        return self

    def wsl(self) -> FakeMachine:
        self.file("/proc/sys/kernel/osrelease", "5.15.153.1-microsoft-standard-WSL2\n")
        self.file("/dev/dxg", "")
        self.file("/usr/lib/wsl/lib/libcuda.so.1", "")
        return self

    def driver(self, version: str = "550.90.07", open_module: bool = False) -> FakeMachine:
        self.file("/proc/driver/nvidia/version", driver_proc(version, open_module))
        self.file(f"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.{version}", "")
        return self

    def container(self, kind: str = "docker") -> FakeMachine:
        """The marks a container runtime leaves: /.dockerenv, /run/.containerenv, cgroups."""
        if kind == "docker":
            self.file("/.dockerenv", "")
            self.file("/proc/1/cgroup", "0::/\n")
        elif kind == "podman":
            self.file("/run/.containerenv", 'engine="podman-4.9.3"\n')
        elif kind == "kubernetes":
            self.file("/proc/1/cgroup", "0::/kubepods/besteffort/pod1234/cri-containerd-ab\n")
            self.env["KUBERNETES_SERVICE_HOST"] = "10.96.0.1"
        return self

    def vm(self, vendor: str = "QEMU", product: str = "Standard PC (Q35 + ICH9, 2009)"
           ) -> FakeMachine:
        self.file("/sys/class/dmi/id/sys_vendor", vendor + "\n")
        self.file("/sys/class/dmi/id/product_name", product + "\n")
        return self

    def apt(self, fmt: str, components: str = "main") -> Path:
        """Debian 12's archive in a sources file: `deb822` (debian.sources, as the bookworm
        container images ship it) or `one-line` (/etc/apt/sources.list, as the installer
        writes it)."""
        if fmt == "deb822":
            return self.file("/etc/apt/sources.list.d/debian.sources", (
                "Types: deb\n# http://snapshot.debian.org/archive/debian/20240701T000000Z\n"
                "URIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
                f"Components: {components}\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
                "Types: deb\n# http://snapshot.debian.org/archive/debian-security/20240701T000000Z"
                "\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
                f"Components: {components}\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"))
        return self.file("/etc/apt/sources.list", (
            "#deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD]/ bookworm "
            "main\n\n"
            f"deb http://deb.debian.org/debian/ bookworm {components}\n"
            f"deb-src http://deb.debian.org/debian/ bookworm {components}\n\n"
            f"deb http://security.debian.org/debian-security bookworm-security {components}\n"
            f"deb-src http://security.debian.org/debian-security bookworm-security {components}"
            "\n\n"
            f"deb http://deb.debian.org/debian/ bookworm-updates {components}\n"))

    def local_toolkit(self, release: str, full: str | None = None) -> Path:
        """/usr/local/cuda-X.Y under the root, as NVIDIA's packages lay it out (version.json)."""
        home = self.toolkit(release, self.root / f"usr/local/cuda-{release}")
        (home / "version.json").write_text(json.dumps(
            {"cuda": {"name": "CUDA SDK", "version": full or f"{release}.1"}}))
        return home

    def cuda_link(self, release: str, alternatives: bool = False) -> None:
        """/usr/local/cuda -> cuda-X.Y (relative links, so they resolve inside the root)."""
        link = self.root / "usr/local/cuda"
        if alternatives:
            alt = self.root / "etc/alternatives/cuda"
            alt.parent.mkdir(parents=True, exist_ok=True)
            alt.symlink_to(f"../../usr/local/cuda-{release}")
            link.symlink_to("../../etc/alternatives/cuda")
        else:
            link.symlink_to(f"cuda-{release}")

    def pci_gpu(self) -> FakeMachine:
        self.file("/sys/bus/pci/devices/0000:01:00.0/vendor", "0x10de\n")
        self.file("/sys/bus/pci/devices/0000:01:00.0/class", "0x030000\n")
        return self

    def mounts(self, *read_only: Path | str) -> FakeMachine:
        """/proc/self/mounts as a container shows it: an overlay root, and each of `read_only`
        bind-mounted read-only (as `docker run -v DIR:DIR:ro` or a cluster's shared cache)."""
        lines = ["overlay / overlay rw,relatime,lowerdir=/l,upperdir=/u,workdir=/w 0 0",
                 "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0",
                 "tmpfs /dev/shm tmpfs rw,nosuid,nodev,size=65536k 0 0"]
        lines += [f"/dev/nvme0n1p2 {str(p).replace(' ', chr(92) + '040')} ext4 "
                  "ro,relatime 0 0" for p in read_only]
        self.file("/proc/self/mounts", "\n".join(lines) + "\n")
        return self

    def meminfo(self, total_gib: float, swap_gib: float = 0) -> FakeMachine:
        kb = lambda g: int(g * 2**20)  # noqa: E731
        self.file("/proc/meminfo", f"MemTotal:       {kb(total_gib)} kB\nMemFree:  1 kB\n"
                  f"MemAvailable:   {kb(total_gib * 0.8)} kB\nSwapTotal:      {kb(swap_gib)} kB\n"
                  f"SwapFree:       {kb(swap_gib)} kB\n")
        return self

    # executables on PATH ----------------------------------------------------------------------
    def exe(self, name: str, body: str, where: Path | None = None) -> Path:
        p = (where or self.bin) / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/sh\n" + textwrap.dedent(body))
        p.chmod(0o755)
        return p

    def printing(self, name: str, output: str, rc: int = 0, where: Path | None = None) -> Path:
        out = self.tmp / f"{name}-{abs(hash((str(where), output)))}.out"
        out.write_text(output)
        return self.exe(name, f"cat '{out}'\nexit {rc}\n", where)

    def nvcc(self, release: str, where: Path | None = None) -> Path:
        return self.printing("nvcc", nvcc_output(release), where=where)

    def toolkit(self, release: str, home: Path | None = None, gcc_max: int = 12,
                nvcc: bool = True, headers: bool = True) -> Path:
        home = home or self.tmp / f"cuda-{release}"
        (home / "lib64").mkdir(parents=True, exist_ok=True)
        (home / "lib64" / f"libcudart.so.{release.split('.')[0]}").write_text("")
        if nvcc:
            self.nvcc(release, where=home / "bin")
        if headers:
            (home / "include" / "crt").mkdir(parents=True, exist_ok=True)
            (home / "include" / "cuda_runtime.h").write_text("")
            (home / "include" / "crt" / "host_config.h").write_text(
                f"#if defined(__GNUC__)\n#if __GNUC__ > {gcc_max}\n#error -- unsupported GNU "
                f"version! gcc versions later than {gcc_max} are not supported!\n#endif\n#endif\n")
        return home

    def gcc(self, version: str) -> Path:
        return self.printing("gcc", version + "\n")

    def smi(self, gpus=(("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"),),
            driver: str = "550.90.07", **kw) -> Path:
        """nvidia-smi answering the fields it is asked (tests/doctor/fake_smi.py); `unknown`
        fields an older one rejects, `topo` its `topo -p2p r` matrix, `mig` MIG lines."""
        return fake_smi.write(self.bin / "nvidia-smi", gpus, driver, **kw)

    def smi_failing(self, message: str, rc: int = 9) -> Path:
        return self.printing("nvidia-smi", message + "\n", rc=rc)

    # packages on PYTHONPATH -------------------------------------------------------------------
    def dist(self, name: str, version: str, files: list[str] = (), package: str | None = None,
             init: str = "", metadata: str = "") -> Path:
        """A distribution: NAME-VERSION.dist-info (METADATA, RECORD) and optionally its package."""
        info = self.site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                       + metadata)
        (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
        for f in files:
            (self.site / f).parent.mkdir(parents=True, exist_ok=True)
            (self.site / f).write_text("")
        if package:
            (self.site / package).mkdir(parents=True, exist_ok=True)
            (self.site / package / "__init__.py").write_text(init)
        return info

    def torch(self, version: str = "2.13.0+cu121", cuda: str | None = "12.1",
              init: str = "", version_py: str | None = None) -> Path:
        self.dist("torch", version, package="torch", init=init)
        text = version_py if version_py is not None else textwrap.dedent(f"""\
            from typing import Optional

            __all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip']
            __version__ = '{version}'
            debug = False
            cuda: Optional[str] = {cuda!r}
            git_version = 'cf30153c4c131c8164ee7798e5022d810682e2cb'
            hip: Optional[str] = None
            """)
        (self.site / "torch" / "version.py").write_text(text)
        return self.site / "torch"

    def bnb(self, version: str, libs: list[str], cextension: str | None = None) -> Path:
        """bitsandbytes with these libraries; `cextension` "installed" copies the installed
        bitsandbytes' own cextension.py (how it picks its library), or is the file's text."""
        files = [f"bitsandbytes/libbitsandbytes_{lib}.so" for lib in libs]
        self.dist("bitsandbytes", version, files, package="bitsandbytes")
        if cextension == "installed":
            import importlib.util

            real = Path(importlib.util.find_spec("bitsandbytes").submodule_search_locations[0])
            cextension = (real / "cextension.py").read_text()
        if cextension is not None:
            (self.site / "bitsandbytes" / "cextension.py").write_text(cextension)
        return self.site / "bitsandbytes"

    # a healthy 8 GB-class GPU box --------------------------------------------------------------
    def gpu_box(self, distro: str = "ubuntu-22.04", cuda: str = "12.1",
                gpus=(("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"),),
                driver: str = "550.90.07") -> FakeMachine:
        self.distro(distro).driver(driver).pci_gpu().meminfo(32, 8)
        self.file("/dev/shm/.keep", "")
        self.smi(gpus, driver)
        self.torch(f"2.13.0+cu{cuda.replace('.', '')}", cuda)
        self.dist("torchvision", "0.28.0", package="torchvision")
        home = self.toolkit(cuda, self.tmp / f"usr-local-cuda-{cuda}")
        self.env["CUDA_HOME"] = str(home)
        self.gcc("11.4.0")
        # The box's own pin set, so that its verdict does not depend on this environment's.
        stack = self.tmp / "box-stack.txt"
        stack.write_text("torch==2.13.0\n#@cuda torchvision==0.28.0\n")
        self.default_args = ["--stack", str(stack)]
        return self

    # running the doctor -----------------------------------------------------------------------
    def run(self, *args: str, json_out: bool = True, timeout: float = 120,
            python: str | None = None, command: str = "check", user: int | None = None,
            cwd: Path | None = None) -> Result:
        """`python -m doctor COMMAND ARGS` as the user runs it; `user`: as that uid (the test
        runs as root, which may write anywhere; another user may not)."""
        env = {**self.env, "PYTHONPATH": os.pathsep.join(self.pythonpath)}
        argv = [python or self.python, "-m", "doctor", command, *self.default_args, *args]
        if json_out:
            argv.append("--json")
        drop = None
        if user is not None:
            def drop():
                os.setgid(user)
                os.setuid(user)
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=cwd or self.tmp, preexec_fn=drop)
        data = json.loads(proc.stdout) if json_out and proc.stdout.strip() else None
        return Result(proc.returncode, proc.stdout, proc.stderr, data)


@pytest.fixture
def fake(tmp_path) -> FakeMachine:
    return FakeMachine(tmp_path)


@pytest.fixture(scope="module")
def fake_machine_class():
    """For module-scoped machines (tests import no `conftest`: other rooms have theirs)."""
    return FakeMachine
