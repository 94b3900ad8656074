"""python -m doctor report [--json] [--deep] [--work-dir DIR] [--stack FILE] [--timeout S]

One Markdown block to paste into a bug report (or `--json`): the machine (OS, container, VM,
WSL), GPUs and driver, torch and the CUDA toolkit, the stack's versions, and every finding with
its fix, the remote code in the Hugging Face cache (by digest, and whether the pack's patches
know it) and, with --work-dir, what a run was made of (its provenance.json). Home paths, user
names in paths, tokens and keys are redacted: the values of
environment variables named like secrets (HF_TOKEN, WANDB_API_KEY, ...*TOKEN/*KEY/*SECRET...),
Hugging Face (hf_...), OpenAI-style (sk-...), GitHub (ghp_..., github_pat_...) and Slack
tokens, and credentials in URLs. Exit codes are those of `check`: 0, 1 when a check failed or
crashed, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
from dataclasses import dataclass, field

from . import checks, provenance, render
from .check import gather
from .command import run_command
from .facts import STACK
from .findings import RANK
from .probe import DEFAULT_TIMEOUT

PACKAGES = ("xtuner", "transformers", "peft", "bitsandbytes", "deepspeed", "mmengine",
            "accelerate", "datasets", "flash-attn", "triton", "nvidia-ml-py")
SECRET_NAME = re.compile(r"TOKEN|_KEY$|^KEY|API_KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH",
                         re.I)
TOKEN_PATTERNS = [
    re.compile(r"\bhf_[A-Za-z0-9]{20,}\b"),  # Hugging Face
    re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"),  # OpenAI-style
    re.compile(r"\b(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{30,}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),  # Slack
]
URL_CREDENTIALS = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")
MARKS = {"pass": "✓", "skip": "–", "info": "i", "warn": "!", "fail": "✗", "crash": "✗"}


class Redactor:
    """Removes what identifies the user or grants access, from every string it is given."""

    def __init__(self, env: dict):
        self.secrets = sorted(
            {v for k, v in env.items() if SECRET_NAME.search(k) and v and len(v) >= 6},
            key=len, reverse=True)
        self.home = (env.get("HOME") or "").rstrip("/")
        self.user = env.get("USER") or env.get("LOGNAME") or ""

    def __call__(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        return value

    def text(self, s: str) -> str:
        for secret in self.secrets:
            s = s.replace(secret, "<redacted>")
        for pattern in TOKEN_PATTERNS:
            s = pattern.sub("<redacted token>", s)
        s = URL_CREDENTIALS.sub(r"\1<redacted>@", s)
        if self.home and self.home != "/":
            s = re.sub(re.escape(self.home) + r"(?=/|\b|$)", "~", s)
        s = re.sub(r"/(?:home|Users)/[^/\s'\"]+", "~", s)
        if len(self.user) >= 3:
            s = re.sub(r"(?<=/)" + re.escape(self.user) + r"(?=/|\s|$)", "<user>", s)
        return s


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m doctor report",
                                 description="A redacted report to paste into a bug report.")
    ap.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    ap.add_argument("--deep", action="store_true",
                    help="also import torch, deepspeed, flash_attn (subprocesses, with timeouts)")
    ap.add_argument("--stack", default=STACK, metavar="FILE", help="the pin set (env/stack.txt)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S")
    ap.add_argument("--deep-timeout", type=float, default=60.0, metavar="S")
    ap.add_argument("--work-dir", metavar="DIR", help="also what this run was made of: its "
                    "provenance.json (work_dirs/<name>, or an adapter directory)")
    return ap.parse_args(argv)


# -- what the report says about the machine ------------------------------------------------------
# One function per line of the report: facts -> Line (its key and value in --json's "summary",
# its rows in the Markdown table). To add a line (e.g. a run's provenance), write one such
# function and put it in SECTIONS; nothing else changes.
@dataclass
class Line:
    key: str
    value: object
    rows: list[tuple[str, str]] = field(default_factory=list)


ENV_VARS = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NPROC_PER_NODE", "NCCL_P2P_DISABLE",
            "BNB_CUDA_VERSION", "DS_SKIP_CUDA_CHECK", "DS_IGNORE_CUDA_DETECTION",
            "TORCH_CUDA_ARCH_LIST", "FLASH_ATTN_CUDA_ARCHS", "LD_LIBRARY_PATH",
            "PYTORCH_CUDA_ALLOC_CONF", "XTUNER_PACK_PATCHES", "HF_HOME", "HF_HUB_CACHE",
            "HF_DATASETS_CACHE", "HF_HUB_OFFLINE", "TMPDIR")


def os_line(f):
    osr = f.os_release
    name = osr.get("PRETTY_NAME") or platform.system()
    kernel = f.kernel_release
    return [Line("os", name, [("OS", f"{name} ({platform.machine()}" + (
        f", kernel {kernel}" if kernel else "") + ")")]), Line("kernel", kernel),
        Line("arch", platform.machine())]


def where_line(f):
    p = f.platform
    where = [w for w in (f"{p.container} container" if p.container else "",
                         f"virtual machine ({p.vm})" if p.vm else "", "WSL2" if p.wsl else "")
             if w] or ["bare metal or undetected"]
    return [Line("environment", where, [("runs in", ", ".join(where))]),
            Line("evidence", f.virtualization["evidence"])]


def python_line(f):
    text = f"{f.python_version} ({f.m.python})"
    return [Line("python", text, [("Python", text)])]


def torch_line(f):
    t = f.torch
    text = ((f"{t.version} (" + (f"CUDA {t.cuda}" if t.cuda else "CPU") + ")") if t.version
            else (t.error or "not installed"))
    return [Line("torch", text, [("torch", text)])]


def gpu_line(f):
    gpus = [{"index": g.index, "name": g.name,
             "memory_gib": round(g.memory_total / 2**30, 1) if g.memory_total else None,
             "cc": g.cc_text} for g in f.all_gpus]
    rows = [(f"GPU {g['index']}", f"{g['name']}, {g['memory_gib']} GiB, compute capability "
             f"{g['cc']}") for g in gpus] or [("GPU", f"none ({f.gpu.error})")]
    seen = [g.index for g in f.gpus]
    if len(gpus) > 1 or f.visible_devices is not None:
        rows.append(("the run sees", ", ".join(f"GPU {i}" for i in seen) or "no GPU"))
    return [Line("gpus", gpus, rows), Line("visible", seen),
            Line("gpu_query", f.gpu.source if f.all_gpus else f.gpu.error)]


def driver_line(f):
    cuda = f.gpu.cuda_driver
    return [Line("driver", f.driver_version,
                 [("driver", f"{f.driver_version}" + (f" (CUDA {cuda})" if cuda else ""))]),
            Line("driver_cuda", cuda)]


def cuda_line(f):
    home, nvcc = f.cuda_home, f.nvcc
    text = f"{home.path} ({home.source}, {home.kind})" if home.path else None
    release = nvcc.release or nvcc.problem
    toolkits = [f"{tk.version} at {tk.path}" for tk in f.toolkits]
    return [Line("cuda_home", text, [("CUDA_HOME", text or "none")]),
            Line("nvcc", release, [("nvcc", release or "none")]),
            Line("toolkits", toolkits, [("toolkits", "; ".join(toolkits))] if toolkits else [])]


def packages_line(f):
    found = {name: f.dist_version(name) for name in PACKAGES}
    return [Line("packages", found, [("packages", ", ".join(
        f"{k} {v}" for k, v in found.items() if v))])]


def env_line(f):
    found = {k: f.m.getenv(k) for k in ENV_VARS if f.m.getenv(k) is not None}
    return [Line("env", found, [("environment", ", ".join(
        f"{k}={v}" for k, v in found.items()))] if found else [])]


def remote_code_line(f):
    """The remote code cached models carry, by digest (its own section in the Markdown)."""
    return [Line("remote_code", provenance.cached_remote_code(f.hf_cache))]


SECTIONS = (os_line, where_line, python_line, torch_line, gpu_line, driver_line, cuda_line,
            packages_line, env_line, remote_code_line)


def lines(facts) -> list[Line]:
    return [line for section in SECTIONS for line in section(facts)]


def summary(facts) -> dict:
    """The facts a maintainer asks for first, as --json's "summary"."""
    return {line.key: line.value for line in lines(facts)}


def markdown(facts_lines: list[Line], findings, code: int) -> str:
    counts = {s: sum(x.status == s for x in findings) for s in RANK}
    verdict = ", ".join(f"{counts[s]} {s}" for s in ("fail", "crash", "warn", "info", "pass",
                                                     "skip") if counts[s])
    rows = [("doctor", f"{verdict} (exit {code})")]
    rows += [row for line in facts_lines for row in line.rows]
    out = ["### `python -m doctor report`", "", "| | |", "|---|---|"]
    out += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows]
    problems = sorted((x for x in findings if x.status in render.PROBLEMS),
                      key=lambda x: -RANK[x.status])
    out += ["", "**Findings**" + ("" if problems else ": none to fix"), ""]
    for x in problems:
        out.append(f"- {MARKS[x.status]} `{x.id}` ({x.status}): {x.summary}")
        out += [f"  - `$ {c}`" for c in x.fix.commands]
    out += ["", "<details><summary>every check</summary>", "", "| check | status | summary |",
            "|---|---|---|"]
    out += [f"| `{x.id}` | {x.status} | {x.summary.replace('|', '/')} |" for x in findings]
    out += ["", "</details>"]
    return "\n".join(out)


def main(argv=None) -> int:
    return run_command(parse, run, argv)


def run(args) -> int:
    args.ids = []
    try:  # the run's provenance (--work-dir): a missing or broken file is bad usage
        prov = provenance.read(args.work_dir) if args.work_dir else None
        if args.work_dir and prov is None:
            raise ValueError(f"{args.work_dir}: no {provenance.FILE} (a training run of the "
                             "pack writes it into its work dir; an adapter of `xtuner convert "
                             "pth_to_hf` carries it)")
    except ValueError as exc:
        print(f"doctor report: {exc}", file=sys.stderr)
        return 2
    facts, findings, elapsed, deep = gather(args, checks.load())
    code = render.exit_code(findings)
    redact = Redactor(facts.m.env)
    facts_lines = lines(facts)
    info = redact({line.key: line.value for line in facts_lines})
    if args.json:
        print(json.dumps({"exit_code": code, "seconds": round(elapsed, 3), "deep": deep,
                          "summary": info, **({"provenance": redact(prov)} if prov else {}),
                          "findings": redact([x.to_json() for x in findings]),
                          "facts": redact(json.loads(json.dumps(facts.gathered, default=str)))},
                         indent=2))
    else:
        cached = next(x.value for x in facts_lines if x.key == "remote_code")
        print(redact("\n".join([markdown(facts_lines, findings, code),
                                 *provenance.markdown(prov, cached)])))
    return code


if __name__ == "__main__":
    sys.exit(main())
