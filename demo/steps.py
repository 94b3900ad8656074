"""The harnesses' shared parts: each step of a run is a real command in a subprocess with its
output in a log, timed; a failed step stops the run with the end of its log; the command line
(--work-dir, the harness's own options, one line and exit 1 on failure)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class RunFailure(RuntimeError):
    """A step of a run failed: its message says which and shows the end of its log."""


class Step:
    """One command of the run, in a subprocess whose output goes to `log`."""

    def __init__(self, argv: list[str], *, log: Path, name: str):
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1")
        self.log, self.name, self.started = log, name, time.monotonic()
        with open(log, "w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         cwd=REPO)

    def wait(self) -> str:
        """Wait for it; raise RunFailure if it failed, else say how long it took."""
        try:
            rc = self.proc.wait()
        except BaseException:  # Ctrl-C: the command goes with the run
            self.stop()
            raise
        if rc != 0:
            tail = "".join(self.log.read_text(errors="replace").splitlines(True)[-15:])
            raise RunFailure(f"`{self.name}` exited {rc}; end of {self.log}:\n{tail}")
        return f"({time.monotonic() - self.started:.0f} s)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def xtuner(*args: str, log: Path) -> Step:
    """The real `xtuner` CLI of this environment."""
    exe = shutil.which("xtuner", path=str(Path(sys.executable).parent)) or "xtuner"
    return Step([exe, *args], log=log, name=f"xtuner {' '.join(args)}")


def aftertrain(*args: str, log: Path) -> Step:
    """`python -m aftertrain ...` (evaluation, export) of this environment."""
    return Step([sys.executable, "-m", "aftertrain", *args], log=log,
                name=f"python -m aftertrain {' '.join(args)}")


def losses(work_dir: Path) -> list[tuple[int, float]]:
    """(step, loss) pairs from mmengine's scalars.json of the newest run in work_dir."""
    runs = sorted(work_dir.glob("*/vis_data/scalars.json"))
    if not runs:
        raise RunFailure(f"no vis_data/scalars.json under {work_dir}")
    rows = [json.loads(line) for line in runs[-1].read_text().splitlines() if line.strip()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def last_checkpoint(work_dir: Path) -> Path:
    return Path((work_dir / "last_checkpoint").read_text().strip())


def to_adapter(config: Path, work_dir: Path, label: str) -> Path:
    """`xtuner convert pth_to_hf` of the last checkpoint; the adapter must carry the run's
    provenance.json (patches.pth_to_hf_provenance)."""
    adapter, ckpt = work_dir / "hf_adapter", last_checkpoint(work_dir)
    took = xtuner("convert", "pth_to_hf", str(config), str(ckpt), str(adapter),
                  log=work_dir / "pth_to_hf.log").wait()
    print(f"{label} xtuner convert pth_to_hf: {ckpt.name} -> {adapter} {took}", flush=True)
    if not (adapter / "provenance.json").is_file():
        raise RunFailure(f"{adapter}: the adapter does not carry provenance.json")
    return adapter


def merge(model_dir: Path, adapter: Path, work_dir: Path, label: str) -> Path:
    """`xtuner convert merge` on the CPU."""
    merged = work_dir / "merged"
    took = xtuner("convert", "merge", str(model_dir), str(adapter), str(merged), "--device",
                  "cpu", log=work_dir / "merge.log").wait()
    print(f"{label} xtuner convert merge: {merged} {took}", flush=True)
    return merged


def export(config: Path, merged: Path, adapter: Path, work_dir: Path,
           question: str) -> tuple[dict, str]:
    """`python -m aftertrain export --check` (GGUF f16 + Q4_K_M, Modelfile, the round trip);
    its export.json, which must name the provenance the GGUFs carry, and how long it took."""
    gguf_dir = work_dir / "gguf"
    took = aftertrain("export", str(config), "--merged", str(merged), "--out", str(gguf_dir),
                      "--check", "--question", question, "--provenance",
                      str(adapter / "provenance.json"), log=work_dir / "export.log").wait()
    exported = json.loads((gguf_dir / "export.json").read_text())
    if not exported.get("provenance"):
        raise RunFailure(f"{gguf_dir}: the export carried no provenance")
    return exported, took


def main_of(name: str, module: str, doc: str, work_dir: str, run, *, options=(),
            argv=None) -> int:
    """`python -m <module>`: --work-dir (default work_dirs/<work_dir>) and `options` (pairs of
    add_argument's args and kwargs); `run(args)`; a failure is one message and exit status 1."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}",
                                     description=doc.strip().splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=REPO / "work_dirs" / work_dir)
    for flags, kwargs in options:
        parser.add_argument(*flags, **kwargs)
    args = parser.parse_args(argv)
    try:
        run(args)
    except (RunFailure, subprocess.SubprocessError, OSError) as exc:
        print(f"{name} FAILED: {exc}", file=sys.stderr)
        return 1
    return 0
