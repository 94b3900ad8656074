"""python -m doctor fit CONFIG [--gpu-mem GB] [--json] [--deepspeed NAME] [--measured FILE]
                                  [--trace] [--capability X.Y]

Estimates the peak GPU memory of `xtuner train CONFIG` from the config alone (nothing is
downloaded, torch is not imported) with the top of its calibrated error band (band.py), compares
that top with what the GPU leaves a process (GPU 0's free memory, or `usable_gib` of --gpu-mem)
and, when it does not fit, says which knob to turn first. Memory is in GiB (2**30 bytes), the
unit GPU memory is sold in: an "8 GB" card has 8 GiB. Exit status: 0 fits, 1 does not fit,
2 config or measurement unreadable, or no GPU to compare with. Where the GPU (or --capability)
would run the config's attention in torch's math kernel, whose score matrices no estimate counts,
it says so (attention.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from . import attention
from .advice import advice_for, floor, plan, ranked, upper_bytes
from .band import HEADLESS_RESERVE_GIB, band, frozen_bytes, usable_gib
from .config import ConfigError, Loaded, read
from .estimate import LABELS, Estimate, GiB, estimate, lora_modules, lora_numel

EXIT_FITS, EXIT_DOES_NOT_FIT, EXIT_UNREADABLE = 0, 1, 2
# a card's memory taken by others beyond the driver's reserve, above this, is reported
HELD_NOTE_GIB = 0.1


class NoGPU(Exception):
    pass


@dataclass
class Card:
    """The memory the run is judged against: a card's total and what a process can allocate."""

    total_gib: float
    budget_gib: float
    label: str  # "(--gpu-mem)" or "0 (NVIDIA GeForce RTX 3060)"
    held_gib: float = 0.0  # taken by a display or other processes (NVML: total - free - reserve)
    cc: tuple[int, int] | None = None  # compute capability, where known

    @classmethod
    def sized(cls, total_gib: float) -> Card:
        return cls(total_gib, usable_gib(total_gib), "(--gpu-mem)")


def gpu0():
    """GPU 0 as doctor.probe reports it (NVML, else nvidia-smi; no CUDA, no torch)."""
    from doctor.probe import Machine, gpu_report

    report = gpu_report(Machine.from_environ())
    if report.error or not report.gpus:
        raise NoGPU(report.error or "NVML sees no GPU")
    gpu = report.gpus[0]
    if gpu.memory_total is None:
        raise NoGPU(f"NVML does not report the memory of {gpu.name}")
    return gpu


def gpu_memory_gib() -> tuple[float, str]:
    """Total memory of GPU 0 and its name."""
    gpu = gpu0()
    return gpu.memory_total / GiB, gpu.name


def gpu_card() -> Card:
    """GPU 0's real free memory is the budget: a display or another process may hold some."""
    gpu = gpu0()
    total = gpu.memory_total / GiB
    free = gpu.memory_free / GiB if gpu.memory_free is not None else usable_gib(total)
    return Card(total, free, f"0 ({gpu.name})", max(0.0, total - free - HEADLESS_RESERVE_GIB),
                gpu.cc)


def _capability(text: str) -> tuple[int, int]:
    from doctor.sdpa import parse_capability

    try:
        return parse_capability(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def fit_report(config, *, gpu_mem: float | None = None, deepspeed: str | None = None,
               gpus: int = 1) -> dict:
    """What `python -m doctor fit CONFIG --json` prints, as a dict (torch is not imported).

    gpu_mem: the card's total GiB (its budget is `usable_gib` of it); None asks GPU 0 for its
    free memory, and without a GPU "fits" is None. Raises ConfigError for a config that cannot be
    read (the message names the file and line). "fits" judges "upper_gb", the top of the error
    band, against "budget_gb"; "advice" lists the knobs to turn, the first to turn first."""
    loaded = read(config, deepspeed=deepspeed, gpus=gpus)
    return _report(loaded, *_card(gpu_mem), gpus=gpus)[0]


def _card(gpu_mem: float | None) -> tuple[Card | None, str | None]:
    if gpu_mem is not None:
        return Card.sized(gpu_mem), None
    try:
        return gpu_card(), None
    except NoGPU as exc:
        return None, f"no GPU found ({exc}), use --gpu-mem GB"


def _report(loaded: Loaded, card: Card | None, no_gpu: str | None, gpus: int = 1):
    est = estimate(loaded.setup)
    b = band(loaded.setup)
    upper = upper_bytes(loaded.setup)
    fits = None if card is None else upper <= int(card.budget_gib * GiB)
    budget = int((card.budget_gib if card else usable_gib(8)) * GiB)
    report = {
        "config": str(loaded.path),
        "gpu_mem_gb": card.total_gib if card else None,
        "budget_gb": round(card.budget_gib, 3) if card else None,
        "held_by_others_gb": round(card.held_gib, 3) if card else None,
        "gpus": gpus,
        "total_gb": round(est.total_gib, 3),
        "upper_gb": round(upper / GiB, 3),
        "band": {"margin": round(b.margin, 4), "regime": b.regime, "rows": b.rows},
        "fits": fits,
        "expandable_segments": loaded.setup.expandable_segments,
        "breakdown": {k: round(v / GiB, 3) for k, v in est.parts.items()},
        "advice": advice_for(loaded.setup, budget),
    }
    return report, est, b, upper


def describe(loaded: Loaded) -> list[str]:
    s = loaded.setup
    a = s.arch
    n_mod = sum(1 for m in lora_modules(s) if m.role != "head")
    head = " and the LM head" if any(m.role == "head" for m in lora_modules(s)) else ""
    base = (f"QLoRA, {s.quant}{' + double quant' if s.double_quant else ''} base"
            if s.quant else f"LoRA on a {8 * s.weight_bytes}-bit base")
    compute = "16-bit autocast" if s.autocast else f"{8 * s.weight_bytes}-bit, no autocast"
    frozen = ("frozen weights upcast to fp32 (PEFT)" if s.fp32_frozen
              else "frozen weights kept 16-bit" if s.weight_bytes < 4 else "")
    line3 = [s.optimizer, f"{s.batch} x {s.seq} tokens",
             "gradient checkpointing" if s.grad_ckpt else "no gradient checkpointing",
             f"loss in {s.loss_chunk}-token chunks" if s.loss_chunk
             else f"fused loss ({s.fused_loss})" if s.fused_loss else "loss on all logits"]
    if s.deepspeed:
        d = s.deepspeed
        line3.append(f"DeepSpeed ZeRO-{d.stage}{' offload' if d.offload_optimizer else ''}")
    if s.gpus > 1:
        line3.append(f"{s.gpus} GPUs ({'ZeRO' if s.deepspeed else 'DDP'}), memory per GPU")
    return [
        f"  model     {loaded.model_path} -> {a.describe()}",
        f"  training  {base}, {compute}, {frozen}".rstrip(", "),
        f"            LoRA r={s.lora_r} on {n_mod} modules per layer{head} "
        f"({lora_numel(s) / 1e6:.1f}M params, dropout {s.lora_dropout:g})",
        "            " + ", ".join(line3),
        *long_sequence_lines(loaded),
    ]


def long_sequence_lines(loaded: Loaded) -> list[str]:
    """The long-sequence memory patches in force, and which loss the run computes."""
    s = loaded.setup
    on = [name for name, active in (("sdpa_attention", s.attention == "sdpa_expanded"),
                                    ("offload_embeddings", s.offload_embeddings),
                                    ("offload_checkpoints", s.offload_checkpoints)) if active]
    lines = [f"            memory patches: {', '.join(on)}"] if on else []
    if s.fused_loss or loaded.loss_note:
        lines.append(f"            loss: {loaded.loss_note}")
    return lines


def breakdown_lines(est: Estimate) -> list[str]:
    lines = ["  peak GPU memory, GiB"]
    digits = 2 if est.total - est.parts["cuda_context"] > GiB / 10 else 4  # tiny models
    for key, label in LABELS.items():
        if key in est.parts and (est.parts[key] or key in ("activations", "cuda_context")):
            lines.append(f"    {label:<46}{est.parts[key] / GiB:9.{digits}f}")
    lines.append(f"    {'total':<46}{est.total_gib:9.{digits}f}")
    for key, value in est.off_peak.items():
        lines.append(f"    (not at the peak: {LABELS[key]} {value / GiB:.2f} GiB, "
                     "freed before the other runs)")
    lines += [f"    note: {n}" for n in est.notes]
    return lines


def verdict_lines(est: Estimate, upper: int, b, card: Card) -> list[str]:
    budget = int(card.budget_gib * GiB)
    where = (f"GPU {card.label}: {card.total_gib:.2f} GiB, {card.budget_gib:.2f} usable")
    lines = []
    if card.held_gib > HELD_NOTE_GIB:
        lines.append(f"  note: {card.held_gib:.2f} GiB of GPU 0 is held by a display or another "
                     "process (nvidia-smi lists them); the budget is its free memory")
    if upper <= budget:
        return lines + [f"  {where} -> FITS, {(budget - upper) / GiB:.2f} GiB to spare at the "
                        "top of the band"]
    lines.append(f"  {where} -> DOES NOT FIT: needs up to {upper / GiB:.2f} GiB, "
                 f"{(upper - budget) / GiB:.2f} GiB over")
    top = sorted(est.parts.items(), key=lambda kv: -kv[1])[:3]
    lines.append("  largest parts: " + ", ".join(f"{LABELS[k]} {v / GiB:.2f}" for k, v in top))
    s = est.setup
    if s.gpus > 1 and (s.deepspeed is None or s.deepspeed.stage < 3):
        from dataclasses import replace

        from .advice import deepspeed_zero3

        z3 = replace(s, deepspeed=deepspeed_zero3())
        lines.append(f"  on {s.gpus} GPUs with --deepspeed configs/deepspeed/zero3_8gb.json: "
                     f"{estimate(z3).total_gib:.2f} GiB per GPU (up to "
                     f"{upper_bytes(z3) / GiB:.2f}), the 4-bit base sharded")
    low = floor(est.setup)
    low_upper = upper_bytes(low.setup, low)
    if low_upper > budget:
        lines.append(
            f"  {est.setup.arch.name} needs at least {low.total_gib:.1f} GiB (up to "
            f"{low_upper / GiB:.1f} at the top of the band) with every knob at its smallest "
            f"(256 tokens, r=8, 8-bit AdamW, 16-bit weights, chunked loss, offloads): no "
            f"{card.total_gib:g} GiB config exists for it"
            + (" without ZeRO-3" if est.setup.gpus > 1 else ""))
        return lines
    steps = plan(est.setup, budget)
    if steps:
        first = steps[0]
        lines.append(f"  turn first: {first.name}: saves {first.saves / GiB:.2f} GiB -> "
                     f"{first.estimate.total_gib:.2f} GiB (up to {first.upper / GiB:.2f})")
        for step in steps[1:]:
            lines.append(f"  then:       {step.name}: -> {step.estimate.total_gib:.2f} GiB "
                         f"(up to {step.upper / GiB:.2f})")
        if steps[-1].upper <= budget:
            lines.append("  (that fits)")
    others = ranked(est.setup)[1:4]
    if others:
        lines.append("  other knobs alone: " + "; ".join(
            f"{k.name.split(' (')[0]} saves {k.saves / GiB:.2f}" for k in others))
    return lines


def band_line(est: Estimate, upper: int, b) -> str:
    uncertain = (est.total - frozen_bytes(est)) / GiB
    label = f"top of the error band (+{b.margin:.0%} of {uncertain:.2f})"
    return (f"    {label:<46}{upper / GiB:9.2f}   ({b.rows} published rows, {b.regime}; "
            "the frozen weights are exact)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m doctor fit",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("config", help="an XTuner/mmengine training config (.py)")
    parser.add_argument("--gpu-mem", type=float, metavar="GB",
                        help="the card's memory in GiB (default: GPU 0's free memory, from NVML)")
    parser.add_argument("--json", action="store_true", help="print only JSON")
    parser.add_argument("--deepspeed", metavar="NAME",
                        help="zero2 | zero2_offload | zero3 (the pack's configs/deepspeed/"
                        "<name>_8gb.json), or as given to xtuner train --deepspeed")
    parser.add_argument("--gpus", type=int, default=1, metavar="N", help="GPUs of the run")
    parser.add_argument("--measured", metavar="FILE",
                        help="work_dirs/<name>/memory.json of a run: measurement beside estimate")
    parser.add_argument("--trace", action="store_true",
                        help="also run the config's training step at full size on a fake GPU "
                        "(a subprocess, bench/vram.py --device fake): its traced peak beside "
                        "the estimate")
    parser.add_argument("--trace-timeout", type=float, default=None, metavar="S",
                        help="seconds the traced step may take (default 600)")
    parser.add_argument("--capability", type=_capability, metavar="X.Y",
                        help="the GPU's compute capability (default: GPU 0's, from NVML), e.g. "
                        "7.5 for an RTX 20xx: which attention kernel runs, and the --trace's GPU")
    args = parser.parse_args(argv)

    try:
        loaded = read(args.config, deepspeed=args.deepspeed, gpus=args.gpus)
        measured = read_measured(args.measured) if args.measured else None
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"config": args.config, "error": str(exc)}))
        else:
            print(f"doctor fit: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    card, no_gpu = _card(args.gpu_mem)
    report, est, b, upper = _report(loaded, card, no_gpu, gpus=args.gpus)
    report["config"] = args.config
    if measured is not None:
        report["measured"] = measured
    cc = args.capability or (card.cc if card else None)
    math_note = attention.math_kernel(loaded, cc)
    if math_note:
        report["attention"] = math_note
    if args.trace:
        from . import trace

        allocated = est.total - est.parts["cuda_context"] - est.parts["allocator_reserve"]
        report["trace"] = trace.run(args.config, allocated / GiB,
                                    args.trace_timeout or trace.TIMEOUT_S, capability=cc)

    if args.json:
        print(json.dumps(report))
    else:
        out = [f"doctor fit: {args.config}", *describe(loaded), *breakdown_lines(est),
               band_line(est, upper, b)]
        if math_note:
            out += attention.lines(math_note, loaded.setup.seq)
        if measured is not None:
            out += measured_lines(measured, est, upper)
        if args.trace:
            from . import trace

            out += trace.lines(report["trace"])
        out += verdict_lines(est, upper, b, card) if card is not None else [f"  {no_gpu}"]
        if math_note and report["fits"]:
            out.append(f"  (that leaves out the math kernel's scores, at least "
                       f"{math_note['scores_gb_per_layer']:.2f} GiB more at the peak: fix the "
                       "attention first)")
        print("\n".join(out))
    if card is None:
        if args.json:
            print(no_gpu, file=sys.stderr)
        return EXIT_UNREADABLE
    return EXIT_FITS if report["fits"] else EXIT_DOES_NOT_FIT


__all__ = ["main", "fit_report", "gpu_memory_gib", "gpu_card", "usable_gib", "NoGPU", "Card"]


# work_dirs/<name>/memory.json, as patches' memory watch writes it (README, docs/memory.md)
MEASURED_KEYS = ("config", "gpu", "gpu_total_gb", "seq", "steps", "peak_allocated_gb",
                 "peak_reserved_gb", "nvml_used_gb", "estimate_gb", "upper_gb", "headroom_pct",
                 "torch", "date")
MEASURED_NUMBERS = ("peak_allocated_gb", "peak_reserved_gb")


def read_measured(path) -> dict:
    """A run's memory.json; ConfigError (naming the file, and the line for bad JSON) if bad."""
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the measurement: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a memory.json is a JSON object, this is a "
                          f"{type(data).__name__}")
    missing = [k for k in MEASURED_KEYS if k not in data]
    if missing:
        raise ConfigError(f"{p}: not a memory.json of a run: lacks {', '.join(missing)}")
    for key in MEASURED_NUMBERS + ("nvml_used_gb",):
        value = data[key]
        if key == "nvml_used_gb" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{p}: {key} must be a number of GiB, not {value!r}")
    return {**data, "file": str(p)}


def measured_lines(m: dict, est: Estimate, upper: int) -> list[str]:
    """The run's measured peaks beside the estimate of the same quantity."""
    ctx = est.parts["cuda_context"]
    reserve = est.parts.get("allocator_reserve", 0)
    pairs = [("peak allocated (torch)", m["peak_allocated_gb"], est.total - ctx - reserve),
             ("peak reserved (torch)", m["peak_reserved_gb"], est.total - ctx)]
    if m.get("nvml_used_gb") is not None:
        pairs.append(("used on the GPU (NVML)", m["nvml_used_gb"], est.total))
    lines = [f"  measured  {m['file']}: {m['gpu']}, {m['date']}, {m['seq']} tokens, "
             f"{m['steps']} steps, torch {m['torch']}",
             f"    {'':<30}{'measured':>9}{'estimate':>10}{'error':>9}"]
    for label, value, estimate_bytes in pairs:
        e = estimate_bytes / GiB
        err = f"{e / value - 1:+8.1%}" if value else "     n/a"
        lines.append(f"    {label:<30}{value:9.2f}{e:10.2f} {err}")
    if m.get("nvml_used_gb") is not None and m["nvml_used_gb"] * GiB > upper:
        lines.append(f"    the GPU used more than the top of the band ({upper / GiB:.2f} GiB): "
                     "please report this row (docs/memory.md)")
    return lines
