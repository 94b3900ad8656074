"""python -m doctor fit CONFIG [--gpu-mem GB] [--json] [--deepspeed NAME]

Estimates the peak GPU memory of `xtuner train CONFIG` from the config alone (nothing is
downloaded, torch is not imported), compares it with the GPU and, when it does not fit, says which
knob to turn first. Memory is in GiB (2**30 bytes), the unit GPU memory is sold in: an "8 GB" card
has 8 GiB. Exit status: 0 fits, 1 does not fit, 2 config unreadable or no GPU to compare with.
"""

from __future__ import annotations

import argparse
import json
import sys

from .advice import floor, plan, ranked
from .config import ConfigError, Loaded, read
from .estimate import LABELS, Estimate, GiB, estimate, lora_modules, lora_numel

EXIT_FITS, EXIT_DOES_NOT_FIT, EXIT_UNREADABLE = 0, 1, 2


class NoGPU(Exception):
    pass


def gpu_memory_gib() -> tuple[float, str]:
    """Total memory of GPU 0 and its name, from NVML (doctor.probe: no CUDA, no torch)."""
    from doctor.probe import nvml_report

    report = nvml_report()
    if report.error or not report.gpus:
        raise NoGPU(report.error or "NVML sees no GPU")
    gpu = report.gpus[0]
    if gpu.memory_total is None:
        raise NoGPU(f"NVML does not report the memory of {gpu.name}")
    return gpu.memory_total / GiB, gpu.name


def describe(loaded: Loaded) -> list[str]:
    s = loaded.setup
    a = s.arch
    n_mod = sum(1 for m in lora_modules(s) if m.role != "head")
    head = " and the LM head" if any(m.role == "head" for m in lora_modules(s)) else ""
    base = (f"QLoRA, {s.quant}{' + double quant' if s.double_quant else ''} base"
            if s.quant else f"LoRA on a {8 * s.weight_bytes}-bit base")
    compute = "16-bit autocast" if s.amp else f"{8 * s.weight_bytes}-bit, no autocast"
    frozen = ("frozen weights upcast to fp32 (PEFT)" if s.upcast and s.weight_bytes < 4
              else "frozen weights kept 16-bit" if s.weight_bytes < 4 else "")
    line3 = [s.optimizer, f"{s.batch} x {s.seq} tokens",
             "gradient checkpointing" if s.grad_ckpt else "no gradient checkpointing",
             f"loss in {s.loss_chunk}-token chunks" if s.loss_chunk else "loss on all logits"]
    if s.deepspeed:
        d = s.deepspeed
        line3.append(f"DeepSpeed ZeRO-{d.stage}{' offload' if d.offload_optimizer else ''}")
    return [
        f"  model     {loaded.model_path} -> {a.describe()}",
        f"  training  {base}, {compute}, {frozen}".rstrip(", "),
        f"            LoRA r={s.lora_r} on {n_mod} modules per layer{head} "
        f"({lora_numel(s) / 1e6:.1f}M params, dropout {s.lora_dropout:g})",
        "            " + ", ".join(line3),
    ]


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


def verdict_lines(est: Estimate, gpu: float, gpu_label: str) -> list[str]:
    budget = int(gpu * GiB)
    if est.total <= budget:
        return [f"  GPU {gpu_label}: {gpu:.2f} GiB -> FITS, {(budget - est.total) / GiB:.2f} GiB "
                "to spare"]
    lines = [f"  GPU {gpu_label}: {gpu:.2f} GiB -> DOES NOT FIT: needs {est.total_gib:.2f} GiB, "
             f"{(est.total - budget) / GiB:.2f} GiB over"]
    top = sorted(est.parts.items(), key=lambda kv: -kv[1])[:3]
    lines.append("  largest parts: " + ", ".join(f"{LABELS[k]} {v / GiB:.2f}" for k, v in top))
    low = floor(est.setup)
    if low.total > budget:
        lines.append(
            f"  {est.setup.arch.name} needs at least {low.total_gib:.1f} GiB with every knob at "
            f"its smallest (256 tokens, r=8, 8-bit AdamW, 16-bit weights, chunked loss): no "
            f"{gpu:g} GiB config exists for it")
        return lines
    steps = plan(est.setup, budget)
    if steps:
        first = steps[0]
        lines.append(f"  turn first: {first.name}: saves {first.saves / GiB:.2f} GiB -> "
                     f"{first.estimate.total_gib:.2f} GiB")
        for step in steps[1:]:
            lines.append(f"  then:       {step.name}: -> {step.estimate.total_gib:.2f} GiB")
        if steps[-1].estimate.total <= budget:
            lines.append("  (that fits)")
    others = ranked(est.setup)[1:4]
    if others:
        lines.append("  other knobs alone: " + "; ".join(
            f"{k.name.split(' (')[0]} saves {k.saves / GiB:.2f}" for k in others))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m doctor fit",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("config", help="an XTuner/mmengine training config (.py)")
    parser.add_argument("--gpu-mem", type=float, metavar="GB",
                        help="GPU memory in GiB (default: GPU 0's, from NVML)")
    parser.add_argument("--json", action="store_true", help="print only JSON")
    parser.add_argument("--deepspeed", metavar="NAME",
                        help="as given to xtuner train --deepspeed (e.g. deepspeed_zero2)")
    args = parser.parse_args(argv)

    try:
        loaded = read(args.config, deepspeed=args.deepspeed)
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"config": args.config, "error": str(exc)}))
        else:
            print(f"doctor fit: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    est = estimate(loaded.setup)

    gpu, gpu_label, no_gpu = args.gpu_mem, "(--gpu-mem)", None
    if gpu is None:
        try:
            gpu, name = gpu_memory_gib()
            gpu_label = f"0 ({name})"
        except NoGPU as exc:
            no_gpu = f"no GPU found ({exc}), use --gpu-mem GB"
    fits = None if gpu is None else est.total <= int(gpu * GiB)

    if args.json:
        print(json.dumps({
            "config": args.config,
            "gpu_mem_gb": gpu,
            "total_gb": round(est.total_gib, 3),
            "fits": fits,
            "breakdown": {k: round(v / GiB, 3) for k, v in est.parts.items()},
        }))
    else:
        out = [f"doctor fit: {args.config}", *describe(loaded), *breakdown_lines(est)]
        out += verdict_lines(est, gpu, gpu_label) if gpu is not None else [f"  {no_gpu}"]
        print("\n".join(out))
    if gpu is None:
        if args.json:
            print(no_gpu, file=sys.stderr)
        return EXIT_UNREADABLE
    return EXIT_FITS if fits else EXIT_DOES_NOT_FIT


__all__ = ["main", "gpu_memory_gib", "NoGPU"]
