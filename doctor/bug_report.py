"""python -m doctor report [--json] [--deep] [--stack FILE] [--timeout S]

One Markdown block to paste into a bug report (or `--json`): the machine (OS, container, VM,
WSL), GPUs and driver, torch and the CUDA toolkit, the stack's versions, and every finding with
its fix. Home paths, user names in paths, tokens and keys are redacted: the values of
environment variables named like secrets (HF_TOKEN, WANDB_API_KEY, ...*TOKEN/*KEY/*SECRET...),
Hugging Face (hf_...), OpenAI-style (sk-...), GitHub (ghp_..., github_pat_...) and Slack
tokens, and credentials in URLs. Exit codes are those of `check`: 0, 1 when a check failed or
crashed, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys

from . import checks, provenance
from . import report as render
from .check import gather
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


def summary(facts) -> dict:
    """The facts a maintainer asks for first, from what the checks gathered."""
    f = facts
    osr, virt, p = f.os_release, f.virtualization, f.platform
    where = [w for w in (f"{p.container} container" if p.container else "",
                         f"virtual machine ({p.vm})" if p.vm else "", "WSL2" if p.wsl else "") if w]
    t = f.torch
    home, nvcc = f.cuda_home, f.nvcc
    gpus = [{"index": g.index, "name": g.name,
             "memory_gib": round(g.memory_total / 2**30, 1) if g.memory_total else None,
             "cc": g.cc_text} for g in f.gpus]
    return {
        "os": osr.get("PRETTY_NAME") or platform.system(),
        "kernel": platform.release() if f.m.real_root else None,
        "arch": platform.machine(),
        "environment": where or ["bare metal or undetected"],
        "evidence": virt["evidence"],
        "python": f"{f.python_version} ({f.m.python})",
        "torch": (f"{t.version} (" + (f"CUDA {t.cuda}" if t.cuda else "CPU") + ")")
        if t.version else (t.error or "not installed"),
        "gpus": gpus,
        "driver": f.driver_version,
        "driver_cuda": f.gpu.cuda_driver,
        "gpu_query": f.gpu.source if f.gpus else f.gpu.error,
        "cuda_home": f"{home.path} ({home.source}, {home.kind})" if home.path else None,
        "nvcc": nvcc.release or nvcc.problem,
        "toolkits": [f"{tk.version} at {tk.path}" for tk in f.toolkits],
        "packages": {name: f.dist_version(name) for name in PACKAGES},
        "env": {k: f.m.getenv(k) for k in ("CUDA_VISIBLE_DEVICES", "NPROC_PER_NODE",
                                           "NCCL_P2P_DISABLE", "BNB_CUDA_VERSION",
                                           "DS_SKIP_CUDA_CHECK", "DS_IGNORE_CUDA_DETECTION",
                                           "PYTORCH_CUDA_ALLOC_CONF", "XTUNER_PACK_PATCHES")
                if f.m.getenv(k) is not None},
    }


def markdown(info: dict, findings, code: int) -> str:
    counts = {s: sum(x.status == s for x in findings) for s in RANK}
    verdict = ", ".join(f"{counts[s]} {s}" for s in ("fail", "crash", "warn", "info", "pass",
                                                     "skip") if counts[s])
    rows = [("doctor", f"{verdict} (exit {code})"),
            ("OS", f"{info['os']} ({info['arch']}" + (f", kernel {info['kernel']}"
                                                       if info["kernel"] else "") + ")"),
            ("runs in", ", ".join(info["environment"])),
            ("Python", info["python"]), ("torch", info["torch"])]
    for g in info["gpus"]:
        rows.append((f"GPU {g['index']}", f"{g['name']}, {g['memory_gib']} GiB, "
                                          f"compute capability {g['cc']}"))
    if not info["gpus"]:
        rows.append(("GPU", f"none ({info['gpu_query']})"))
    rows.append(("driver", f"{info['driver']}" + (f" (CUDA {info['driver_cuda']})"
                                                  if info["driver_cuda"] else "")))
    rows.append(("CUDA_HOME", info["cuda_home"] or "none"))
    rows.append(("nvcc", info["nvcc"] or "none"))
    if info["toolkits"]:
        rows.append(("toolkits", "; ".join(info["toolkits"])))
    rows.append(("packages", ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)))
    if info["env"]:
        rows.append(("environment", ", ".join(f"{k}={v}" for k, v in info["env"].items())))
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
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return int(exc.code or 0)
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
    try:
        facts, findings, elapsed, deep = gather(args, checks.load())
        code = render.exit_code(findings)
        redact = Redactor(facts.m.env)
        cached = redact(provenance.cached_remote_code(facts.hf_cache))  # remote code, by digest
        info = dict(redact(summary(facts)), remote_code=cached)
        if args.json:
            print(json.dumps({"exit_code": code, "seconds": round(elapsed, 3), "deep": deep,
                              "summary": info, **({"provenance": redact(prov)} if prov else {}),
                              "findings": redact([x.to_json() for x in findings]),
                              "facts": redact(json.loads(json.dumps(facts.gathered,
                                                                    default=str)))},
                             indent=2))
        else:
            print(redact("\n".join([markdown(info, findings, code),
                                     *provenance.markdown(prov, cached)])))
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `python -m doctor check | head`: the reader left, nothing is wrong
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter flushes it at exit)
        return 0
    except Exception as exc:  # like `check`: never a traceback on a sick machine
        print(f"doctor: internal error: {exc!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
