"""Which knob to turn first when a config does not fit, and the floor no knob gets under.

A config fits when the top of the estimate's error band (band.py) is within the budget, so the
plan is judged on that top, not on the point estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .band import band, upper_of
from .estimate import DeepSpeed, Estimate, Setup, estimate


def upper_bytes(setup: Setup, est: Estimate | None = None) -> int:
    """The top of the error band of the estimate of `setup`."""
    est = est or estimate(setup)
    return upper_of(est, band(setup).margin)


@dataclass(frozen=True)
class Change:
    """One change the pack's recipe offers."""

    name: str  # what to change, in the recipe's words
    setup: Setup
    free: bool  # leaves what is trained as it is (patches, optimizer, dropout, batch split)
    planned: bool = True  # the plan may turn it (DeepSpeed is only listed as an alternative)


@dataclass
class Knob:
    change: Change
    estimate: Estimate
    saves: int  # bytes of the point estimate
    upper: int  # top of the band after the change

    @property
    def name(self) -> str:
        return self.change.name

    @property
    def setup(self) -> Setup:
        return self.change.setup


def changes(setup: Setup) -> list[Change]:
    """Each single change the pack's recipe offers, applied to `setup`."""
    out = []
    if setup.fp32_frozen:
        out.append(Change("keep_16bit=True (patches.keep_16bit: no fp32 copy of the frozen "
                          "weights)", replace(setup, upcast=False), free=True))
    if not setup.logit_chunk:
        out.append(Change("loss_chunk=128 (patches.chunked_ce: logits 128 tokens at a time)",
                          replace(setup, loss_chunk=128), free=True))
    # issue 10's patches (PatchedFinetune / recipe() arguments)
    if setup.arch.attn == "eager" and not setup.sdpa_attention:
        out.append(Change("sdpa_attention=True (remote-code attention through SDPA)",
                          replace(setup, sdpa_attention=True), free=True))
    if not setup.offload_embeddings and not setup.arch.tied:
        out.append(Change("offload_embeddings=True (frozen input embedding table on the CPU)",
                          replace(setup, offload_embeddings=True), free=True))
    if setup.grad_ckpt and not setup.offload_checkpoints:
        out.append(Change("offload_checkpoints=True (activation checkpoints in pinned CPU "
                          "memory)", replace(setup, offload_checkpoints=True), free=True))
    if setup.optimizer in ("adamw", "adam"):
        out.append(Change("optimizer='paged_adamw8bit' (8-bit AdamW states)",
                          replace(setup, optimizer="paged_adamw8bit"), free=True))
    if setup.lora_r > 8:
        r = max(8, setup.lora_r // 2)
        out.append(Change(f"lora_r={r}", replace(setup, lora_r=r), free=False))
    if setup.seq > 256:
        n = max(256, setup.seq // 2)
        out.append(Change(f"max_length={n}", replace(setup, seq=n), free=False))
    if setup.batch > 1:
        out.append(Change("batch_size=1 (raise accumulative_counts instead)",
                          replace(setup, batch=1), free=True))
    if not setup.grad_ckpt:
        out.append(Change("use_activation_checkpointing=True",
                          replace(setup, grad_ckpt=True), free=True))
    if setup.lora_dropout > 0:
        out.append(Change("lora_dropout=0 (no dropout masks)",
                          replace(setup, lora_dropout=0.0), free=True))
    if setup.deepspeed is not None:
        out.append(Change("train without --deepspeed (its gradient buckets cost more than they "
                          "save on one GPU)", replace(setup, deepspeed=None), free=True,
                          planned=False))
    elif setup.optimizer not in ("sgd",):
        # What `xtuner train --deepspeed deepspeed_zero2_offload` would do: optimizer on the CPU,
        # but XTuner's JSON keeps DeepSpeed's 5e8-element buckets with overlap_comm.
        out.append(Change("--deepspeed deepspeed_zero2_offload (optimizer states on the CPU)",
                          replace(setup, deepspeed=DeepSpeed(stage=2, offload_optimizer=True,
                                                             overlap_comm=True)),
                          free=True, planned=False))
    return out


def ranked(setup: Setup) -> list[Knob]:
    """Single knobs that lower the estimate, the largest saving first."""
    base = estimate(setup).total
    found = []
    for change in changes(setup):
        est = estimate(change.setup)
        if est.total < base:
            found.append(Knob(change, est, base - est.total, upper_bytes(change.setup, est)))
    return sorted(found, key=lambda k: -k.saves)


def plan(setup: Setup, budget: int, max_steps: int = 10) -> list[Knob]:
    """Until the top of the band fits `budget` bytes: the knob that saves most among those that
    leave the training as it is (patches, optimizer, dropout, batch split), then among the others
    (rank, length). DeepSpeed is left out: on one GPU its buffers cost about what offloading
    saves."""
    steps = []
    current = setup
    while upper_bytes(current) > budget and len(steps) < max_steps:
        options = [k for k in ranked(current) if k.change.planned]
        if not options:
            break
        free = [k for k in options if k.change.free]
        step = (free or options)[0]
        steps.append(step)
        current = step.setup
    return steps


def advice_for(setup: Setup, budget: int) -> list[str]:
    """The knobs to turn, the first to turn first: the plan to `budget` when the top of the band
    is over it, else (for a run that still runs out of memory) the single knobs that save most,
    those that leave the training as it is first."""
    steps = plan(setup, budget)
    if steps:
        return [k.name for k in steps]
    knobs = [k for k in ranked(setup) if k.change.planned]
    return [k.name for k in sorted(knobs, key=lambda k: (not k.change.free, -k.saves))]


def floor(setup: Setup) -> Estimate:
    """Every knob at its smallest setting: 256 tokens, batch 1, r=8, no dropout, 8-bit AdamW,
    16-bit weights, chunked loss, checkpointing (offloaded), SDPA, embeddings on the CPU, no
    DeepSpeed."""
    return estimate(replace(
        setup, seq=min(setup.seq, 256), batch=1, lora_r=min(setup.lora_r, 8), lora_dropout=0.0,
        optimizer="paged_adamw8bit" if setup.optimizer != "sgd" else "sgd", upcast=False,
        loss_chunk=128, grad_ckpt=True, deepspeed=None, sdpa_attention=True,
        offload_embeddings=True, offload_checkpoints=True,
    ))
