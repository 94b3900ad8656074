"""Multi-GPU machines: NCCL peer-to-peer on GeForce cards (NCCL_P2P_DISABLE), mixed GPU models,
and one process per GPU (NPROC_PER_NODE, which `xtuner train` hands to torchrun, against the
GPUs CUDA_VISIBLE_DEVICES leaves visible).

XTuner's launcher starts torchrun when NPROC_PER_NODE (or NNODES) is above 1 and runs one rank
per process on cuda:LOCAL_RANK; CUDA numbers the visible GPUs 0..N-1 after CUDA_VISIBLE_DEVICES,
in its own order (fastest first) unless CUDA_DEVICE_ORDER=PCI_BUS_ID, the order nvidia-smi uses.
"""

from __future__ import annotations

from ..actions import export, local, unset
from ..findings import Fix
from . import check, fail, gib, info, ok, skip, warn

CATEGORY = "multi-GPU"

P2P_LEGEND = {"OK": "supported", "NS": "not supported", "CNS": "chipset not supported",
              "GNS": "GPU not supported", "TNS": "topology not supported",
              "NS2": "not supported", "U": "unknown"}


def geforce(name: str) -> bool:
    """GeForce and TITAN cards: NVIDIA's driver gives consumer cards no (working) peer access."""
    low = name.lower()
    return "geforce" in low or "titan" in low


def nproc(f) -> int | None:
    raw = f.m.getenv("NPROC_PER_NODE")
    if raw is None:
        return None
    return int(raw) if raw.strip().isdigit() else -1


@check("multigpu.p2p", "NCCL peer-to-peer on GeForce cards (NCCL_P2P_DISABLE)")
def p2p(f):
    gpus = f.gpus
    if len(gpus) < 2:
        return skip("fewer than 2 GPUs")
    consumer = [g for g in gpus if geforce(g.name)]
    seen = {g.index for g in gpus}  # the pairs among the GPUs the run sees
    matrix = {k: v for k, v in f.p2p_matrix.items() if k[0] in seen and k[1] in seen}
    bad_pairs = [(a, b, s) for (a, b), s in matrix.items() if a < b and s != "OK"]
    details = [f"GPU {g.index}: {g.name}" for g in gpus]
    details += [f"nvidia-smi topo -p2p r: GPU{a}<->GPU{b} {P2P_LEGEND.get(s, s)} ({s})"
                for a, b, s in bad_pairs]
    if not matrix:
        details.append("nvidia-smi topo -p2p r: no answer (P2P status unknown)")
    disabled = (f.m.getenv("NCCL_P2P_DISABLE") or "").strip() == "1"
    if disabled:
        if matrix and not bad_pairs and not consumer:
            return info("NCCL_P2P_DISABLE=1 turns off peer-to-peer these GPUs support (all "
                        "pairs OK): all-reduce goes through host memory, slower", details,
                        local(unset("NCCL_P2P_DISABLE")))
        return ok("NCCL_P2P_DISABLE=1 (NCCL does not try peer-to-peer)", details)
    if consumer or bad_pairs:
        why = (f"{len(consumer)} GeForce GPU(s)" if consumer else "GPU pairs without P2P")
        return warn(f"{why} and NCCL_P2P_DISABLE is not set: multi-GPU runs can hang at the "
                    "first all-reduce or fail with NCCL errors where P2P is missing or broken",
                    details, local(export("NCCL_P2P_DISABLE", "1"),
                                 "NCCL then moves data through host shared memory (keep "
                                 "/dev/shm large: `docker run --shm-size=1g` or `--ipc=host`)."))
    return ok(f"{len(gpus)} GPUs with peer-to-peer" if matrix else
              f"{len(gpus)} data-centre GPUs (P2P status not queried)", details)


@check("multigpu.mixed", "the GPUs of a multi-GPU run are the same model")
def mixed(f):
    gpus = f.gpus
    if len(gpus) < 2 or f.visibility.count < 2:
        return skip("fewer than 2 GPUs" if len(f.all_gpus) < 2 else "fewer than 2 GPUs visible")
    groups: dict = {}
    for g in gpus:
        groups.setdefault((g.name, round((g.memory_total or 0) / 2**30)), []).append(g)
    details = [f"GPU {g.index}: {g.name}, {gib(g.memory_total)}, compute capability {g.cc_text}"
               for g in gpus]
    if len(groups) == 1:
        return ok(f"{len(gpus)} x {gpus[0].name}", details)
    # The largest set of identical GPUs, the bigger cards on a tie.
    best = max(groups.values(), key=lambda gs: (len(gs), gs[0].memory_total or 0))
    smallest = min(gpus, key=lambda g: g.memory_total or 0)
    ids = ",".join(str(g.index) for g in best)
    lines = [export("CUDA_DEVICE_ORDER", "PCI_BUS_ID"), export("CUDA_VISIBLE_DEVICES", ids)]
    if len(best) > 1:
        lines.append(export("NPROC_PER_NODE", str(len(best))))
    text = (f"A data-parallel run (DDP, ZeRO) steps every rank at the pace of the slowest GPU and "
            f"must fit the smallest ({smallest.name}, {gib(smallest.memory_total)}); bf16 needs "
            "every GPU at sm_80+. To train on the "
            + (f"{len(best)} identical {best[0].name}s only" if len(best) > 1
               else f"{best[0].name} alone") + " (CUDA_DEVICE_ORDER=PCI_BUS_ID makes the "
            "indices nvidia-smi's):")
    summary = "mixed GPUs: " + " + ".join(f"{len(gs)} x {gs[0].name}" for gs in groups.values())
    return warn(summary, details, Fix(text=text) + sum((local(x) for x in lines), Fix()))


@check("multigpu.launch", "one process per visible GPU (NPROC_PER_NODE, CUDA_VISIBLE_DEVICES)")
def launch(f):
    n = nproc(f)
    if not f.gpus:
        if n and n > 1:
            return info(f"NPROC_PER_NODE={n} without a GPU: torchrun starts {n} CPU processes "
                        "(the gloo backend)")
        return skip("no GPU")
    vis = f.visibility
    listed = [e.strip() for e in (vis.value or "").split(",") if e.strip()][:vis.count]
    visible = listed or [str(g.index) for g in vis.gpus]
    details = [f"GPUs visible to CUDA: {vis.count} ({', '.join(visible) or 'none'})"]
    if vis.duplicate:
        return fail(f"CUDA_VISIBLE_DEVICES={vis.value!r} lists GPU {vis.duplicate} twice: two "
                    "ranks would share one GPU (NCCL: \"Duplicate GPU detected\")", details,
                    local(export("CUDA_VISIBLE_DEVICES", ",".join(visible)), "Each GPU once."))
    if n == -1:
        return fail(f"NPROC_PER_NODE={f.m.getenv('NPROC_PER_NODE')!r} is not a number: `xtuner "
                    "train` fails with ValueError", details,
                    local(export("NPROC_PER_NODE", str(max(len(visible), 1)))))
    if n is not None and n > len(visible):
        return fail(f"NPROC_PER_NODE={n} but {len(visible)} GPU(s) visible: ranks "
                    f"{len(visible)}..{n - 1} have no GPU of their own (cuda:LOCAL_RANK does "
                    "not exist, or NCCL \"Duplicate GPU detected\")", details,
                    local(export("NPROC_PER_NODE", str(len(visible))),
                        "One process per visible GPU."))
    if n is None and len(visible) > 1:
        return info(f"{len(visible)} GPUs visible; `xtuner train` uses one unless NPROC_PER_NODE "
                    "says more", details,
                    Fix([f"NPROC_PER_NODE={len(visible)} xtuner train CONFIG --deepspeed "
                         "deepspeed_zero2"],
                        "One process per GPU (torchrun through xtuner's launcher); "
                        f"`python -m doctor fit CONFIG --gpus {len(visible)} --deepspeed zero2` "
                        "gives the per-GPU memory first."))
    if n and n > 1:
        return ok(f"NPROC_PER_NODE={n}: one process per GPU of {len(visible)} visible", details)
    return ok(f"one process on {len(visible)} visible GPU(s)", details)
