"""A run that measures its own memory: `MemoryWatchHook`, in the recipe's custom_hooks.

After the first optimizer steps (the optimizer states exist from the first one on, and packed
sequences are full-length from the first batch), it logs the measured peak allocated / reserved
memory (torch) and what NVML says this process uses, next to doctor fit's estimate, and writes
`<work_dir>/memory.json`; at the end of training it rewrites the file with the peak over the whole
run. Below 5 % headroom on the card it warns, with the knobs to turn. On the CPU it writes the
file too, with what a CPU run can measure (the process's peak RSS) and null for the CUDA fields.
`python -m doctor fit CONFIG --measured work_dirs/<name>/memory.json` puts it beside the estimate.

memory.json (one JSON object): config, gpu, gpu_total_gb, seq, steps, peak_allocated_gb,
peak_reserved_gb, nvml_used_gb (null without NVML), estimate_gb, upper_gb, headroom_pct, torch,
date; and cpu_rss_peak_gb.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mmengine.hooks import Hook

GiB = 2**30
FILENAME = "memory.json"


def _round(value, digits=3):
    return None if value is None else round(value, digits)


def rss_peak_gib() -> float | None:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GiB
    except (ImportError, OSError):
        return None


def nvml_used_gib(device_index: int) -> float | None:
    """GPU memory NVML counts for this process (its CUDA context included), else the whole
    device's use; None without NVML."""
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        try:
            try:  # CUDA's index is not NVML's under CUDA_VISIBLE_DEVICES; the UUID is the same
                uuid = torch.cuda.get_device_properties(device_index).uuid
                handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
            except Exception:  # noqa: BLE001 - an older torch without .uuid
                handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == os.getpid() and proc.usedGpuMemory:
                    return proc.usedGpuMemory / GiB
            return pynvml.nvmlDeviceGetMemoryInfo(handle).used / GiB
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVML, a container without process accounting, ...
        return None


class MemoryWatchHook(Hook):
    priority = "NORMAL"  # before the LoggerHook (BELOW_NORMAL), whose log line resets the peaks

    def __init__(self, after_steps: int = 2, warn_below_pct: float = 5.0):
        self.after_steps = after_steps
        self.warn_below_pct = warn_below_pct
        self.steps = 0
        self.seq = 0
        self.report: dict | None = None
        self.written_steps = 0
        # mmengine's log processor calls torch.cuda.reset_peak_memory_stats at every log line
        # (its `memory:` field), so the hook keeps its own running peaks, read every iteration
        # before the LoggerHook runs.
        self.peak_allocated = self.peak_reserved = 0

    # ---- mmengine's hook points ----
    def before_train(self, runner) -> None:
        import torch

        self.cuda = torch.cuda.is_available() and any(
            p.is_cuda for p in runner.model.parameters())
        self.device = torch.cuda.current_device() if self.cuda else None
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.accumulate = max(1, int(getattr(runner.optim_wrapper, "_accumulative_counts", 1)))
        self.config = self._config_path(runner)
        self.report = self._estimate(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.seq = max(self.seq, self._tokens(data_batch))
        if self.cuda:
            self._track_peaks()
        if (runner.iter + 1) % self.accumulate == 0:  # an optimizer step was just taken
            self.steps += 1
            if self.steps == self.after_steps:
                self._measure(runner, log=True)

    def after_train(self, runner) -> None:
        if self.steps > self.written_steps:
            self._measure(runner, log=self.written_steps == 0)

    # ---- the measurement ----
    def _track_peaks(self) -> None:
        import torch

        self.peak_allocated = max(self.peak_allocated, torch.cuda.max_memory_allocated(self.device))
        self.peak_reserved = max(self.peak_reserved, torch.cuda.max_memory_reserved(self.device))

    def _measure(self, runner, log: bool) -> None:
        data = self.measurement()
        from doctor.atomic import write_json  # all or nothing: no reader sees half a file

        write_json(Path(runner.work_dir) / FILENAME, data)
        self.written_steps = self.steps
        if log:
            runner.logger.info(self.describe(data))
            if data["headroom_pct"] is not None and data["headroom_pct"] < self.warn_below_pct:
                from doctor.preflight import knob_lines

                lines = knob_lines(self.report or {}, limit=3)
                runner.logger.warning(
                    f"memory: only {data['headroom_pct']:.1f} % of the GPU is left: a longer "
                    "sequence or a desktop can run this out of memory"
                    + ("; knobs:\n" + "\n".join(lines) if lines else ""))

    def measurement(self) -> dict:
        import torch

        gpu = total = allocated = reserved = nvml = headroom = None
        if self.cuda:
            props = torch.cuda.get_device_properties(self.device)
            gpu, total = props.name, props.total_memory / GiB
            self._track_peaks()
            allocated, reserved = self.peak_allocated / GiB, self.peak_reserved / GiB
            nvml = nvml_used_gib(self.device)
            used = nvml if nvml is not None else reserved
            headroom = 100 * (total - used) / total
        report = self.report or {}
        return {
            "config": self.config,
            "gpu": gpu,
            "gpu_total_gb": _round(total),
            "seq": self.seq or None,
            "steps": self.steps,
            "peak_allocated_gb": _round(allocated),
            "peak_reserved_gb": _round(reserved),
            "nvml_used_gb": _round(nvml),
            "estimate_gb": report.get("total_gb"),
            "upper_gb": report.get("upper_gb"),
            "headroom_pct": _round(headroom, 1),
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cpu_rss_peak_gb": _round(rss_peak_gib()),
        }

    @staticmethod
    def describe(d: dict) -> str:
        est = ""
        if d["estimate_gb"] is not None:
            upper = d["upper_gb"]
            band = f" (up to {upper:.2f})" if upper and upper > d["estimate_gb"] + 0.005 else ""
            est = f"; doctor fit {d['estimate_gb']:.2f} GiB{band}"
        head = f"memory after {d['steps']} optimizer steps of {d['seq']} tokens"
        if d["gpu"] is None:
            rss = d["cpu_rss_peak_gb"]
            return (f"{head}, on the CPU: peak RSS {rss:.2f} GiB (no CUDA figures){est} "
                    "[memory.json]")
        nvml = f", NVML {d['nvml_used_gb']:.2f}" if d["nvml_used_gb"] is not None else ""
        return (f"{head}: peak allocated {d['peak_allocated_gb']:.2f} GiB, reserved "
                f"{d['peak_reserved_gb']:.2f}{nvml}{est}; {d['gpu']} {d['gpu_total_gb']:.2f} "
                f"GiB, headroom {d['headroom_pct']:.1f} % [memory.json]")

    # ---- helpers ----
    @staticmethod
    def _tokens(data_batch) -> int:
        try:
            return int(data_batch["data"]["input_ids"].shape[-1])
        except (TypeError, KeyError, AttributeError, IndexError):
            return 0

    @staticmethod
    def _config_path(runner) -> str | None:
        return getattr(runner.cfg, "filename", None)

    def _estimate(self, runner) -> dict | None:
        """doctor fit on the config as this run has it: mmengine's dump in the work dir has the
        --cfg-options merged."""
        from doctor.preflight import fit_report

        dumped = Path(runner.work_dir) / Path(self.config or "").name
        config = str(dumped) if self.config and dumped.is_file() else self.config
        if not config:
            return None
        total = None
        if self.cuda:
            import torch

            total = torch.cuda.get_device_properties(self.device).total_memory / GiB
        try:
            return fit_report(config, gpu_mem=total)
        except Exception as exc:  # noqa: BLE001 - a config doctor fit cannot read: no estimate
            runner.logger.info(f"memory: no doctor fit estimate ({type(exc).__name__}: {exc})")
            return None
