"""The CUDA toolkit: CUDA_HOME found exactly as torch's `_find_cuda_home` (and so DeepSpeed)
finds it, validated; nvcc and its release; the host compiler nvcc accepts; the toolkits installed
and where /usr/local/cuda points."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field

from .. import probe
from .. import versions as V
from ._base import fact

NVCC_RE = re.compile(r"release (\d+)\.(\d+)")


@dataclass(frozen=True)
class Toolkit:
    """A CUDA toolkit installed on the machine."""

    path: str  # its top directory as on the machine: /usr/local/cuda-12.6
    version: str  # "12.6"
    nvcc: bool = True


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

class CudaFacts:
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



# -- architecture lists that steer builds ----------------------------------------------------
# torch's named architectures and the arches its extension builder accepts, where the installed
# torch/utils/cpp_extension.py cannot be read (torch 2.13's values).
TORCH_NAMED_ARCHES = {
    "Kepler+Tesla": "3.7", "Kepler": "3.5+PTX", "Maxwell+Tegra": "5.3", "Maxwell": "5.0;5.2+PTX",
    "Pascal": "6.0;6.1+PTX", "Volta+Tegra": "7.2", "Volta": "7.0+PTX", "Turing": "7.5+PTX",
    "Ampere+Tegra": "8.7", "Ampere": "8.0;8.6+PTX", "Ada": "8.9+PTX", "Hopper": "9.0+PTX",
    "Blackwell+Tegra": "11.0", "Blackwell": "10.0;10.3;12.0;12.1+PTX",
}
TORCH_SUPPORTED_ARCHES = ["3.5", "3.7", "5.0", "5.2", "5.3", "6.0", "6.1", "6.2", "7.0", "7.2",
                          "7.5", "8.0", "8.6", "8.7", "8.9", "9.0", "9.0a", "10.0", "10.0a",
                          "11.0", "11.0a", "10.3", "10.3a", "12.0", "12.0a", "12.1", "12.1a"]


@dataclass(frozen=True)
class Target:
    """One architecture a build compiles for: SASS (machine code: runs on this major, this
    minor or newer), PTX (JIT-compiled by the driver for any newer GPU), arch-specific ("a":
    this exact GPU only)."""

    cc: tuple[int, int]
    sass: bool = True
    ptx: bool = False
    exact: bool = False

    def runs_on(self, cc: tuple[int, int]) -> bool:
        if self.exact:
            return self.sass and cc == self.cc
        return (self.sass and cc[0] == self.cc[0] and cc[1] >= self.cc[1]) or (
            self.ptx and cc >= self.cc)


@dataclass
class ArchList:
    """A variable that decides the architectures builds compile for, as its reader parses it."""

    var: str
    value: str
    reader: str  # who reads it
    targets: list[Target] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    everything: bool = False  # "native", "all": the GPU is covered whatever it is

    def covers(self, cc: tuple[int, int]) -> bool:
        return self.everything or any(t.runs_on(cc) for t in self.targets)


def cc_of(text: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)", text) or re.fullmatch(r"(\d+)(\d)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_torch_arch_list(value: str, named: dict, supported: list[str]) -> ArchList:
    """TORCH_CUDA_ARCH_LIST as torch's `_get_cuda_arch_flags` reads it: spaces or `;`, named
    architectures expanded, each entry one of the supported arches with an optional +PTX; an
    empty value or "native" builds for the GPUs torch sees."""
    out = ArchList("TORCH_CUDA_ARCH_LIST", value, "torch's extension builder")
    if not value.strip() or value.strip() == "native":
        out.everything = True
        return out
    text = value.replace(" ", ";")
    for name, arches in named.items():  # combined names first, as torch orders them
        text = text.replace(name, arches)
    for entry in (e for e in text.split(";") if e):
        base = entry.removesuffix("+PTX")
        cc = cc_of(base.removesuffix("a"))
        if base not in supported or cc is None:
            out.invalid.append(entry)
            continue
        out.targets.append(Target(cc, True, entry.endswith("+PTX"), base.endswith("a")))
    return out


def parse_cmake_archs(var: str, value: str, reader: str) -> ArchList:
    """CMake's CUDA_ARCHITECTURES (CUDAARCHS): "75;86-real;90-virtual", "native", "all"."""
    out = ArchList(var, value, reader)
    for entry in (e.strip() for e in value.replace(",", ";").split(";") if e.strip()):
        if entry in ("native", "all", "all-major"):
            out.everything = True
            continue
        num, _, kind = entry.partition("-")
        cc = cc_of(num.removesuffix("a"))
        if cc is None or kind not in ("", "real", "virtual"):
            out.invalid.append(entry)
            continue
        out.targets.append(Target(cc, kind in ("", "real"), kind in ("", "virtual"),
                                  num.endswith("a")))
    return out


# flash-attn's setup.py builds a family only when its exact token is listed ("80" in
# cuda_archs()): compute_80/sm_80 for "80", and so on; any other token is silently ignored.
FLASH_ATTN_ARCHS = ("80", "90", "100", "110", "120")


def parse_flash_attn_archs(value: str) -> ArchList:
    """FLASH_ATTN_CUDA_ARCHS as flash-attn's setup.py reads it: `;`-separated tokens, each of
    FLASH_ATTN_ARCHS one SASS target (sm_80 machine code runs on sm_86 and sm_89 too)."""
    out = ArchList("FLASH_ATTN_CUDA_ARCHS", value, "flash-attn's source build (setup.py)")
    for entry in (e.strip() for e in value.split(";") if e.strip()):
        cc = cc_of(entry)
        (out.targets.append(Target(cc)) if cc and entry in FLASH_ATTN_ARCHS
         else out.invalid.append(entry))
    return out


class ArchFacts:
    @fact
    def torch_arch_tables(self) -> tuple[dict, list]:
        """torch's named arches and accepted arches, from the installed cpp_extension.py."""
        import ast

        text = self.source("torch/utils/cpp_extension.py") or ""
        named, supported = dict(TORCH_NAMED_ARCHES), list(TORCH_SUPPORTED_ARCHES)
        m = re.search(r"named_arches = collections\.OrderedDict\((\[.*?\])\)", text, re.S)
        s = re.search(r"supported_arches = (\[.*?\])", text, re.S)
        try:
            if m:
                named = dict(ast.literal_eval(m.group(1)))
            if s:
                supported = list(ast.literal_eval(s.group(1)))
        except (ValueError, SyntaxError):
            pass
        return named, supported

    @fact
    def arch_lists(self) -> list[ArchList]:
        """The set variables that decide which GPU architectures builds compile for."""
        env, out = self.m.getenv, []
        if env("TORCH_CUDA_ARCH_LIST") is not None:
            named, supported = self.torch_arch_tables
            out.append(parse_torch_arch_list(env("TORCH_CUDA_ARCH_LIST"), named, supported))
        if env("FLASH_ATTN_CUDA_ARCHS"):
            out.append(parse_flash_attn_archs(env("FLASH_ATTN_CUDA_ARCHS")))
        if env("CUDAARCHS"):
            out.append(parse_cmake_archs("CUDAARCHS", env("CUDAARCHS"),
                                         "CMake builds (CMAKE_CUDA_ARCHITECTURES)"))
        return out

    @fact
    def ds_jit_ignores_arch_list(self) -> bool:
        """Whether the installed DeepSpeed's JIT builds set TORCH_CUDA_ARCH_LIST aside and
        compile for the GPUs they see (its op_builder/builder.py jit_load does since 0.6)."""
        text = self.source("deepspeed/ops/op_builder/builder.py") or ""
        return 'os.environ["TORCH_CUDA_ARCH_LIST"] = ""' in text or not text


# -- CUDA libraries on LD_LIBRARY_PATH against the wheels' own -------------------------------
@dataclass
class Shadow:
    """A CUDA library torch's wheels bring (site-packages/nvidia/*/lib) that the dynamic loader
    finds first elsewhere: LD_LIBRARY_PATH is searched before the wheels' RUNPATH."""

    soname: str  # libcublas.so.12
    wheel: str  # the wheel's file
    wheel_dist: str | None  # nvidia-cublas-cu12
    wheel_version: str | None  # 12.4.5.8
    found: str  # the file on LD_LIBRARY_PATH that the loader takes instead
    version: str | None  # its version: the file it links to, or its toolkit's version.json
    verdict: str = "unknown"  # older | same | newer | unknown


def lib_version(real_name: str) -> str | None:
    """"libcublas.so.12.1.3.1" -> "12.1.3.1"; None for a bare soname."""
    m = re.search(r"\.so\.(\d+(?:\.\d+)+)$", real_name)
    return m.group(1) if m else None


def compare(found: str | None, wheel: str | None, toolkit: bool) -> str:
    """older | same | newer | unknown; a toolkit's version (version.json) is its CUDA release,
    so only major.minor count then."""
    a, b = V.release(found), V.release(wheel)
    if not a or not b:
        return "unknown"
    if toolkit:
        a, b = a[:2], b[:2]
    return "older" if a < b else "newer" if a > b else "same"


class LibraryFacts:
    @fact
    def wheel_cuda_libs(self) -> dict[str, dict]:
        """soname -> {path, dist, version} of the CUDA libraries the nvidia-* wheels installed
        for torch (nvidia/<name>/lib/, nvidia/cu13/lib/ for CUDA 13 wheels)."""
        owners = {}
        for name in self._dist_index():
            if name.startswith("nvidia-"):
                for path in self.dist_files(name):
                    if path.startswith("nvidia/") and "/lib/" in path:
                        owners[os.path.basename(path)] = (name, self.dist_version(name))
        out = {}
        for entry in sys.path:
            for lib in self.m.glob(os.path.join(entry or ".", "nvidia", "*", "lib", "lib*.so*"),
                                   host=False):
                soname = os.path.basename(lib)
                if soname not in out and re.search(r"\.so\.\d+$", soname):
                    dist, version = owners.get(soname, (None, None))
                    out[soname] = {"path": lib, "dist": dist, "version": version}
        return out

    @fact
    def shadowed_libs(self) -> list[Shadow]:
        """The wheels' CUDA libraries that a directory on LD_LIBRARY_PATH holds first."""
        dirs = [d for d in (self.m.getenv("LD_LIBRARY_PATH") or "").split(":") if d]
        if not dirs:
            return []
        wheels, out = self.wheel_cuda_libs, []
        for soname, w in wheels.items():
            for d in dirs:
                candidate = os.path.join(d, soname)
                if not self.m.exists(candidate, host=False, kind="file"):
                    continue
                if self.m.realpath(candidate) == self.m.realpath(w["path"]):
                    break  # the wheel's own directory on LD_LIBRARY_PATH: no shadow
                version = lib_version(os.path.basename(self.m.realpath(candidate)))
                toolkit = False
                if version is None:
                    meta = self.m.read(os.path.join(d, "..", "version.json"), host=False)
                    try:
                        version = json.loads(meta or "")["cuda"]["version"]
                        toolkit = True
                    except (ValueError, KeyError, TypeError):
                        version = None
                out.append(Shadow(soname, w["path"], w["dist"], w["version"], candidate,
                                  version, compare(version, w["version"], toolkit)))
                break
        return out
