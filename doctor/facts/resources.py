"""Resources: RAM and swap, where the HF cache lives, /dev/shm."""

from __future__ import annotations

import os

from ._base import fact


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

