"""`make bench`: every benchmark in its own process, and docs/benchmarks.md written from what
they printed, each with its command, date, machine, commit and the load around it.

Each benchmark prints its own table with ratios against anchors measured in the same run; this
script only runs them and keeps their latest output in one place. `--only NAME` runs one and
replaces its section, keeping the others' latest tables.

    python bench/report.py [--data ../shared/data] [--only NAME ...] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from doctor.atomic import write_text  # noqa: E402

OUT = REPO / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Every figure the pack publishes, as the benchmark printed it: ratios against anchors measured in
the same run, with the command, date, machine, commit and load of that run. Written by
`make bench` (`bench/report.py`); `make bench DATA=../shared/data` adds the benchmarks on real
GSM8K/MATH. A section is replaced only when its benchmark runs again.
"""


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    argv: tuple[str, ...]
    needs_data: bool = False
    takes_public: bool = False  # --public DIR: the public perturbation sets (docs/curation.md)

    def command(self, data: str | None, public: str | None = None,
                ds_report: str | None = None) -> list[str]:
        configs = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").glob("*.py")
                         if p.name != "__init__.py")
        argv = [x for a in self.argv
                for x in (configs if a == "{configs}" else [a.replace("{data}", data or "")])]
        if ds_report and self.name == "doctor":
            argv += ["--ds-report", ds_report]
        return argv + (["--public", public] if public and self.takes_public else [])


BENCHES = (
    Bench("doctor", "`python -m doctor check` against ds_report and collect_env",
          ("bench/doctor_speed.py",)),
    Bench("prepare", "`python -m curation prepare` against a bare JSON loop and datasets",
          ("bench/prepare_speed.py",)),
    Bench("decontaminate", "decontaminate against MinHash-LSH (datasketch, rensa), synthetic rows",
          ("bench/decontaminate_speed.py",)),
    Bench("decontaminate-real", "decontaminate against rensa on the real GSM8K+MATH mix",
          ("bench/decontaminate_speed.py", "--real", "{data}", "--systems",
           "rensa MinHash-LSH,decontaminate default (1 process),"
           "decontaminate default (2 workers)"), needs_data=True),
    Bench("decontaminate-quality", "what each decontamination method catches and removes",
          ("bench/curation_quality.py", "--data", "{data}"), needs_data=True, takes_public=True),
    Bench("decontaminate-devset", "numbers_overlap's development set: the precision/recall sweep",
          ("bench/decon_devset.py", "--data", "{data}"), needs_data=True, takes_public=True),
    Bench("patch-effects", "each memory patch against XTuner as shipped (CPU)",
          ("bench/patch_effects.py",)),
    Bench("fit-calibration", "doctor fit against published measurements",
          ("-m", "doctor.fit.calibration")),
    Bench("fake-trace", "every config's training step at full size on a fake GPU: the traced "
          "peak beside doctor fit's estimate", ("bench/vram.py", "{configs}", "--device", "fake")),
    Bench("fake-trace-turing", "the same on a fake Turing GPU (sm75, RTX 20xx: no FlashAttention, "
          "docs/memory.md)", ("bench/vram.py", "{configs}", "--device", "fake", "--capability",
                              "7.5")),
    Bench("demo", "`make demo`: SmolLM2-135M-Instruct through the whole loop on the CPU",
          ("-m", "demo.real")),
    Bench("smoke", "`make smoke`: the tiny model through the whole loop on the CPU",
          ("-m", "demo.smoke")),
)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem = next((int(line.split()[1]) / 2**20 for line in _read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal")), 0.0)
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {_gpu() or 'no GPU'}"


def _gpu() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().replace("\n", ", ") if out.returncode == 0 else ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def load() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3]) or "n/a"


def commit(out: Path = OUT) -> str:
    """HEAD, and whether the tracked files differ from it (the report being written aside)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True).stdout.strip()

    aside = [f":(exclude){out.resolve().relative_to(REPO)}"] if out.resolve().is_relative_to(
        REPO) else []
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", *aside)
    return (git("rev-parse", "--short", "HEAD") or "unknown") + (
        " (uncommitted changes)" if dirty else "")


def run(bench: Bench, data: str | None, public: str | None, ds_report: str | None,
        out: Path = OUT) -> str:
    argv = [sys.executable, *bench.command(data, public, ds_report)]
    shown = "python " + " ".join(_quote(a) for a in argv[1:])
    before, started = load(), time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - started
    output = proc.stdout.rstrip()
    if proc.returncode != 0:
        output += f"\n\n(exit {proc.returncode})\n" + "\n".join(proc.stderr.splitlines()[-20:])
    print(f"{bench.name}: exit {proc.returncode} in {seconds:.0f} s", flush=True)
    return (f"## {bench.name}: {bench.title}\n\n"
            f"`{shown}` — {datetime.date.today().isoformat()}, {seconds:.0f} s, commit "
            f"{commit(out)}, load {before} before and {load()} after; {machine()}.\n\n"
            f"```text\n{output}\n```\n")


def _quote(arg: str) -> str:
    return f'"{arg}"' if re.search(r"[\s,]", arg) else arg


def sections(text: str) -> dict[str, str]:
    """The `## name: ...` sections of an existing benchmarks.md, by name."""
    found = {}
    for block in re.split(r"(?m)^(?=## )", text):
        m = re.match(r"## ([\w-]+):", block)
        if m:
            found[m.group(1)] = block.rstrip() + "\n"
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="dir with gsm8k/ and math/ (e.g. ../shared/data): adds the "
                   "benchmarks on real data")
    p.add_argument("--public", help="dir of the public perturbation sets (GSM-Plus, ...; "
                   "docs/curation.md says where to get them) for the decontamination benchmarks")
    p.add_argument("--ds-report", help="DeepSpeed's ds_report, e.g. from another environment "
                   "(the doctor's speed is measured against it)")
    p.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES])
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    known = sections(args.out.read_text()) if args.out.is_file() else {}
    failed = 0
    for bench in BENCHES:
        if args.only and bench.name not in args.only:
            continue
        if bench.needs_data and not args.data:
            print(f"{bench.name}: skipped (needs --data DIR / make bench DATA=DIR)")
            continue
        known[bench.name] = run(bench, args.data, args.public, args.ds_report, args.out)
        failed += "(exit " in known[bench.name]
        # written after each benchmark: a long run interrupted keeps what it measured
        order = [b.name for b in BENCHES if b.name in known]
        write_text(args.out, HEADER + "\n" + "\n".join(known[n] for n in order))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
