"""Resources: RAM and swap, disk where the HF cache lives and in the working
directory, VRAM free against the 8 GB the configs are sized for, and the directories a run
writes (HF caches, work dir, JIT and Triton caches, TMPDIR) writable by this user."""

from __future__ import annotations

import os

from ..actions import export, local
from ..findings import Fix
from . import check, gib, ok, result, skip, warn

CATEGORY = "resources"

GB = 10**9
MODEL_7B = 15 * GB  # a 7B model in fp16 safetensors (~2 bytes x 7.7B parameters)
MERGE_RAM = 16 * 2**30  # `xtuner convert merge --device cpu` holds the fp16 model in RAM
WORK_DIR_NEED = 20 * GB  # checkpoints and adapters + a merged fp16 copy (~15 GB)
VRAM_TARGET = 7.5 * 2**30  # an "8 GB" card reports ~7.6-8 GiB total
VRAM_FREE_MIN = 7 * 2**30  # the 7B QLoRA configs' peak is sized to this


@check("resources.ram", "RAM and swap for loading and merging a 7B model")
def ram(f):
    mi = f.meminfo
    if "MemTotal" not in mi:
        return skip("/proc/meminfo unreadable")
    total, avail = mi["MemTotal"], mi.get("MemAvailable")
    swap = mi.get("SwapTotal", 0)
    details = [f"RAM {gib(total)} ({gib(avail)} available), swap {gib(swap)}"]
    if total + swap >= MERGE_RAM:
        return ok(f"RAM {gib(total)} + swap {gib(swap)}", details)
    if f.platform.wsl:
        fix = Fix(["wsl --shutdown"], "WSL2 gets half the Windows RAM by default: raise it in "
                  "%UserProfile%\\.wslconfig ([wsl2] memory=16GB, swap=16GB), then restart WSL "
                  "from Windows.")
    else:
        fix = Fix(["sudo fallocate -l 16G /swapfile", "sudo chmod 600 /swapfile",
                   "sudo mkswap /swapfile", "sudo swapon /swapfile"],
                  "Swap lets the CPU merge finish (slowly) on a small-RAM machine.")
    return warn(f"RAM {gib(total)} + swap {gib(swap)} < 16 GiB: `xtuner convert merge "
                "--device cpu` of a 7B model (fp16, ~15 GB) runs out of memory", details, fix)


@check("resources.disk", "disk for the model download, checkpoints and the merged copy")
def disk(f):
    cache = f.hf_cache
    cwd = f.m.cwd()
    at_cache, at_cwd = f.m.disk(cache), f.m.disk(cwd)
    details = [f"HF cache {cache}: {gib(at_cache[1]) if at_cache else 'unknown'} free",
               f"working directory {cwd}: {gib(at_cwd[1]) if at_cwd else 'unknown'} free"]
    if not at_cache or not at_cwd:
        return skip("free space unknown", details)
    same_fs = f.m.same_filesystem(cache, cwd)
    short = []
    if same_fs:
        if at_cwd[1] < MODEL_7B + WORK_DIR_NEED:
            need = (MODEL_7B + WORK_DIR_NEED) // GB
            short.append(f"{at_cwd[1] / GB:.0f} GB free for the download and the work "
                         f"directory together (a 7B run needs ~{need} GB)")
    else:
        if at_cache[1] < MODEL_7B:
            short.append(f"{at_cache[1] / GB:.0f} GB free at the HF cache (a 7B download is "
                         f"~{MODEL_7B // GB} GB)")
        if at_cwd[1] < WORK_DIR_NEED:
            short.append(f"{at_cwd[1] / GB:.0f} GB free in the working directory (checkpoints and "
                         f"a merged copy need ~{WORK_DIR_NEED // GB} GB)")
    if short:
        return warn(short[0], details + short[1:], Fix(
            ["export HF_HOME=/path/on/a/bigger/disk/huggingface"],
            "Put the cache on a disk with room (persist it in your shell's rc file), and run "
            "from a directory with room for work_dirs/."))
    return ok(f"{at_cwd[1] / GB:.0f} GB free here, {at_cache[1] / GB:.0f} GB at the HF cache",
              details)


@check("resources.vram", "VRAM free against the 8 GB target")
def vram(f):
    if not f.gpus:
        return skip("no GPU")
    details, low = [], []
    for g in f.gpus:
        details.append(f"GPU {g.index} {g.name}: {gib(g.memory_total)} total, "
                       f"{gib(g.memory_free)} free")
        if g.memory_total is not None and g.memory_total < VRAM_TARGET:
            low.append(f"GPU {g.index} has {gib(g.memory_total)}: below the 8 GB the configs "
                       "are sized for")
        elif g.memory_free is not None and g.memory_free < VRAM_FREE_MIN:
            low.append(f"GPU {g.index}: only {gib(g.memory_free)} free (other processes: a "
                       "desktop, a browser, another run)")
    details.append("after training, merge on the CPU: `xtuner convert merge ... --device cpu`")
    if low:
        return warn(low[0], details + low[1:], local(
            export("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True"),
            "Close what holds GPU memory (`nvidia-smi` lists it); keep batch_size=1 and "
            "max_length 2048; expandable segments cut fragmentation."))
    g = f.gpus[0]
    return ok(f"{gib(g.memory_free)} free on GPU {g.index}", details)


# What a directory that cannot be written breaks, by the variable that moves it.
BREAKS = {
    "HF_HUB_CACHE": ("fail", "the model download cannot be stored"),
    "HF_DATASETS_CACHE": ("fail", "datasets cannot convert or tokenize (the pack's loaders "
                                  "write Arrow files there)"),
    "--work-dir": ("fail", "`xtuner train` cannot write its checkpoints and logs"),
    "HF_HOME": ("warn", "huggingface_hub keeps its token and hf-xet's chunk cache there"),
    "TMPDIR": ("warn", "pip builds, nvcc and ninja write temporary files there"),
    "TORCH_EXTENSIONS_DIR": ("info", "DeepSpeed builds its JIT ops there"),
    "TRITON_CACHE_DIR": ("info", "Triton kernels (torch.compile, liger-kernel) are cached there"),
}
# Where else each can go, first writable wins ({home}, {cwd}, {tmp} filled in).
ELSEWHERE = {
    "HF_HOME": ("{home}/.cache/huggingface", "{cwd}/.cache/huggingface", "{tmp}/huggingface"),
    "HF_HUB_CACHE": ("{home}/.cache/huggingface/hub", "{cwd}/.cache/huggingface/hub"),
    "HF_DATASETS_CACHE": ("{home}/.cache/huggingface/datasets",
                          "{cwd}/.cache/huggingface/datasets", "{tmp}/huggingface/datasets"),
    "--work-dir": ("{home}/work_dirs", "{tmp}/work_dirs"),
    "TMPDIR": ("/tmp", "/var/tmp", "{home}/.cache/tmp", "{cwd}/.tmp"),
    "TORCH_EXTENSIONS_DIR": ("{home}/.cache/torch_extensions", "{tmp}/torch_extensions"),
    "TRITON_CACHE_DIR": ("{home}/.triton/cache", "{tmp}/triton"),
}


def severity(f, d) -> tuple[str, str]:
    status, why = BREAKS[d.var]
    if d.var == "HF_HUB_CACHE" and (f.m.getenv("HF_HUB_OFFLINE") or "") not in ("", "0"):
        return "warn", "HF_HUB_OFFLINE is set: only models already in it can load"
    if d.var == "TORCH_EXTENSIONS_DIR" and f.deepspeed_version:
        return "warn", why
    if d.var == "TRITON_CACHE_DIR" and f.torch.cuda:
        return "warn", why
    return status, why


def elsewhere(f, d) -> str | None:
    """A directory for the same role that this user can write (verified), or None."""
    home = f.m.getenv("HOME") or os.path.expanduser("~")
    tmp = next((x.path for x in f.write_dirs if x.var == "TMPDIR" and x.writable), "/tmp")
    places = ([d.default] if d.source != "default" else []) + [
        p.format(home=home, cwd=f.m.cwd(), tmp=tmp) for p in ELSEWHERE[d.var]]
    for place in places:
        if os.path.normpath(place) != d.path and f.judge_dir(d.role, d.var, place).writable:
            return os.path.normpath(place)
    return None


@check("resources.writable", "the directories a run writes are writable (caches, work dir, tmp)")
def writable(f):
    dirs = f.write_dirs
    details = [f"{d.role}: {d.path} ({d.source}): " + ("writable" if d.writable else d.why)
               for d in dirs]
    bad = [d for d in dirs if not d.writable]
    if not bad:
        return ok(f"{len(dirs)} directories writable (HF caches, work dir, JIT caches, tmp)",
                  details)
    moved_home = any(d.var == "HF_HOME" for d in bad)
    problems, fix = [], Fix()
    for d in bad:
        status, why = severity(f, d)
        problems.append((status, f"{d.role} {d.path} is not writable ({d.why}): {why}"))
        if moved_home and d.source == "default" and d.var in ("HF_HUB_CACHE",
                                                             "HF_DATASETS_CACHE"):
            continue  # under HF_HOME: moving HF_HOME moves it
        place = elsewhere(f, d)
        if d.var == "--work-dir":
            fix += Fix(text=f"Run `xtuner train` from a directory you can write, or give it one: "
                            f"`xtuner train CONFIG --work-dir {place or 'DIR'}`.")
        elif place:
            fix += local(export(d.var, place), f"{d.var}: {place} is writable here.")
        else:
            fix += Fix(text=f"Point {d.var} at a directory you can write.")
        if "belongs to" in d.why:
            fix += Fix(text=f"(Or, if {d.nearest} is yours to take: "
                            f"`sudo chown -R \"$(id -u):$(id -g)\" {d.nearest}`.)")
    rank = {"info": 0, "warn": 1, "fail": 2}
    status, summary = max(problems, key=lambda p: rank[p[0]])
    more = [p[1] for p in problems if p[1] != summary]
    return result(status, summary + (f" (+{len(more)} more)" if more else ""),
                  more + details, fix)
