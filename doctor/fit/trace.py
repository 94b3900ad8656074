"""`doctor fit CONFIG --trace`: the config's training step run on a fake GPU, beside the estimate.

The step itself needs torch, XTuner and bitsandbytes, which the doctor never imports: it runs in
a subprocess, `bench/vram.py CONFIG --device fake` of the pack's clone (bench/fakestep.py: the
model built as `xtuner train` builds it, at full size, on torch's meta device under
FakeTensorMode, two optimizer steps, device placement checked as CUDA would check it, live memory
traced), with a timeout. What comes back is the traced peak of the GPU's memory beside the
estimate's allocated part (the total without CUDA context and allocator cache, which no trace
of tensors can see).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VRAM = REPO / "bench" / "vram.py"
TIMEOUT_S = 600.0


def run(config: str | Path, estimate_gb: float, timeout: float = TIMEOUT_S,
        capability: tuple[int, int] | None = None) -> dict:
    """{"peak_gb", "estimate_gb", "device", "seconds", ...} of the fake-GPU step of `config`,
    or {"error", "estimate_gb", "seconds"} when it cannot run or fails (the failure is the
    finding: a step that fails on the fake GPU fails on a real one). `capability`: the compute
    capability whose CUDA rules the fake GPU follows (the user's GPU; default Ampere's 8.6)."""
    started = time.monotonic()
    out = {"estimate_gb": round(estimate_gb, 3)}
    if not VRAM.is_file():
        return {**out, "error": f"the trace runs {VRAM} of the pack's clone, which is not here",
                "seconds": 0.0}
    with tempfile.TemporaryDirectory(prefix="doctor-trace-") as tmp:
        rows_file = Path(tmp) / "rows.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        env.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded
        try:
            done = subprocess.run(
                [sys.executable, str(VRAM), str(config), "--device", "fake", "--json",
                 str(rows_file), *(["--capability", "{}.{}".format(*capability)]
                                   if capability else [])],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**out, "error": f"the fake-GPU step did not finish in {timeout:g} s",
                    "seconds": round(time.monotonic() - started, 1)}
        seconds = round(time.monotonic() - started, 1)
        try:
            (row,) = json.loads(rows_file.read_text())
        except (OSError, ValueError):
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return {**out, "error": "the fake-GPU step did not run: " + " | ".join(tail),
                    "seconds": seconds}
    if row.get("error"):
        return {**out, "error": row["error"], "seconds": seconds}
    return {
        "peak_gb": round(row["peak_gb"], 3),
        **out,
        "device": row["device"],
        "capability": row.get("capability"),
        "seconds": seconds,
        "steps": row["steps"],
        "host_peak_gb": round(row["host_peak_gb"], 3),
        "at_peak": {k: round(v, 3) for k, v in row["at_peak"].items()},
        "phases": row["phases"],
    }


def lines(trace: dict) -> list[str]:
    """The text `doctor fit --trace` prints."""
    if "error" in trace:
        return [f"  trace     the step on a fake GPU failed: {trace['error']}"]
    diff = trace["peak_gb"] / trace["estimate_gb"] - 1 if trace["estimate_gb"] else 0.0
    kinds = ", ".join(f"{k} {v:.2f}" for k, v in list(trace["at_peak"].items())[:5])
    return [
        f"  trace     the step at full size on a fake "
        f"{'sm_' + trace['capability'].replace('.', '') + ' ' if trace.get('capability') else ''}"
        f"GPU ({trace['steps']} optimizer steps, "
        f"{trace['seconds']:.0f} s): peak {trace['peak_gb']:.2f} GiB beside the estimate's "
        f"allocated part {trace['estimate_gb']:.2f} GiB ({diff:+.1%})",
        f"            at the peak: {kinds}; CUDA context and allocator cache are not traced",
    ]
