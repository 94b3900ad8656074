"""Facts about the environment, gathered once per run through `probe.Machine` and cached.

A fact is computed the first time a check asks for it, so running one check probes only what it
needs; every fact gathered is recorded in `Facts.gathered` for `-v` and `--json`. Nothing here
imports torch, deepspeed, bitsandbytes or flash_attn: packages are located with
`importlib.util.find_spec` (which does not execute a top-level package) and read as files and
metadata. The imports themselves happen only in `--deep` probes, in subprocesses with timeouts.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
import re
import sys
import sysconfig
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

from . import probe
from . import versions as V
from .fixes import AptSource, Platform, Toolkit

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "env" / "stack.txt"


def fact(fn):
    """A cached property whose value is also recorded in `self.gathered`."""
    name = fn.__name__

    @functools.wraps(fn)
    def get(self):
        return self._memo((name,), lambda: fn(self), lambda v: self.gathered.__setitem__(
            name, jsonable(v)))

    return property(get)


def keyed(kind: str, record=None):
    """A cached method of one key (and maybe more arguments, not part of the key), recorded in
    `self.gathered[kind][key]`: installed versions, package directories, --deep imports."""

    def wrap(fn):
        @functools.wraps(fn)
        def get(self, key, *args):
            def note(value):
                self.gathered.setdefault(kind, {})[str(key)] = (record or jsonable)(value)

            return self._memo((kind, key), lambda: fn(self, key, *args), note)

        return get

    return wrap


def jsonable(value):
    if is_dataclass(value):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# -- the pieces ---------------------------------------------------------------------------------
@dataclass
class TorchInfo:
    location: str | None = None  # the package directory
    version: str | None = None  # torch/version.py __version__
    cuda: str | None = None  # torch/version.py cuda: "12.6", None for CPU builds
    hip: str | None = None
    dist_version: str | None = None  # installed distribution metadata
    error: str | None = None  # why version.py could not be read

    @property
    def found(self) -> bool:
        return self.location is not None

    @property
    def cuda_build(self) -> bool:
        return bool(self.cuda)


@dataclass
class CudaHome:
    path: str | None = None
    source: str = ""  # CUDA_HOME | CUDA_PATH | nvcc on PATH | /usr/local/cuda
    nvcc_on_path: str | None = None
    problems: list[str] = field(default_factory=list)  # malformed, missing, no nvcc, ...
    kind: str = "none"  # none | ok | malformed | missing | runtime-only | no-headers


@dataclass
class Nvcc:
    path: str | None = None
    release: str | None = None  # "12.6"
    run: probe.Run | None = None
    problem: str | None = None


@dataclass
class Pin:
    name: str
    version: str
    group: str  # "" for plain pins, else the #@group
    line: int


@dataclass
class Stack:
    path: str
    pins: list[Pin] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "file:line: message"

    def pin(self, name: str) -> Pin | None:
        """The pin of a distribution, by its canonical name (PEP 503)."""
        want = canonical(name)
        return next((p for p in self.pins if canonical(p.name) == want), None)


@dataclass
class Deep:
    """What a subprocess import said."""

    ok: bool
    summary: str
    data: dict = field(default_factory=dict)
    run: probe.Run | None = None


PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")
NVCC_RE = re.compile(r"release (\d+)\.(\d+)")
DRIVER_RE = re.compile(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)")


def parse_stack(path: Path, text: str) -> Stack:
    """env/stack.txt: `name==ver` lines and `#@group name==ver` lines; other comments skipped."""
    stack = Stack(path=str(path))
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        group = ""
        if line.startswith("#@"):
            group, _, line = line[2:].partition(" ")
            line = line.strip()
        elif not line or line.startswith("#"):
            continue
        m = PIN_RE.match(line.split(";")[0].strip())
        if not m:
            stack.errors.append(f"{path}:{n}: not a `name==version` pin: {raw.strip()!r}")
            continue
        stack.pins.append(Pin(m.group(1), m.group(2), group, n))
    return stack


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def version_matches(installed: str, pinned: str) -> bool:
    """PEP 440 `==` for a plain pin: a local label (+cpu, +cu126) is ignored, "2.13" == "2.13.0"."""
    have, want = V.parse(installed), V.parse(pinned)
    if have is None or want is None:
        return installed == pinned
    return V.parse(have.public) == V.parse(want.public)


# -- the facts ----------------------------------------------------------------------------------
class Facts:
    def __init__(self, machine: probe.Machine, stack_path: Path | None = None, deep: bool = False,
                 deep_timeout: float = 60.0):
        self.m = machine
        self.stack_path = Path(stack_path) if stack_path else STACK
        self.deep = deep
        self.deep_timeout = deep_timeout  # a cold `import torch` takes seconds
        self._cache: dict = {}  # the one fact cache: (fact name,) or (kind, key) -> value
        self.gathered: dict = {}

    def _memo(self, key: tuple, compute, record):
        if key not in self._cache:
            self._cache[key] = compute()
            record(self._cache[key])
        return self._cache[key]

    def pin(self, name: str) -> Pin | None:
        return self.stack.pin(name) if self.stack else None

    # system ----------------------------------------------------------------------------------
    @fact
    def os_release(self) -> dict:
        text = self.m.read("/etc/os-release") or self.m.read("/usr/lib/os-release") or ""
        out = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip().isidentifier():
                out[key.strip()] = value.strip().strip("'\"")
        return out

    @fact
    def wsl(self) -> bool:
        kernel = (self.m.read("/proc/sys/kernel/osrelease") or "") + (
            self.m.read("/proc/version") or "")
        return ("microsoft" in kernel.lower() or "wsl" in kernel.lower()
                or bool(self.m.getenv("WSL_DISTRO_NAME")))

    @fact
    def platform(self) -> Platform:
        osr = self.os_release
        virt = self.virtualization
        return Platform(
            distro=osr.get("ID", "").lower(), release=osr.get("VERSION_ID", ""),
            pretty=osr.get("PRETTY_NAME", ""), wsl=self.wsl,
            conda_prefix=self.m.getenv("CONDA_PREFIX") or None,
            arch=os.uname().machine or "x86_64", python=self.m.python,
            container=virt["container"], vm=virt["vm"], apt_sources=self.apt_sources)

    @fact
    def virtualization(self) -> dict:
        """Container (and which) and VM (and which), with what said so: the GPU's driver lives
        on a container's host, and a VM sees a GPU only when one is passed through."""
        env, evidence = self.m.getenv, []
        cgroup = self.m.read("/proc/1/cgroup") or ""
        container = None
        if env("KUBERNETES_SERVICE_HOST") or "kubepods" in cgroup:
            container = "kubernetes"
            evidence.append("KUBERNETES_SERVICE_HOST" if env("KUBERNETES_SERVICE_HOST")
                            else "/proc/1/cgroup: kubepods")
        elif self.m.exists("/.dockerenv"):
            container, _ = "docker", evidence.append("/.dockerenv")
        elif self.m.exists("/run/.containerenv"):
            container, _ = "podman", evidence.append("/run/.containerenv")
        else:
            for word, name in (("docker", "docker"), ("libpod", "podman"), ("lxc", "lxc"),
                               ("containerd", "container")):
                if word in cgroup:
                    container, _ = name, evidence.append(f"/proc/1/cgroup: {word}")
                    break
            else:
                if env("container"):  # systemd-nspawn, lxc and podman set it for PID 1
                    container, _ = env("container"), evidence.append("$container")
        vm = None
        if not self.wsl:
            dmi = " ".join((self.m.read(f"/sys/class/dmi/id/{n}") or "").strip()
                           for n in ("sys_vendor", "product_name")).lower()
            for word, name in (("qemu", "qemu"), ("kvm", "kvm"), ("vmware", "vmware"),
                               ("virtualbox", "virtualbox"), ("innotek", "virtualbox"),
                               ("virtual machine", "hyper-v"), ("xen", "xen"),
                               ("amazon ec2", "amazon ec2"), ("google compute", "google cloud")):
                if word in dmi:
                    vm, _ = name, evidence.append(f"DMI: {dmi.strip()}")
                    break
            else:
                flags = re.search(r"^flags\s*:.*$", self.m.read("/proc/cpuinfo") or "", re.M)
                if flags and " hypervisor" in flags.group(0):
                    vm, _ = "hypervisor", evidence.append("/proc/cpuinfo: hypervisor flag")
        return {"container": container, "vm": vm, "evidence": evidence,
                "gpu_devices": self.m.glob("/dev/nvidia[0-9]*") != [] or self.m.exists(
                    "/dev/nvidiactl")}

    @fact
    def apt_sources(self) -> tuple[AptSource, ...] | None:
        """The distro archive's entries per sources file, deb822 or one-line (None: no apt)."""
        if not self.m.exists("/etc/apt", kind="dir"):
            return None
        codename = self.os_release.get("VERSION_CODENAME", "")
        distro = self.os_release.get("ID", "")

        def ours(suite: str, uri: str) -> bool:
            if codename:
                return suite.split("-")[0] == codename
            return distro and distro in uri

        files = ["/etc/apt/sources.list"] + [
            self.m.unhost(p) for p in self.m.glob("/etc/apt/sources.list.d/*")
            if p.endswith((".list", ".sources"))]
        out = []
        for path in files:
            text = self.m.read(path)
            if text is None:
                continue
            comps: list[set[str]] = []
            if path.endswith(".sources"):
                for stanza in re.split(r"\n\s*\n", text):
                    fields = {}
                    for line in stanza.splitlines():
                        key, sep, value = line.partition(":")
                        if sep and not line.startswith(("#", " ", "\t")):
                            fields[key.strip().lower()] = value.split("#")[0].strip()
                    if fields.get("enabled", "yes").lower() == "no":
                        continue
                    suites = fields.get("suites", "").split()
                    if any(ours(s, fields.get("uris", "")) for s in suites):
                        comps.append(set(fields.get("components", "").split()))
                fmt = "deb822"
            else:
                for line in text.splitlines():
                    m = re.match(r"^deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$",
                                 line.split("#")[0].strip())
                    if m and ours(m.group(2), m.group(1)):
                        comps.append(set(m.group(3).split()))
                fmt = "one-line"
            if comps:
                common = set.intersection(*comps)
                out.append(AptSource(path, fmt, tuple(sorted(common))))
        return tuple(out)

    @fact
    def toolkits(self) -> list[Toolkit]:
        """CUDA toolkits installed here: /usr/local/cuda-X.Y (their version.json, else the
        directory's name), and the CUDA_HOME in use when its nvcc answers."""
        found: dict[str, Toolkit] = {}
        for d in self.m.glob("/usr/local/cuda-*"):
            if not self.m.exists(f"{d}/bin/nvcc", host=False, kind="file"):
                continue
            version = None
            try:
                version = json.loads(self.m.read(f"{d}/version.json", host=False) or "")[
                    "cuda"]["version"]
            except (ValueError, KeyError, TypeError):
                m = re.search(r"cuda-(\d+\.\d+)$", d)
                version = m.group(1) if m else None
            if version and V.major_minor(version):
                path = self.m.unhost(d)
                found[path] = Toolkit(path, V.dotted(version))
        home = self.cuda_home
        if home.kind == "ok" and self.nvcc.release:
            path = self.m.unhost(home.path)
            found.setdefault(path,
                             Toolkit(path, self.nvcc.release))
        return sorted(found.values(), key=lambda t: V.release(t.version))

    @fact
    def cuda_link(self) -> dict:
        """Where /usr/local/cuda points, and whether through update-alternatives (NVIDIA's
        packages register it there: `update-alternatives --set cuda DIR` moves it)."""
        if not self.m.exists("/usr/local/cuda"):
            return {"target": None, "alternatives": False, "chain": []}
        target, chain = self.m.resolve("/usr/local/cuda")
        return {"target": target if len(chain) > 1 else None,
                "alternatives": any(c.startswith("/etc/alternatives/") for c in chain),
                "chain": chain}

    @fact
    def kernel_modules(self) -> list[str]:
        text = self.m.read("/proc/modules") or ""
        return [line.split()[0] for line in text.splitlines() if line.split()]

    @fact
    def dpkg_installed(self) -> list[str] | None:
        """Packages dpkg has installed (/var/lib/dpkg/status); None without dpkg."""
        text = self.m.read("/var/lib/dpkg/status")
        if text is None:
            return None
        out = []
        for block in text.split("\n\n"):
            fields = dict(re.findall(r"^(Package|Status): (.*)$", block, re.M))
            if "installed" in fields.get("Status", "").split() and fields.get("Package"):
                out.append(fields["Package"])
        return out

    @fact
    def nvidia_pci(self) -> list[str]:
        """PCI display controllers made by NVIDIA (vendor 0x10de, class 0x03xxxx)."""
        found = []
        for dev in self.m.listdir("/sys/bus/pci/devices"):
            base = f"/sys/bus/pci/devices/{dev}"
            vendor = (self.m.read(f"{base}/vendor") or "").strip().lower()
            cls = (self.m.read(f"{base}/class") or "").strip().lower()
            if vendor == "0x10de" and cls.startswith("0x03"):
                found.append(dev)
        return found

    @fact
    def kernel_driver(self) -> str | None:
        """Version of the loaded NVIDIA kernel module (/proc/driver/nvidia/version)."""
        text = self.m.read("/proc/driver/nvidia/version")
        if text is None:
            text = self.m.read("/sys/module/nvidia/version")
            return text.strip() if text and text.strip() else None
        m = DRIVER_RE.search(text)
        return m.group(1) if m else "unreadable"

    @fact
    def nvml_libraries(self) -> list[str]:
        """Versions of user-space libnvidia-ml.so.<version> files (driver/library mismatch)."""
        found = set()
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/aarch64-linux-gnu",
                  "/usr/lib"):
            for path in self.m.glob(f"{d}/libnvidia-ml.so.*.*"):
                found.add(path.rsplit("libnvidia-ml.so.", 1)[1])
        return sorted(found)

    @fact
    def gpu(self) -> probe.GpuReport:
        return probe.gpu_report(self.m)

    @fact
    def visible_devices(self) -> str | None:
        return self.m.getenv("CUDA_VISIBLE_DEVICES")

    @fact
    def p2p_matrix(self) -> dict:
        """{(i, j): "OK" | "NS" | "CNS" | ...} from `nvidia-smi topo -p2p r` (peer reads)."""
        exe = self.m.which("nvidia-smi")
        if not exe or len(self.gpus) < 2:
            return {}
        run = self.m.run([exe, "topo", "-p2p", "r"])
        out = {}
        if not run.ok:
            return out
        header = None
        for line in run.stdout.splitlines():
            cols = line.split()
            if cols and all(c.startswith("GPU") for c in cols):
                header = [int(c[3:]) for c in cols if c[3:].isdigit()]
            elif header and cols and cols[0].startswith("GPU") and cols[0][3:].isdigit():
                row = int(cols[0][3:])
                for col, status in zip(header, cols[1:], strict=False):
                    if status != "X":
                        out[(row, col)] = status
        return out

    @property
    def gpus(self) -> list[probe.Gpu]:
        return self.gpu.gpus

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    @property
    def min_cc(self) -> tuple[int, int] | None:
        ccs = [g.cc for g in self.gpus if g.cc]
        return min(ccs) if ccs else None

    @property
    def driver_version(self) -> str | None:
        return self.gpu.driver_version or (
            self.kernel_driver if self.kernel_driver != "unreadable" else None)

    # packages --------------------------------------------------------------------------------
    def _dist_index(self) -> dict[str, tuple[str, str]]:
        """canonical name -> (version, metadata directory) of every distribution on sys.path,
        first one wins (importlib.metadata's order): one listing per path entry instead of
        importlib.metadata, whose import and email parser cost a third of a doctor run. Wheels
        and PEP 660 installs leave `name-version.dist-info`; setuptools' develop installs leave
        `name.egg-info` (its version in PKG-INFO), eggs `name-version-pyX.egg-info`."""

        def build():
            index: dict[str, tuple[str, str]] = {}
            for entry in sys.path:
                for n in self.m.listdir(entry or ".", host=False):
                    where = os.path.join(entry or ".", n)
                    if n.endswith(".dist-info") and "-" in n:
                        name, _, version = n[: -len(".dist-info")].partition("-")
                    elif n.endswith(".egg-info"):
                        name, _, version = n[: -len(".egg-info")].partition("-")
                        version = version.split("-py", 1)[0] or self._pkg_info_version(where)
                    else:
                        continue
                    index.setdefault(canonical(name), (version or "unknown", where))
            return index

        return self._memo(("_dist_index",), build, lambda v: None)

    def _pkg_info_version(self, egg_info: str) -> str | None:
        path = egg_info if self.m.exists(egg_info, host=False, kind="file") else os.path.join(
            egg_info, "PKG-INFO")
        text = self.m.read(path, host=False) or ""
        m = re.search(r"^Version: *(\S+)", text, re.M)
        return m.group(1) if m else None

    def _dist_file(self, name: str, filename: str) -> str | None:
        """A file of an installed distribution's metadata (METADATA, RECORD), as text."""
        hit = self._dist_index().get(canonical(name))
        if not hit:
            return None
        where = hit[1]
        if where.endswith(".egg-info"):
            filename = {"METADATA": "PKG-INFO", "RECORD": "installed-files.txt"}.get(filename,
                                                                                     filename)
            if self.m.exists(where, host=False, kind="file"):  # a single-file egg-info
                return self.m.read(where, host=False) if filename == "PKG-INFO" else None
        return self.m.read(os.path.join(where, filename), host=False)

    def dist_metadata(self, name: str) -> dict[str, list[str]]:
        """The METADATA headers of an installed distribution ({"Requires-Python": [...],
        "Requires-Dist": [...]}), read as the file it is (its first block of headers)."""
        text = self._dist_file(name, "METADATA")
        out: dict[str, list[str]] = {}
        for line in (text or "").split("\n\n", 1)[0].splitlines():
            key, sep, value = line.partition(": ")
            if sep and not line.startswith((" ", "\t")):
                out.setdefault(key, []).append(value.strip())
        return out

    def dist_files(self, name: str) -> list[str]:
        """The files an installed distribution lists (RECORD), relative to its path entry."""
        text = self._dist_file(name, "RECORD") or ""
        return [line.split(",", 1)[0] for line in text.splitlines() if line.strip()]

    @keyed("distributions")
    def dist_version(self, name: str) -> str | None:
        """Installed version of a distribution, None when it is not installed."""
        hit = self._dist_index().get(canonical(name))
        return hit[0] if hit else None

    @keyed("packages")
    def package_dir(self, name: str) -> str | None:
        """Directory of a top-level package, found without executing it."""
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec else []
        return locations[0] if locations else None

    @keyed("sources", record=lambda text: None if text is None else f"{len(text)} characters")
    def source(self, where: str) -> str | None:
        """Text of an installed package's file, "bitsandbytes/cextension.py": what a library
        does with an environment variable is read from the version that is installed."""
        package, _, rel = where.partition("/")
        top = self.package_dir(package)
        return self.m.read(Path(top) / rel, host=False) if top else None

    def reads_env(self, where: str, var: str, since: str | None = None) -> bool:
        """Whether the installed library reads `var` in `where` ("deepspeed/env_report.py"),
        from its source; when that file cannot be read, from the release that introduced it."""
        text = self.source(where)
        if text is not None:
            return var in text
        return bool(since) and V.at_least(self.dist_version(where.split("/")[0]), since)

    @keyed("mentions", record=lambda hits: hits)
    def mentions(self, where: str, text: str) -> list[str]:
        """The installed files of a package directory ("deepspeed/ops/op_builder") that contain
        `text`, as "file:line: code" (how an environment variable is read, where)."""
        package, _, rel = where.partition("/")
        top = self.package_dir(package)
        hits = []
        for path in self.m.glob(str(Path(top) / rel / "*.py"), host=False) if top else []:
            for n, line in enumerate((self.m.read(path, host=False) or "").splitlines(), 1):
                if text in line:
                    hits.append(f"{Path(path).name}:{n}: {line.strip()}")
        return hits

    @fact
    def ds_ignores_detection(self) -> bool:
        """Whether DS_IGNORE_CUDA_DETECTION, as set, makes the installed DeepSpeed skip its
        CUDA probe. Read from its op_builder sources: 0.19.8's builders test
        `if not os.environ.get("DS_IGNORE_CUDA_DETECTION")`, so any non-empty value (even "0")
        skips it; where the sources are not there, 0.18.9+ with the value 1."""
        value = self.m.getenv("DS_IGNORE_CUDA_DETECTION")
        top = self.package_dir("deepspeed")
        if not value or not self.deepspeed_version:
            return False
        if top and self.m.exists(f"{top}/ops/op_builder", host=False, kind="dir"):
            hits = self.mentions("deepspeed/ops/op_builder", "DS_IGNORE_CUDA_DETECTION")
            truthy = any('environ.get("DS_IGNORE_CUDA_DETECTION")' in h and "==" not in h
                         for h in hits)
            return bool(hits) and (truthy or value == "1")
        return value == "1" and V.at_least(self.deepspeed_version, "0.18.9")

    @fact
    def ds_minor_table(self) -> dict[int, list[str]]:
        """DeepSpeed's `cuda_minor_mismatch_ok`, read from the installed op_builder/builder.py;
        from the release's known table when the source is not there."""
        text = self.source("deepspeed/ops/op_builder/builder.py") or ""
        m = re.search(r"^cuda_minor_mismatch_ok\s*=\s*(\{.*?^\})", text, re.M | re.S)
        if m:
            try:
                table = ast.literal_eval(m.group(1))
                return {int(k): [str(v) for v in vs] for k, vs in table.items()}
            except (ValueError, SyntaxError, TypeError):
                pass
        from .fixes import ds_minor_ok

        return ds_minor_ok(self.deepspeed_version)

    def is_namespace_leftover(self, name: str) -> bool:
        """A directory without __init__.py shadowing a package (an uninstall's leftovers)."""
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return False
        return bool(spec and spec.origin in (None, "namespace") and spec.submodule_search_locations)

    @fact
    def torch(self) -> TorchInfo:
        info = TorchInfo(location=self.package_dir("torch"),
                         dist_version=self.dist_version("torch"))
        if not info.location:
            return info
        text = self.m.read(Path(info.location) / "version.py", host=False)
        if text is None:
            info.error = f"{info.location}/version.py is missing or unreadable"
            return info
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            info.error = f"{info.location}/version.py:{exc.lineno}: not Python ({exc.msg})"
            return info
        values = {}
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) and node.targets else (
                node.target if isinstance(node, ast.AnnAssign) else None)
            if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
        info.version = values.get("__version__")
        info.cuda = values.get("cuda") or None
        info.hip = values.get("hip") or None
        if not info.version:
            info.error = f"{info.location}/version.py has no __version__"
        return info

    @fact
    def deepspeed_version(self) -> str | None:
        return self.dist_version("deepspeed")

    # CUDA toolkit ----------------------------------------------------------------------------
    @fact
    def cuda_home(self) -> CudaHome:
        """CUDA_HOME exactly as torch's _find_cuda_home (and so DeepSpeed) finds it, validated."""
        home = CudaHome(nvcc_on_path=self.m.which("nvcc"))
        for var in ("CUDA_HOME", "CUDA_PATH"):
            if self.m.getenv(var):
                home.path, home.source = self.m.getenv(var), var
                break
        else:
            if home.nvcc_on_path:
                home.path = os.path.dirname(os.path.dirname(home.nvcc_on_path))
                home.source = f"nvcc on PATH ({home.nvcc_on_path})"
            elif self.m.exists("/usr/local/cuda", kind="dir"):
                home.path, home.source = str(self.m.host("/usr/local/cuda")), "/usr/local/cuda"
        if home.path is None:
            return home
        p = home.path
        if p.rstrip("/").endswith("/bin") and os.pathsep not in p:
            home.kind = "malformed"
            home.problems.append(f"{home.source}={p} ends in /bin: it must be the toolkit's "
                                 "top directory")
        elif os.pathsep in p:
            home.kind = "malformed"
            home.problems.append(f"{home.source}={p!r} contains {os.pathsep!r}: it must be one "
                                 f"directory, not a list (torch and DeepSpeed run {p}/bin/nvcc)")
        elif not self.m.exists(p, host=False, kind="dir"):
            home.kind = "missing"
            home.problems.append(f"{home.source}={p} does not exist")
        elif not self.m.exists(f"{p}/bin/nvcc", host=False, kind="file"):
            home.kind = "runtime-only"
            home.problems.append(f"{p} has no bin/nvcc: a CUDA runtime without the compiler")
        elif not (self.m.glob(f"{p}/include/cuda_runtime.h", host=False)
                  or self.m.glob(f"{p}/targets/*/include/cuda_runtime.h", host=False)):
            home.kind = "no-headers"
            home.problems.append(
                f"{p} has bin/nvcc but no include/cuda_runtime.h"
                + (" (nvcc on PATH is a wrapper outside its toolkit)"
                   if home.source.startswith("nvcc on PATH") else ""))
        else:
            home.kind = "ok"
        return home

    @fact
    def toolkit_guess(self) -> str | None:
        """Where a real toolkit lives when CUDA_HOME does not point at it (for the fix text)."""
        home = self.cuda_home
        wrapper = home.nvcc_on_path
        if wrapper:  # /usr/local/bin/nvcc: `exec /usr/local/cuda-13.0/bin/nvcc "$@"`
            real = self.m.realpath(wrapper)
            m = re.search(r"(/\S+)/bin/nvcc\b", self.m.read(real, host=False, limit=4096) or "")
            if m and m.group(1) != os.path.dirname(os.path.dirname(wrapper)):
                return m.group(1)
            if real != wrapper:
                return os.path.dirname(os.path.dirname(real))
        dirs = self.m.glob("/usr/local/cuda-*")
        with_nvcc = [d for d in dirs if self.m.exists(f"{d}/bin/nvcc", host=False, kind="file")]
        return with_nvcc[-1] if with_nvcc else None

    @fact
    def nvcc(self) -> Nvcc:
        path = self.nvcc_path
        if not path:
            return Nvcc(problem="no nvcc found")
        run = self.m.run([path, "-V"])
        out = Nvcc(path=path, run=run)
        if not run.ok:
            out.problem = f"`{path} -V`: {run.describe()}"
            if run.last_line():
                out.problem += f": {run.last_line()[:200]}"
        elif m := NVCC_RE.search(run.stdout):
            out.release = f"{m.group(1)}.{m.group(2)}"
        else:
            snippet = run.output.strip()[:120] or "nothing"
            out.problem = f"`{path} -V` printed no `release X.Y`: {snippet!r}"
        return out

    @property
    def nvcc_path(self) -> str | None:
        """The nvcc torch and DeepSpeed would run (found without running it)."""
        home = self.cuda_home
        if home.path and home.kind in ("ok", "no-headers"):
            return f"{home.path}/bin/nvcc"
        return home.nvcc_on_path

    @fact
    def host_gcc(self) -> dict:
        """The host compiler nvcc would use (CC if set, else gcc) and its version."""
        cc = self.m.getenv("CC") or "gcc"
        exe = self.m.which(cc)
        if not exe:
            return {"compiler": cc, "path": None, "version": None}
        run = self.m.run([exe, "-dumpfullversion", "-dumpversion"])
        version = run.stdout.strip().splitlines()[0] if run.ok and run.stdout.strip() else None
        return {"compiler": cc, "path": exe, "version": version}

    @fact
    def nvcc_max_gcc(self) -> int | None:
        """The newest GCC major this nvcc accepts: `#if __GNUC__ > N` in crt/host_config.h."""
        candidates = []
        home = self.cuda_home.path
        if home and self.cuda_home.kind in ("ok", "no-headers"):
            candidates += [f"{home}/include/crt/host_config.h",
                           *self.m.glob(f"{home}/targets/*/include/crt/host_config.h", host=False)]
        if self.toolkit_guess:
            candidates.append(f"{self.toolkit_guess}/include/crt/host_config.h")
        for path in candidates:
            text = self.m.read(path, host=False) or ""
            if m := re.search(r"#if __GNUC__ > (\d+)", text):
                return int(m.group(1))
        return None

    # the pack --------------------------------------------------------------------------------
    @fact
    def stack(self) -> Stack | None:
        text = self.m.read(self.stack_path, host=False)
        return None if text is None else parse_stack(self.stack_path, text)

    @fact
    def xtuner_cli(self) -> dict:
        """`xtuner` and `python` first on PATH, and the interpreter in xtuner's shebang."""
        exe = self.m.which("xtuner")
        shebang = None
        if exe:
            first = (self.m.read(exe, host=False, limit=512) or "").splitlines()[:1]
            shebang = first[0][2:].strip() if first and first[0].startswith("#!") else None
        return {"xtuner": exe, "shebang": shebang, "python_on_path": self.m.which("python"),
                "env_python": self.m.python, "env_bin": os.path.dirname(self.m.python)}

    @fact
    def patches_pth(self) -> dict:
        from patches.__main__ import PTH_LINE, PTH_NAME

        path = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
        text = self.m.read(path, host=False)
        return {"path": str(path), "present": text is not None, "current": text == PTH_LINE,
                "selection": self.m.getenv("XTUNER_PACK_PATCHES")}

    @fact
    def python_version(self) -> str:
        return ".".join(map(str, sys.version_info[:3]))

    # resources -------------------------------------------------------------------------------
    @fact
    def meminfo(self) -> dict:
        """/proc/meminfo in bytes: MemTotal, MemAvailable, SwapTotal, SwapFree."""
        out = {}
        for line in (self.m.read("/proc/meminfo") or "").splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if key in ("MemTotal", "MemAvailable", "SwapTotal", "SwapFree") and parts:
                try:
                    out[key] = int(parts[0]) * 1024
                except ValueError:
                    pass
        return out

    @fact
    def hf_cache(self) -> str:
        """Where huggingface_hub puts downloads (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME)."""
        env = self.m.getenv
        if env("HF_HUB_CACHE") or env("HUGGINGFACE_HUB_CACHE"):
            return env("HF_HUB_CACHE") or env("HUGGINGFACE_HUB_CACHE")
        home = env("HF_HOME") or os.path.join(
            env("XDG_CACHE_HOME") or os.path.join(env("HOME") or "~", ".cache"), "huggingface")
        return os.path.join(os.path.expanduser(home), "hub")

    @fact
    def shm(self) -> tuple[int, int] | None:
        return self.m.disk("/dev/shm", host=True) if self.m.exists("/dev/shm") else None

    # --deep: imports in subprocesses ---------------------------------------------------------
    @keyed("deep", record=lambda d: {"ok": d.ok, "summary": d.summary, "data": d.data})
    def deep_import(self, name: str, code: str) -> Deep:
        """Run `code` (which prints one JSON line last) in the environment's python."""
        run = self.m.python_run(code, timeout=self.deep_timeout)
        data = {}
        if run.ok:
            lines = run.stdout.strip().splitlines()
            try:
                data = json.loads(lines[-1]) if lines else {}
            except ValueError:
                data = {}
        if run.ok:
            return Deep(True, f"`import {name}` worked", data, run)
        why = run.describe()
        last = run.last_line()
        return Deep(False, f"`import {name}` failed: {why}" + (f": {last[:300]}" if last else ""),
                    data, run)


def interpreter_matches(a: str | None, b: str) -> bool:
    """Whether two interpreter paths are the same environment's python (venv-aware)."""
    if not a:
        return False
    try:
        pa, pb = Path(a), Path(b)
        if pa.parent.resolve() != pb.parent.resolve():
            return False
        # python, python3, python3.11 in one bin directory are the same environment.
        return pa.name.startswith("python") and pb.name.startswith("python")
    except OSError:
        return False
