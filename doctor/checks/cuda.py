"""CUDA toolkit and nvcc: CUDA_HOME as torch and DeepSpeed find it, validated; nvcc
against torch's CUDA with DeepSpeed's own minor-mismatch table; host gcc; build tools; pip's
nvcc wheels; CUDA libraries on LD_LIBRARY_PATH that shadow the wheels' own; the architecture
lists (TORCH_CUDA_ARCH_LIST and friends) that builds compile for.

The toolkit matters only where something compiles CUDA code: DeepSpeed's import-time op probe
(< 0.19.5 on a GPU machine), DeepSpeed JIT ops, flash-attn source builds. The status of a toolkit
problem follows from that (`need`), so a CPU-only machine is never failed for its nvcc.
"""

from __future__ import annotations

import os
import re
import sysconfig

from .. import versions as V
from ..actions import env_line, export, local, pip, unset, use_toolkit
from ..findings import Fix
from ..routes import toolkit_fix
from . import check, fail, info, ok, result, skip, warn

CATEGORY = "CUDA toolkit"


def need(f) -> tuple[str, str]:
    """(status for a missing/broken toolkit, why it matters) on this machine."""
    ds = f.deepspeed_version
    if not f.torch.cuda:
        return "info", "torch is a CPU build, so torch and DeepSpeed compile no CUDA code"
    if ds and not V.at_least(ds, "0.19.5") and f.has_gpu:
        if f.ds_ignores_detection:
            return "warn", f"deepspeed {ds} JIT-builds its ops with nvcc"
        return "fail", f"deepspeed {ds} runs nvcc when it is imported (on a GPU machine)"
    if ds:
        return "warn", f"deepspeed {ds} JIT-builds its ops (cpu_adam, fused_adam) with nvcc"
    return "info", "needed only to build DeepSpeed ops or flash-attn from source"


def at_least_warn(status: str) -> str:
    return "warn" if status == "info" else status


def repair_home(f) -> Fix | None:
    """A malformed CUDA_HOME (`$CUDA_HOME:/usr/local/cuda`, `.../bin`): one of its parts is the
    directory that was meant, when it holds an nvcc."""
    h = f.cuda_home
    if h.kind != "malformed":
        return None
    meant = [d.rstrip("/").removesuffix("/bin") for d in h.path.split(os.pathsep)]
    meant = [d for d in meant if d and f.m.exists(f"{d}/bin/nvcc", host=False, kind="file")]
    if meant or f.toolkit_guess:
        return use_toolkit((meant or [f.m.unhost(f.toolkit_guess)])[0],
                           "One directory, the toolkit's top.")
    return local(unset(h.source), f"{h.source} must be one directory (the toolkit's top).")


@check("cuda.home", "CUDA_HOME found the way torch and DeepSpeed find it, and valid")
def home(f):
    h = f.cuda_home
    status, why = need(f)
    details = [f"resolved from {h.source}" if h.path else "no CUDA_HOME, CUDA_PATH, nvcc on "
               "PATH or /usr/local/cuda", f"matters because: {why}", *h.problems]
    if f.toolkit_guess and f.toolkit_guess != h.path:
        details.append(f"a toolkit is installed at {f.toolkit_guess}")
    if not f.torch.cuda:
        state = {"ok": "", "no-headers": ", without CUDA headers"}.get(h.kind, ", broken")
        where = f"CUDA_HOME would be {h.path}{state}" if h.path else "no CUDA toolkit"
        # Unused today, but the first CUDA torch will use it: the fix line now, not next run.
        later = repair_home(f)
        if later:
            later = Fix(text="Unused while torch is a CPU build; before a CUDA torch uses it:"
                        ) + later
        return info(f"{where}; unused: torch is a CPU build", details, later)
    if h.path is None:
        fix = toolkit_fix(f)
        ds = f.deepspeed_version
        if ds and V.at_least(ds, "0.18.9") and not V.at_least(ds, "0.19.5"):
            fix += Fix(["export DS_IGNORE_CUDA_DETECTION=1"],
                       f"Or, for XTuner's ZeRO runs (no JIT ops), let deepspeed {ds} skip the "
                       "probe:")
        summary = ("no CUDA toolkit: `import deepspeed` raises MissingCUDAException (CUDA_HOME "
                   "does not exist)" if status == "fail" else "no CUDA toolkit (no nvcc)")
        return result(status, summary, details, fix)
    if h.kind in ("malformed", "missing", "runtime-only"):
        fix = repair_home(f) or toolkit_fix(f)
        st = "fail" if f.has_gpu or f.deepspeed_version else at_least_warn(status)
        return result(st, h.problems[0], details, fix)
    if h.kind == "no-headers":
        fix = toolkit_fix(f)
        if f.toolkit_guess:
            fix = use_toolkit(f.m.unhost(f.toolkit_guess),
                              "CUDA extensions compile with -I$CUDA_HOME/include.")
        return result("info" if status == "info" else "warn",
            f"CUDA_HOME={h.path}: {h.problems[0]}", details, fix)
    return ok(f"CUDA_HOME={h.path} ({h.source})", details)


@check("cuda.nvcc", "nvcc runs and matches torch's CUDA")
def nvcc(f):
    t = f.torch
    status, why = need(f)
    if not f.nvcc_path:
        return skip("no nvcc (see cuda.home)")
    if not t.cuda:  # nothing compiles CUDA code: not worth a process start to ask its release
        return info(f"nvcc at {f.nvcc_path}; unused: torch is a CPU build",
                    [f"matters: {why}"])
    n = f.nvcc
    details = [f"{n.path} -V: " + (n.run.describe() if n.run else "not run"), f"matters: {why}"]
    if n.problem:
        return result(at_least_warn(status), n.problem, details, toolkit_fix(f))
    mine, theirs = V.major_minor(n.release), V.major_minor(t.cuda)
    if mine == theirs:
        return ok(f"nvcc {n.release} matches torch's CUDA {t.cuda}", details)
    fix = toolkit_fix(f)
    ds = f.deepspeed_version
    if mine[0] != theirs[0]:
        summary = (f"nvcc {n.release} but torch was built with CUDA {t.cuda}: a different major "
                   "(torch's extension builder raises \"The detected CUDA version mismatches\")")
        st = "fail" if ds or status == "fail" else "warn"
        return result(st, summary, details, fix)
    table = f.ds_minor_table.get(mine[0], [])
    both = V.dotted(n.release) in table and V.dotted(t.cuda) in table
    skip_check = f.m.getenv("DS_SKIP_CUDA_CHECK") == "1" and f.reads_env(
        "deepspeed/ops/op_builder/builder.py", "DS_SKIP_CUDA_CHECK", since="0.3")
    if ds and not both and skip_check:
        return warn(f"nvcc {n.release} vs torch CUDA {t.cuda}: deepspeed {ds} would raise "
                    "CUDAMismatchException, but DS_SKIP_CUDA_CHECK=1 turns it into a warning "
                    "(\"beware of unexpected behavior\")", details, fix)
    if ds and not both:
        fix += Fix(text="Last resort: `export DS_SKIP_CUDA_CHECK=1` (DeepSpeed: \"beware of "
                        "unexpected behavior\").")
        return fail(f"nvcc {n.release} vs torch CUDA {t.cuda}: deepspeed {ds} raises "
                    "CUDAMismatchException (not in its minor-mismatch list)", details, fix)
    return warn(f"nvcc {n.release} vs torch CUDA {t.cuda}: a minor mismatch "
                + ("DeepSpeed accepts; torch warns" if ds else "torch only warns about"),
                details, fix)


@check("cuda.gcc", "host gcc not newer than nvcc accepts")
def gcc(f):
    if not f.torch.cuda:
        return skip("torch is a CPU build: nvcc compiles nothing")
    if not f.nvcc.release:
        return skip("no working nvcc")
    g = f.host_gcc
    if not g["version"]:
        return skip(f"no {g['compiler']} (see cuda.build_tools)")
    limit = f.nvcc_max_gcc
    major = int(g["version"].split(".")[0]) if g["version"].split(".")[0].isdigit() else None
    details = [f"{g['compiler']} {g['version']} at {g['path']}",
               f"nvcc {f.nvcc.release} accepts GCC up to {limit}" if limit else
               "nvcc's host_config.h gives no GCC limit"]
    if limit is None or major is None or major <= limit:
        return ok(f"{g['compiler']} {g['version']} works with nvcc {f.nvcc.release}", details)
    status, _ = need(f)
    # A gcc nvcc accepts may be installed already (Ubuntu keeps several): use it, install none.
    have = [n for n in range(limit, 5, -1) if f.m.which(f"gcc-{n}") and f.m.which(f"g++-{n}")]
    use = have[0] if have else limit
    text = "torch passes CC to nvcc as its host compiler (-ccbin)." + (
        f" gcc-{use} is installed already." if have else "")
    line = f"export CC=gcc-{use} CXX=g++-{use}"
    fix = (local(env_line(line), text) if have else  # the export works only once it is there
           Fix([f"sudo apt-get -y install gcc-{limit} g++-{limit}", line], text))
    summary = (f"gcc {g['version']} is newer than nvcc {f.nvcc.release} accepts (<= {limit}): "
               "\"unsupported GNU version\"")
    return result(status, summary, details, fix)


@check("cuda.build_tools", "ninja, a C++ compiler and Python.h for JIT builds")
def build_tools(f):
    ds = f.deepspeed_version
    missing, fix = [], Fix()
    if not (f.m.which("ninja") or f.dist_version("ninja")):
        missing.append("ninja")
        fix += local(pip(f, "install", "ninja"))
    cxx = f.m.getenv("CXX") or "g++"
    include = sysconfig.get_paths().get("include", "")
    apt = []
    if not f.m.which(cxx):
        missing.append(cxx)
        apt.append("build-essential")
    if not f.m.exists(os.path.join(include, "Python.h"), host=False, kind="file"):
        missing.append(f"Python.h ({include})")
        apt.append("python3-dev")
    if apt:
        fix += Fix(["sudo apt-get -y install " + " ".join(apt)])
    if not missing:
        return ok("ninja, " + cxx + " and Python.h present")
    summary = "missing for JIT-built ops: " + ", ".join(missing)
    why = Fix(text=f"DeepSpeed {ds} builds its ops on first use with these." if ds else
              "Only needed to build DeepSpeed ops or flash-attn.") + fix
    return (warn if ds else info)(summary, fix=why)


@check("cuda.pip_nvcc", "pip's nvidia-cuda-nvcc wheels are not mistaken for a toolkit")
def pip_nvcc(f):
    found = {}
    for name in ("nvidia-cuda-nvcc-cu12", "nvidia-cuda-nvcc-cu11", "nvidia-cuda-nvcc"):
        if f.dist_version(name):
            found[name] = f.dist_version(name)
    if not found:
        return ok("no pip nvcc wheel installed")
    for name, version in found.items():
        files = f.dist_files(name)
        has_nvcc = any(p.endswith("bin/nvcc") for p in files)
        if not has_nvcc:
            return (warn if f.torch.cuda and not f.nvcc.release else info)(
                f"{name} {version} is installed but has no nvcc binary (only ptxas): it cannot "
                "serve as CUDA_HOME for DeepSpeed or torch",
                [f"{len(files)} files, none bin/nvcc"],
                toolkit_fix(f) if f.torch.cuda else Fix(text="Not needed with a CPU torch."))
    name = next(iter(found))
    return info(f"{name} {found[name]} ships nvcc; torch does not look for it: set CUDA_HOME to "
                "its nvidia/cu13 directory if you use it (unverified for DeepSpeed JIT)")


@check("cuda.runtimes", "CUDA libraries on LD_LIBRARY_PATH: none of another CUDA major, none "
                        "shadowing torch's own")
def runtimes(f):
    dirs = [d for d in (f.m.getenv("LD_LIBRARY_PATH") or "").split(":") if d]
    if not dirs:
        return ok("LD_LIBRARY_PATH is not set")
    hits = {}
    for d in dirs:
        for lib in f.m.glob(os.path.join(d, "libcudart.so.*"), host=False):
            m = re.search(r"libcudart\.so\.(\d+)", lib)
            if m:
                hits.setdefault(d, set()).add(int(m.group(1)))
    mm = V.major_minor(f.torch.cuda)
    majors = set().union(*hits.values()) if hits else set()
    foreign = [d for d, v in hits.items() if mm and mm[0] not in v]
    shadows = f.shadowed_libs if f.torch.cuda else []
    details = [f"{d}: libcudart.so.{sorted(v)}" for d, v in hits.items()]
    details += [f"{s.found} ({s.version or 'version unknown'}) is loaded instead of "
                f"{s.wheel} ({s.wheel_dist} {s.wheel_version}): {s.verdict}" for s in shadows]
    older = [s for s in shadows if s.verdict == "older"]
    unknown = [s for s in shadows if s.verdict == "unknown"]
    drop = set(foreign) | {os.path.dirname(s.found) for s in older + unknown}
    keep = ":".join(d for d in dirs if d not in drop)
    fix = local(export("LD_LIBRARY_PATH", keep) if keep else unset("LD_LIBRARY_PATH"),
                "torch's wheels bring their own CUDA libraries; the loader searches "
                "LD_LIBRARY_PATH before them, so a directory of other ones goes.")
    if older:
        s = older[0]
        more = f" (+{len(older) - 1} more)" if len(older) > 1 else ""
        return fail(f"{s.found} ({s.version}) is loaded before torch's own {s.soname} "
                    f"({s.wheel_dist} {s.wheel_version}): older than what torch was built with "
                    f"(undefined symbols or version errors at `import torch`){more}", details, fix)
    if foreign:
        return warn(f"LD_LIBRARY_PATH has CUDA runtimes of another major than torch's "
                    f"{f.torch.cuda}: {', '.join(foreign)}", details, fix)
    if unknown:
        s = unknown[0]
        return warn(f"{s.found} is loaded before torch's own {s.soname} ({s.wheel_dist} "
                    f"{s.wheel_version}), and its version is unknown", details, fix)
    if len(majors) > 1:
        return warn("several CUDA runtimes on LD_LIBRARY_PATH", details, fix)
    if shadows:
        return info(f"{len(shadows)} of torch's CUDA libraries are loaded from LD_LIBRARY_PATH "
                    "instead of its wheels, at the same or a newer version of the same major",
                    details)
    return ok("no CUDA library on LD_LIBRARY_PATH shadows torch's" if not hits else
              "CUDA runtime on LD_LIBRARY_PATH matches torch", details)


def arch_value(a, ccs, supported) -> str | None:
    """`a`'s valid entries plus the architectures of `ccs` it misses, in its own syntax; None
    when no value of that syntax covers them."""
    kept = [e for e in re.split(r"[;\s]+", a.value.strip()) if e and e not in a.invalid]
    for cc in ccs:
        if a.covers(cc):
            continue
        if a.var == "TORCH_CUDA_ARCH_LIST":
            exact = f"{cc[0]}.{cc[1]}"
            lower = [s for s in supported if "a" not in s and V.major_minor(s) <= cc]
            entry = exact if exact in supported else (
                max(lower, key=V.major_minor) + "+PTX" if lower else None)
        elif a.var == "FLASH_ATTN_CUDA_ARCHS":
            entry = f"{cc[0]}0"  # the family's token: sm_80 code runs on sm_86 and sm_89
        else:
            entry = f"{cc[0]}{cc[1]}"
        if entry is None:
            return None
        kept.append(entry)
    return ";".join(kept)


@check("cuda.arch_list", "TORCH_CUDA_ARCH_LIST and friends include the GPU's architecture")
def arch_list(f):
    lists = f.arch_lists
    if not lists:
        return ok("no TORCH_CUDA_ARCH_LIST, FLASH_ATTN_CUDA_ARCHS or CUDAARCHS: builds compile "
                  "for the GPUs they see")
    ccs = sorted({g.cc for g in f.gpus if g.cc})
    details = [f"{a.var}={a.value!r}, read by {a.reader}: " + (
        "every architecture" if a.everything else ", ".join(
            f"sm_{t.cc[0]}{t.cc[1]}{'a' if t.exact else ''}" + ("+PTX" if t.ptx else "")
            for t in a.targets) or "nothing") for a in lists]
    if not ccs:
        return info(f"{', '.join(a.var for a in lists)} set; no GPU here to judge it against",
                    details)
    names = ", ".join(f"sm_{c[0]}{c[1]}" for c in ccs)
    _, supported = f.torch_arch_tables
    problems, fix = [], Fix()
    for a in lists:
        # flash-attn runs on sm_80+ only (precision.flash_attn judges older GPUs)
        mine = [c for c in ccs if c >= (8, 0)] if a.var == "FLASH_ATTN_CUDA_ARCHS" else ccs
        missing = [cc for cc in mine if not a.covers(cc)]
        if not (missing or a.invalid):
            continue
        if a.var == "TORCH_CUDA_ARCH_LIST":
            ds_honours = f.deepspeed_version and not f.ds_jit_ignores_arch_list
            status = "fail" if ds_honours and missing and f.torch.cuda else "warn"
            who = ("torch's extension builds (DeepSpeed's ops built at install with "
                   "DS_BUILD_OPS=1" + (", and its JIT builds" if ds_honours else "") + ")")
        else:
            status, who = "info", a.reader
        if a.invalid:
            problems.append((status, f"{a.var}={a.value!r}: {', '.join(a.invalid)} is no "
                             f"architecture {a.reader} knows" + (
                                 " (it raises \"Unknown CUDA arch\")"
                                 if a.var == "TORCH_CUDA_ARCH_LIST" else " (it ignores it)")))
        if missing:
            gone = ", ".join(f"sm_{c[0]}{c[1]}" for c in missing)
            problems.append((status, f"{a.var}={a.value!r} leaves out {gone}: kernels built by "
                             f"{who} cannot run on this GPU (\"no kernel image is available "
                             "for execution on the device\")"))
        value = arch_value(a, mine, supported)
        if value is not None:
            fix += local(export(a.var, f'"{value}"'), f"{a.var} with {names} added (or unset "
                         f"it: builds then compile for the GPUs they see).")
        else:
            fix += local(unset(a.var), f"No {a.var} value covers {names}: builds then compile "
                         "for the GPUs they see.")
    if not problems:
        return ok(f"the build architecture lists cover {names}", details)
    rank = {"info": 0, "warn": 1, "fail": 2}
    status, summary = max(problems, key=lambda p: rank[p[0]])
    return result(status, summary, [p[1] for p in problems if p[1] != summary] + details, fix)
