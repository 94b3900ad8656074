"""torch wheel: installed, CPU or CUDA build, GPU architecture in the build.

Read from torch/version.py and metadata; `torch.import` (--deep) imports it in a subprocess.
"""

from __future__ import annotations

import json

from .. import routes
from .. import versions as V
from ..findings import Fix
from . import check, fail, info, ok, skip, warn

CATEGORY = "torch"

# GPU architectures in torch >= 2.8 builds by CUDA version, (oldest, newest) sm: the cu126
# builds keep Maxwell..Hopper, cu128 and newer drop everything before Turing (sm_75) and add
# Blackwell (sm_100, sm_120), as `torch.cuda.get_arch_list()` of each wheel says.
ARCH_RANGE = {
    (11, 8): ((5, 0), (9, 0)), (12, 6): ((5, 0), (9, 0)),
    (12, 8): ((7, 5), (12, 0)), (12, 9): ((7, 5), (12, 0)),
    (13, 0): ((7, 5), (12, 0)), (13, 1): ((7, 5), (12, 0)), (13, 2): ((7, 5), (12, 0)),
}

TORCH_PROBE = """
import json, torch
d = {"version": torch.__version__, "cuda": torch.version.cuda}
d["available"] = torch.cuda.is_available()
if d["available"]:
    d["count"] = torch.cuda.device_count()
    d["arch_list"] = torch.cuda.get_arch_list()
    try:
        d["bf16"] = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:
        d["bf16"] = torch.cuda.is_bf16_supported()
print(json.dumps(d))
"""


def reinstall(f) -> Fix:
    t = f.torch
    tag = f"cu{t.cuda.replace('.', '')}" if t.cuda else "cpu"
    return routes.torch_wheel(f.platform, tag)


@check("torch.installed", "torch installed and readable")
def installed(f):
    t = f.torch
    if not t.found:
        return fail(f"torch is not installed for {f.m.python}",
                    fix=Fix(["make env"], "Installs the pinned stack (env/stack.txt) into the "
                            "environment; pick the CUDA build with TORCH_INDEX_URL."))
    if t.error:
        return fail(f"torch is broken: {t.error}", [f"package at {t.location}"], reinstall(f))
    details = [f"package at {t.location}", f"distribution metadata: {t.dist_version}"]
    if t.dist_version and t.dist_version != t.version:
        return warn(f"torch {t.version} in version.py but {t.dist_version} in its metadata "
                    "(a half-overwritten install)", details, reinstall(f))
    kind = f"CUDA {t.cuda}" if t.cuda else ("ROCm " + t.hip if t.hip else "CPU")
    return ok(f"torch {t.version} ({kind} build)", details)


@check("torch.cuda_build", "torch built for the GPU that is here")
def cuda_build(f):
    t, p = f.torch, f.platform
    if not t.found or t.error:
        return skip("torch not readable (see torch.installed)")
    tag = routes.torch_tag_for_driver(f.driver_version, f.min_cc) or "cu126"
    if t.hip:
        return warn(f"torch {t.version} is a ROCm build; the pack's configs target NVIDIA CUDA",
                    fix=routes.torch_wheel(p, tag))
    gpu_there = f.has_gpu or bool(f.nvidia_pci)
    if not t.cuda:
        if gpu_there:
            return fail(f"torch {t.version} is a CPU build on a machine with an NVIDIA GPU "
                        "(\"Torch not compiled with CUDA enabled\")",
                        fix=routes.torch_wheel(p, tag))
        return info(f"torch {t.version} is a CPU build, which fits this machine (no NVIDIA GPU): "
                    "make demo and make smoke run; the 8 GB configs need a CUDA build on a GPU")
    if not gpu_there:
        return info(f"torch CUDA {t.cuda} build, but no NVIDIA GPU here: it runs on the CPU only")
    return ok(f"torch CUDA {t.cuda} build")


@check("torch.arch", "GPU architecture supported by the torch build")
def arch(f):
    t = f.torch
    if not t.cuda or not f.gpus:
        return skip("needs a CUDA torch and a GPU")
    mm = V.major_minor(t.cuda)
    deep = f.deep_import("torch", TORCH_PROBE) if f.deep else None
    built = deep.data.get("arch_list") if deep and deep.ok else None
    bad, details = [], []
    for g in f.gpus:
        if not g.cc:
            continue
        sm = f"sm_{g.cc[0]}{g.cc[1]}"
        if built is not None:
            details.append(f"GPU {g.index} {sm}; torch.cuda.get_arch_list() = {built}")
            # PTX of an older arch (compute_XY) JIT-compiles for newer GPUs of the same major.
            if sm not in built and not any(a.startswith("compute_") and int(a[8:]) // 10
                                           == g.cc[0] for a in built if a[8:].isdigit()):
                bad.append((g, sm, "not in the build"))
            continue
        lo_hi = ARCH_RANGE.get(mm)
        if lo_hi is None:
            details.append(f"no table for CUDA {t.cuda}: run with --deep to ask torch")
            continue
        lo, hi = lo_hi
        details.append(f"GPU {g.index} {sm}; CUDA {t.cuda} builds cover "
                       f"sm_{lo[0]}{lo[1]}..sm_{hi[0]}{hi[1]}")
        if g.cc < lo:
            bad.append((g, sm, "too old for this build"))
        elif g.cc[0] > hi[0]:
            bad.append((g, sm, "too new for this build"))
    if not bad:
        return ok(f"torch CUDA {t.cuda} has kernels for " + ", ".join(
            f"sm_{g.cc[0]}{g.cc[1]}" for g in f.gpus if g.cc), details)
    g, sm, why = bad[0]
    tag = "cu126" if g.cc < (7, 5) else (
        routes.torch_tag_for_driver(f.driver_version, None) or "cu128")
    return fail(f"{g.name} ({sm}) is {why}: torch CUDA {t.cuda} has no kernels for it "
                "(\"no kernel image is available for execution on the device\")", details,
                routes.torch_wheel(f.platform, tag))


@check("torch.import", "torch imports and sees the GPU", deep=True)
def torch_import(f):
    if not f.torch.found:
        return skip("torch not installed")
    deep = f.deep_import("torch", TORCH_PROBE)
    details = [json.dumps(deep.data)] if deep.data else []
    if deep.run and not deep.ok and deep.run.output.strip():
        details.append(deep.run.output.strip()[-600:])
    if not deep.ok:
        return fail(deep.summary, details, reinstall(f))
    if f.has_gpu and not deep.data.get("available"):
        return fail("torch imports but torch.cuda.is_available() is False on a machine with a "
                    "GPU", details, Fix(text="See gpu.driver_cuda (driver too old for torch's "
                                        "CUDA), gpu.visible and torch.cuda_build for the cause."))
    return ok(f"torch {deep.data.get('version')} imports; CUDA available: "
              f"{deep.data.get('available')}", details)
