"""GPU and driver: driver loaded, driver/library mismatch, driver vs torch's CUDA, visibility,
the GPUs themselves, containers without the GPU, and WSL2."""

from __future__ import annotations

import re

from .. import routes
from .. import versions as V
from ..actions import export, local, unset
from ..facts.gpu import same_model
from ..findings import Fix
from . import check, fail, gib, info, ok, skip, warn

CATEGORY = "GPU & driver"

# Oldest driver that runs a CUDA major at all (minor-version compatibility) and the driver each
# toolkit release ships with (Linux, Windows): CUDA release notes, Table 3 ("CUDA Toolkit and
# Corresponding Driver Versions"); None where no Windows figure is known (then only the floor
# is checked under WSL).
MINOR_COMPAT_FLOOR = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
TOOLKIT_DRIVER = {
    "11.8": ("520.61.05", "520.06"), "12.0": ("525.60.13", "527.41"),
    "12.1": ("530.30.02", "531.14"), "12.2": ("535.54.03", None),
    "12.4": ("550.54.14", "551.61"), "12.6": ("560.28.03", "560.76"),
    "12.8": ("570.26", "570.65"), "12.9": ("575.51.03", "576.02"),
    "13.0": ("580.65.06", None), "13.1": ("590.44.01", None),
    "13.2": ("595.45.04", None),
}


def cpu_only_text() -> str:
    return ("This machine can run the pack's CPU runs (`make demo`: a real 135M model through "
            "the whole loop; `make smoke`: a tiny one) but not the 8 GB GPU configs, which need "
            "an NVIDIA GPU with its driver.")


@check("gpu.driver", "NVIDIA driver present and loaded")
def driver(f):
    rep, pci, kernel, p = f.gpu, f.nvidia_pci, f.kernel_driver, f.platform
    details = [f"asked {rep.source}" if rep.gpus else f"GPU query: {rep.error}", *rep.notes]
    if rep.gpus and rep.source == "/proc/driver/nvidia":
        return warn(f"NVIDIA driver {f.driver_version} lists {len(rep.gpus)} GPU(s), but neither "
                    "NVML nor nvidia-smi answers: their memory and compute capability are "
                    "unknown to the checks", details, Fix(text=(
                        "nvidia-smi and libnvidia-ml come with the driver's utilities "
                        "(Ubuntu: nvidia-utils-<driver branch>); in a container the NVIDIA "
                        "Container Toolkit mounts them when it is started with "
                        "NVIDIA_DRIVER_CAPABILITIES=compute,utility (`--gpus all` does).")))
    if rep.gpus:
        return ok(f"NVIDIA driver {f.driver_version}, {len(rep.gpus)} GPU(s) ({rep.source})",
                  details)
    if rep.error_kind == "version-mismatch":
        return ok(f"NVIDIA kernel module {kernel or ''} loaded (its library does not match: "
                  "see gpu.driver_mismatch)".replace("  ", " "), details)
    if p.container:
        virt = f.virtualization
        details += [f"inside a {p.container} container ({virt['evidence'][0]})",
                    "/dev/nvidia* device nodes: " + ("present" if virt["gpu_devices"]
                                                     else "absent")]
        if kernel or pci or virt["gpu_devices"]:
            seen = (f"the host's NVIDIA driver {kernel} is loaded" if kernel else
                    "an NVIDIA GPU is on the PCI bus")
            return fail(f"{p.container} container without GPU access: {seen}, but the "
                        "container was started without the GPU", details,
                        routes.container_gpu(p, host_driver=bool(kernel)))
        return warn(f"no NVIDIA GPU: CPU-only {p.container} container (the smoke config "
                    "runs, the 8 GB configs do not)", details,
                    Fix(text=cpu_only_text() + " If the host has one, start the container with "
                        "it (`docker run --gpus all`, NVIDIA Container Toolkit on the host)."))
    if p.wsl:
        if not f.m.exists("/dev/dxg"):
            return fail("WSL2 without GPU access (/dev/dxg is missing)",
                        details, routes.nvidia_driver(p))
        return fail(f"WSL2 GPU driver not answering: {rep.error}", details,
                    routes.nvidia_driver(p))
    if kernel:
        return fail(f"NVIDIA kernel module {kernel} is loaded but the GPU does not answer: "
                    f"{rep.error}", details,
                    routes.reboot(p, "A reboot reloads a wedged driver; if it persists, "
                                 "reinstall the driver:") + routes.nvidia_driver(p))
    if pci or rep.error_kind == "driver-not-loaded":
        if pci:
            details.append(f"NVIDIA display devices on PCI: {', '.join(pci)}")
        if "nouveau" in f.kernel_modules:
            details.append("the open-source nouveau driver holds the GPU")
        # Rebuild the module of a driver package that is installed; install one that is not.
        pkgs = f.dpkg_installed
        drivers = [n for n in pkgs or [] if DRIVER_PKG.match(n)]
        if pkgs is None:
            fix = routes.dkms_rebuild(p) + routes.nvidia_driver(p)
        elif drivers:
            details.append(f"driver packages installed: {', '.join(drivers)}")
            fix = routes.dkms_rebuild(p)
        else:
            details.append("no NVIDIA driver package installed (dpkg)")
            fix = routes.nvidia_driver(p)
        return fail("an NVIDIA GPU is installed but no NVIDIA driver is loaded", details, fix)
    if p.vm:
        return warn(f"no NVIDIA GPU in this {p.vm} virtual machine (make demo and make smoke "
                    "run, the 8 GB configs do not)", details + [f"virtual machine: {p.vm}"],
                    Fix(text=cpu_only_text() + " A VM sees a GPU only when one is passed "
                        "through to it (PCI passthrough or vGPU in the hypervisor, or a GPU "
                        "instance type in a cloud); installing a driver inside does not add "
                        "one."))
    return warn("no NVIDIA GPU: CPU-only machine (make demo and make smoke run, the 8 GB configs "
                "do not)", details, Fix(text=cpu_only_text()))


@check("gpu.driver_mismatch", "driver kernel module and library versions agree")
def driver_mismatch(f):
    rep, kernel, libs = f.gpu, f.kernel_driver, f.nvml_libraries
    fix = routes.reboot(f.platform, "The driver package was updated under a running kernel "
                       "module (often by unattended-upgrades); a reboot loads the new module. "
                       "To stop it recurring: `sudo apt-mark hold 'nvidia-driver-*'`.")
    if rep.error_kind == "version-mismatch":
        return fail("Failed to initialize NVML: Driver/library version mismatch",
                    [rep.error or "", f"kernel module {kernel}, libraries {libs}"], fix)
    if f.platform.wsl:
        return skip("WSL2: the driver lives on Windows")
    if not kernel or kernel == "unreadable":
        return skip("no NVIDIA kernel module loaded")
    if libs and kernel not in libs:
        return fail(f"kernel module {kernel} but libnvidia-ml {', '.join(libs)}",
                    [f"libnvidia-ml.so.{v}" for v in libs], fix)
    return ok(f"kernel module {kernel}" + (" matches libnvidia-ml" if libs else ""))


@check("gpu.driver_cuda", "driver new enough for torch's CUDA")
def driver_cuda(f):
    torch, p = f.torch, f.platform
    if not torch.cuda:
        return skip("torch is not a CUDA build")
    drv = f.driver_version
    if not drv:
        return skip("no NVIDIA driver (see gpu.driver)")
    mm = V.major_minor(torch.cuda)
    floor = MINOR_COMPAT_FLOOR.get(mm[0]) if mm else None
    shipped = TOOLKIT_DRIVER.get(V.dotted(torch.cuda), (None, None))[1 if p.wsl else 0]
    details = [f"driver {drv}" + (" (the Windows driver, as WSL2 reports)" if p.wsl else ""),
               f"torch built with CUDA {torch.cuda}"]
    if f.gpu.cuda_driver:
        details.append(f"the driver supports CUDA up to {f.gpu.cuda_driver}")
    fix = Fix(text="Update the driver:") + routes.nvidia_driver(p)
    tag = routes.torch_tag_for_driver(drv, f.min_cc)
    if tag and tag != "cu" + torch.cuda.replace(".", ""):
        fix += Fix(text="or use the torch build this driver runs:") + routes.torch_wheel(p, tag)
    if floor and V.release(drv) < V.release(floor):
        return fail(f"driver {drv} is too old for torch's CUDA {torch.cuda} (needs >= {floor})",
                    details, fix)
    if shipped and V.release(drv) < V.release(shipped):
        return warn(f"driver {drv} is older than CUDA {V.dotted(torch.cuda)}'s {shipped}: "
                    "runs through minor-version compatibility, but PTX JIT and new features "
                    "may fail", details, fix)
    return ok(f"driver {drv} runs torch's CUDA {torch.cuda}", details)


@check("gpu.visible", "the GPUs the run sees (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER)")
def visible(f):
    vis, value = f.visibility, f.visible_devices
    fix = local(unset("CUDA_VISIBLE_DEVICES"), "Or set it to GPUs that exist, e.g. "
                "`export CUDA_VISIBLE_DEVICES=0`.")
    gpu_there = f.has_gpu or bool(f.nvidia_pci)
    shown = [f"cuda:{i} = GPU {g.index} {g.name}" for i, g in enumerate(vis.gpus)] if vis.exact \
        else [f"could be GPU {g.index} {g.name}" for g in vis.gpus]
    details = shown + [f"hidden, not judged: GPU {g.index} {g.name}" for g in vis.hidden]
    order_fix = local(export("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
                      "CUDA then numbers the GPUs as nvidia-smi does (PCI bus order).")
    if value is None:
        if len(f.all_gpus) > 1 and not same_model(f.all_gpus) and vis.order != "PCI_BUS_ID":
            return info(f"the run sees all {len(f.all_gpus)} GPUs; CUDA numbers these mixed "
                        "GPUs fastest first, so cuda:0 need not be nvidia-smi's GPU 0", details,
                        order_fix)
        return ok("CUDA_VISIBLE_DEVICES is not set" + (
            f": the run sees all {len(f.all_gpus)} GPUs" if len(f.all_gpus) > 1 else ""),
            details)
    if value.strip() in ("", "-1", "NoDevFiles"):
        summary = f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU from torch"
        return (fail if gpu_there else info)(summary, details, fix=fix)
    if vis.problems and vis.count == 0:
        return fail(f"CUDA_VISIBLE_DEVICES={value!r}: {vis.problems[0]}; CUDA stops at the "
                    "first invalid entry, so the run sees no GPU", details, fix=fix)
    if vis.problems:
        return warn(f"CUDA_VISIBLE_DEVICES={value!r}: {vis.problems[0]}; CUDA ignores it and "
                    f"the entries after it (the run sees {vis.count} GPU(s))", details, fix=fix)
    if not vis.exact:
        return warn(f"CUDA_VISIBLE_DEVICES={value!r} names GPUs by index, and CUDA numbers "
                    f"these mixed GPUs fastest first ({vis.order}), not as nvidia-smi lists "
                    "them: which GPU the run gets is CUDA's guess, so every one it could be is "
                    "judged", details, order_fix)
    seen = ", ".join(f"GPU {g.index} ({g.name})" for g in vis.gpus)
    return ok(f"CUDA_VISIBLE_DEVICES={value!r}: the run sees {seen}", details)


@check("gpu.devices", "each GPU the run sees: name, memory, compute capability")
def devices(f):
    if not f.gpus:
        return skip("no GPU" if not f.all_gpus else "no GPU visible to the run (gpu.visible)")
    hidden = {g.index for g in f.visibility.hidden}
    lines = [f"GPU {g.index}: {g.name}, {gib(g.memory_total)} total, {gib(g.memory_free)} free, "
             f"compute capability {g.cc_text}" + (" (hidden from the run)" if g.index in hidden
                                                  else "") for g in f.all_gpus]
    lines += f.gpu.notes
    unknown = [g for g in f.gpus if g.cc is None or g.memory_total is None]
    if unknown:
        return info(f"{len(f.gpus)} GPU(s); some facts unavailable ({f.gpu.source} did not "
                    "give them)", lines)
    g = f.gpus[0]
    more = f" (+{len(f.gpus) - 1} more)" if len(f.gpus) > 1 else ""
    return ok(f"{g.name}, {gib(g.memory_total)}, sm_{g.cc[0]}{g.cc[1]}{more}", lines)


DRIVER_PKG = re.compile(r"^(nvidia-driver(-\d+)?|nvidia-dkms-\S+|nvidia-kernel-dkms|"
                        r"nvidia-kernel-open-dkms|cuda-drivers\S*)$")
LINUX_DRIVER_PKG = re.compile(r"^(nvidia-driver-\S+|cuda-drivers\S*|libnvidia-compute-\S+)$")


@check("gpu.wsl", "WSL2: no Linux NVIDIA driver inside WSL")
def wsl(f):
    p = f.platform
    if not p.wsl:
        return skip("not WSL")
    details, problems = [], []
    installed = [n for n in f.dpkg_installed or [] if LINUX_DRIVER_PKG.match(n)]
    stray = [q for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64")
             for q in f.m.glob(f"{d}/libcuda.so*")]
    if installed:
        problems.append(f"Linux driver packages installed inside WSL: {', '.join(installed)}")
    if stray:
        problems.append("libcuda outside /usr/lib/wsl/lib shadows the Windows driver's: "
                        + ", ".join(s.replace(str(f.m.root).rstrip('/'), '') for s in stray))
    if problems:
        cmds = []
        if installed:
            cmds.append("sudo apt-get purge -y " + " ".join(f"'{n}'" for n in installed))
        return fail(problems[0], problems + details, Fix(
            cmds + ["wsl --shutdown"],
            "WSL2 uses the Windows driver through /usr/lib/wsl/lib/libcuda.so: remove the Linux "
            "driver (NVIDIA: never install a Linux GPU driver inside WSL 2), then restart WSL "
            "from Windows (`wsl --shutdown`)."))
    if not f.m.exists("/dev/dxg"):
        return warn("WSL without /dev/dxg: no GPU paravirtualization (WSL1, or an old Windows "
                    "driver)", fix=routes.nvidia_driver(p))
    return ok("WSL2 uses the Windows driver (no Linux driver installed)")
