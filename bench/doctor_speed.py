"""Benchmark: `python -m doctor check` against `ds_report` and `python -m torch.utils.collect_env`.

All three run as fresh processes in the same run, interleaved, several times each; the figures
are medians of wall-clock time, printed with ratios against the doctor measured here.

    python bench/doctor_speed.py [--runs 7] [--ds-report PATH]      (make bench-doctor)

ds_report comes from --ds-report, else PATH, else this environment's bin/; without one that
row is skipped with a message (DeepSpeed is optional, and the pack's env may not have it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(argv: list[str], env: dict) -> tuple[float, float, int]:
    """(wall s, CPU s of the process and its children, exit code). CPU time says what a run
    costs when the machine is shared: wall time at load 20 on 2 cores is mostly waiting."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                          cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def find_ds_report(given: str | None) -> str | None:
    if given:
        return given if os.access(given, os.X_OK) else None
    local = Path(sys.executable).parent / "ds_report"
    return shutil.which("ds_report") or (str(local) if local.exists() else None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--ds-report", metavar="PATH", help="the ds_report executable to time")
    args = ap.parse_args(argv)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # As users run it: bytecode cached (the untimed warm-up run writes it). A sandbox's
    # PYTHONDONTWRITEBYTECODE=1 would make every timed run recompile every edited module.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    tools = {
        "python -m doctor check": [sys.executable, "-m", "doctor", "check"],
        # The floor of any Python CLI on this machine at this load: the interpreter starting.
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -m doctor check --json": [sys.executable, "-m", "doctor", "check", "--json"],
        "python -m torch.utils.collect_env": [sys.executable, "-m", "torch.utils.collect_env"],
    }
    ds = find_ds_report(args.ds_report)
    if ds:
        tools["ds_report"] = [ds]
    else:
        print("ds_report: not found (give --ds-report PATH, e.g. from a scratch venv with "
              "deepspeed installed); skipping it")

    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}, "
          f"{os.cpu_count()} CPUs, {args.runs} runs each, interleaved")
    for argv_ in tools.values():  # warm the page cache: the first run of each is not timed
        timed(argv_, env)
    times: dict[str, list[float]] = {name: [] for name in tools}
    cpus: dict[str, list[float]] = {name: [] for name in tools}
    codes: dict[str, set] = {name: set() for name in tools}
    for _ in range(args.runs):
        for name, argv_ in tools.items():
            t, cpu, rc = timed(argv_, env)
            times[name].append(t)
            cpus[name].append(cpu)
            codes[name].add(rc)

    anchor = statistics.median(times["python -m doctor check"])
    cpu_anchor = statistics.median(cpus["python -m doctor check"])
    print(f"\n{'command':36s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'x doctor':>9s} "
          f"{'CPU s':>7s} {'x doctor':>9s}  exit")
    for name, ts in times.items():
        med, cpu = statistics.median(ts), statistics.median(cpus[name])
        print(f"{name:36s} {med:9.3f} {min(ts):7.3f} {max(ts):7.3f} {med / anchor:8.1f}x "
              f"{cpu:7.3f} {cpu / cpu_anchor:8.1f}x  {sorted(codes[name])}")
    print(f"\nload average after: {open('/proc/loadavg').read().split()[:3]}")
    ratio = statistics.median(times["python -m torch.utils.collect_env"]) / anchor
    print(f"doctor is {ratio:.1f}x faster than collect_env (target >= 10x)")
    if ds:
        ratio = statistics.median(times["ds_report"]) / anchor
        print(f"doctor is {ratio:.1f}x faster than ds_report (target >= 10x); "
              f"doctor median {anchor:.3f} s (target <= 0.2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
