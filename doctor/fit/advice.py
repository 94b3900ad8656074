"""Which knob to turn first when a config does not fit, and the floor no knob gets under."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .estimate import Estimate, Setup, estimate


@dataclass
class Knob:
    name: str  # what to change, in the recipe's words
    setup: Setup
    estimate: Estimate
    saves: int  # bytes


# Knobs that change memory but not what is trained: turned before those that do.
FREE = ("keep_16bit", "loss_chunk", "optimizer", "lora_dropout", "batch_size", "use_activation")


def knobs(setup: Setup) -> list[tuple[str, Setup]]:
    """Each single change the pack's recipe offers, applied to `setup`."""
    out = []
    if setup.upcast and setup.weight_bytes < 4 and setup.deepspeed is None:
        out.append(("keep_16bit=True (patches.keep_16bit: no fp32 copy of the frozen weights)",
                    replace(setup, upcast=False)))
    if not setup.loss_chunk:
        out.append(("loss_chunk=128 (patches.chunked_ce: logits 128 tokens at a time)",
                    replace(setup, loss_chunk=128)))
    if setup.optimizer in ("adamw", "adam"):
        out.append(("optimizer='paged_adamw8bit' (8-bit AdamW states)",
                    replace(setup, optimizer="paged_adamw8bit")))
    if setup.lora_r > 8:
        r = max(8, setup.lora_r // 2)
        out.append((f"lora_r={r}", replace(setup, lora_r=r)))
    if setup.seq > 256:
        n = max(256, setup.seq // 2)
        out.append((f"max_length={n}", replace(setup, seq=n)))
    if setup.batch > 1:
        out.append(("batch_size=1 (raise accumulative_counts instead)", replace(setup, batch=1)))
    if not setup.grad_ckpt:
        out.append(("use_activation_checkpointing=True", replace(setup, grad_ckpt=True)))
    if setup.lora_dropout > 0:
        out.append(("lora_dropout=0 (no dropout masks)", replace(setup, lora_dropout=0.0)))
    if setup.deepspeed is not None:
        out.append(("train without --deepspeed (its gradient buckets cost more than they save "
                    "on one GPU)", replace(setup, deepspeed=None)))
    elif setup.optimizer not in ("sgd",):
        from .estimate import DeepSpeed

        # What `xtuner train --deepspeed deepspeed_zero2_offload` would do: optimizer on the CPU,
        # but XTuner's JSON keeps DeepSpeed's 5e8-element buckets with overlap_comm.
        out.append(("--deepspeed deepspeed_zero2_offload (optimizer states on the CPU)",
                    replace(setup, deepspeed=DeepSpeed(stage=2, offload_optimizer=True,
                                                       overlap_comm=True))))
    return out


def ranked(setup: Setup) -> list[Knob]:
    """Single knobs that lower the estimate, the largest saving first."""
    base = estimate(setup).total
    found = []
    for name, changed in knobs(setup):
        est = estimate(changed)
        if est.total < base:
            found.append(Knob(name, changed, est, base - est.total))
    return sorted(found, key=lambda k: -k.saves)


def plan(setup: Setup, budget: int, max_steps: int = 6) -> list[Knob]:
    """Until the estimate fits `budget` bytes: the knob that saves most among those that leave the
    training as it is (patches, optimizer, dropout, batch split), then among the others (rank,
    length). DeepSpeed is left out: on one GPU its buffers cost about what offloading saves."""
    steps = []
    current = setup
    while estimate(current).total > budget and len(steps) < max_steps:
        options = [k for k in ranked(current) if not k.name.startswith("--deepspeed")]
        free = [k for k in options if k.name.startswith(FREE)]
        if not options:
            break
        step = (free or options)[0]
        steps.append(step)
        current = step.setup
    return steps


def floor(setup: Setup) -> Estimate:
    """Every knob at its smallest setting: 256 tokens, batch 1, r=8, no dropout, 8-bit AdamW,
    16-bit weights, chunked loss, checkpointing, no DeepSpeed."""
    return estimate(replace(
        setup, seq=min(setup.seq, 256), batch=1, lora_r=min(setup.lora_r, 8), lora_dropout=0.0,
        optimizer="paged_adamw8bit" if setup.optimizer != "sgd" else "sgd", upcast=False,
        loss_chunk=128, grad_ckpt=True, deepspeed=None,
    ))
