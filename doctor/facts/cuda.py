"""The CUDA toolkit: CUDA_HOME found exactly as torch's `_find_cuda_home` (and so DeepSpeed)
finds it, validated; nvcc and its release; the host compiler nvcc accepts; the toolkits installed
and where /usr/local/cuda points."""

from __future__ import annotations

import json
import os
import re
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

