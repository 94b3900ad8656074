"""Resources: RAM and swap, /dev/shm, and the directories a run writes (where they are, and
whether this user can write them: read-only mounts and other owners are common in containers
and on clusters)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ._base import fact


@dataclass
class WriteDir:
    """A directory a run writes, as the library that writes it resolves it, and whether this
    user can create it (or files in it)."""

    role: str  # what goes there: "HF hub cache (model downloads)", ...
    path: str
    source: str  # the variable that set it, or "default"
    var: str  # the variable that moves it
    writable: bool = True
    why: str = ""  # read-only mount, another owner, a file in the way
    nearest: str = ""  # the nearest existing directory (where the new one would be made)
    default: str = ""  # where it goes when `var` is not set


def mount_table(text: str) -> list[tuple[str, str, str]]:
    """(mount point, fstype, "ro" | "rw") of /proc/self/mounts, longest mount point first."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 4:
            ro = "ro" if "ro" in f[3].split(",") else "rw"
            out.append((f[1].replace("\\040", " "), f[2], ro))
    return sorted(set(out), key=lambda m: (-len(m[0]), m))


def mount_of(mounts, path: str):
    for point, fstype, opts in mounts:
        if path == point or path.startswith(point.rstrip("/") + "/"):
            return point, fstype, opts
    return None


def user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


class ResourceFacts:
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

    @fact
    def mounts(self) -> list:
        """What this process sees mounted (/proc/self/mounts): a read-only mount is a
        directory no run can write, whatever its permissions say."""
        return mount_table(self.m.read("/proc/self/mounts") or "")

    def write_dir(self, role: str, var: str, default: str, *aliases: str) -> WriteDir:
        """One directory: the variable (or its aliases) if set, else `default`, judged."""
        env = self.m.getenv
        source = next((v for v in (var, *aliases) if env(v)), None)
        d = self.judge_dir(role, var, env(source) if source else default, source or "default")
        d.default = os.path.normpath(os.path.expanduser(default))
        return d

    def judge_dir(self, role: str, var: str, path: str, source: str = "default") -> WriteDir:
        """Whether this user can create `path` or write in it, and if not, why."""
        path = os.path.expanduser(path)
        if not os.path.isabs(path):
            path = os.path.join(self.m.cwd(), path)
        d = WriteDir(role, os.path.normpath(path), source, var)
        access = self.m.write_access(d.path)
        if access is None:
            return d  # the filesystem did not answer: judged by nothing
        d.nearest = access["nearest"]
        mount = mount_of(self.mounts, access["nearest"])
        if access["blocker"]:
            d.writable, d.why = False, f"{access['blocker']} is a file, not a directory"
        elif mount and mount[2] == "ro":
            d.writable, d.why = False, f"read-only mount at {mount[0]} ({mount[1]}, ro)"
        elif not access["writable"]:
            d.writable = False
            d.why = (f"{d.nearest} belongs to {user_name(access['uid'])} with mode "
                     f"{access['mode']:o}; this process runs as {user_name(access['euid'])}"
                     if access["uid"] != access["euid"] else
                     f"{d.nearest} has mode {access['mode']:o}: not writable for its owner")
        return d

    @fact
    def write_dirs(self) -> list[WriteDir]:
        """The directories a run writes, resolved as their libraries resolve them:
        huggingface_hub and datasets (HF_HOME, HF_HUB_CACHE, HF_DATASETS_CACHE, XDG_CACHE_HOME),
        `xtuner train`'s work_dirs/ in the working directory, torch's JIT extensions
        (TORCH_EXTENSIONS_DIR), Triton's kernel cache (TRITON_CACHE_DIR, TRITON_HOME), and the
        temporary directory compilers and pip use (TMPDIR)."""
        env = self.m.getenv
        home = env("HOME") or os.path.expanduser("~")
        cache = env("XDG_CACHE_HOME") or os.path.join(home, ".cache")
        hf_home = os.path.expanduser(env("HF_HOME") or os.path.join(cache, "huggingface"))
        triton = os.path.join(env("TRITON_HOME") or home, ".triton", "cache")
        return [
            self.write_dir("HF home (token, xet chunk cache)", "HF_HOME", hf_home),
            self.write_dir("HF hub cache (model downloads)", "HF_HUB_CACHE",
                           os.path.join(hf_home, "hub"), "HUGGINGFACE_HUB_CACHE"),
            self.write_dir("HF datasets cache (converted and tokenized data)",
                           "HF_DATASETS_CACHE", os.path.join(hf_home, "datasets")),
            self.write_dir("work dir (`xtuner train` checkpoints, logs)", "--work-dir",
                           os.path.join(self.m.cwd(), "work_dirs")),
            self.write_dir("torch JIT extensions (DeepSpeed ops)", "TORCH_EXTENSIONS_DIR",
                           os.path.join(cache, "torch_extensions")),
            self.write_dir("Triton kernel cache", "TRITON_CACHE_DIR", triton),
            self.write_dir("temporary files (pip builds, nvcc, ninja)", "TMPDIR", "/tmp"),
        ]
