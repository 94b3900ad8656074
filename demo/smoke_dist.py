"""`make smoke-dist`: the tiny model trained by 2 CPU processes through the real `xtuner train`.

`NPROC_PER_NODE=2 xtuner train` (xtuner's launcher runs torchrun; gloo, DDP) and, when DeepSpeed
is installed, the same with `--deepspeed configs/deepspeed/zero2_8gb.json`, each against one
process with the same global batch: 2 processes x `accumulative_counts` K against 1 process x 2K,
same seed. The samplers interleave one seeded stream of indices over the ranks (rank r takes
items r, r+2, ...), so optimizer step t sees the same sequences in both runs and, with gradients
averaged over ranks and losses divided by K, the same gradient: the curves differ only by
floating-point summation order. Each rank records every iteration's loss (RankLossHook); the
loss of step t is the mean over the global batch of that step.

ZeRO-2 (when DeepSpeed is installed) trains with the recipe's 8-bit AdamW as a DeepSpeed client
optimizer and is held to the same TOLERANCE. It matches only because patches/deepspeed_init_order
builds the model where Runner does (without it the LoRA A weights start from other random numbers
and the curves part from step 2 by up to 1e-2). What remains is 8-bit AdamW's own: ZeRO hands the
optimizer one flat partition per rank, so the LoRA tensors (under 4096 elements each, 32-bit
states without DeepSpeed) get 8-bit states, ~1e-4 of step loss; docs/multi-gpu.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

from demo.steps import REPO, RunFailure, main_of, xtuner

CONFIG = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu_dist.py"
ZERO2 = REPO / "configs" / "deepspeed" / "zero2_8gb.json"
GLOBAL_BATCH = 4  # packed sequences per optimizer step
STEPS = 8  # optimizer steps compared
# Max |difference| of a step's loss allowed between process counts. Measured: ~1e-6 for DDP (the
# order of the gradient all-reduce and of float32 sums; mean loss ~6), ~1e-4 for ZeRO-2 (8-bit
# AdamW states over a flat partition; 1e-7 with torch's AdamW). 1e-3 is above that noise and
# below what a real mistake moves: one sample of a global batch of 4 swapped, an accumulation off
# by one, or LoRA initialized from other random numbers changes step losses by 1e-2 to 1e-1.
TOLERANCE = 1e-3


class DistSmokeFailure(RunFailure):
    pass


def step_losses(work_dir: Path, accumulation: int) -> list[float]:
    """The mean loss over the global batch of each optimizer step."""
    files = sorted(work_dir.glob("losses_rank*.json"))
    if not files:
        raise DistSmokeFailure(f"no losses_rank*.json under {work_dir}")
    ranks = [json.loads(f.read_text()) for f in files]
    world = ranks[0]["world_size"]
    if len(ranks) != world:
        raise DistSmokeFailure(f"{work_dir}: {len(ranks)} rank files, world size {world}")
    n = min(len(r["losses"]) for r in ranks) // accumulation
    return [sum(sum(r["losses"][s * accumulation:(s + 1) * accumulation]) for r in ranks)
            / (accumulation * world) for s in range(n)]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(work_dir: Path, procs: int, *extra: str, steps: int = STEPS,
          cfg_options: tuple[str, ...] = ()) -> tuple[list[float], float]:

    accumulation = GLOBAL_BATCH // procs
    # xtuner's launcher picks a random port in 20000-29999 without PORT: take a free one instead
    env = dict(NPROC_PER_NODE=str(procs), PORT=str(free_port()))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    started = time.monotonic()
    try:
        xtuner("train", str(CONFIG), "--work-dir", str(work_dir), *extra, "--cfg-options",
               f"optim_wrapper.accumulative_counts={accumulation}",
               "train_cfg.max_epochs=None", f"train_cfg.max_iters={steps * accumulation}",
               *cfg_options, log=work_dir / "train.log").wait()
    except RunFailure as exc:
        raise DistSmokeFailure(str(exc)) from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return step_losses(work_dir, accumulation), time.monotonic() - started


def compare(name: str, curve: list[float], reference: list[float]) -> float:
    if len(curve) != len(reference):
        raise DistSmokeFailure(f"{name}: {len(curve)} steps, the 1-process run {len(reference)}")
    diff = max(abs(a - b) for a, b in zip(curve, reference, strict=True))
    if not diff <= TOLERANCE:
        raise DistSmokeFailure(f"{name}: step losses differ from the 1-process run by up to "
                               f"{diff:.2e} (tolerance {TOLERANCE:g}):\n  {curve}\n  {reference}")
    return diff


def deepspeed_installed() -> bool:
    return importlib.util.find_spec("deepspeed") is not None


def run(work_dir: Path, deepspeed: bool | None = None, cfg_options: tuple[str, ...] = ()) -> dict:
    from components import tiny

    started = time.monotonic()
    work_dir = work_dir.resolve()
    shutil.rmtree(work_dir, ignore_errors=True)
    tiny.build(REPO / ".cache" / "tiny-llama")  # before the ranks start: one writer
    if deepspeed is None:
        deepspeed = deepspeed_installed()
    # (name, processes, xtuner train arguments, the run it is compared with)
    runs = [("1 process", 1, (), None), ("2 processes, DDP", 2, (), "1 process")]
    if deepspeed:
        runs.append(("2 processes, DeepSpeed ZeRO-2", 2, ("--deepspeed", str(ZERO2)), "1 process"))
    result = dict(runs={})
    for i, (name, procs, extra, against) in enumerate(runs):
        (work_dir / str(i)).mkdir(parents=True)
        curve, seconds = train(work_dir / str(i), procs, *extra, cfg_options=cfg_options)
        line = (f"[{i + 1}/{len(runs)}] {name} x accumulation {GLOBAL_BATCH // procs}: "
                f"{len(curve)} steps, loss {curve[0]:.4f} -> {curve[-1]:.4f}, {seconds:.0f} s")
        if not curve[-1] < curve[0]:
            raise DistSmokeFailure(f"{name}: loss did not fall: {curve[0]:.4f} -> {curve[-1]:.4f}")
        if against is not None:
            diff = compare(name, curve, result["runs"][against]["curve"])
            line += f"; max |step loss - 1 process| = {diff:.1e} (tolerance {TOLERANCE:g})"
        print(line, flush=True)
        print("      step losses: " + " ".join(f"{x:.6f}" for x in curve), flush=True)
        result["runs"][name] = dict(curve=curve, seconds=seconds)
    if not deepspeed:
        print("(no ZeRO-2 run: DeepSpeed is not installed, `make env DEEPSPEED=1`, or "
              "--no-deepspeed)")
    result["seconds"] = time.monotonic() - started
    print(f"smoke-dist OK in {result['seconds']:.0f} s")
    return result


def main(argv=None) -> int:
    options = [(("--no-deepspeed",), dict(action="store_true", help="DDP only")),
               (("--cfg-options",), dict(nargs="+", default=[], metavar="KEY=VALUE",
                help="more config overrides for every run, e.g. optim_wrapper.optimizer.type="
                     "AdamW (torch's AdamW, not 8-bit)"))]
    return main_of("smoke-dist", "demo.smoke_dist", __doc__, "smoke_dist",
                   lambda args: run(args.work_dir, deepspeed=False if args.no_deepspeed else None,
                                    cfg_options=tuple(args.cfg_options)),
                   options=options, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
