"""Precision and kernels: bf16 decided from the compute capability, flash-attn only
where it can run (XTuner enables it whenever the package is installed)."""

from __future__ import annotations

from .. import versions as V
from ..actions import local, pip
from ..findings import Fix
from . import check, fail, info, ok, skip, warn

CATEGORY = "precision & kernels"


@check("precision.bf16", "bf16 only on GPUs that have it (sm_80+)")
def bf16(f):
    if not f.gpus:
        return skip("no GPU")
    cc = f.min_cc
    if cc is None:
        return skip("compute capability unknown")
    sm = f"sm_{cc[0]}{cc[1]}"
    if cc >= (8, 0):
        return ok(f"{sm} has bf16")
    return warn(f"{sm} has no bf16: train in fp16 (torch.cuda.is_bf16_supported() says True here "
                "through emulation, and XTuner's DeepSpeed \"auto\" then picks bf16)",
                fix=Fix(text="Keep the recipe's dtype=\"float16\" (configs/_base_/recipe_8gb.py); "
                        "with --deepspeed use a copy of XTuner's deepspeed_zero2 JSON with "
                        "\"bf16\": {\"enabled\": false}."))


FLASH_PROBE = "import json, flash_attn_2_cuda; print(json.dumps({'ok': True}))"


@check("precision.flash_attn", "flash-attn only on GPUs it supports (sm_80+)")
def flash_attn(f):
    v = f.dist_version("flash_attn") or f.dist_version("flash-attn")
    if v is None:
        return ok("flash-attn not installed (XTuner uses SDPA)")
    uninstall = local(pip(f, "uninstall", "-y", "flash-attn"),
                    "XTuner then uses PyTorch SDPA attention.")
    if not f.gpus:
        return info(f"flash-attn {v} installed; unused without a GPU")
    cc = f.min_cc
    if V.at_least(v, "2.1") and cc and cc < (8, 0):
        return fail(f"flash-attn {v} is installed and XTuner enables it, but sm_{cc[0]}{cc[1]} "
                    "cannot run it (\"FlashAttention only supports Ampere GPUs or newer\")",
                    fix=uninstall)
    if f.deep:
        deep = f.deep_import("flash_attn_2_cuda", FLASH_PROBE)
        if not deep.ok:
            return fail(f"flash-attn {v}: {deep.summary} (built for another torch?)",
                        fix=uninstall + Fix(
                            [f.platform.pip("install", "--no-build-isolation", f"flash-attn=={v}")],
                            "then rebuild it against this torch (needs the CUDA toolkit)."))
    return ok(f"flash-attn {v} on sm_{cc[0]}{cc[1]}" if cc else f"flash-attn {v}")
