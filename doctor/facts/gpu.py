"""GPUs and their driver: the kernel module, NVML's libraries, what NVML or nvidia-smi answer,
and which of the GPUs the run will see (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import probe
from ._base import fact

DRIVER_RE = re.compile(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)")


@dataclass
class Visibility:
    """The GPUs a CUDA run started here sees, as CUDA reads CUDA_VISIBLE_DEVICES and
    CUDA_DEVICE_ORDER. `gpus` are what checks judge: exactly those when CUDA's numbering is
    known, else every GPU the listed indices could be (a finding about the one the run gets is
    never hidden); `count` is how many the run sees either way."""

    gpus: list[probe.Gpu] = field(default_factory=list)
    count: int = 0
    exact: bool = True
    hidden: list[probe.Gpu] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # where CUDA stops reading the list
    duplicate: str | None = None  # an entry listed twice
    order: str = "FASTEST_FIRST"
    value: str | None = None


MIG_PROFILE = re.compile(r"MIG\s+(\d+g\.(\d+)gb)\s+Device\s+\d+:\s+\(UUID:\s+(MIG-[^)\s]+)\)")
GPU_LINE = re.compile(r"^GPU\s+(\d+):.*\(UUID:\s+(GPU-[^)\s]+)\)")


def mig_devices(listing: str) -> dict[str, tuple[int, str, int]]:
    """MIG uuid -> (parent GPU index, profile, GB) from `nvidia-smi -L`."""
    out, parent = {}, None
    for line in listing.splitlines():
        if m := GPU_LINE.match(line.strip()):
            parent = int(m.group(1))
        elif (m := MIG_PROFILE.search(line)) and parent is not None:
            out[m.group(3)] = (parent, m.group(1), int(m.group(2)))
    return out


def same_model(gpus) -> bool:
    return len({(g.name, g.memory_total, g.cc) for g in gpus}) <= 1


def visible(gpus: list[probe.Gpu], value: str | None, order: str | None = None,
            mig: dict | None = None) -> Visibility:
    """Which of `gpus` (nvidia-smi's list: PCI bus order) a CUDA run sees. CUDA numbers devices
    fastest first (its own guess) unless CUDA_DEVICE_ORDER=PCI_BUS_ID, and reads
    CUDA_VISIBLE_DEVICES as indices in that numbering, GPU-/MIG- UUIDs (or a unique prefix),
    up to the first entry that is none of these."""
    order = (order or "FASTEST_FIRST").strip().upper()
    by_bus = sorted(gpus, key=lambda g: (g.bus or "", g.index))
    known_order = order == "PCI_BUS_ID" or same_model(gpus)
    vis = Visibility(order=order, value=value)
    if value is None:
        vis.gpus, vis.count = list(by_bus), len(gpus)
        return vis
    if value.strip() in ("", "-1", "NoDevFiles"):
        vis.hidden = list(gpus)
        return vis
    chosen: list[probe.Gpu] = []
    unsure = False
    for e in (e.strip() for e in value.split(",")):
        if not e:
            continue
        gpu = None
        if e.isdigit():
            if int(e) >= len(gpus):
                vis.problems.append(f"{e} is not a GPU here ({len(gpus)} GPU(s))")
                break
            if known_order:
                gpu = by_bus[int(e)]
            else:
                unsure = True
                gpu = probe.Gpu(index=-1 - int(e), name=f"CUDA device {e}")  # which: unknown
        elif e.startswith("GPU-"):
            hits = [g for g in gpus if g.uuid and g.uuid.lower().startswith(e.lower())]
            if not any(g.uuid for g in gpus):
                unsure, gpu = True, probe.Gpu(index=-1000 - len(chosen), name=e)
            elif len(hits) != 1:
                vis.problems.append(f"{e} is " + ("no GPU's UUID here" if not hits else
                                                  "the prefix of several GPUs' UUIDs"))
                break
            else:
                gpu = hits[0]
        elif e.startswith("MIG-"):
            parent_uuid = e[4:].split("/")[0] if e.startswith("MIG-GPU-") else None
            slice_ = (mig or {}).get(e)
            if parent_uuid:
                parents = [g for g in gpus if g.uuid and g.uuid.startswith(parent_uuid)]
            elif slice_:
                parents = [g for g in gpus if g.index == slice_[0]]
            else:
                parents = []
            if not parents:
                vis.problems.append(f"{e} is no MIG device here (`nvidia-smi -L` lists them)")
                break
            p = parents[0]
            gpu = probe.Gpu(p.index, f"{p.name} MIG {slice_[1]}" if slice_ else f"{p.name} MIG",
                            memory_total=slice_[2] * 10**9 if slice_ else None,
                            memory_free=slice_[2] * 10**9 if slice_ else None, cc=p.cc,
                            uuid=e, bus=p.bus)
        else:
            vis.problems.append(f"{e!r} is not an index, a GPU- or a MIG- UUID")
            break
        if any(gpu.index == c.index and gpu.uuid == c.uuid and gpu.name == c.name
               for c in chosen):
            vis.duplicate = e
            break
        chosen.append(gpu)
    vis.count = len(chosen)
    if unsure:  # judge every GPU the entries could be
        vis.exact = False
        vis.gpus = [c for c in chosen if c.index >= 0] + [
            g for g in by_bus if all(g.index != c.index for c in chosen)]
        if vis.count >= len(gpus):
            vis.exact, vis.gpus = True, list(by_bus)
    else:
        vis.gpus = chosen
    seen = {g.index for g in vis.gpus}
    vis.hidden = [g for g in by_bus if g.index not in seen]
    return vis


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
    def visibility(self) -> Visibility:
        """The GPUs the run sees (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER); MIG devices are
        looked up in `nvidia-smi -L` only when the variable names one."""
        value, mig = self.visible_devices, None
        if value and "MIG-" in value and (exe := self.m.which("nvidia-smi")):
            run = self.m.run([exe, "-L"])
            mig = mig_devices(run.stdout) if run.ok else {}
        return visible(self.all_gpus, value, self.m.getenv("CUDA_DEVICE_ORDER"), mig)

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
    def all_gpus(self) -> list[probe.Gpu]:
        """Every GPU of the machine, as the driver's tools number them."""
        return self.gpu.gpus

    @property
    def gpus(self) -> list[probe.Gpu]:
        """The GPUs a run started here sees (or could be given): what checks judge."""
        return self.visibility.gpus

    @property
    def has_gpu(self) -> bool:
        """Whether the machine has an NVIDIA GPU that answers (visible to the run or not)."""
        return bool(self.all_gpus)

    @property
    def min_cc(self) -> tuple[int, int] | None:
        ccs = [g.cc for g in self.gpus if g.cc]
        return min(ccs) if ccs else None

    @property
    def driver_version(self) -> str | None:
        return self.gpu.driver_version or (
            self.kernel_driver if self.kernel_driver != "unreadable" else None)
