"""GPUDirect Storage: information only.

GDS matters only for DeepSpeed's NVMe offload through cuFile, and cuFile falls back to POSIX I/O
when the nvidia-fs module is absent. Nothing the 8 GB configs do needs it, so this check never
warns and never tells anyone to install nvidia-gds or to reboot for it.
"""

from __future__ import annotations

from ..findings import Fix
from . import check, info

CATEGORY = "GDS"

NOT_NEEDED = ("Not needed: only DeepSpeed NVMe offload uses GPUDirect Storage, and cuFile falls "
              "back to POSIX I/O without it. Do not install nvidia-gds or reboot for it.")


@check("gds.storage", "GPUDirect Storage (information)")
def storage(f):
    if f.platform.wsl:
        return info("GPUDirect Storage does not apply inside WSL2", fix=Fix(text=NOT_NEEDED))
    module = "nvidia_fs" in f.kernel_modules or f.m.exists("/proc/driver/nvidia-fs/version")
    libs = []
    home = f.cuda_home.path if f.cuda_home.kind in ("ok", "no-headers") else None
    for d in ([f"{home}/lib64", f"{home}/lib", f"{home}/targets/*/lib"] if home else []):
        libs += f.m.glob(f"{d}/libcufile.so*", host=False)
    libs += f.m.glob("/usr/lib/*/libcufile.so*")
    config = f.m.exists("/etc/cufile.json")
    details = [f"nvidia-fs kernel module: {'loaded' if module else 'not loaded'}",
               f"libcufile: {libs[0] if libs else 'absent'}",
               f"/etc/cufile.json: {'present' if config else 'absent'}"]
    gdscheck = f"{home}/gds/tools/gdscheck" if home else None
    if f.deep and gdscheck and f.m.exists(gdscheck, host=False, kind="file"):
        run = f.m.run([gdscheck, "-p"])
        details.append(f"gdscheck -p: {run.describe()}: {run.last_line()[:200]}")
    state = "set up" if module and libs else "not set up"
    return info(f"GPUDirect Storage {state}; not needed for the 8 GB configs", details,
                Fix(text=NOT_NEEDED))
