"""bitsandbytes: installed, a CUDA library for torch's CUDA (else QLoRA silently runs
its CPU library), the GPU in the library's build targets, versions with known bugs."""

from __future__ import annotations

import re

from .. import routes
from .. import versions as V
from ..actions import local, pip
from ..actions import unset as unset_var
from ..facts import version_matches
from ..findings import Fix
from . import check, fail, info, ok, skip, warn

CATEGORY = "bitsandbytes"

# GPU architectures in bitsandbytes' Linux wheels by the library's CUDA version (its build
# workflow's CUDA_ARCHS): up to 12.6 sm50/60..sm90, 12.8-12.9 sm70..sm120, 13.x sm75..sm120.
ARCH_RANGE = [((12, 6), (6, 0), (9, 0)), ((12, 9), (7, 0), (12, 0)), ((99, 9), (7, 5), (12, 0))]
OLD_045 = ((5, 0), (9, 0))  # 0.45.x built sm50..sm90: no Blackwell
CEXT = "bitsandbytes/cextension.py"  # where bitsandbytes picks its library


def pin_fix(f, repair: bool = False) -> Fix:
    """Install the pinned bitsandbytes; nothing when it is installed already (reinstalling the
    same version changes nothing), unless `repair` (files broken): then --force-reinstall."""
    pin, have = f.pin("bitsandbytes"), f.dist_version("bitsandbytes")
    there = bool(pin and have and f.package_dir("bitsandbytes")
                 and version_matches(have, pin.version))
    if there and not repair:
        return Fix()
    force = ["--force-reinstall"] if there else []
    return local(pip(f, "install", *force, "-c", str(f.stack_path),
                     f"bitsandbytes=={pin.version}") if pin else
                 pip(f, "install", "-U", "bitsandbytes"))


def torch_to(f, tag: str) -> Fix:
    """torch's build `tag`, unless torch is that build already."""
    return Fix() if f.torch.cuda and tag == "cu" + f.torch.cuda.replace(".", "") else (
        routes.torch_wheel(f.platform, tag))


def cuda_libs(f) -> dict[str, str]:
    """{"126": "libbitsandbytes_cuda126.so", ...} in the installed package directory."""
    where = f.package_dir("bitsandbytes")
    out = {}
    for name in f.m.listdir(where, host=False) if where else []:
        if m := re.fullmatch(r"libbitsandbytes_cuda(\d+)\.(so|dll|dylib)", name):
            out[m.group(1)] = name
    return out


def override(f) -> str | None:
    """BNB_CUDA_VERSION when the installed bitsandbytes reads it (its cextension.py does since
    0.43; older releases ignore it)."""
    value = f.m.getenv("BNB_CUDA_VERSION")
    if value is None or not f.reads_env(CEXT, "BNB_CUDA_VERSION", since="0.43"):
        return None
    return value


def chosen_lib(f) -> tuple[str | None, str]:
    """The CUDA library bitsandbytes will load, and how it chose. An override names the library
    exactly: bitsandbytes 0.50's cextension.py says it "bypass[es] selection entirely and
    load[s] the named version with no fallback" (and before 0.50 it replaced the name too). Without
    one: torch's CUDA exactly, then (0.50+) the highest lower, else the lowest higher library of
    the same major; no cross-major fallback."""
    libs = cuda_libs(f)
    value = override(f)
    if value is not None:
        if value in libs:
            return value, f"BNB_CUDA_VERSION={value} override (no fallback)"
        return None, f"BNB_CUDA_VERSION={value} names no library here (an override has no fallback)"
    want = f.torch.cuda.replace(".", "")
    if want in libs:
        return want, "exact match"
    source = f.source(CEXT)
    falls_back = ("same major" in source or "higher_same" in source) if source else V.at_least(
        f.dist_version("bitsandbytes"), "0.50")
    if not falls_back:
        return None, "no exact match (this bitsandbytes has no fallback)"
    major = want[:-1]
    same = sorted((k for k in libs if k[:-1] == major), key=int)
    lower = [k for k in same if int(k) < int(want)]
    if lower:
        return lower[-1], "highest lower version of the same major"
    if same:
        return same[0], "lowest higher version of the same major"
    return None, "no library of the same CUDA major"


@check("bnb.install", "bitsandbytes installed, no known-bad version")
def install(f):
    v = f.dist_version("bitsandbytes")
    if v is None:
        return fail("bitsandbytes is not installed: QLoRA (4-bit) cannot load", fix=pin_fix(f))
    if not f.package_dir("bitsandbytes"):
        return fail(f"bitsandbytes {v} metadata without its package", fix=pin_fix(f))
    if not V.at_least(v, "0.41"):
        return fail(f"bitsandbytes {v} has 4-bit bugs (xtuner convert pth_to_hf fails)",
                    fix=pin_fix(f))
    if not f.torch.cuda and not V.at_least(v, "0.46"):
        return warn(f"bitsandbytes {v} has no CPU 4-bit: the CPU smoke run fails (needs >= 0.46)",
                    fix=pin_fix(f))
    return ok(f"bitsandbytes {v}")


@check("bnb.cuda_lib", "a bitsandbytes library for torch's CUDA")
def cuda_lib(f):
    v = f.dist_version("bitsandbytes")
    where = f.package_dir("bitsandbytes")
    if not v or not where:
        return skip("bitsandbytes not installed")
    t = f.torch
    if not t.found or t.error:
        return skip("torch not readable")
    names = f.m.listdir(where, host=False)
    if not t.cuda:
        if any(n.startswith("libbitsandbytes_cpu.") for n in names):
            return ok("CPU library present (4-bit on the CPU for the smoke config)")
        return fail(f"bitsandbytes {v} has no CPU library: the CPU smoke run cannot quantize",
                    fix=pin_fix(f))
    libs = cuda_libs(f)
    value = f.m.getenv("BNB_CUDA_VERSION")
    details = [f"CUDA libraries: {', '.join(sorted(libs, key=int)) or 'none'}",
               f"torch CUDA {t.cuda}" + (f", BNB_CUDA_VERSION={value}" if value is not None
                                         else "")]
    if value is not None and override(f) is None:
        details.append(f"bitsandbytes {v} does not read BNB_CUDA_VERSION ({CEXT}): ignored")
    unset = local(unset_var("BNB_CUDA_VERSION"), "Lets bitsandbytes pick the library for "
                  "torch's CUDA itself (an override bypasses that selection entirely).")
    if override(f) is not None:
        if not value.isdigit() and "digits only" in (f.source(CEXT) or "digits only"):
            return fail(f"BNB_CUDA_VERSION={value!r}: bitsandbytes {v} raises RuntimeError "
                        "(\"value must be digits only\") when it loads", details, unset)
        picked, how = chosen_lib(f)
        own = t.cuda.replace(".", "")
        if picked == own:
            return ok(f"{libs[picked]} for torch's CUDA {t.cuda} (BNB_CUDA_VERSION names it)",
                      details)
        if picked:
            return warn(f"BNB_CUDA_VERSION={value} makes bitsandbytes {v} load {libs[picked]} "
                        f"beside torch's CUDA {t.cuda} ({how})", details, unset)
        return fail(f"BNB_CUDA_VERSION={value}: bitsandbytes {v} loads libbitsandbytes_cuda"
                    f"{value}.so, which is not installed ({how}): QLoRA cannot load its "
                    "library", details, unset)
    picked, how = chosen_lib(f)
    if picked and how == "exact match":
        return ok(f"{libs[picked]} for torch's CUDA {t.cuda}", details)
    if picked:
        exact = [k for k in libs if f"cu{k}" in routes.TORCH_TAGS]
        fix = pin_fix(f) or (Fix(text=f"Or move torch to a CUDA this bitsandbytes has a library "
                                      f"for (cu{max(exact, key=int)}):")
                             + torch_to(f, f"cu{max(exact, key=int)}") if exact else Fix())
        return warn(f"no library for CUDA {t.cuda}; bitsandbytes {v} loads {libs[picked]} ({how})",
                    details, fix)
    alt = [k for k in sorted(libs, key=int) if k.startswith(("12", "13"))]
    fix = pin_fix(f)
    if alt:
        tag = "cu" + alt[-1]
        fix += Fix(text=f"or move torch to a CUDA this bitsandbytes has ({', '.join(alt)}):")
        fix += torch_to(f, tag)
    return fail(f"bitsandbytes {v} has no library for torch's CUDA {t.cuda} ({how}): QLoRA falls "
                "back to the CPU library (\"compiled without GPU support\")", details, fix)


@check("bnb.arch", "the GPU in bitsandbytes' build targets")
def arch(f):
    if not f.gpus or not f.torch.cuda:
        return skip("needs a GPU and a CUDA torch")
    v = f.dist_version("bitsandbytes")
    if not v:
        return skip("bitsandbytes not installed")
    picked, _ = chosen_lib(f) if f.package_dir("bitsandbytes") else (None, "")
    libcuda = V.major_minor(V.from_digits(picked)) if picked else None
    if not V.at_least(v, "0.46"):
        lo, hi = OLD_045
    else:
        lo, hi = next(((lo, hi) for top, lo, hi in ARCH_RANGE if libcuda and libcuda <= top),
                      ARCH_RANGE[-1][1:])
    cc = f.min_cc
    if cc is None:
        return skip("compute capability unknown")
    sm = f"sm_{cc[0]}{cc[1]}"
    if cc < (6, 0):
        return fail(f"{sm}: NF4/QLoRA needs compute capability 6.0+",
                    fix=Fix(text="This GPU cannot run the 4-bit configs."))
    if cc < lo or cc > hi:
        tag = "cu126" if cc < lo else "cu128"
        return fail(f"{sm} is outside bitsandbytes {v}'s CUDA "
                    f"{'.'.join(map(str, libcuda)) if libcuda else ''} build targets "
                    f"(sm_{lo[0]}{lo[1]}..sm_{hi[0]}{hi[1]})",
                    fix=pin_fix(f) + torch_to(f, tag))
    if cc < (7, 5):
        return info(f"{sm}: NF4 QLoRA works; LLM.int8 uses the slow 8-bit matmul (needs 7.5+)")
    return ok(f"{sm} in bitsandbytes' build targets")


@check("bnb.selftest", "`python -m bitsandbytes` passes its own check", deep=True)
def selftest(f):
    if not f.dist_version("bitsandbytes"):
        return skip("bitsandbytes not installed")
    run = f.m.run([f.m.python, "-m", "bitsandbytes"], timeout=f.deep_timeout)
    f.gathered.setdefault("deep", {})["python -m bitsandbytes"] = {
        "result": run.describe(), "tail": run.output.strip()[-1500:]}
    details = [line for line in run.output.strip().splitlines()[-4:] if line.strip()]
    if run.ok:
        return ok("`python -m bitsandbytes` passed", details)
    if not f.torch.cuda and not f.gpus:
        return info(f"`python -m bitsandbytes`: {run.describe()} (its self-test needs a GPU; "
                    "this machine has none)", details)
    return fail(f"`python -m bitsandbytes`: {run.describe()}: {run.last_line()[:200]}", details,
                pin_fix(f, repair=True))
