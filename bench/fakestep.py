"""A config's training step at full size on a fake GPU: device placement checked, memory traced.

`trace(config)` builds the config's model as bench/vram.py builds it for a real GPU (the config's
model dict through XTuner's builder, PatchedFinetune's patches, bitsandbytes 4-bit, LoRA, the
config's optimizer wrapper; random weights from doctor/data/architectures.json, nothing
downloaded), but on the fake GPU of bench/fakedevice.py, and runs `steps` full-length optimizer
steps through XTuner's train_step under StepMemory (bench/memtrack.py). It returns the traced
peak of the GPU beside doctor fit's estimate of the same quantity (its allocated part: the
total without CUDA context and allocator cache), what was live at the peak, by kind and by
module, the peak of each phase, and what the device checks saw. A step that would fail on a
GPU (a tensor on the wrong side of a host/device boundary, a race on a non-blocking copy)
fails here with `DeviceError`, naming the line.

`cpu_pair(config)` is its validation where both can run: the same step (tiny) traced on fake
CPU tensors and run on real ones, under the same tracker.
"""

from __future__ import annotations

import contextlib
import gc
import time
from pathlib import Path

from bench import vram

GiB = 1024**3
TOP_MODULES = 12


def _registered(mem, model) -> None:
    """Tensors that live through the step without being parameters or buffers."""
    constants, host_tables = [], []
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None:
            constants += [state.absmax, state.code, state.offset]
            if state.state2 is not None:
                constants += [state.state2.absmax, state.state2.code]
        if getattr(module, "_pack_offloaded", None):  # patches.offload_embeddings' table
            host_tables.append(module.weight)
    mem.track_model(model)
    mem.track_labelled("quantization constants", constants)
    mem.track_labelled("weights", host_tables)


def _run(p: vram.Plan, device: str, steps: int, rounded: tuple[str, ...], cpu_amp: bool,
         context) -> tuple[object, object, float]:
    from bench.memtrack import StepMemory

    started = time.perf_counter()
    with context:
        b = vram.build(p, device, cpu_amp=cpu_amp)
        mem = StepMemory(rounded=rounded)
        _registered(mem, b.model)
        workspaces = getattr(context, "workspaces", None)
        if workspaces is not None:
            workspaces.listeners.append(lambda ts: mem.track_labelled("kernel workspaces", ts))
        with mem:
            for step in range(steps):
                mem.reset_mod_stats()
                mem.set_phase(f"step {step + 1}")
                with b.autocast:
                    b.model.train_step(b.batch, b.optim_wrapper)
        del b
        gc.collect()
    return mem, context, time.perf_counter() - started


def _breakdown(mem, device) -> tuple[dict, list, list]:
    at = mem.at_peak(device)
    kinds = {k: round(v / GiB, 4) for k, v in sorted(at["by_kind"].items(), key=lambda kv: -kv[1])}
    modules = sorted(at["by_module"].items(), key=lambda kv: -kv[1])[:TOP_MODULES]
    ops = sorted(at["by_op"].items(), key=lambda kv: -kv[1])[:3 * TOP_MODULES]
    return (kinds, [[_short(m), k, round(v / GiB, 4)] for (m, k), v in modules],
            [[_short(m), k, o, round(v / GiB, 4)] for (m, k, o), v in ops])


def _short(module: str) -> str:
    """`SupervisedFinetune.llm.base_model.model.model.layers.0.mlp` -> `layers.0.mlp`: past
    XTuner's, PEFT's and the causal LM's wrappers."""
    for marker in (".model.model.", ".model.", ".llm."):
        if marker in module:
            return module.split(marker, 1)[1]
    return module


def trace(path: Path | str, *, tiny: bool = False, steps: int = 2,
          variant: str = "as configured", check_devices: bool = True,
          seq: int | None = None, capability: tuple[int, int] | None = None) -> dict:
    """The fake-GPU step of `path` (see the module docstring), as a JSON-ready dict;
    `capability`: the compute capability whose CUDA rules the fake GPU follows (default
    bench.fakedevice.CAPABILITY, an 8 GB Ampere card)."""
    from bench.fakedevice import ACCELERATOR, FakeGPU

    path = Path(path)
    p = vram.plan(path, "cuda", tiny, variant, seq=seq)
    gpu = FakeGPU(check_devices=check_devices, capability=capability)
    cc = gpu.capability
    row = dict(config=str(path), model=p.setup.arch.name, variant=variant,
               tokens=p.setup.tokens, steps=steps, capability=f"{cc[0]}.{cc[1]}",
               device=f"fake GPU: torch 'meta' tensors under FakeTensorMode, CUDA rules of "
                      f"compute capability {cc[0]}.{cc[1]}",
               estimate_gb=round(p.allocated / GiB, 4),
               estimate_total_gb=round(p.estimate.total / GiB, 4), error=p.error)
    if p.error:
        return row
    mem, gpu, seconds = _run(p, ACCELERATOR.type, steps, (ACCELERATOR.type,), False, gpu)
    kinds, modules, ops = _breakdown(mem, ACCELERATOR)
    peak = mem.peak(ACCELERATOR)
    row.update(
        peak_gb=round(peak / GiB, 4),
        ratio=round(peak / p.allocated, 4) if p.allocated else None,
        host_peak_gb=round(mem.peak("cpu") / GiB, 4),
        at_peak=kinds, modules=modules, ops=ops,
        phases={name: round(peaks.get(ACCELERATOR, 0) / GiB, 4)
                for name, peaks in mem.phase_peaks.items() if not name.startswith("setup")},
        checks=dict(
            device_checks=check_devices,
            host_syncs=gpu.checker.syncs if gpu.checker else None,
            pageable_async_copies=gpu.checker.pageable_async if gpu.checker else None,
            autocast_casts=gpu.ops.casts,
            data_dependent=dict(gpu.data.asked)),
        seconds=round(seconds, 1))
    return row


def cpu_pair(path: Path | str, *, steps: int = 2, seq: int | None = None) -> dict:
    """The tiny step of `path` on the CPU, run twice under the same tracker: on fake tensors
    (FakeTensorMode) and on real ones. {"fake": bytes, "real": bytes, per-kind dicts}."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from bench.fakedevice import DataDependent, bnb_constants, fake_params4bit, swappable_fakes

    path = Path(path)
    out = {}
    for name in ("real", "fake"):
        p = vram.plan(path, "cpu", True, seq=seq)
        context = contextlib.ExitStack()
        if name == "fake":
            mode = FakeTensorMode(allow_non_fake_inputs=True)
            for ctx in (bnb_constants(), fake_params4bit(), swappable_fakes(mode), mode,
                        DataDependent()):
                context.enter_context(ctx)
        mem, _, seconds = _run(p, "cpu", steps, (), True, context)
        out[name] = mem.peak("cpu")
        out[f"{name}_at_peak"] = mem.at_peak("cpu")["by_kind"]
        out[f"{name}_seconds"] = seconds
    return out
