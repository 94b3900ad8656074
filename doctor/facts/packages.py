"""Installed packages, read as files and metadata without importing them: distributions on
sys.path, package directories (found with `importlib.util.find_spec`, which does not execute a
top-level package), torch's build from its version.py, and what an installed library does with
an environment variable, from its own source."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import versions as V
from ._base import fact, keyed


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




def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def version_matches(installed: str, pinned: str) -> bool:
    """PEP 440 `==` for a plain pin: a local label (+cpu, +cu126) is ignored, "2.13" == "2.13.0"."""
    have, want = V.parse(installed), V.parse(pinned)
    if have is None or want is None:
        return installed == pinned
    return V.parse(have.public) == V.parse(want.public)



def ds_minor_ok(ds_version: str | None) -> dict[int, list[str]]:
    """DeepSpeed's op_builder `cuda_minor_mismatch_ok` table of a release, where its source
    cannot be read: 0.16 has 12.0..12.6; 0.17 adds 12.8; 0.18 adds 12.9; no release has a CUDA
    13 entry (so with CUDA 13 only an exact nvcc/torch match passes its check)."""
    table = {10: ["10.0", "10.1", "10.2"], 11: [f"11.{i}" for i in range(9)],
             12: [f"12.{i}" for i in range(7)]}
    if V.at_least(ds_version, "0.17"):
        table[12].append("12.8")
    if V.at_least(ds_version, "0.18"):
        table[12].append("12.9")
    return table


class PackageFacts:
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

