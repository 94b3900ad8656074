"""GPUs and their driver: the kernel module, NVML's libraries, what NVML or nvidia-smi answer,
and which of the GPUs the run will see (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER)."""

from __future__ import annotations

import re

from .. import probe
from ._base import fact

DRIVER_RE = re.compile(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)")


class GpuFacts:
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
